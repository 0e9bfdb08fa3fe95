import Hummingbird
import StreamEngine

/// An error answered as an RFC 9457 problem document:
/// `{"type","title","status","detail"}` plus optional members (such as `field`),
/// with content type `application/problem+json`.
public struct Problem: HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    public var type: String
    public var title: String
    public var detail: String
    /// More members of the document (e.g. `field` for a bad request).
    public var extra: JSONObject
    /// Seconds after which a retry may succeed (`Retry-After`), for 503.
    public var retryAfter: Int?
    /// The `Allow` header of a 405.
    public var allow: String?

    public init(status: HTTPResponse.Status, type: String = "about:blank", title: String? = nil, detail: String, extra: JSONObject = [:], retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.extra = extra
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(title): \(detail)" }

    /// 400 naming the offending field of the request body or query.
    public static func badRequest(field: String?, _ detail: String) -> Problem {
        var extra: JSONObject = [:]
        if let field { _ = extra.updateValue(.string(field), forKey: "field") }
        return Problem(status: .badRequest, type: "urn:stream-engine:problem:invalid-request", title: "Invalid request", detail: detail, extra: extra)
    }

    public static func notFound(_ detail: String) -> Problem {
        Problem(status: .notFound, type: "urn:stream-engine:problem:not-found", title: "Not Found", detail: detail)
    }

    public static func unavailable(_ detail: String, retryAfter: Int = 1) -> Problem {
        Problem(status: .serviceUnavailable, type: "urn:stream-engine:problem:unavailable", title: "Service Unavailable", detail: detail, retryAfter: retryAfter)
    }

    /// The document.
    public var document: JSONValue {
        var o: JSONObject = ["type": .string(type), "title": .string(title), "status": .number(Double(status.code)), "detail": .string(detail)]
        for (k, v) in extra { _ = o.updateValue(v, forKey: k) }
        return .object(o)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if let allow { headers[.allow] = allow }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: document.serialized())))
    }
}

/// Turns every error a route or the router throws (Hummingbird's own 404 for an
/// unknown path or 405 included) into a problem document, and logs server errors.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Path templates (`/stores/{store}`) and their methods, from the OpenAPI document:
    /// a known path asked with another method is answered 405 with `Allow`.
    let routes: [(segments: [Substring], methods: [String])]

    public init(openAPI: JSONValue = .null) {
        routes = (openAPI["paths"]?.objectValue ?? [:]).map { path, item in
            (path.split(separator: "/"), (item.objectValue?.keys ?? []).map { $0.uppercased() })
        }
    }

    func allowedMethods(_ path: String) -> [String]? {
        let parts = path.split(separator: "/")
        let matches = routes.filter { r in
            r.segments.count == parts.count && zip(r.segments, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
        return matches.isEmpty ? nil : Array(Set(matches.flatMap(\.methods))).sorted()
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let p as Problem {
            throw p
        } catch let e as any HTTPResponseError {
            if e.status == .notFound, let allowed = allowedMethods(request.uri.path), !allowed.contains(request.method.rawValue) {
                var p = Problem(status: .methodNotAllowed, detail: "\(request.method) is not allowed on \(request.uri.path); allowed: \(allowed.joined(separator: ", "))")
                p.allow = allowed.joined(separator: ", ")
                throw p
            }
            let detail: String
            switch e.status {
            case .notFound: detail = "no route for \(request.method) \(request.uri.path)"
            case .methodNotAllowed: detail = "\(request.method) is not allowed on \(request.uri.path)"
            default: detail = "\(e)"
            }
            throw Problem(status: e.status, detail: detail)
        } catch {
            context.logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            throw Problem(status: .internalServerError, detail: "\(error)")
        }
    }
}

/// JSON responses from `JSONValue`.
public enum JSONResponse {
    public static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    /// Parses a request body as a JSON object; a 400 problem otherwise.
    public static func object(of request: Request, limit: Int = 1 << 20) async throws -> JSONObject {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch {
            throw Problem(status: .contentTooLarge, detail: "request body larger than \(limit) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch {
            throw Problem.badRequest(field: nil, "malformed JSON body: \(error)")
        }
        guard case .object(let o) = value else { throw Problem.badRequest(field: nil, "the body must be a JSON object") }
        return o
    }
}

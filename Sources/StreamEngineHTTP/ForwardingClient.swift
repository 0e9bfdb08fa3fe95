import NIOCore
import NIOHTTP1
import NIOPosix

/// The answer of another instance to a forwarded request.
public struct ForwardedResponse: Sendable {
    public var status: Int
    public var contentType: String?
    public var body: [UInt8]
}

/// Forwards a GET to another instance of the application (interactive queries
/// of keys this instance does not hold): one HTTP/1.1 connection per request
/// over swift-nio's HTTP codec, bounded by a timeout.
public struct ForwardingClient: Sendable {
    /// Header marking a forwarded request: the receiver answers from its own state
    /// only and never forwards again.
    public static let forwardedHeader = "X-StreamEngine-Forwarded"

    public var timeout: Duration

    public init(timeout: Duration = .seconds(3)) {
        self.timeout = timeout
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `GET baseURL + pathAndQuery` (baseURL `http://host:port`), marked as forwarded.
    public func get(baseURL: String, pathAndQuery: String) async throws -> ForwardedResponse {
        try await request(method: "GET", baseURL: baseURL, pathAndQuery: pathAndQuery, headers: [(Self.forwardedHeader, "1")])
    }

    /// Any request with an optional JSON body (the load benchmark uses it too).
    public func request(method: String, baseURL: String, pathAndQuery: String, body: [UInt8]? = nil,
                        headers: [(String, String)] = []) async throws -> ForwardedResponse {
        guard baseURL.hasPrefix("http://") else { throw Failure(description: "unsupported URL \(baseURL)") }
        let hostPort = baseURL.dropFirst("http://".count).split(separator: "/").first.map(String.init) ?? ""
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else {
            throw Failure(description: "no port in \(baseURL)")
        }
        let host = String(hostPort[..<colon])
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: ForwardedResponse.self) { group in
            group.addTask {
                try await Self.exchange(method: method, host: host, port: port, hostHeader: hostPort, path: pathAndQuery, body: body,
                                        headers: headers, connectTimeout: timeout)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Failure(description: "\(baseURL) did not answer within \(timeout)")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }

    private static func exchange(method: String, host: String, port: Int, hostHeader: String, path: String, body requestBody: [UInt8]?,
                                 headers: [(String, String)], connectTimeout: Duration) async throws -> ForwardedResponse {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000 + connectTimeout.components.attoseconds / 1_000_000_000))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers.add(name: "Host", value: hostHeader)
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Accept", value: "application/json")
            for (k, v) in headers { head.headers.add(name: k, value: v) }
            if let requestBody {
                head.headers.add(name: "Content-Type", value: "application/json")
                head.headers.add(name: "Content-Length", value: String(requestBody.count))
            }
            try await outbound.write(.head(head))
            if let requestBody { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: requestBody)))) }
            try await outbound.write(.end(nil))
            var status = 0
            var contentType: String?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let h):
                    status = Int(h.status.code)
                    contentType = h.headers.first(name: "Content-Type")
                case .body(var b):
                    body.writeBuffer(&b)
                case .end:
                    return ForwardedResponse(status: status, contentType: contentType, body: Array(body.readableBytesView))
                }
            }
            throw Failure(description: "\(hostHeader) closed the connection before the end of its answer")
        }
    }
}

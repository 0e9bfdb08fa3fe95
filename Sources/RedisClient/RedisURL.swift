import Foundation

/// Where and how to connect to Redis, parsed from
/// `redis://[[user]:password@]host[:port][/db]`.
///
/// The port defaults to 6379 and the database to 0. IPv6 hosts are written in
/// brackets (`redis://[::1]:6379`). User and password may be percent-encoded.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address.
    public var host: String
    /// The TCP port.
    public var port: Int
    /// The database index selected after connecting (`SELECT db`).
    public var db: Int
    /// The ACL user for `AUTH user password`; `nil` means `AUTH password` (the default user).
    public var user: String?
    /// The password; `nil` means no `AUTH`.
    public var password: String?

    /// The default Redis port, 6379.
    public static let defaultPort = 6379

    /// Creates a URL from its parts.
    public init(
        host: String = "127.0.0.1", port: Int = RedisURL.defaultPort, db: Int = 0,
        user: String? = nil, password: String? = nil
    ) {
        self.host = host
        self.port = port
        self.db = db
        self.user = user
        self.password = password
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// - Throws: ``RedisError`` of kind ``RedisError/Kind/invalidArgument`` naming
    ///   what is wrong, for example `invalid Redis URL "redis://h:99999": port must be 1...65535`.
    public init(_ string: String) throws {
        func invalid(_ reason: String) -> RedisError {
            RedisError(kind: .invalidArgument, message: "invalid Redis URL \"\(string)\": \(reason)")
        }
        let schemeEnd = string.range(of: "://")
        guard let schemeEnd, string[..<schemeEnd.lowerBound].lowercased() == "redis" else {
            throw invalid("expected redis://[user:password@]host:port/db")
        }
        var rest = Substring(string[schemeEnd.upperBound...])
        if rest.contains("?") || rest.contains("#") {
            throw invalid("query parameters and fragments are not supported")
        }

        // Path: "/db".
        var db = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let value = Int(path), value >= 0 else {
                    throw invalid("database must be a non-negative integer, got \"\(path)\"")
                }
                db = value
            }
        }

        // User info: "user:password@" or ":password@".
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw invalid("user info must be \"user:password\" or \":password\"")
            }
            let rawUser = userInfo[..<colon]
            let rawPassword = userInfo[userInfo.index(after: colon)...]
            guard let decodedUser = String(rawUser).removingPercentEncoding,
                let decodedPassword = String(rawPassword).removingPercentEncoding
            else {
                throw invalid("bad percent-encoding in user info")
            }
            user = decodedUser.isEmpty ? nil : decodedUser
            password = decodedPassword
        }

        // Host and port.
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        var port = RedisURL.defaultPort
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("port must be 1...65535, got \"\(portText)\"")
            }
            port = value
        }
        self.init(host: String(host), port: port, db: db, user: user, password: password)
    }

    /// `host:port`, as used in error messages.
    public var address: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The URL with the password masked, safe for logs.
    public var description: String {
        var auth = ""
        if password != nil { auth = "\(user ?? ""):***@" }
        return "redis://\(auth)\(address)/\(db)"
    }
}

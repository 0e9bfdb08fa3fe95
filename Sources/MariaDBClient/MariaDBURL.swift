import Foundation

/// Where and how to connect to MySQL or MariaDB, parsed from
/// `mysql://user:password@host:port/database` (`mariadb://` is accepted too).
///
/// The port defaults to 3306. User and password may be percent-encoded. The
/// password never appears in ``description``, so a URL can be logged.
public struct MariaDBURL: Sendable, Hashable, CustomStringConvertible {
    /// The host name or IP address.
    public var host: String
    /// The TCP port.
    public var port: Int
    /// The user to log in as.
    public var user: String
    /// The password; `nil` logs in without one.
    public var password: String?
    /// The default database (schema) of the session.
    public var database: String

    /// The default MySQL/MariaDB port, 3306.
    public static let defaultPort = 3306

    /// Creates a URL from its parts.
    public init(host: String = "127.0.0.1", port: Int = MariaDBURL.defaultPort, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses `mysql://user[:password]@host[:port]/database`.
    ///
    /// - Throws: ``MariaDBError`` of kind ``MariaDBError/Kind/invalidArgument`` saying
    ///   what is wrong; the message shows the URL with its password masked.
    public init(_ string: String) throws(MariaDBError) {
        guard let schemeEnd = string.range(of: "://"),
              ["mysql", "mariadb"].contains(string[..<schemeEnd.lowerBound].lowercased()) else {
            throw MariaDBError(kind: .invalidArgument, message: "invalid SQL URL: expected mysql://user:password@host:port/database")
        }
        var rest = Substring(string[schemeEnd.upperBound...])
        // The masked form of the input, for error messages.
        var shown = "mysql://…"
        func invalid(_ reason: String) -> MariaDBError {
            MariaDBError(kind: .invalidArgument, message: "invalid SQL URL \(shown): \(reason)")
        }
        if rest.contains("?") || rest.contains("#") { throw invalid("query parameters and fragments are not supported") }

        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let rawUser = info.firstIndex(of: ":").map { info[..<$0] } ?? info
            let rawPassword = info.firstIndex(of: ":").map { info[info.index(after: $0)...] }
            shown = "mysql://\(rawUser)\(rawPassword == nil ? "" : ":***")@\(rest)"
            guard let u = String(rawUser).removingPercentEncoding else { throw invalid("bad percent-encoding in the user") }
            guard let p = rawPassword.map({ String($0).removingPercentEncoding }) ?? .some(nil) else {
                throw invalid("bad percent-encoding in the password")
            }
            user = u
            password = p
        } else {
            shown = "mysql://\(rest)"
        }
        guard let user, !user.isEmpty else { throw invalid("missing user; expected mysql://user:password@host:port/database") }

        guard let slash = rest.firstIndex(of: "/") else { throw invalid("missing database; expected mysql://user:password@host:port/database") }
        let database = String(rest[rest.index(after: slash)...])
        rest = rest[..<slash]
        guard !database.isEmpty, !database.contains("/") else { throw invalid("expected one database name after the host, got \"\(database)\"") }

        var host = rest
        var port = Self.defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw invalid("port must be 1...65535") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else {
                throw invalid("port must be 1...65535, got \"\(rest[rest.index(after: colon)...])\"")
            }
            port = p
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        self.init(host: String(host), port: port, user: user, password: password, database: database)
    }

    /// `host:port`, as used in log lines and error messages.
    public var address: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The URL with the password masked: `mysql://user:***@host:port/database`.
    public var description: String {
        "mysql://\(user)\(password == nil ? "" : ":***")@\(address)/\(database)"
    }

    /// The full URL, password included (percent-encoded): for handing to another
    /// process, never for logs.
    public var urlString: String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let u = user.addingPercentEncoding(withAllowedCharacters: allowed) ?? user
        let p = password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0) } ?? ""
        return "mysql://\(u)\(p)@\(address)/\(database)"
    }
}

import CMariaDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `mysql_library_init`, once per process, before any handle is created (the
/// implicit call in `mysql_init` is not thread-safe).
private let libraryInitialized: Bool = mysql_server_init(0, nil, nil) == 0

/// Owns one blocking `MYSQL` handle. Not thread-safe and deliberately not `Sendable`:
/// only the dedicated thread of the ``MariaDBConnection`` that created it uses it.
/// Closed (`mysql_close`) on deinit.
final class MySQLHandle {
    let handle: UnsafeMutablePointer<MYSQL>
    /// `host:port` (or the socket path), for messages.
    let address: String

    private init(handle: UnsafeMutablePointer<MYSQL>, address: String) {
        self.handle = handle
        self.address = address
    }

    deinit {
        mysql_close(handle)
    }

    /// Connects over TCP, or over `unixSocket` when given, with utf8mb4 and the timeouts
    /// applied to every later read and write.
    static func connect(
        host: String, port: Int, unixSocket: String? = nil, user: String, password: String?, database: String?,
        connectTimeout: Duration, readTimeout: Duration, writeTimeout: Duration
    ) throws(MariaDBError) -> MySQLHandle {
        guard libraryInitialized, let raw = mysql_init(nil) else {
            throw MariaDBError(kind: .connection, message: "cannot initialise the MariaDB client library")
        }
        let connection = MySQLHandle(handle: raw, address: unixSocket ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"))
        func seconds(_ d: Duration) -> UInt32 { UInt32(max(1, d.components.seconds + (d.components.attoseconds > 0 ? 1 : 0))) }
        var connectSeconds = seconds(connectTimeout), readSeconds = seconds(readTimeout), writeSeconds = seconds(writeTimeout)
        mysql_options(raw, MYSQL_OPT_CONNECT_TIMEOUT, &connectSeconds)
        mysql_options(raw, MYSQL_OPT_READ_TIMEOUT, &readSeconds)
        mysql_options(raw, MYSQL_OPT_WRITE_TIMEOUT, &writeSeconds)
        mysql_options(raw, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        var noReconnect: my_bool = 0
        mysql_options(raw, MYSQL_OPT_RECONNECT, &noReconnect)  // a reconnect would silently end a transaction
        let ok = mysql_real_connect(raw, unixSocket == nil ? host : nil, user, password, database, UInt32(unixSocket == nil ? port : 0), unixSocket, 0)
        guard ok != nil else { throw connection.error(doing: "connect") }
        return connection
    }

    /// The handle's last error as a ``MariaDBError``, kind chosen by its number.
    func error(doing what: String) -> MariaDBError {
        let code = mysql_errno(handle)
        let text = String(cString: mysql_error(handle))
        let state = String(cString: mysql_sqlstate(handle))
        let kind: MariaDBError.Kind
        switch code {
        case 2000..<3000, 1040, 1053, 1077, 1152, 1153, 1158...1161, 1927, 4031:
            kind = .connection  // client-side errors, too many connections, shutdown, aborted or killed connection
        case 1205, 1213:
            kind = .transient  // lock wait timeout, deadlock: the transaction was rolled back
        default:
            kind = .server
        }
        return MariaDBError(kind: kind, code: code, sqlState: state == "00000" ? nil : state,
                            message: "MariaDB at \(address): \(what) failed: \(text)")
    }

    /// Runs one statement; returns its rows if it produced a result set, else its
    /// affected-row count.
    func run(_ sql: String) throws(MariaDBError) -> (result: SQLResult?, affected: UInt64) {
        let status = sql.withCString { mysql_real_query(handle, $0, UInt(strlen($0))) }
        guard status == 0 else { throw error(doing: "query") }
        guard let res = mysql_store_result(handle) else {
            if mysql_field_count(handle) != 0 { throw error(doing: "reading the result") }
            return (nil, UInt64(mysql_affected_rows(handle)))
        }
        defer { mysql_free_result(res) }
        let count = Int(mysql_num_fields(res))
        var columns: [String] = []
        if let fields = mysql_fetch_fields(res) {
            for i in 0..<count { columns.append(String(cString: fields[i].name)) }
        }
        var rows: [[String?]] = []
        while let row = mysql_fetch_row(res) {
            guard let lengths = mysql_fetch_lengths(res) else { break }
            var values: [String?] = []
            values.reserveCapacity(count)
            for i in 0..<count {
                if let cell = row[i] {
                    values.append(String(decoding: UnsafeRawBufferPointer(start: cell, count: Int(lengths[i])), as: UTF8.self))
                } else {
                    values.append(nil)
                }
            }
            rows.append(values)
        }
        if mysql_errno(handle) != 0 { throw error(doing: "reading the rows") }
        return (SQLResult(columns: columns, rows: rows), 0)
    }

    /// `s` escaped for a quoted literal in this connection's character set.
    func escape(_ s: String) -> String {
        var bytes = Array(s.utf8)
        let capacity = bytes.count * 2 + 1
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { out in
            let n = bytes.withUnsafeMutableBufferPointer { input in
                input.withMemoryRebound(to: CChar.self) { mysql_real_escape_string(handle, out.baseAddress, $0.baseAddress, UInt($0.count)) }
            }
            return String(decoding: UnsafeRawBufferPointer(start: out.baseAddress, count: Int(n)), as: UTF8.self)
        }
    }
}

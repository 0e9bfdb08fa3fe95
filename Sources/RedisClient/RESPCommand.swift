/// One Redis command in RESP, the protocol's wire form: `*<n>\r\n`, then `$<length>\r\n`,
/// the argument's bytes and `\r\n` per argument. Built straight from the arguments'
/// bytes (binary-safe) and handed to hiredis as it is, so a command of many arguments
/// (a commit's fenced script) is copied once, not once per layer.
struct RESPCommand {
    private(set) var bytes: [UInt8] = []
    /// The number of arguments the header announced.
    let argumentCount: Int
    /// The number of arguments appended so far.
    private(set) var appended = 0

    /// Starts a command of exactly `argumentCount` arguments; `capacity` is a guess of its
    /// size in bytes.
    init(argumentCount: Int, capacity: Int = 0) {
        precondition(argumentCount > 0, "a command has at least one argument")
        self.argumentCount = argumentCount
        bytes.reserveCapacity(max(capacity, 16))
        bytes.append(UInt8(ascii: "*"))
        RESP.appendDecimal(argumentCount, to: &bytes)
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    /// Whether every announced argument has been appended.
    var isComplete: Bool { appended == argumentCount }

    /// Appends an argument's UTF-8 bytes.
    mutating func append(_ argument: String) {
        var argument = argument  // native strings: no copy, `withUTF8` reads in place
        argument.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends an argument's bytes.
    mutating func append(_ argument: [UInt8]) {
        argument.withUnsafeBytes { append($0) }
    }

    /// Appends an argument's bytes.
    mutating func append(_ argument: UnsafeRawBufferPointer) {
        precondition(appended < argumentCount, "more arguments than the \(argumentCount) announced")
        appended += 1
        RESP.appendBulk(argument, to: &bytes)
    }

    /// Appends arguments encoded already, as they are.
    mutating func append(_ arguments: RedisArguments) {
        precondition(appended + arguments.count <= argumentCount, "more arguments than the \(argumentCount) announced")
        appended += arguments.count
        bytes.append(contentsOf: arguments.bytes)
    }
}

/// RESP's building blocks, shared by ``RESPCommand`` and ``RedisArguments``.
enum RESP {
    /// `$<length>\r\n<bytes>\r\n`: one argument as a bulk string.
    @inline(__always)
    static func appendBulk(_ argument: UnsafeRawBufferPointer, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count, to: &bytes)
        bytes.append(0x0D)
        bytes.append(0x0A)
        bytes.append(contentsOf: argument)
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    /// `$<digits>\r\n<n in decimal>\r\n`: a non-negative integer as a bulk string.
    static func appendBulk(decimal n: Int, to bytes: inout [UInt8]) {
        writeBulk(decimal: n) { bytes.append($0) }
    }

    /// ``appendBulk(decimal:to:)``, byte by byte to `put`.
    @inline(__always)
    static func writeBulk(decimal n: Int, _ put: (UInt8) -> Void) {
        put(UInt8(ascii: "$"))
        writeDecimal(digitCount(n), put)
        put(0x0D)
        put(0x0A)
        writeDecimal(n, put)
        put(0x0D)
        put(0x0A)
    }

    static func digitCount(_ n: Int) -> Int {
        var digits = 1
        var rest = n / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    @inline(__always)
    static func appendDecimal(_ n: Int, to bytes: inout [UInt8]) {
        writeDecimal(n) { bytes.append($0) }
    }

    /// A non-negative integer's decimal digits, one by one to `put`.
    @inline(__always)
    static func writeDecimal(_ n: Int, _ put: (UInt8) -> Void) {
        precondition(n >= 0)
        if n < 10 {
            put(UInt8(ascii: "0") + UInt8(n))
            return
        }
        var divisor = 1
        while divisor <= n / 10 { divisor *= 10 }
        while divisor > 0 {
            put(UInt8(ascii: "0") + UInt8(n / divisor % 10))
            divisor /= 10
        }
    }
}

/// Command arguments encoded once in RESP (each a bulk string), to be sent as part of a
/// command later: a long argument list built piece by piece (a commit's writes, key by
/// key) is copied into the command as it is, not kept as strings and encoded at the end.
public struct RedisArguments: Sendable, Hashable {
    /// The arguments' bulk strings, one after the other.
    public private(set) var bytes: [UInt8] = []
    /// The number of arguments.
    public private(set) var count = 0

    /// No arguments.
    public init() {}

    /// No arguments yet, with room for `capacity` bytes of them.
    public init(reservingCapacity capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// `arguments`, in order.
    public init(_ arguments: some Sequence<String>) {
        for a in arguments { append(a) }
    }

    /// Whether there are no arguments.
    public var isEmpty: Bool { count == 0 }

    /// Appends an argument's UTF-8 bytes.
    public mutating func append(_ argument: String) {
        var argument = argument  // native strings: no copy, `withUTF8` reads in place
        argument.withUTF8 { RESP.appendBulk(UnsafeRawBufferPointer($0), to: &bytes) }
        count += 1
    }

    /// Appends an integer argument, as its decimal text.
    public mutating func append(_ n: Int) {
        if n < 0 { return append(String(n)) }
        RESP.appendBulk(decimal: n, to: &bytes)
        count += 1
    }

    /// Appends the number of arguments `body` appends, then those arguments (a command
    /// in a list of commands, as a script that runs them reads it).
    public mutating func appendCounted(_ body: (inout RedisArguments) throws -> Void) rethrows {
        let start = bytes.count
        let before = count
        try body(&self)
        let n = count - before
        // The count goes in front of the arguments: built on the stack, the arguments' bytes moved up.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { buffer in
            var length = 0
            RESP.writeBulk(decimal: n) { b in
                buffer[length] = b
                length += 1
            }
            bytes.insert(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<length]), at: start)
        }
        count += 1
    }

    /// Appends `other`'s arguments after these.
    public mutating func append(contentsOf other: RedisArguments) {
        bytes.append(contentsOf: other.bytes)
        count += other.count
    }

    /// The arguments as strings (UTF-8 decoded), in order.
    public var strings: [String] {
        var out: [String] = []
        out.reserveCapacity(count)
        var i = 0
        while i < bytes.count {
            // `$<length>\r\n<bytes>\r\n`
            i += 1
            var length = 0
            while bytes[i] != 0x0D {
                length = length * 10 + Int(bytes[i] - UInt8(ascii: "0"))
                i += 1
            }
            i += 2
            out.append(String(decoding: bytes[i..<i + length], as: UTF8.self))
            i += length + 2
        }
        return out
    }
}

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
        appendDecimal(argumentCount)
        bytes.append(contentsOf: [0x0D, 0x0A])
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
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count)
        bytes.append(contentsOf: [0x0D, 0x0A])
        bytes.append(contentsOf: argument)
        bytes.append(contentsOf: [0x0D, 0x0A])
    }

    private mutating func appendDecimal(_ n: Int) {
        precondition(n >= 0)
        var divisor = 1
        while divisor <= n / 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(n / divisor % 10))
            divisor /= 10
        }
    }
}

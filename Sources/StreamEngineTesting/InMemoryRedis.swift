import StreamEngine

/// The Redis writes of the engine's `redis:` steps applied to memory, for the
/// ``TopologyTestDriver``: what a test would read back from a real Redis after a commit.
///
/// It understands the commands the engine's Redis sink issues (`SET`, `DEL`, `HSET`, `ZADD`,
/// `PEXPIRE`, the fence's `ZREMIFLE`, `ZADDIFNEWER`, `SETMAX`) and the sorted-set trimming of `commands` steps
/// (`ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`). Expiry is not simulated: ``ttlMillis(_:)`` tells
/// the TTL a key was given.
public struct InMemoryRedis: Sendable {
    public private(set) var strings: [String: String] = [:]
    public private(set) var hashes: [String: [String: String]] = [:]
    public private(set) var sortedSets: [String: [String: Double]] = [:]
    private var ttls: [String: Int64] = [:]
    /// Every command applied, in order.
    public private(set) var commands: [[String]] = []

    public init() {}

    /// `GET key`.
    public func get(_ key: String) -> String? { strings[key] }

    /// `HGETALL key` (empty when the key does not exist).
    public func hgetall(_ key: String) -> [String: String] { hashes[key] ?? [:] }

    /// `ZRANGE key 0 -1 WITHSCORES`: members by ascending score, then member.
    public func zrangeWithScores(_ key: String) -> [(member: String, score: Double)] {
        (sortedSets[key] ?? [:]).map { (member: $0.key, score: $0.value) }.sorted { ($0.score, $0.member) < ($1.score, $1.member) }
    }

    /// The TTL the last `PEXPIRE` gave the key, in milliseconds.
    public func ttlMillis(_ key: String) -> Int64? { ttls[key] }

    /// Every key that exists.
    public var keys: Set<String> { Set(strings.keys).union(hashes.keys).union(sortedSets.keys) }

    /// An unknown command or wrong arguments.
    public struct UnsupportedCommand: Error, CustomStringConvertible {
        public let command: [String]
        public var description: String { "InMemoryRedis does not understand \(command)" }
    }

    /// Applies one command as Redis would.
    public mutating func apply(_ command: [String]) throws(UnsupportedCommand) {
        guard let name = command.first?.uppercased(), command.count >= 2 else { throw UnsupportedCommand(command: command) }
        let key = command[1]
        let args = Array(command.dropFirst(2))
        switch name {
        case "SET" where args.count == 1:
            delete(key)
            strings[key] = args[0]
        case "DEL":
            for k in command.dropFirst() { delete(k) }
        case "HSET" where !args.isEmpty && args.count % 2 == 0:
            for i in stride(from: 0, to: args.count, by: 2) { hashes[key, default: [:]][args[i]] = args[i + 1] }
        case "ZADD" where !args.isEmpty && args.count % 2 == 0:
            for i in stride(from: 0, to: args.count, by: 2) {
                guard let score = Double(args[i]) else { throw UnsupportedCommand(command: command) }
                sortedSets[key, default: [:]][args[i + 1]] = score
            }
        case "ZREMIFLE" where args.count == 2:  // the engine's: remove a member if its score <= the given one
            guard let score = Double(args[0]) else { throw UnsupportedCommand(command: command) }
            if let current = sortedSets[key]?[args[1]], current <= score { removeMembers(key) { $0.member == args[1] } }
        case "ZADDIFNEWER" where args.count == 3:  // the engine's: add unless the guard key holds a score at or above
            guard let score = Double(args[0]) else { throw UnsupportedCommand(command: command) }
            if let guard_ = strings[args[2]].flatMap(Double.init), score <= guard_ { break }
            sortedSets[key, default: [:]][args[1]] = score
        case "SETMAX" where args.count == 2:  // the engine's: keep the larger number, set the TTL
            guard let value = Double(args[0]), let ttl = Int64(args[1]) else { throw UnsupportedCommand(command: command) }
            if let current = strings[key].flatMap(Double.init), current >= value {} else { strings[key] = args[0] }
            ttls[key] = ttl
        case "ZREMRANGEBYRANK" where args.count == 2:
            guard var start = Int(args[0]), var stop = Int(args[1]) else { throw UnsupportedCommand(command: command) }
            let ranked = zrangeWithScores(key)
            if start < 0 { start += ranked.count }
            if stop < 0 { stop += ranked.count }
            let doomed = Set(ranked.indices.filter { $0 >= max(start, 0) && $0 <= stop }.map { ranked[$0].member })
            removeMembers(key) { doomed.contains($0.member) }
        case "ZREMRANGEBYSCORE" where args.count == 2:
            guard let min = Self.bound(args[0]), let max = Self.bound(args[1]) else { throw UnsupportedCommand(command: command) }
            removeMembers(key) { m in
                (min.exclusive ? m.score > min.value : m.score >= min.value) && (max.exclusive ? m.score < max.value : m.score <= max.value)
            }
        case "PEXPIRE" where args.count == 1:
            guard let ms = Int64(args[0]) else { throw UnsupportedCommand(command: command) }
            if keys.contains(key) { ttls[key] = ms }
        default:
            throw UnsupportedCommand(command: command)
        }
        commands.append(command)
    }

    private mutating func removeMembers(_ key: String, where doomed: ((member: String, score: Double)) -> Bool) {
        guard var set = sortedSets[key] else { return }
        for (member, score) in set where doomed((member, score)) { set[member] = nil }
        sortedSets[key] = set.isEmpty ? nil : set
        if set.isEmpty { ttls[key] = nil }
    }

    /// A score bound of ZREMRANGEBYSCORE: `-inf`, `+inf`, `5` or exclusive `(5`.
    private static func bound(_ text: String) -> (value: Double, exclusive: Bool)? {
        switch text {
        case "-inf": return (-.infinity, false)
        case "+inf", "inf": return (.infinity, false)
        default:
            if text.hasPrefix("(") { return Double(text.dropFirst()).map { ($0, true) } }
            return Double(text).map { ($0, false) }
        }
    }

    private mutating func delete(_ key: String) {
        strings[key] = nil
        hashes[key] = nil
        sortedSets[key] = nil
        ttls[key] = nil
    }
}

import Foundation
import Logging
import RedisClient

/// The Redis writes of one task for one commit: per Redis key the commands
/// that materialise its latest value (a later full replacement drops earlier
/// commands for the same key), so each changed key is written once per commit.
/// Commands are kept encoded as the fence script reads them (``RedisFence``: per command
/// its argument count, then its arguments), so a commit concatenates them as they are.
struct RedisWriteBatch {
    /// One key's commands, and whether they begin with a write of the whole value.
    private struct Entry {
        var commands: RedisArguments
        var replaces: Bool
    }

    private(set) var order: [String] = []
    private var entries: [String: Entry] = [:]

    var isEmpty: Bool { order.isEmpty }

    /// Drops the commands of `key`.
    mutating func remove(_ key: String) {
        guard entries.removeValue(forKey: key) != nil else { return }
        order.removeAll { $0 == key }
    }

    /// This batch followed by `later` (a batch held back, then the writes after it).
    func then(_ later: RedisWriteBatch) -> RedisWriteBatch {
        var out = self
        for key in later.order {
            if let e = later.entries[key] { out.add(key: key, encoded: e.commands, replaces: e.replaces) }
        }
        return out
    }
    var keyCount: Int { order.count }

    /// Adds `key`'s commands, encoded as ``RedisFence`` reads them (each command's argument
    /// count, then its arguments: `RedisArguments.appendCounted`).
    mutating func add(key: String, encoded cmds: RedisArguments, replaces: Bool) {
        // One hash of the key for a key new to the batch (the common case at a commit).
        if let old = entries.updateValue(Entry(commands: cmds, replaces: replaces), forKey: key) {
            if !replaces {
                var joined = old.commands
                joined.append(contentsOf: cmds)
                entries[key] = Entry(commands: joined, replaces: old.replaces)
            }
        } else {
            order.append(key)
        }
    }

    /// Every key's commands in the order the keys were first written, encoded for ``RedisFence``.
    var encoded: RedisArguments {
        var size = 0
        for e in entries.values { size += e.commands.bytes.count }
        var out = RedisArguments(reservingCapacity: size)
        for key in order {
            if let e = entries[key] { out.append(contentsOf: e.commands) }
        }
        return out
    }
}

/// Builds the Redis commands of a `redis:` step for one record.
struct RedisSinkStep {
    let spec: RedisSinkSpec

    /// Whether a write sets the whole value this sink keeps under its key (a hash's fields, a
    /// sorted set's members, a value, a deletion): writing the latest one again is harmless.
    /// Adding one member and raw commands are not (a replay could undo another task's work).
    var replacesValue: Bool {
        switch spec.mode {
        case .sortedSetMember, .commands: false
        default: true
        }
    }

    /// The top-level members of a record this sink reads (its key template's fields and the
    /// fields of its mode); `nil` when it reads the whole record (a hash without `fields`,
    /// `value: json`). A dotted path counts its first member and itself.
    var readFields: Set<String>? {
        var names = spec.key.referencedFields
        switch spec.mode {
        case .hash(let fields):
            guard let fields else { return nil }
            names += fields.map(\.valueField)
        case .sortedSetMember(let member, let score): names += [member, score]
        case .sortedSetMembers(let field): names.append(field)
        case .value(let field):
            guard let field, field != "json" else { return nil }
            names.append(field)
        case .delete: break
        case .commands(let field): names.append(field)
        }
        var out = Set(names)
        for n in names { if let dot = n.firstIndex(of: ".") { out.insert(String(n[..<dot])) } }
        return out
    }

    /// Adds the record's commands to `batch`; returns the Redis key written, if any.
    @discardableResult
    func write(_ record: StreamRecord, into batch: inout RedisWriteBatch) throws(RecordError) -> String? {
        let keyText = spec.key.render(recordKey: record.key) { record.field($0)?.keyText }
        guard let key = keyText else {
            throw RecordError(.missingField, "redis key template '\(spec.key)' needs fields \(spec.key.referencedFields) that the record lacks")
        }
        // Encoded as the fence script reads them (per command its argument count, then its
        // arguments) straight away: a commit writes one per changed key.
        var encoded = RedisArguments(reservingCapacity: 128 + 48 * record.fieldCount)
        var replaces = true
        switch spec.mode {
        case .hash(let fields):
            encoded.appendCounted { args in
                args.append("HSET")
                args.append(key)
                if let fields {
                    for f in fields {
                        guard let v = record.field(f.valueField), !v.isNull else { continue }
                        args.append(f.redisField)
                        args.append(v.keyText)
                    }
                } else {
                    for (k, v) in record.value where !v.isNull {
                        args.append(k)
                        args.append(v.keyText)
                    }
                }
            }
            guard encoded.count > 3 else { return nil }  // the count, HSET and the key: no field to write
        case .sortedSetMember(let memberField, let scoreField):
            guard let member = record.field(memberField)?.keyText else { throw RecordError(.missingField, "field '\(memberField)' is missing") }
            guard let score = record.field(scoreField)?.doubleValue else { throw RecordError(.missingField, "numeric field '\(scoreField)' is missing") }
            encoded.appendCounted { args in
                args.append("ZADD")
                args.append(key)
                args.append(Self.scoreText(score))
                args.append(member)
            }
            replaces = false
        case .sortedSetMembers(let membersField):
            guard let members = record.field(membersField)?.objectValue else {
                throw RecordError(.missingField, "field '\(membersField)' (an object of member: score) is missing")
            }
            encoded.appendCounted { args in
                args.append("DEL")
                args.append(key)
            }
            if !members.isEmpty {
                encoded.appendCounted { args in
                    args.append("ZADD")
                    args.append(key)
                    for (m, s) in members {
                        args.append(Self.scoreText(s.doubleValue ?? 0))
                        args.append(m)
                    }
                }
            }
        case .value(let field):
            let v: String
            if let field, field != "json" {
                guard let x = record.field(field) else { throw RecordError(.missingField, "field '\(field)' is missing") }
                v = x.keyText
            } else {
                v = JSONValue.object(record.value).serializedString()
            }
            encoded.appendCounted { args in
                args.append("SET")
                args.append(key)
                args.append(v)
            }
        case .delete:
            encoded.appendCounted { args in
                args.append("DEL")
                args.append(key)
            }
        case .commands(let field):
            guard let list = record.field(field)?.arrayValue else {
                throw RecordError(.missingField, "field '\(field)' (a list of Redis commands) is missing")
            }
            for c in list {
                guard let args = c.arrayValue, !args.isEmpty else {
                    throw RecordError(.wrongType, "field '\(field)' must hold lists of command arguments")
                }
                encoded.appendCounted { out in
                    for a in args { out.append(a.keyText) }
                }
            }
            replaces = false
        }
        if let ttl = spec.ttlMillis, spec.mode != .delete {
            encoded.appendCounted { args in
                args.append("PEXPIRE")
                args.append(key)
                args.append(ttl)
            }
        }
        batch.add(key: key, encoded: encoded, replaces: replaces)
        return key
    }

    static func scoreText(_ d: Double) -> String {
        if let i = Int64(exactly: d) { return String(i) }
        return String(d)
    }
}

/// Applies one task's commit to Redis atomically together with the task's
/// fence, a hash `<fencePrefix><taskId>` holding per input topic the last input
/// offset already applied. A replay after a crash whose writes Redis already
/// holds is skipped as a whole (a Lua script: all or nothing, never twice).
enum RedisFence {
    static let script = """
        local n = tonumber(ARGV[1])
        local apply = false
        for i = 0, n - 1 do
          local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[2 + 2 * i]) or '-1')
          if tonumber(ARGV[3 + 2 * i]) > cur then apply = true end
        end
        if not apply then return 0 end
        local idx = 2 + 2 * n
        while idx <= #ARGV do
          local argc = tonumber(ARGV[idx])
          if ARGV[idx + 1] == 'ZREMIFLE' then
            local cur = redis.call('ZSCORE', ARGV[idx + 2], ARGV[idx + 4])
            if cur and tonumber(cur) <= tonumber(ARGV[idx + 3]) then redis.call('ZREM', ARGV[idx + 2], ARGV[idx + 4]) end
          elseif ARGV[idx + 1] == 'ZADDIFNEWER' then
            local guard = redis.call('GET', ARGV[idx + 5])
            if not guard or tonumber(ARGV[idx + 3]) > tonumber(guard) then redis.call('ZADD', ARGV[idx + 2], ARGV[idx + 3], ARGV[idx + 4]) end
          elseif ARGV[idx + 1] == 'SETMAX' then
            local cur = redis.call('GET', ARGV[idx + 2])
            if not cur or tonumber(ARGV[idx + 3]) > tonumber(cur) then redis.call('SET', ARGV[idx + 2], ARGV[idx + 3]) end
            redis.call('PEXPIRE', ARGV[idx + 2], ARGV[idx + 4])
          else
            redis.call(unpack(ARGV, idx + 1, idx + argc))
          end
          idx = idx + argc + 1
        end
        for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[2 + 2 * i], ARGV[3 + 2 * i]) end
        return 1
        """

    /// The call of `script` for a task's commit: the fence's offsets, then the commands
    /// (encoded by ``encoded(_:)``).
    static func call(fenceKey: String, tag: CommitTag, commands: RedisArguments) -> RedisScriptCall {
        var args = [String(tag.offsets.count)]
        for (t, o) in tag.offsets.sorted(by: { $0.key < $1.key }) { args += [t, String(o)] }
        return RedisScriptCall(keys: [fenceKey], args: args, encodedArgs: commands)
    }

    /// The call of `script` for writes of periodic work: fenced by their own
    /// increasing sequence (field `~punctuation`), not by input offsets.
    static func call(fenceKey: String, punctuation sequence: Int64, commands: RedisArguments) -> RedisScriptCall {
        RedisScriptCall(keys: [fenceKey], args: ["1", "~punctuation", String(sequence)], encodedArgs: commands)
    }

    /// The commands in encoded writes (each command's argument count, then its arguments;
    /// the test driver and tests read them).
    static func commands(in encoded: RedisArguments) -> [[String]] {
        let args = encoded.strings
        var out: [[String]] = []
        var i = 0
        while i < args.count {
            let n = Int(args[i]) ?? 0
            out.append(Array(args[i + 1..<i + 1 + n]))
            i += 1 + n
        }
        return out
    }
}

import Foundation

// The sinks: `to` a topic and `redis`.

extension ConfigValidator {
    // MARK: sinks

    func toStep(_ node: ConfigNode) -> ToSpec? {
        guard let m = map(node, "'to'", expected: "a map with 'topic' and optionally 'key'") else { return nil }
        checkKeys(m, allowed: ["topic", "key"], in: "to")
        let topic = require(m, "topic", in: "to", expected: "the output topic").flatMap { name($0, "topic", .topic) }
        var key: String?
        var ok = true
        if let v = m["key"] {
            key = name(v, "key", .field)
            ok = key != nil
        }
        guard ok, let topic else { return nil }
        if let loc = m["topic"]?.location { sinkTopics.append((topic, loc)) }
        return ToSpec(topic: topic, keyField: key)
    }

    static let redisKeys = ["key", "mode", "fields", "member", "members", "score", "value", "ttl", "field"]
    static let redisModeKeys: [String: [String]] = [
        "hash": ["fields"], "sorted_set": ["member", "members", "score"], "value": ["value"], "delete": [], "commands": ["field"],
    ]

    func redisStep(_ node: ConfigNode) -> RedisSinkSpec? {
        guard let m = map(node, "'redis'", expected: "a map with 'key' and 'mode'") else { return nil }
        checkKeys(m, allowed: Self.redisKeys, in: "redis")
        var ok = true
        var template: KeyTemplate?
        if let v = require(m, "key", in: "redis", expected: "a key template such as \"user:{userId}:stats\""),
           let s = string(v, "key", expected: "a key template such as \"user:{userId}:stats\"") {
            do {
                template = try KeyTemplate(parsing: s)
            } catch {
                self.report(v.location, error.message)
            }
        }
        let modes = ["hash", "sorted_set", "value", "delete", "commands"]
        let modeName = require(m, "mode", in: "redis", expected: "one of \(ConfigSuggest.list(modes))")
            .flatMap { choice($0, "mode", modes.map { ($0, $0) }) }
        var ttl: Int?
        if let v = m["ttl"] {
            ttl = duration(v, "ttl")
            if ttl == nil { ok = false }
        }
        guard let modeName else { return nil }

        let allowed = Self.redisModeKeys[modeName] ?? []
        for entry in m.entries where Self.redisKeys.contains(entry.key) && !["key", "mode", "ttl"].contains(entry.key) && !allowed.contains(entry.key) {
            let expected = allowed.isEmpty ? "no further keys" : "only \(ConfigSuggest.list(allowed))"
            report(entry.keyLocation, "'\(entry.key)' is not allowed in redis mode '\(modeName)'; expected \(expected) besides key, mode and ttl")
            ok = false
        }
        var mode: RedisMode?
        switch modeName {
        case "hash":
            var fields: [RedisFieldMapping]?
            if let v = optional(m, "fields", nullIsAbsent: true) {
                if let fm = map(v, "'fields'", expected: "a map of Redis hash field to record field"), !fm.entries.isEmpty {
                    var list: [RedisFieldMapping] = []
                    for entry in fm.entries {
                        if let f = name(entry.value, "fields.\(entry.key)", .field) {
                            list.append(RedisFieldMapping(redisField: entry.key, valueField: f))
                        } else {
                            ok = false
                        }
                    }
                    fields = list
                } else {
                    if case .mapping = v.kind { report(v.location, "'fields' is empty; expected a map of Redis hash field to record field, or no 'fields' for all top-level fields") }
                    ok = false
                }
            }
            mode = .hash(fields: fields)
        case "sorted_set":
            let member = m["member"], members = m["members"]
            switch (member, members) {
            case (nil, nil):
                report(m.location, "redis mode 'sorted_set' needs 'member' (with 'score') or 'members'; expected exactly one of them")
                ok = false
            case (.some, .some):
                report(m.keyLocation("members") ?? m.location, "redis mode 'sorted_set' takes 'member' or 'members', not both; expected exactly one of them")
                ok = false
            case (let member?, nil):
                let memberField = name(member, "member", .field)
                var scoreField: String?
                if let s = require(m, "score", in: "redis sorted_set with 'member'", expected: "the field holding the member's score") {
                    scoreField = name(s, "score", .field)
                }
                if let memberField, let scoreField {
                    mode = .sortedSetMember(memberField: memberField, scoreField: scoreField)
                } else {
                    ok = false
                }
            case (nil, let members?):
                if m["score"] != nil {
                    report(m.keyLocation("score") ?? m.location, "'score' is not allowed with 'members' (the members field holds member -> score); expected 'score' only with 'member'")
                    ok = false
                }
                if let f = name(members, "members", .field) { mode = .sortedSetMembers(membersField: f) } else { ok = false }
            }
        case "value":
            if let v = m["value"] {
                if let f = name(v, "value", .field) { mode = .value(field: f == "json" ? nil : f) } else { ok = false }
            } else {
                mode = .value(field: nil)
            }
        case "commands":
            if let v = require(m, "field", in: "redis mode 'commands'", expected: "the field holding a list of Redis commands") {
                if let f = name(v, "field", .field) { mode = .commands(field: f) } else { ok = false }
            } else {
                ok = false
            }
        default:
            mode = .delete
        }
        guard ok, let template, let mode else { return nil }
        return RedisSinkSpec(key: template, mode: mode, ttlMillis: ttl)
    }
}

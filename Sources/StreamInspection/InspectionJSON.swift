import StreamEngine
// The JSON documents of `stream-engine state … --format json`. Field names are
// part of the command's interface: add fields, never rename or remove them.

extension JSONValue {
    fileprivate static func int(_ v: some BinaryInteger) -> JSONValue { .number(Double(v)) }
    fileprivate static func optionalInt(_ v: (some BinaryInteger)?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
    fileprivate static func strings(_ v: [String]) -> JSONValue { .array(v.map(JSONValue.string)) }
}

extension StoreItem {
    /// `{"key", "partition", "value", "expiresAt"}` (`expiresAt` null without a TTL).
    public var jsonValue: JSONValue {
        ["key": .string(key), "partition": .int(partition), "value": value, "expiresAt": .optionalInt(expiresAt)]
    }
}

extension SnapshotSummary {
    /// `{"path", "keys", "rawBytes", "compressedBytes", "ratio", "changelogOffset", "inputOffsets"}`.
    public var jsonValue: JSONValue {
        [
            "path": .string(path), "keys": .int(keys), "rawBytes": .int(rawBytes), "compressedBytes": .int(compressedBytes),
            "ratio": ratio.map { .number(($0 * 100).rounded() / 100) } ?? .null, "changelogOffset": .int(changelogOffset),
            "inputOffsets": .object(JSONObject(inputOffsets.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) })),
        ]
    }
}

extension StoreContents {
    private var header: JSONObject {
        ["store": .string(store.name), "source": .string(source.rawValue), "changelogTopic": .string(store.changelogTopic)]
    }

    /// `state get`: `{"store", "source", "changelogTopic", "key", "found", "partition", "value", "expiresAt", "notes"}`;
    /// `partition`, `value` and `expiresAt` are null when the key is not found.
    public func getDocument(key: String) -> JSONValue {
        var o = header
        let match = lookup(key).first
        o["key"] = .string(key)
        o["found"] = .bool(match != nil)
        o["partition"] = .optionalInt(match?.partition)
        o["value"] = match?.value ?? .null
        o["expiresAt"] = .optionalInt(match?.expiresAt)
        o["notes"] = .strings(notes)
        return .object(o)
    }

    /// `state scan` / `state dump`: `{"store", "source", "changelogTopic", "partitions", "count", "truncated", "entries", "notes"}`.
    public func entriesDocument(_ items: [StoreItem], truncated: Bool) -> JSONValue {
        var o = header
        o["partitions"] = .array(partitions.map { .int($0.partition) })
        o["count"] = .int(items.count)
        o["truncated"] = .bool(truncated)
        o["entries"] = .array(items.map(\.jsonValue))
        o["notes"] = .strings(notes)
        return .object(o)
    }

    /// `state count`: `{"store", "source", "changelogTopic", "count", "partitions": [{"partition", "count"}], "notes"}`.
    public var countDocument: JSONValue {
        var o = header
        o["count"] = .int(count)
        o["partitions"] = .array(partitions.map { ["partition": .int($0.partition), "count": .int($0.entries.count)] })
        o["notes"] = .strings(notes)
        return .object(o)
    }
}

extension StateListing {
    /// `state list`: `{"applicationId", "stateDir", "kafka": {"bootstrapServers", "reachable", "error"},
    /// "stores": [{"store", "pipeline", "subTopology", "internal", "changelogTopic", "changelogPartitions",
    /// "partitions": [{"partition", "snapshotPath", "snapshot", "snapshotError", "changelogEndOffset", "lag"}]}]}`.
    public var jsonValue: JSONValue {
        let kafka: JSONValue = [
            "bootstrapServers": bootstrapServers.map(JSONValue.string) ?? .null, "reachable": .bool(kafkaReachable),
            "error": kafkaError.map(JSONValue.string) ?? .null,
        ]
        let stores: [JSONValue] = self.stores.map { s in
            [
                "store": .string(s.store.name), "pipeline": .string(s.store.pipeline), "subTopology": .string(s.store.subTopology),
                "internal": .bool(s.store.isInternal), "changelogTopic": .string(s.store.changelogTopic),
                "changelogPartitions": .optionalInt(s.changelogPartitions),
                "partitions": .array(s.partitions.map { p in
                    [
                        "partition": .int(p.partition), "snapshotPath": .string(p.snapshotPath),
                        "snapshot": p.snapshot?.jsonValue ?? .null, "snapshotError": p.snapshotError.map(JSONValue.string) ?? .null,
                        "changelogEndOffset": .optionalInt(p.changelogEndOffset), "lag": .optionalInt(p.lag),
                    ]
                }),
            ]
        }
        return ["applicationId": .string(applicationId), "stateDir": .string(stateDir), "kafka": kafka, "stores": .array(stores)]
    }
}

extension StoreDiff {
    /// `state diff`: `{"store", "changelogTopic", "partitions", "keysCompared", "differenceCount", "explainedByLag",
    /// "differences": [{"key", "partition", "status", "snapshotValue", "changelogValue", "changelogOffset", "afterSnapshot"}], "notes"}`.
    public var jsonValue: JSONValue {
        [
            "store": .string(store.name), "changelogTopic": .string(store.changelogTopic),
            "partitions": .array(partitions.map { .int($0) }), "keysCompared": .int(keysCompared),
            "differenceCount": .int(differences.count), "explainedByLag": .int(explainedByLag),
            "differences": .array(differences.map { d in
                [
                    "key": .string(d.key), "partition": .int(d.partition), "status": .string(d.status.rawValue),
                    "snapshotValue": d.snapshotValue ?? .null, "changelogValue": d.changelogValue ?? .null,
                    "changelogOffset": .optionalInt(d.changelogOffset), "afterSnapshot": .bool(d.afterSnapshot),
                ]
            }),
            "notes": .strings(notes),
        ]
    }
}

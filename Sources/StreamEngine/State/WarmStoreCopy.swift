/// A store partition kept up to date from its changelog by a standby replica
/// (``StandbyReplicas``), handed to the task that takes the partition over:
/// the task restores only what was written after it.
///
/// `entries` holds every changelog record before `nextOffset` whose commit was
/// known to be complete (its ``CommitTag`` covered by the group's committed
/// offsets); `pending` the records read but not applied yet because their
/// commit was not known to be complete, in offset order. The restore applies
/// the pending records by the same rule as every other record, with the
/// committed offsets the new owner starts from.
public struct WarmStoreCopy: Sendable {
    public var store: String
    public var partition: Int32
    public var entries: [String: StoreEntry]
    public var nextOffset: Int64
    public var pending: [ChangelogRecord]

    public init(store: String, partition: Int32, entries: [String: StoreEntry], nextOffset: Int64, pending: [ChangelogRecord]) {
        self.store = store
        self.partition = partition
        self.entries = entries
        self.nextOffset = nextOffset
        self.pending = pending
    }
}

/// A warm copy being built: applies changelog records as a restore would,
/// holding back those whose commit is not known to be complete yet.
///
/// The rule is the restore's: the value of a key is that of its last
/// changelog record (in offset order) whose tag the committed offsets cover.
/// A record whose tag is not covered yet waits in `pending`; a later covered
/// record of the same key supersedes it; when the committed offsets move, the
/// last covered pending record of each key is applied.
struct WarmStoreBuilder {
    let store: String
    let partition: Int32
    private(set) var entries: [String: StoreEntry]
    private(set) var nextOffset: Int64
    private var pending: [String: [ChangelogRecord]] = [:]
    private(set) var applied = 0

    init(store: String, partition: Int32, entries: [String: StoreEntry] = [:], nextOffset: Int64 = 0) {
        self.store = store
        self.partition = partition
        self.entries = entries
        self.nextOffset = nextOffset
    }

    var pendingCount: Int { pending.values.reduce(0) { $0 + $1.count } }

    /// Takes the next changelog record (records before `nextOffset` are ignored).
    mutating func add(_ record: ChangelogRecord, committed: [String: Int64]) {
        guard record.offset >= nextOffset else { return }
        nextOffset = record.offset + 1
        if record.tag?.isCommitted(by: committed) ?? false {
            apply(record)
            pending.removeValue(forKey: record.key)
        } else {
            pending[record.key, default: []].append(record)
        }
    }

    /// Applies the pending records the committed offsets now cover.
    mutating func resolve(committed: [String: Int64]) {
        guard !pending.isEmpty else { return }
        for key in Array(pending.keys) {
            guard let records = pending[key],
                  let last = records.lastIndex(where: { $0.tag?.isCommitted(by: committed) ?? false }) else { continue }
            apply(records[last])
            let rest = records[(last + 1)...]
            pending[key] = rest.isEmpty ? nil : Array(rest)
        }
    }

    private mutating func apply(_ record: ChangelogRecord) {
        entries[record.key] = record.entry
        applied += 1
    }

    /// The copy as it stands, pending records in offset order.
    func copy() -> WarmStoreCopy {
        WarmStoreCopy(store: store, partition: partition, entries: entries, nextOffset: nextOffset,
                      pending: pending.values.joined().sorted { $0.offset < $1.offset })
    }
}

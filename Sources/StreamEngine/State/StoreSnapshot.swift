import Foundation
import Zstd

/// A local snapshot of one store partition: every entry, and the changelog
/// offset and committed input offsets it covers.
///
/// File: `<state-dir>/<application.id>/<store>/<partition>.snapshot` — the
/// 8-byte magic `SESNAP02` then one zstd frame (with content checksum) of: a
/// JSON header line, then per entry `u32 key length, key, u32 entry length,
/// entry`, little-endian, where the entry is ``StoreEntry``'s compact form (an
/// expiry flag byte, 8 bytes of expiry when set, the value in ``JSONCompact``):
/// reading copies it without parsing. Files of the first format (`SESNAP01`:
/// per entry `u32 key length, key, u32 value length, value JSON, i64 expiresAt
/// (-1 = none)`) are still read. Written to a temporary file and renamed, so a
/// reader never sees a half-written file.
public struct StoreSnapshot: Sendable {
    public var store: String
    public var partition: Int32
    /// The changelog offset from which the changelog tail must be replayed
    /// (the changelog's end offset when the snapshot was taken).
    public var changelogOffset: Int64
    /// Committed input offsets (next offset to read) when the snapshot was taken.
    public var inputOffsets: [String: Int64]
    public var entries: [String: StoreEntry]
    /// Size of the entries serialised (uncompressed), and of the file, in bytes.
    public var rawBytes: Int = 0
    public var fileBytes: Int = 0

    static let magic: [UInt8] = Array("SESNAP02".utf8)
    /// The first format, with JSON values.
    static let magicV1: [UInt8] = Array("SESNAP01".utf8)

    public init(store: String, partition: Int32, changelogOffset: Int64, inputOffsets: [String: Int64], entries: [String: StoreEntry]) {
        self.store = store
        self.partition = partition
        self.changelogOffset = changelogOffset
        self.inputOffsets = inputOffsets
        self.entries = entries
    }

    /// Path of a store partition's snapshot.
    public static func path(stateDir: String, applicationId: String, store: String, partition: Int32) -> String {
        "\(stateDir)/\(applicationId)/\(store)/\(partition).snapshot"
    }

    /// Writes atomically (temporary file + rename). The entries are compressed (zstd level 1,
    /// its fastest) as they are serialised, in chunks: memory use beyond the entries does not
    /// grow with the store.
    public func write(to path: String) throws {
        var header: JSONObject = [
            "store": .string(store), "partition": .number(Double(partition)),
            "changelogOffset": .number(Double(changelogOffset)), "entries": .number(Double(entries.count)),
        ]
        header["inputOffsets"] = .object(JSONObject(inputOffsets.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.number(Double($0.value))) }))
        let headerBytes = JSONValue.object(header).serialized()
        var size = headerBytes.count + 1
        for (key, entry) in entries { size += 8 + key.utf8.count + entry.storage.count }
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
        do {
            let writer = try ZstdFileWriter(path: tmp, prefix: Self.magic, contentSize: UInt64(size), level: 1, checksum: true)
            let chunkSize = 1 << 17
            var chunk: [UInt8] = []
            chunk.reserveCapacity(chunkSize + 4096)
            chunk += headerBytes
            chunk.append(0x0A)
            for (key, entry) in entries {
                var key = key
                key.withUTF8 { k in
                    Self.append(UInt32(k.count), to: &chunk)
                    chunk.append(contentsOf: k)
                }
                Self.append(UInt32(entry.storage.count), to: &chunk)
                chunk.append(contentsOf: entry.storage)
                if chunk.count >= chunkSize {
                    try writer.write(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            try writer.write(chunk)
            try writer.finish()
        } catch {
            throw SnapshotError(path: tmp, reason: "cannot write: \(error)")
        }
        if rename(tmp, path) != 0 {
            throw SnapshotError(path: path, reason: "rename failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads and verifies a snapshot; throws `SnapshotError` naming the file if it is corrupt.
    public static func read(from path: String, maxBytes: Int = 8 << 30) throws -> StoreSnapshot {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SnapshotError(path: path, reason: "cannot read", missing: !FileManager.default.fileExists(atPath: path))
        }
        let bytes = [UInt8](data)
        guard bytes.count > magic.count else {
            throw SnapshotError(path: path, reason: "not a StreamEngine snapshot (bad magic)")
        }
        let fileMagic = Array(bytes[0..<magic.count])
        guard fileMagic == magic || fileMagic == magicV1 else {
            throw SnapshotError(path: path, reason: "not a StreamEngine snapshot (bad magic)")
        }
        let compact = fileMagic == magic
        let raw: [UInt8]
        do {
            raw = try ZstdDecompressor().decompress(Array(bytes[magic.count...]), maxSize: maxBytes)
        } catch {
            throw SnapshotError(path: path, reason: "corrupt: \(error)")
        }
        guard let nl = raw.firstIndex(of: 0x0A),
              let header = try? JSONValue.parse(Array(raw[..<nl])),
              let store = header["store"]?.stringValue,
              let partition = header["partition"]?.intValue,
              let changelogOffset = header["changelogOffset"]?.intValue,
              let count = header["entries"]?.intValue
        else { throw SnapshotError(path: path, reason: "corrupt: bad header") }
        var inputOffsets: [String: Int64] = [:]
        for (k, v) in header["inputOffsets"]?.objectValue ?? [:] { inputOffsets[k] = v.intValue ?? 0 }
        var entries: [String: StoreEntry] = [:]
        entries.reserveCapacity(Int(count))
        var i = nl + 1
        func u32() throws -> Int {
            guard i + 4 <= raw.count else { throw SnapshotError(path: path, reason: "corrupt: truncated entry") }
            defer { i += 4 }
            return Int(raw[i]) | Int(raw[i + 1]) << 8 | Int(raw[i + 2]) << 16 | Int(raw[i + 3]) << 24
        }
        if compact {
            try raw.withUnsafeBufferPointer { buf in
                for _ in 0..<count {
                    let kl = try u32()
                    guard i + kl <= buf.count else { throw SnapshotError(path: path, reason: "corrupt: truncated key") }
                    let key = String(decoding: UnsafeBufferPointer(rebasing: buf[i..<(i + kl)]), as: UTF8.self)
                    i += kl
                    let vl = try u32()
                    guard i + vl <= buf.count else { throw SnapshotError(path: path, reason: "corrupt: truncated value") }
                    guard let entry = StoreEntry(storage: Array(UnsafeBufferPointer(rebasing: buf[i..<(i + vl)]))) else {
                        throw SnapshotError(path: path, reason: "corrupt: value of key \(key) is not a well-formed entry")
                    }
                    i += vl
                    entries[key] = entry
                }
            }
        } else {
            for _ in 0..<count {
                let kl = try u32()
                guard i + kl <= raw.count else { throw SnapshotError(path: path, reason: "corrupt: truncated key") }
                let key = String(decoding: raw[i..<(i + kl)], as: UTF8.self)
                i += kl
                let vl = try u32()
                guard i + vl + 8 <= raw.count else { throw SnapshotError(path: path, reason: "corrupt: truncated value") }
                let value: JSONValue
                do { value = try JSONValue.parse(Array(raw[i..<(i + vl)])) } catch {
                    throw SnapshotError(path: path, reason: "corrupt: value of key \(key): \(error)")
                }
                i += vl
                var exp: UInt64 = 0
                for b in 0..<8 { exp |= UInt64(raw[i + b]) << (8 * UInt64(b)) }
                i += 8
                let e = Int64(bitPattern: exp)
                entries[key] = StoreEntry(value: value, expiresAt: e == -1 ? nil : e)
            }
        }
        guard i == raw.count else { throw SnapshotError(path: path, reason: "corrupt: trailing bytes") }
        var snap = StoreSnapshot(store: store, partition: Int32(partition), changelogOffset: changelogOffset, inputOffsets: inputOffsets, entries: entries)
        snap.rawBytes = raw.count
        snap.fileBytes = bytes.count
        return snap
    }

    private static func append(_ v: UInt32, to buf: inout [UInt8]) {
        for b in 0..<4 { buf.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(b)))) }
    }

    private static func append(_ v: UInt64, to buf: inout [UInt8]) {
        for b in 0..<8 { buf.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(b)))) }
    }
}

/// A snapshot that could not be used, with its path.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var missing = false
    public var description: String { "snapshot \(path): \(reason)" }
}

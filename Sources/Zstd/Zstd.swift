import CZstd

/// One-shot helpers that create a context per call. For many calls, keep a
/// ``ZstdCompressor`` or ``ZstdDecompressor`` instead.
public enum Zstd {
    /// The strongest compression level libzstd supports.
    public static var maxLevel: Int32 { ZSTD_maxCLevel() }

    /// The version of the linked libzstd, e.g. `"1.5.4"`.
    public static var libraryVersion: String { String(cString: ZSTD_versionString()) }

    /// Compresses `input` into one frame with content size and checksum.
    public static func compress(_ input: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        try ZstdCompressor(level: level).compress(input)
    }

    /// Decompresses one or more complete frames, producing at most `maxSize` bytes.
    ///
    /// - Throws: ``ZstdError``; see ``ZstdDecompressor/decompress(_:maxSize:)``.
    public static func decompress(_ input: [UInt8], maxSize: Int) throws -> [UInt8] {
        try ZstdDecompressor().decompress(input, maxSize: maxSize)
    }
}

import CZstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file of raw leading bytes followed by one zstd frame, compressing what it is
/// given in a stream (`ZSTD_compressStream2`): memory use does not depend on the content size.
///
/// Not thread-safe and not `Sendable`: one writer per file, used by one thread.
/// Call ``finish()`` to end the frame and close the file; a writer dropped unfinished
/// closes and removes its file.
public final class ZstdFileWriter {
    private let context: OpaquePointer
    private let file: CFile
    private var output: [UInt8]
    private var consumed: UInt64 = 0
    private var finished = false

    /// Creates `path` (replacing it) and writes `prefix` uncompressed.
    ///
    /// - Parameters:
    ///   - contentSize: the exact number of bytes that will be compressed (recorded in the
    ///     frame header, checked by libzstd at the end).
    ///   - level: zstd compression level (as ``ZstdCompressor``).
    ///   - checksum: Whether the frame carries a 32-bit content checksum.
    public init(path: String, prefix: [UInt8] = [], contentSize: UInt64, level: Int32 = 3, checksum: Bool = true) throws {
        guard let context = ZSTD_createCCtx() else {
            fatalError("ZSTD_createCCtx failed: out of memory")
        }
        self.context = context
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        do {
            file = try CFile(path: path, mode: "wb")
        } catch {
            ZSTD_freeCCtx(context)
            throw error
        }
        let pledged = ZSTD_CCtx_setPledgedSrcSize(context, contentSize)
        if ZstdError.isError(pledged) { throw ZstdError.library(pledged, reason: "setting the content size") }
        try file.write(prefix, count: prefix.count)
    }

    deinit {
        ZSTD_freeCCtx(context)
        if !finished {
            file.close()
            unlink(file.path)
        }
    }

    /// Compresses `bytes` into the frame.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try compress(bytes, mode: ZSTD_e_continue)
    }

    /// Compresses `bytes` into the frame.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Ends the frame (fails when fewer or more bytes than `contentSize` were written) and
    /// closes the file, reporting write errors.
    public func finish() throws {
        try compress(UnsafeRawBufferPointer(start: nil, count: 0), mode: ZSTD_e_end)
        try file.closeChecked()
        finished = true
    }

    private func compress(_ bytes: UnsafeRawBufferPointer, mode: ZSTD_EndDirective) throws {
        try ZstdCompressor.stream(context, bytes, mode: mode, output: &output, to: file) {
            "compressing into \(file.path) at byte \(consumed)"
        }
        consumed += UInt64(bytes.count)
    }
}

@available(*, unavailable, message: "ZstdFileWriter owns a ZSTD_CCtx, which is not thread-safe")
extension ZstdFileWriter: Sendable {}

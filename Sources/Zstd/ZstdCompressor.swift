import CZstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Compresses data into zstd frames. Owns one `ZSTD_CCtx`, reused across calls.
///
/// Not thread-safe and not `Sendable`: use one compressor per task or thread.
///
/// Every frame records its content size and, by default, a checksum of the content,
/// so that ``ZstdDecompressor`` detects corruption.
public final class ZstdCompressor {
    private let context: OpaquePointer
    /// The compression level in use (clamped by libzstd to its supported range).
    public let level: Int32
    /// Whether frames carry a content checksum.
    public let checksum: Bool

    /// Creates a compressor.
    ///
    /// - Parameters:
    ///   - level: zstd compression level; 1 is fastest, 19 (or up to ``Zstd/maxLevel``)
    ///     strongest, negative levels are faster still. Default 3.
    ///   - checksum: Whether to add a 32-bit content checksum to every frame.
    public init(level: Int32 = 3, checksum: Bool = true) {
        guard let context = ZSTD_createCCtx() else {
            fatalError("ZSTD_createCCtx failed: out of memory")
        }
        self.context = context
        self.level = level
        self.checksum = checksum
        // Out-of-range levels are clamped by libzstd; the checksum flag is 0 or 1.
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0)
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// Compresses `input` into one zstd frame (with content size and, if enabled, checksum).
    ///
    /// - Throws: ``ZstdError`` if libzstd fails (which does not happen for valid parameters
    ///   short of running out of memory).
    public func compress(_ input: [UInt8]) throws -> [UInt8] {
        try reset(pledgedSize: UInt64(input.count))
        let capacity = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: capacity)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { destination in
                ZSTD_compress2(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
            }
        }
        if ZstdError.isError(written) {
            throw ZstdError.library(written, reason: "compressing \(input.count) bytes")
        }
        output.removeSubrange(written...)
        return output
    }

    /// Compresses the file at `sourcePath` into a one-frame zstd file at `destinationPath`,
    /// streaming in chunks (`ZSTD_compressStream2`), so memory use does not depend on the
    /// file size. The destination is replaced; on error it is removed.
    ///
    /// - Throws: ``ZstdError`` of kind ``ZstdError/Kind/io`` if a file cannot be read or
    ///   written, or a libzstd error.
    public func compressFile(at sourcePath: String, to destinationPath: String) throws {
        try CFile.transform(from: sourcePath, to: destinationPath) { source, destination in
            try reset(pledgedSize: source.size)

            let inputChunk = ZSTD_CStreamInSize()
            var inputBuffer = [UInt8](repeating: 0, count: inputChunk)
            var outputBuffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
            var totalRead: UInt64 = 0
            while true {
                let count = try source.read(into: &inputBuffer)
                totalRead += UInt64(count)
                let last = count < inputChunk
                let mode = last ? ZSTD_e_end : ZSTD_e_continue
                try inputBuffer.withUnsafeBytes { inputBytes in
                    try Self.stream(context, UnsafeRawBufferPointer(rebasing: inputBytes[0..<count]), mode: mode, output: &outputBuffer, to: destination) {
                        "compressing \(sourcePath) at byte \(totalRead)"
                    }
                }
                if last { break }
            }
            try destination.closeChecked()
        }
    }

    /// Compresses `input` with `mode` through `output` into `destination` until the input is
    /// consumed (`ZSTD_e_continue`) or the frame is flushed (`ZSTD_e_end`).
    static func stream(_ context: OpaquePointer, _ input: UnsafeRawBufferPointer, mode: ZSTD_EndDirective, output outputBuffer: inout [UInt8], to destination: CFile, where what: () -> String) throws {
        var input = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while true {
            let (remaining, produced) = outputBuffer.withUnsafeMutableBytes { outputBytes in
                var output = ZSTD_outBuffer(dst: outputBytes.baseAddress, size: outputBytes.count, pos: 0)
                let remaining = ZSTD_compressStream2(context, &output, &input, mode)
                return (remaining, output.pos)
            }
            if ZstdError.isError(remaining) { throw ZstdError.library(remaining, reason: what()) }
            try destination.write(outputBuffer, count: produced)
            // With e_end: done when everything is flushed. With e_continue: when the input is consumed.
            if mode == ZSTD_e_end ? remaining == 0 : input.pos == input.size { return }
        }
    }

    private func reset(pledgedSize: UInt64) throws {
        let status = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        if ZstdError.isError(status) {
            throw ZstdError.library(status, reason: "resetting the compression context")
        }
        let pledged = ZSTD_CCtx_setPledgedSrcSize(context, pledgedSize)
        if ZstdError.isError(pledged) {
            throw ZstdError.library(pledged, reason: "setting the content size")
        }
    }
}

@available(*, unavailable, message: "ZstdCompressor owns a ZSTD_CCtx, which is not thread-safe")
extension ZstdCompressor: Sendable {}

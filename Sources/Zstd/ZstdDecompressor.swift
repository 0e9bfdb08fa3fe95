import CZstd

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decompresses zstd data. Owns one `ZSTD_DCtx`, reused across calls.
///
/// Not thread-safe and not `Sendable`: use one decompressor per task or thread.
///
/// Decompression streams (`ZSTD_decompressStream`) and checks as it goes, so it
/// - never produces more than `maxSize` bytes, whatever the frame header claims;
/// - rejects input that ends in the middle of a frame ("truncated frame");
/// - rejects bytes after the last frame that are not another valid frame;
/// - reports checksum mismatches of frames that carry a checksum.
/// Several concatenated frames are decompressed one after the other, as `zstd -d` does.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    /// Creates a decompressor.
    public init() {
        guard let context = ZSTD_createDCtx() else {
            fatalError("ZSTD_createDCtx failed: out of memory")
        }
        self.context = context
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Decompresses `input`, which must consist of one or more complete zstd frames.
    ///
    /// - Parameter maxSize: The largest acceptable decompressed size, in bytes.
    /// - Throws: ``ZstdError``: ``ZstdError/Kind/sizeLimitExceeded`` when the output
    ///   would exceed `maxSize`; ``ZstdError/Kind/truncatedFrame`` when the input ends
    ///   inside a frame (or is empty); ``ZstdError/Kind/checksumMismatch`` or
    ///   ``ZstdError/Kind/corruptData`` for damaged data or trailing garbage.
    public func decompress(_ input: [UInt8], maxSize: Int) throws -> [UInt8] {
        precondition(maxSize >= 0, "maxSize must not be negative")
        try reset()
        if input.isEmpty {
            throw ZstdError(kind: .truncatedFrame, name: "truncated frame", reason: "the input is empty")
        }
        // A frame header that already announces too much is rejected up front; the
        // header is only a hint, the limit is enforced on the actual output below.
        let declared = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if declared < UInt64.max - 1 {  // neither CONTENTSIZE_UNKNOWN nor CONTENTSIZE_ERROR
            if declared > UInt64(maxSize) {
                throw sizeExceeded(maxSize, detail: "the frame header declares \(declared) bytes")
            }
        }
        // One byte past the limit is room enough to prove an overflow.
        let limit = maxSize == Int.max ? Int.max : maxSize + 1
        // Initial capacity: the declared size, but not more than a sane multiple of the
        // input, so a 20-byte frame claiming gigabytes cannot make us allocate them.
        let plausible = max(1 << 20, input.count.multipliedReportingOverflow(by: 16).partialValue)
        let hint =
            declared < UInt64.max - 1
            ? Int(clamping: declared) : input.count.multipliedReportingOverflow(by: 4).partialValue
        var output = [UInt8](repeating: 0, count: max(1, min(hint, plausible, limit)))
        var produced = 0
        var sawFrameEnd = false

        try input.withUnsafeBytes { inputBytes in
            var source = ZSTD_inBuffer(src: inputBytes.baseAddress, size: inputBytes.count, pos: 0)
            while true {
                if produced == output.count {
                    // Grow, but never beyond maxSize + 1.
                    let doubled = output.count.multipliedReportingOverflow(by: 2).partialValue
                    let grown = min(max(doubled, 64 << 10), limit)
                    output.append(contentsOf: repeatElement(0, count: grown - output.count))
                }
                let startPos = source.pos
                let (remaining, newProduced) = output.withUnsafeMutableBytes { outputBytes in
                    var destination = ZSTD_outBuffer(
                        dst: outputBytes.baseAddress, size: outputBytes.count, pos: produced)
                    let remaining = ZSTD_decompressStream(context, &destination, &source)
                    return (remaining, destination.pos)
                }
                if ZstdError.isError(remaining) {
                    let trailing = sawFrameEnd && newProduced == produced
                    var error = ZstdError.library(
                        remaining,
                        reason: trailing
                            ? "trailing data after the last complete frame, at input byte \(startPos)"
                            : "decompressing near input byte \(source.pos) of \(inputBytes.count)")
                    if trailing, error.kind == .library {
                        error = ZstdError(kind: .corruptData, name: error.name, reason: error.reason)
                    }
                    throw error
                }
                produced = newProduced
                if produced > maxSize {
                    throw sizeExceeded(maxSize, detail: "the data decompresses to more")
                }
                if remaining == 0 {
                    sawFrameEnd = true
                    if source.pos == source.size { return }  // all frames complete
                    continue  // another frame (or garbage, reported by the next call)
                }
                if source.pos == source.size && produced < output.count {
                    // All input consumed, room left for output, and the decoder still wants more.
                    throw ZstdError(
                        kind: .truncatedFrame, name: "truncated frame",
                        reason: sawFrameEnd
                            ? "the input ends inside data following the last complete frame"
                            : "the input ends after \(inputBytes.count) bytes, inside a frame")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// Decompresses the zstd file at `sourcePath` into `destinationPath`, streaming in
    /// chunks, with the same checks as ``decompress(_:maxSize:)``. The destination is
    /// replaced; on error it is removed.
    ///
    /// - Parameter maxSize: The largest acceptable decompressed size, in bytes.
    public func decompressFile(at sourcePath: String, to destinationPath: String, maxSize: Int) throws {
        precondition(maxSize >= 0, "maxSize must not be negative")
        try CFile.transform(from: sourcePath, to: destinationPath) { source, destination in
            try reset()
            let limit = maxSize == Int.max ? Int.max : maxSize + 1

            var inputBuffer = [UInt8](repeating: 0, count: ZSTD_DStreamInSize())
            var outputBuffer = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
            var totalRead = 0
            var totalWritten = 0
            var remaining = 1  // > 0: inside a frame (or before the first one)
            var sawFrameEnd = false
            while true {
                let count = try source.read(into: &inputBuffer)
                if count == 0 { break }
                totalRead += count
                try inputBuffer.withUnsafeBytes { inputBytes in
                    var input = ZSTD_inBuffer(src: inputBytes.baseAddress, size: count, pos: 0)
                    // Feed this chunk until it is consumed and nothing is left to flush.
                    while true {
                        let allowed = min(outputBuffer.count, limit - totalWritten)
                        let (result, produced) = outputBuffer.withUnsafeMutableBytes { outputBytes in
                            var output = ZSTD_outBuffer(dst: outputBytes.baseAddress, size: allowed, pos: 0)
                            let result = ZSTD_decompressStream(context, &output, &input)
                            return (result, output.pos)
                        }
                        if ZstdError.isError(result) {
                            throw ZstdError.library(
                                result, reason: "decompressing \(sourcePath) near byte \(totalRead - count + input.pos)")
                        }
                        totalWritten += produced
                        if totalWritten > maxSize {
                            throw sizeExceeded(maxSize, detail: "\(sourcePath) decompresses to more")
                        }
                        try destination.write(outputBuffer, count: produced)
                        remaining = result
                        if result == 0 { sawFrameEnd = true }
                        if input.pos == input.size && produced < allowed { break }
                    }
                }
            }
            if totalRead == 0 {
                throw ZstdError(kind: .truncatedFrame, name: "truncated frame", reason: "\(sourcePath) is empty")
            }
            if remaining != 0 {
                throw ZstdError(
                    kind: .truncatedFrame, name: "truncated frame",
                    reason: sawFrameEnd
                        ? "\(sourcePath) ends inside data following the last complete frame"
                        : "\(sourcePath) ends after \(totalRead) bytes, inside a frame")
            }
            try destination.closeChecked()
        }
    }

    private func reset() throws {
        let status = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        if ZstdError.isError(status) {
            throw ZstdError.library(status, reason: "resetting the decompression context")
        }
    }

    private func sizeExceeded(_ maxSize: Int, detail: String) -> ZstdError {
        ZstdError(
            kind: .sizeLimitExceeded, name: "size limit exceeded",
            reason: "decompressed data exceeds maxSize \(maxSize): \(detail)")
    }
}

@available(*, unavailable, message: "ZstdDecompressor owns a ZSTD_DCtx, which is not thread-safe")
extension ZstdDecompressor: Sendable {}

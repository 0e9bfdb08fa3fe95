import CZstd

/// An error from compressing or decompressing with zstd.
public struct ZstdError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The broad category, for callers that react differently to e.g. corruption
    /// and size limits.
    public enum Kind: Sendable, Hashable {
        /// The frame's checksum does not match the decompressed data.
        case checksumMismatch
        /// The input is not valid zstd data (bad magic number, corrupted block, trailing garbage).
        case corruptData
        /// The input ends before the frame does.
        case truncatedFrame
        /// The decompressed data would be larger than the allowed maximum.
        case sizeLimitExceeded
        /// Reading or writing a file failed.
        case io
        /// Any other error reported by libzstd (allocation, parameters, ...).
        case library
    }

    /// The broad category of the error.
    public let kind: Kind
    /// libzstd's error name (from `ZSTD_getErrorName`), e.g. `"Restored data doesn't match
    /// checksum"`; for errors detected by this wrapper, a short name such as `"truncated frame"`.
    public let name: String
    /// What was being done and why it failed, e.g. `"decompressing byte 812 of 1024"`.
    public let reason: String

    /// Creates an error.
    public init(kind: Kind, name: String, reason: String) {
        self.kind = kind
        self.name = name
        self.reason = reason
    }

    /// `zstd: <name> (<reason>)`.
    public var description: String {
        "zstd: \(name) (\(reason))"
    }

    /// Whether `code` (a `size_t` returned by libzstd) is an error code.
    static func isError(_ code: Int) -> Bool {
        ZSTD_isError(code) != 0
    }

    /// Wraps an error code returned by libzstd.
    static func library(_ code: Int, reason: String) -> ZstdError {
        let name = String(cString: ZSTD_getErrorName(code))
        let kind: Kind
        switch ZSTD_getErrorCode(code) {
        case ZSTD_error_checksum_wrong:
            kind = .checksumMismatch
        case ZSTD_error_corruption_detected, ZSTD_error_prefix_unknown, ZSTD_error_frameParameter_unsupported,
            ZSTD_error_literals_headerWrong, ZSTD_error_dictionary_wrong, ZSTD_error_srcSize_wrong:
            kind = .corruptData
        case ZSTD_error_dstSize_tooSmall:
            kind = .sizeLimitExceeded
        default:
            kind = .library
        }
        return ZstdError(kind: kind, name: name, reason: reason)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stdio `FILE*` closed on deinit; used only within one file operation.
final class CFile {
    private var handle: UnsafeMutablePointer<FILE>?
    let path: String

    init(path: String, mode: String) throws {
        guard let handle = fopen(path, mode) else {
            throw ZstdError(
                kind: .io, name: String(cString: strerror(errno)),
                reason: "cannot open \(path) (\(mode.hasPrefix("r") ? "reading" : "writing"))")
        }
        self.handle = handle
        self.path = path
    }

    deinit {
        close()
    }

    /// The file size, or `ZSTD_CONTENTSIZE_UNKNOWN` if it cannot be determined.
    var size: UInt64 {
        guard let handle else { return UInt64.max }
        var info = stat()
        guard fstat(fileno(handle), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return UInt64.max }
        return UInt64(info.st_size)
    }

    /// Fills `buffer` as far as possible; returns the byte count (less than the buffer
    /// size only at end of file).
    func read(into buffer: inout [UInt8]) throws -> Int {
        let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
        if count < buffer.count, ferror(handle) != 0 {
            throw ZstdError(kind: .io, name: String(cString: strerror(errno)), reason: "cannot read \(path)")
        }
        return count
    }

    func write(_ buffer: [UInt8], count: Int) throws {
        guard count > 0 else { return }
        let written = buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, count, handle) }
        if written != count {
            throw ZstdError(kind: .io, name: String(cString: strerror(errno)), reason: "cannot write \(path)")
        }
    }

    /// Closes the file, reporting errors from flushing buffered data.
    func closeChecked() throws {
        guard let handle else { return }
        self.handle = nil
        if fclose(handle) != 0 {
            throw ZstdError(kind: .io, name: String(cString: strerror(errno)), reason: "cannot write \(path)")
        }
    }

    func close() {
        if let handle {
            fclose(handle)
            self.handle = nil
        }
    }
}

extension CFile {
    /// Opens `sourcePath` for reading and `destinationPath` for writing and runs `body`
    /// with both; if it throws, the destination is closed and removed, so a failed
    /// transformation leaves no partial file.
    static func transform<T>(from sourcePath: String, to destinationPath: String, _ body: (CFile, CFile) throws -> T) throws -> T {
        let source = try CFile(path: sourcePath, mode: "rb")
        let destination = try CFile(path: destinationPath, mode: "wb")
        do {
            return try body(source, destination)
        } catch {
            destination.close()
            unlink(destinationPath)
            throw error
        }
    }
}

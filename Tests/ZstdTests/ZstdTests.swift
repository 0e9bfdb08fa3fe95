import Foundation
import Testing
import Zstd

@Suite("Zstd")
struct ZstdTests {
    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    private static func repetitiveBytes(_ count: Int) -> [UInt8] {
        var text = ""
        var line = 0
        while text.utf8.count < count {
            text += #"{"order_id":\#(line % 50),"sku":"SKU-\#(line % 7)","qty":1,"status":"PAID"}"# + "\n"
            line += 1
        }
        return Array(text.utf8.prefix(count))
    }

    private static func ratio(_ input: [UInt8], _ output: [UInt8]) -> String {
        String(format: "%.2f", Double(input.count) / Double(max(output.count, 1)))
    }

    @Test("ZstdFileWriter: a prefix and a frame streamed in pieces read back; a wrong content size fails and leaves no file")
    func fileWriter() throws {
        let dir = NSTemporaryDirectory() + "zstd-writer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = Self.repetitiveBytes(3 << 20) + Self.randomBytes(100_000)
        let path = "\(dir)/f"
        let writer = try ZstdFileWriter(path: path, prefix: Array("MAGIC".utf8), contentSize: UInt64(input.count))
        var at = 0
        for piece in [0, 1, 70_000, 1 << 20, 5] + Array(repeating: 1 << 19, count: 10) {
            let end = min(input.count, at + piece)
            try writer.write(Array(input[at..<end]))
            at = end
        }
        try writer.write(Array(input[at...]))
        try writer.finish()
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(file.prefix(5)) == Array("MAGIC".utf8))
        #expect(file.count < input.count / 5)
        #expect(try ZstdDecompressor().decompress(Array(file.dropFirst(5)), maxSize: 1 << 26) == input)

        let short = "\(dir)/short"
        do {
            let w = try ZstdFileWriter(path: short, contentSize: 10)
            try w.write([1, 2, 3])
            #expect(throws: ZstdError.self) { try w.finish() }
        }
        #expect(!FileManager.default.fileExists(atPath: short))
    }

    @Test("repetitive data round-trips and compresses more than 10x")
    func repetitiveRoundTrip() throws {
        let input = Self.repetitiveBytes(1 << 20)
        let compressed = try ZstdCompressor().compress(input)
        print("zstd ratio repetitive: \(input.count) -> \(compressed.count) bytes, \(Self.ratio(input, compressed))x")
        #expect(compressed.count * 10 < input.count)
        #expect(try ZstdDecompressor().decompress(compressed, maxSize: input.count) == input)
    }

    @Test("random data round-trips and stays about its input size")
    func randomRoundTrip() throws {
        let input = Self.randomBytes(256 << 10)
        let compressed = try Zstd.compress(input)
        print("zstd ratio random: \(input.count) -> \(compressed.count) bytes, \(Self.ratio(input, compressed))x")
        #expect(compressed.count >= input.count)
        #expect(compressed.count <= input.count + input.count / 100 + 64)
        #expect(try Zstd.decompress(compressed, maxSize: input.count) == input)
    }

    @Test("one compressor and decompressor are reusable across many frames and levels")
    func reuse() throws {
        for level: Int32 in [-5, 1, 3, 19] {
            let compressor = ZstdCompressor(level: level)
            let decompressor = ZstdDecompressor()
            for size in [0, 1, 100, 70_000] {
                let input = Self.repetitiveBytes(size)
                #expect(try decompressor.decompress(compressor.compress(input), maxSize: size) == input)
            }
        }
    }

    @Test("empty input round-trips")
    func emptyInput() throws {
        let compressed = try Zstd.compress([])
        #expect(!compressed.isEmpty)
        #expect(try Zstd.decompress(compressed, maxSize: 0) == [])
        // An empty byte string is not a frame at all.
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress([], maxSize: 10) }
        #expect(error?.kind == .truncatedFrame)
    }

    @Test("a flipped byte in the middle of a frame is rejected by the checksum")
    func flippedByteRandom() throws {
        // Random data is stored in raw blocks, so only the checksum can catch the change.
        let input = Self.randomBytes(64 << 10)
        var compressed = try Zstd.compress(input)
        compressed[compressed.count / 2] ^= 0x01
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(compressed, maxSize: input.count) }
        #expect(error?.kind == .checksumMismatch)
        #expect(error?.name.lowercased().contains("checksum") == true)
    }

    @Test("a flipped byte in compressed (repetitive) data is rejected")
    func flippedByteRepetitive() throws {
        let input = Self.repetitiveBytes(256 << 10)
        let original = try Zstd.compress(input)
        for position in stride(from: original.count / 4, to: original.count * 3 / 4, by: max(1, original.count / 16)) {
            var damaged = original
            damaged[position] ^= 0x40
            let error = #expect(throws: ZstdError.self) { try Zstd.decompress(damaged, maxSize: 2 * input.count) }
            let rejectedKinds: [ZstdError.Kind] = [.checksumMismatch, .corruptData, .sizeLimitExceeded, .truncatedFrame]
            #expect(error.map { rejectedKinds.contains($0.kind) } == true)
        }
    }

    @Test("without a checksum, corruption of raw data goes unnoticed (why the checksum is on)")
    func noChecksum() throws {
        let input = Self.randomBytes(4096)
        var compressed = try ZstdCompressor(checksum: false).compress(input)
        compressed[compressed.count / 2] ^= 0x01
        let output = try Zstd.decompress(compressed, maxSize: input.count)
        #expect(output.count == input.count)
        #expect(output != input)
    }

    @Test("a truncated frame is rejected")
    func truncatedFrame() throws {
        let input = Self.repetitiveBytes(100_000)
        let compressed = try Zstd.compress(input)
        for cut in [1, 4, compressed.count / 2, compressed.count - 3] {
            let truncated = Array(compressed.prefix(compressed.count - cut))
            let error = #expect(throws: ZstdError.self) { try Zstd.decompress(truncated, maxSize: input.count) }
            #expect(error?.kind == .truncatedFrame)
            #expect(error?.description.contains("truncated frame") == true)
        }
    }

    @Test("trailing garbage after a frame is rejected; concatenated frames are accepted")
    func trailingData() throws {
        let first = Array("hello ".utf8)
        let second = Array("world".utf8)
        let frame = try Zstd.compress(first)
        let garbage = Self.randomBytes(32)
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame + garbage, maxSize: 100) }
        #expect(error?.kind == .corruptData)
        #expect(try Zstd.decompress(frame + Zstd.compress(second), maxSize: 100) == first + second)
    }

    @Test("output larger than maxSize is rejected, even when the header does not say so")
    func sizeLimit() throws {
        let input = Self.repetitiveBytes(10_000)
        let compressed = try Zstd.compress(input)
        #expect(try Zstd.decompress(compressed, maxSize: input.count) == input)

        let byHeader = #expect(throws: ZstdError.self) { try Zstd.decompress(compressed, maxSize: input.count - 1) }
        #expect(byHeader?.kind == .sizeLimitExceeded)

        // Two frames: the first header declares 10,000 bytes, within the limit; the
        // second pushes the total to 20,000.
        let twoFrames = compressed + compressed
        let whileStreaming = #expect(throws: ZstdError.self) { try Zstd.decompress(twoFrames, maxSize: 15_000) }
        #expect(whileStreaming?.kind == .sizeLimitExceeded)
        #expect(whileStreaming?.reason.contains("15000") == true)
    }

    @Test("non-zstd input is rejected")
    func notZstd() {
        let error = #expect(throws: ZstdError.self) {
            try Zstd.decompress(Array("plain text, not zstd".utf8), maxSize: 1000)
        }
        #expect(error?.kind == .corruptData)
        #expect(error?.name.isEmpty == false)
    }

    @Test("files round-trip through streaming compression, with the size limit enforced")
    func fileRoundTrip() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zstd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = directory.appendingPathComponent("data.jsonl").path
        let compressed = directory.appendingPathComponent("data.jsonl.zst").path
        let restored = directory.appendingPathComponent("restored.jsonl").path

        // Several streaming chunks (ZSTD_CStreamInSize is 128 KiB), mixed content.
        let input = Self.repetitiveBytes(3 << 20) + Self.randomBytes(300_000)
        try Data(input).write(to: URL(fileURLWithPath: original))

        try ZstdCompressor(level: 3).compressFile(at: original, to: compressed)
        let compressedBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: compressed)))
        print("zstd ratio file: \(input.count) -> \(compressedBytes.count) bytes, \(Self.ratio(input, compressedBytes))x")
        #expect(compressedBytes.count < input.count / 3)
        // The file is one ordinary frame: the in-memory decoder reads it too.
        #expect(try Zstd.decompress(compressedBytes, maxSize: input.count) == input)

        try ZstdDecompressor().decompressFile(at: compressed, to: restored, maxSize: input.count)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: restored))) == input)

        // Limit too small: error, and no partial output is left behind.
        let tooSmall = #expect(throws: ZstdError.self) {
            try ZstdDecompressor().decompressFile(at: compressed, to: restored + ".2", maxSize: input.count - 1)
        }
        #expect(tooSmall?.kind == .sizeLimitExceeded)
        #expect(!FileManager.default.fileExists(atPath: restored + ".2"))

        // Truncated file.
        let truncatedPath = directory.appendingPathComponent("truncated.zst").path
        try Data(compressedBytes.prefix(compressedBytes.count - 10)).write(to: URL(fileURLWithPath: truncatedPath))
        let truncated = #expect(throws: ZstdError.self) {
            try ZstdDecompressor().decompressFile(at: truncatedPath, to: restored + ".3", maxSize: input.count)
        }
        #expect(truncated?.kind == .truncatedFrame)

        // Missing source file.
        let missing = #expect(throws: ZstdError.self) {
            try ZstdCompressor().compressFile(at: directory.appendingPathComponent("nope").path, to: restored + ".4")
        }
        #expect(missing?.kind == .io)
    }

    @Test("empty file round-trips")
    func emptyFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zstd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appendingPathComponent("empty").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        try ZstdCompressor().compressFile(at: empty, to: empty + ".zst")
        try ZstdDecompressor().decompressFile(at: empty + ".zst", to: empty + ".out", maxSize: 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: empty + ".out")).isEmpty)
    }
}

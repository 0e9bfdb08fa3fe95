import Foundation
import Testing

@testable import StreamValues

/// Informational micro-measurement only: prints throughput, asserts nothing about timing.
@Suite("JSON throughput (informational)")
struct JSONThroughputTests {
    @Test func parseAndSerialize100kRecords() throws {
        let count = 100_000
        var records: [[UInt8]] = []
        records.reserveCapacity(count)
        var totalBytes = 0
        for i in 0..<count {
            let text = #"{"orderId":"o-\#(1_000_000 + i)","customer":"c-\#(i % 977)","sku":"SKU-\#(i % 131)","#
                + #""qty":\#(i % 7 + 1),"price":\#(i % 100).\#(i % 9 + 1),"currency":"EUR","#
                + #""ts":"2024-12-14T12:00:00Z","paid":true}"#
            records.append(Array(text.utf8))
            totalBytes += text.utf8.count
        }
        let averageSize = Double(totalBytes) / Double(count)

        // Warm up (allocator, caches) so the single timed pass is less noisy.
        for record in records.prefix(10_000) { _ = try JSONValue.parse(record) }

        var checksum = 0.0
        var parsed: [JSONValue] = []
        parsed.reserveCapacity(count)
        let clock = ContinuousClock()
        let parseTime = try clock.measure {
            for record in records {
                let v = try JSONValue.parse(record)
                checksum += v["qty"]?.doubleValue ?? 0
                parsed.append(v)
            }
        }
        var outBytes = 0
        let serializeTime = clock.measure {
            for v in parsed { outBytes += v.serialized().count }
        }
        #expect(checksum > 0)
        #expect(outBytes == totalBytes)  // compact input re-serialises byte-for-byte

        func rate(_ d: Duration) -> (records: Double, mb: Double) {
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return (Double(count) / seconds, Double(totalBytes) / seconds / 1_000_000)
        }
        let p = rate(parseTime)
        let s = rate(serializeTime)
        #if DEBUG
            let build = "debug build; run with -c release for representative numbers"
        #else
            let build = "release build"
        #endif
        print(
            "JSON throughput (\(count) records, avg \(Int(averageSize)) B, \(build)): "
                + "parse \(Int(p.records)) records/s (\(Int(p.mb)) MB/s), "
                + "serialise \(Int(s.records)) records/s (\(Int(s.mb)) MB/s)")
    }
}

import KafkaClient
import Testing
@testable import StreamEngine

@Suite("Source decoding: a record read as a flat object decodes as its parsed tree does")
struct SourceDecodingTests {
    static let location = SourceLocation(file: "topologies.yaml", line: 1, column: 1)

    static let specs: [SourceSpec] = [
        SourceSpec(topics: ["t"], keyField: "user", timestampField: "ts",
                   required: [("user", .string), ("qty", .integer), ("price", .number), ("ok", .boolean), ("any", .any)], location: location),
        SourceSpec(topics: ["t"], keyField: "qty", timestampField: "ms", timestampFormat: .epochMillis, required: [("meta", .object)], location: location),
        SourceSpec(topics: ["t"], timestampField: "s", timestampFormat: .epochSeconds, required: [("tags", .array)], location: location),
        SourceSpec(topics: ["t"], location: location),
    ]

    static let values: [String] = [
        #"{"user":"u-1","qty":2,"price":9.99,"ok":true,"any":null,"ts":"2024-12-14T12:00:00.250Z","ms":1734177600000,"s":1734177600.5}"#,
        #"{"user":"u-1","qty":2,"price":9.99,"ok":false,"any":"x","ts":"2024-12-14T12:00:00+09:00","meta":1,"tags":"a"}"#,
        #"{"user":"a user name longer than fifteen bytes","qty":2.5,"price":"9.99","ok":1,"any":[],"ts":"yesterday"}"#,
        #"{"user":null,"qty":null,"price":1,"ok":true,"any":1,"ts":1734177600000,"ms":"1734177600000","s":null}"#,
        #"{"user":7,"qty":3,"price":-1,"ok":true,"any":{},"ts":"2024-12-14T12:00:00Z"}"#,
        #"{"user":"u-2","qty":1,"price":1,"ok":true,"any":0,"ts":"2024-12-14T12:00:00Z","meta":{"a":1},"tags":[1]}"#,
        #"{"qty":12345678901,"price":0,"ok":true,"any":0}"#,
        #"{}"#, #"{"user":"u-3"}"#, #"{"user":"é","qty":1,"price":1e2,"ok":true,"any":true,"ts":"2024-02-29T00:00:00Z"}"#,
        #"{"user":"\u0041","qty":1,"price":1,"ok":true,"any":1,"ts":"2024-12-14T12:00:00Z"}"#,
    ]

    @Test("every spec on every value: the same record (key, event time, value) or the same dead-letter reason, flat or as a tree")
    func flatDecodesAsTheTree() throws {
        var flatOnes = 0
        // Each value read alone, then all in one reader (its key cache and hints carried from
        // record to record, over changes of shape: other keys, the same keys in another order).
        let reordered = [
            #"{"ts":"2024-12-14T12:00:00Z","any":1,"ok":true,"price":3,"qty":4,"user":"u-9","ms":5,"s":6}"#,
            #"{"ts":"2024-12-14T12:00:00Z","any":1,"ok":true,"price":3,"qty":4,"user":"u-9","ms":5,"s":6}"#,
            #"{"ts":"2024-12-14T12:00:00Z","any":1,"ok":true,"price":3,"qtx":4,"user":"u-9","ms":5,"s":6}"#,
        ]
        // (A reader that meets a value that is not flat reads the next 63 as trees: only flat ones here.)
        let flatValues = Self.values.filter { text in
            var keys = JSONKeyCache()
            return Array(text.utf8).withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) } != nil
        }
        #expect(flatValues.count == 7)
        let sequence = Self.values.map { [$0] } + [flatValues + reordered + flatValues.reversed() + reordered]
        for spec in Self.specs {
            let decoding = SourceDecoding(spec)
            for texts in sequence {
            var keys = JSONKeyCache()
            var hintsA = DecodeHints(), hintsB = DecodeHints()
            for text in texts {
                let bytes = Array(text.utf8)
                let m = KafkaMessage(topic: "t", partition: 0, offset: 7, key: Array("k-1".utf8), value: bytes, timestamp: 1_700_000_000_000)
                let origin = RecordOrigin(topic: "t", partition: 0, offset: 7)
                let read = bytes.withUnsafeBytes { SourceValue.read($0, keys: &keys) }
                let tree = SourceValue.parsed(Result { () throws(JSONParseError) in try JSONValue.parse(bytes) })
                let a = Result { () throws(RecordError) in try decoding.decode(m, parsed: read, origin: origin, hints: &hintsA) }
                let b = Result { () throws(RecordError) in try decoding.decode(m, parsed: tree, origin: origin, hints: &hintsB) }
                if case .flat = read { flatOnes += 1 }
                switch (a, b) {
                case (.success(let x), .success(let y)):
                    #expect(x == y && x.key == y.key && x.timestamp == y.timestamp && x.value.keys == y.value.keys, "\(text)")
                    #expect(x.fieldCount == y.fieldCount)
                    for k in y.value.keys { #expect(x.field(k) == y.field(k), "\(k) of \(text)") }
                case (.failure(let x), .failure(let y)):
                    #expect(x.kind == y.kind && x.message == y.message, "\(text): \(x) / \(y)")
                default:
                    Issue.record("\(text) with \(decoding): \(a) against \(b)")
                }
            }
            }
        }
        #expect(flatOnes == Self.specs.count * (7 + 20), "the values without a nested value or an escape are read flat: \(flatOnes)")
    }

    @Test("a flat record's value: read whole, changed in place (it becomes a tree), compared and hashed as its tree")
    func flatRecordValue() throws {
        let text = #"{"user":"u-1","qty":2}"#
        var keys = JSONKeyCache()
        let flat = try #require(Array(text.utf8).withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &keys) })
        let tree = try #require(try JSONValue.parse(text).objectValue)
        var a = StreamRecord(key: "u-1", flat: flat, timestamp: 5)
        let b = StreamRecord(key: "u-1", value: tree, timestamp: 5)
        #expect(a == b && a.hashValue == b.hashValue && a.flatValue != nil)
        #expect(a.field("qty") == 2 && a.field("nope") == nil && a.fieldCount == 2)
        a.value["qty"] = 3
        #expect(a.flatValue == nil && a.field("qty") == 3 && a.value.keys == ["user", "qty"])
        #expect(a != b)
    }
}

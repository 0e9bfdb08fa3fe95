import StreamEngine
import Testing

@Suite("A record's typed field reads: the same from a flat object as from its tree")
struct RecordFieldReadTests {
    @Test("number(_:) and string(_:) of a FieldKey give what field(_:) gives, for every member type and for absent keys")
    func typedReadsMatchTheValue() throws {
        let texts = [
            #"{"userId":"u-42","category":"books","price":19.99,"quantity":2,"timestamp":"2024-12-14T12:00:00.000Z"}"#,
            #"{"price":"19.99","quantity":null,"category":7,"userId":true,"empty":""}"#,
            #"{"uni":"é中😀","long":"a string well over fifteen bytes long","neg":-0.5e-3,"big":1e300,"f":false}"#,
            #"{}"#,
        ]
        let names = ["userId", "category", "price", "quantity", "timestamp", "empty", "uni", "long", "neg", "big", "f", "missing", ""]
        var flatCount = 0
        for text in texts {
            var keys = JSONKeyCache()
            let tree = try #require(try JSONValue.parse(Array(text.utf8)).objectValue)
            let treeRecord = StreamRecord(key: "k", value: tree, timestamp: 0)
            guard let flat = Array(text.utf8).withUnsafeBytes({ JSONValue.parseFlatObject($0, keys: &keys) }) else {
                Issue.record("not read as a flat object: \(text)")
                continue
            }
            flatCount += 1
            let flatRecord = StreamRecord(key: "k", flat: flat, timestamp: 0)
            for name in names {
                let expected = treeRecord.field(name), key = FieldKey(name)
                #expect(flatRecord.number(key) == expected?.doubleValue, "\(name) in \(text)")
                #expect(treeRecord.number(key) == expected?.doubleValue, "\(name) in \(text)")
                #expect(flatRecord.string(key) == expected?.stringValue, "\(name) in \(text)")
                #expect(treeRecord.string(key) == expected?.stringValue, "\(name) in \(text)")
            }
        }
        #expect(flatCount == texts.count)
    }

    @Test("a FieldKey finds its field whatever position it remembers: records in changing member orders, flat and as trees")
    func fieldKeysSurviveChangingOrders() throws {
        let members = [#""price":19.99"#, #""quantity":2"#, #""category":"books""#, #""userId":"u-1""#, #""note":null"#]
        let names = ["price", "quantity", "category", "userId", "note", "missing"]
        let keys = names.map(FieldKey.init)
        var cache = JSONKeyCache()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            // A random order of a random subset: the remembered position is often wrong.
            let text = "{" + members.shuffled(using: &generator).prefix(1 + round % members.count).joined(separator: ",") + "}"
            let tree = StreamRecord(key: "k", value: try #require(try JSONValue.parse(Array(text.utf8)).objectValue), timestamp: 0)
            let flat = try #require(Array(text.utf8).withUnsafeBytes { JSONValue.parseFlatObject($0, keys: &cache) })
            let flatRecord = StreamRecord(key: "k", flat: flat, timestamp: 0)
            for (name, key) in zip(names, keys) {
                let expected = tree.field(name)
                #expect(flatRecord.field(key) == expected, "\(name) in \(text)")
                #expect(flatRecord.number(key) == expected?.doubleValue, "\(name) in \(text)")
                #expect(flatRecord.string(key) == expected?.stringValue, "\(name) in \(text)")
                #expect(tree.field(key) == expected && tree.number(key) == expected?.doubleValue && tree.string(key) == expected?.stringValue)
            }
        }
    }
}

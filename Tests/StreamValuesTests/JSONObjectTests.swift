import Testing

@testable import StreamValues

@Suite("JSONObject and JSONValue conveniences")
struct JSONObjectTests {
    @Test func orderedMapOperations() {
        var o = JSONObject()
        #expect(o.isEmpty)
        o["b"] = 1
        o["a"] = 2
        o["c"] = nil  // no-op
        #expect(o.keys == ["b", "a"])
        #expect(o.count == 2)
        o["b"] = "x"  // keeps position
        #expect(o.keys == ["b", "a"])
        #expect(o["b"] == "x")
        #expect(o.updateValue(3, forKey: "c") == nil)
        #expect(o.updateValue(4, forKey: "c") == 3)
        #expect(o.contains(key: "c"))
        #expect(o.removeValue(forKey: "b") == "x")
        #expect(o.removeValue(forKey: "b") == nil)
        #expect(o.keys == ["a", "c"])
        #expect(o.values == [2, 4])
        o["a"] = nil
        #expect(o.keys == ["c"])
        o["n"] = .null
        #expect(o.contains(key: "n"))
        #expect(o["n"] == .some(.null))
        #expect(Array(o).map(\.key) == ["c", "n"])
        var seen: [String] = []
        for (key, _) in o { seen.append(key) }
        #expect(seen == ["c", "n"])
    }

    @Test func initialisersKeepFirstPositionLastValue() {
        let a = JSONObject([(key: "x", value: 1), (key: "y", value: 2), (key: "x", value: 3)])
        #expect(a.keys == ["x", "y"])
        #expect(a["x"] == 3)
        let b: JSONObject = ["x": 1, "y": 2, "x": 3]
        #expect(b.keys == ["x", "y"])
        #expect(a == b)
    }

    @Test func equalityAndHashIgnoreOrder() {
        let a: JSONValue = ["a": 1, "b": ["c": true, "d": nil]]
        let b: JSONValue = ["b": ["d": nil, "c": true], "a": 1]
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
        #expect(a != ["a": 1, "b": ["c": true]])
        #expect(a != ["a": 1, "b": ["c": true, "e": nil]])
        #expect(a != ["a": 2, "b": ["c": true, "d": nil]])
        #expect(JSONValue.array([1, 2]) != JSONValue.array([2, 1]))  // arrays are ordered
        #expect(JSONValue.number(0) == JSONValue.number(-0.0))
        #expect(JSONValue.number(1) != JSONValue.string("1"))
    }

    @Test func literalsAndAccessors() {
        let v: JSONValue = ["s": "str", "i": 42, "f": 2.5, "t": true, "n": nil, "a": [1, "two"], "o": ["k": "v"]]
        #expect(v["s"]?.stringValue == "str")
        #expect(v["i"]?.intValue == 42)
        #expect(v["i"]?.doubleValue == 42)
        #expect(v["f"]?.intValue == nil)
        #expect(v["f"]?.doubleValue == 2.5)
        #expect(v["t"]?.boolValue == true)
        #expect(v["n"]?.isNull == true)
        #expect(v["a"]?.arrayValue?.count == 2)
        #expect(v["a"]?[1] == "two")
        #expect(v["a"]?[-1] == nil)
        #expect(v["o"]?.objectValue?["k"] == "v")
        // Accessors do not convert between cases.
        #expect(v["s"]?.intValue == nil)
        #expect(v["i"]?.stringValue == nil)
        #expect(v["t"]?.doubleValue == nil)
        #expect(v["n"]?.objectValue == nil)
        #expect(v["s"]?["x"] == nil)
        #expect(v[0] == nil)
        #expect(v.isNull == false)
        #expect(JSONValue.number(1e300).intValue == nil)
        #expect(JSONValue.number(-9_007_199_254_740_992).intValue == -9_007_199_254_740_992)
        #expect(JSONValue.number(-0.0).intValue == 0)
    }

    @Test func modifyObjectInPlace() {
        var v: JSONValue = ["a": 1]
        let r = v.modifyObject { o -> Int in
            o["b"] = 2
            return o.count
        }
        #expect(r == 2)
        #expect(v == ["a": 1, "b": 2])
        var s: JSONValue = "x"
        #expect(s.modifyObject { $0["b"] = 2 } == nil)
        #expect(s == "x")
    }
}

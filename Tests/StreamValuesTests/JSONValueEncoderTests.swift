import Testing

@testable import StreamValues

@Suite("JSONValueEncoder")
struct JSONValueEncoderTests {
    struct Inner: Encodable { var zeta: Int; var alpha: [Double] }
    struct Document: Encodable {
        var store: String
        var count: Int64
        var missing: String?
        var present: OrNull<Int32>
        var absent: OrNull<String>
        var inner: Inner
        var value: JSONValue
    }

    @Test("members keep declaration order; OrNull writes null, a nil optional is left out; JSON values pass through in their order")
    func documentShape() throws {
        let value: JSONValue = ["z": 1, "a": [true, nil, "x"]]
        let doc = Document(store: "s", count: 12_345_678_901, missing: nil, present: OrNull(3), absent: OrNull(nil),
                           inner: Inner(zeta: -1, alpha: [0.5, 1e-7]), value: value)
        let encoded = try JSONValueEncoder().encode(doc)
        #expect(encoded.serializedString()
            == #"{"store":"s","count":12345678901,"present":3,"absent":null,"inner":{"zeta":-1,"alpha":[0.5,1e-7]},"value":{"z":1,"a":[true,null,"x"]}}"#)
    }

    @Test("a non-finite number is an encoding error")
    func nonFinite() {
        #expect(throws: EncodingError.self) { try JSONValueEncoder().encode([Double.nan]) }
    }
}

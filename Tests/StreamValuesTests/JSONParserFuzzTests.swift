import Foundation
import Testing

@testable import StreamValues

/// A seeded mutation fuzzer for the parser's unsafe code, run in CI on every test run.
///
/// It mutates valid documents (bit flips, JSON-significant and UTF-8-hostile bytes,
/// insertions, deletions, duplicated and spliced ranges, truncation, deep nesting) and checks
/// on every input that the parser
/// - never crashes and answers the same twice;
/// - rejects with an offset inside the input;
/// - accepts only valid UTF-8, and what it accepts round-trips: serialising the value and
///   parsing that gives the same value and the same bytes again.
///
/// `JSON_FUZZ_SEED` and `JSON_FUZZ_ITERATIONS` run other or longer campaigns locally, e.g.
/// `JSON_FUZZ_SEED=7 JSON_FUZZ_ITERATIONS=300000 swift test --filter JSONParserFuzz` (20–60 s).
@Suite("JSON parser: seeded mutation fuzzing")
struct JSONParserFuzzTests {
    static let seedDocuments: [String] = [
        #"{"event_id":"e-1","user_id":"u42","product_id":"p-7","price":19.99,"quantity":2,"ts":"2024-12-14T12:00:00Z"}"#,
        #"[1,-0,1e-7,12345678901234,59.9,1E2,-1.5e+300,0.000001]"#,
        #"{"s":"\u00e9\ud83d\ude00\u001F\u007f\n\t\\\"\/","lone":"\ud800","empty":"","uni":"中😀"}"#,
        #"{"a":{"b":{"c":[[[{"d":null}]]]}},"t":true,"f":false,"dup":1,"dup":2}"#,
        "  \t\r\n[ 1 , 2 ]\r\n ",
        #""plain string""#,
        "0",
    ]

    static let interestingBytes: [UInt8] = Array(#"{}[]",:\/0123456789eE.+-tfnulrsbu "#.utf8)
        + [0x00, 0x09, 0x0A, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xFF]

    @Test("mutated documents never crash; rejections point inside the input; acceptances are valid UTF-8 and round-trip")
    func mutationCampaign() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["JSON_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_1500
        let iterations = environment["JSON_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 40_000
        var rng = SplitMix64(seed: seed)
        var corpus = Self.seedDocuments.map { Array($0.utf8) }
        for _ in 0..<40 { corpus.append(RandomJSON.value(&rng).serialized()) }

        var accepted = 0
        var rejected = 0
        for iteration in 0..<iterations {
            var input = corpus[rng.int(corpus.count)]
            for _ in 0...rng.int(3) { Self.mutate(&input, corpus: corpus, rng: &rng) }
            let context = "seed \(seed), iteration \(iteration), input \(Self.show(input))"
            switch Self.check(input, context: context) {
            case .accepted:
                accepted += 1
                // Keep some accepted mutants: later mutations start from new shapes.
                if corpus.count < 400, rng.chance(0.05) { corpus.append(input) }
            case .rejected:
                rejected += 1
            case .failed:
                return  // one reported input is enough to reproduce
            }
        }
        // The campaign explored both sides of the grammar, not just one.
        #expect(accepted > iterations / 100, "only \(accepted) of \(iterations) mutants were valid JSON")
        #expect(rejected > iterations / 10, "only \(rejected) of \(iterations) mutants were rejected")
    }

    @Test("nesting at, just under and over the depth limit, and truncated at every byte")
    func nestingAndTruncation() throws {
        for depth in [JSONValue.maxNestingDepth - 1, JSONValue.maxNestingDepth, JSONValue.maxNestingDepth + 1, 1000] {
            let text = String(repeating: #"{"k":["#, count: depth / 2) + "1" + String(repeating: "]}", count: depth / 2)
            _ = Self.check(Array(text.utf8), context: "depth \(depth)")
        }
        for document in Self.seedDocuments {
            let bytes = Array(document.utf8)
            for end in 0..<bytes.count { _ = Self.check(Array(bytes[..<end]), context: "prefix \(end) of \(document)") }
        }
    }

    enum Outcome { case accepted, rejected, failed }

    /// Parses `input` and checks the properties; records an issue and answers `.failed` on a violation.
    static func check(_ input: [UInt8], context: String) -> Outcome {
        let first = Result { () throws(JSONParseError) in try JSONValue.parse(input) }
        let second = Result { () throws(JSONParseError) in try JSONValue.parse(input) }
        guard first == second else {
            Issue.record("two parses of the same bytes differ: \(context)")
            return .failed
        }
        switch first {
        case .failure(let error):
            guard (0...input.count).contains(error.offset) else {
                Issue.record("error offset \(error.offset) outside the input of \(input.count) bytes (\(error)): \(context)")
                return .failed
            }
            return .rejected
        case .success(let value):
            guard String(validating: input, as: UTF8.self) != nil else {
                Issue.record("accepted invalid UTF-8: \(context)")
                return .failed
            }
            let bytes = value.serialized()
            guard let back = try? JSONValue.parse(bytes), back == value, back.serialized() == bytes else {
                Issue.record("accepted value does not round-trip (serialised \(show(bytes))): \(context)")
                return .failed
            }
            return .accepted
        }
    }

    static func mutate(_ input: inout [UInt8], corpus: [[UInt8]], rng: inout SplitMix64) {
        let position = input.isEmpty ? 0 : rng.int(input.count)
        switch rng.int(8) {
        case 0 where !input.isEmpty:  // flip one bit
            input[position] ^= 1 << UInt8(rng.int(8))
        case 1 where !input.isEmpty:  // overwrite with an interesting byte
            input[position] = interestingBytes[rng.int(interestingBytes.count)]
        case 2:  // insert an interesting byte
            input.insert(interestingBytes[rng.int(interestingBytes.count)], at: position)
        case 3 where !input.isEmpty:  // delete a range
            input.removeSubrange(position..<min(input.count, position + 1 + rng.int(8)))
        case 4 where !input.isEmpty:  // duplicate a range in place
            let range = position..<min(input.count, position + 1 + rng.int(16))
            input.insert(contentsOf: input[range], at: range.upperBound)
        case 5:  // splice in a piece of another document
            let other = corpus[rng.int(corpus.count)]
            guard !other.isEmpty else { return }
            let start = rng.int(other.count)
            input.insert(contentsOf: other[start..<min(other.count, start + 1 + rng.int(24))], at: position)
        case 6 where !input.isEmpty:  // truncate
            input.removeSubrange(position...)
        default:  // wrap in arrays
            let depth = 1 + rng.int(140)
            input = Array(repeating: UInt8(ascii: "["), count: depth) + input + Array(repeating: UInt8(ascii: "]"), count: depth)
        }
    }

    static func show(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self), bytes.count <= 400 { return text.debugDescription }
        return "[" + bytes.prefix(400).map { String($0, radix: 16) }.joined(separator: " ") + (bytes.count > 400 ? " …]" : "]")
    }
}

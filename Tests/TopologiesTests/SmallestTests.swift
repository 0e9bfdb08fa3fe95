import Testing
@testable import Topologies

@Suite("smallest(k, by:): the first k of sorted(by:), without sorting everything")
struct SmallestTests {
    @Test("random candidates with tied scores (ties ending at the id): the same elements in the same order as sorted(by:).prefix(k)")
    func sameAsSortedPrefix() {
        var rng = SystemRandomNumberGenerator()
        // Scores as recommendations rank them: higher first, then the more recent, then the id.
        let order: ((String, Double, Int64), (String, Double, Int64)) -> Bool = { a, b in
            if a.1 != b.1 { return a.1 > b.1 }
            return a.2 != b.2 ? a.2 > b.2 : a.0 < b.0
        }
        for n in [0, 1, 5, 20, 21, 100, 1000] {
            let items = (0..<n).map { i in ("p-\(i)", Double(Int.random(in: 0..<8, using: &rng)) / 4, Int64.random(in: 0..<3, using: &rng)) }
            for k in [0, 1, 3, 20, 50, 2000] {
                let expected = Array(items.sorted(by: order).prefix(k)).map(\.0)
                #expect(items.shuffled(using: &rng).smallest(k, by: order).map(\.0) == expected, "n \(n), k \(k)")
            }
        }
    }
}

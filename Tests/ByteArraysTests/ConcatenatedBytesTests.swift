import ByteArrays
import Testing

@Suite("ConcatenatedBytes: two buffers as one array")
struct ConcatenatedBytesTests {
    @Test("an array of both holds the first buffer's bytes, then the second's, whatever their sizes (empty, absent, large)", arguments: [0, 1, 7, 8, 200, 70_000])
    func arrayOfBoth(size: Int) {
        let a = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for otherSize in [0, 1, 5, 300] {
            let b = (0..<otherSize).map { UInt8(truncatingIfNeeded: 255 - $0) }
            a.withUnsafeBytes { ra in
                b.withUnsafeBytes { rb in
                    let both = ConcatenatedBytes(ra, rb)
                    #expect(Array(both) == a + b, "\(size) + \(otherSize) bytes")
                    #expect(Array(both.makeIterator().asSequence) == a + b, "iterated")
                    #expect(both.count == size + otherSize)
                    #expect(Array(ConcatenatedBytes(UnsafeRawBufferPointer(start: nil, count: 0), rb)) == b)
                }
            }
        }
    }
}

extension IteratorProtocol {
    var asSequence: IteratorSequence<Self> { IteratorSequence(self) }
}

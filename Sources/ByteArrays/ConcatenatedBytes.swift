// Two byte buffers as one collection, to make a `[UInt8]` of both with one allocation.

/// The bytes of two buffers, one after the other, as a collection: `Array(ConcatenatedBytes(a, b))`
/// makes one `[UInt8]` holding both.
///
/// Why not `[UInt8](unsafeUninitializedCapacity:initializingWith:)`: that initializer allocates
/// through a non-inlined generic function of the standard library, which looks up the array
/// storage's type metadata at run time on every call (measured with callgrind on Swift 6.3:
/// about 370 instructions more per array than this, for a 200-byte array whose allocation,
/// copy and release cost about 320). `Array.init` of a collection allocates in specialised
/// code, and the buffers are copied with `memcpy` (`_copyContents`), not byte by byte.
///
/// The buffers are read while the array is made: they must stay valid until then.
public struct ConcatenatedBytes: RandomAccessCollection {
    /// The bytes that come first.
    public let first: UnsafeRawBufferPointer
    /// The bytes after them.
    public let second: UnsafeRawBufferPointer

    /// The bytes of `first`, then those of `second` (either may be empty, its base address `nil`).
    @inlinable
    public init(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        self.first = first
        self.second = second
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { first.count + second.count }

    @inlinable
    public subscript(position: Int) -> UInt8 {
        position < first.count ? first[position] : second[position - first.count]
    }

    /// Iterates the bytes of both buffers.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let bytes: ConcatenatedBytes
        @usableFromInline var position: Int

        @inlinable
        init(_ bytes: ConcatenatedBytes, position: Int) {
            self.bytes = bytes
            self.position = position
        }

        @inlinable
        public mutating func next() -> UInt8? {
            guard position < bytes.endIndex else { return nil }
            defer { position += 1 }
            return bytes[position]
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(self, position: 0) }

    /// Copies both buffers with `memcpy` (what `Array.init` of a collection calls).
    @inlinable
    public func _copyContents(initializing buffer: UnsafeMutableBufferPointer<UInt8>) -> (Iterator, Int) {
        let n = Swift.min(buffer.count, count)
        guard n > 0, let out = buffer.baseAddress else { return (Iterator(self, position: 0), 0) }
        let a = Swift.min(first.count, n)
        if a > 0 { UnsafeMutableRawPointer(out).copyMemory(from: first.baseAddress.unsafelyUnwrapped, byteCount: a) }
        if n > a { UnsafeMutableRawPointer(out + a).copyMemory(from: second.baseAddress.unsafelyUnwrapped, byteCount: n - a) }
        return (Iterator(self, position: n), n)
    }
}

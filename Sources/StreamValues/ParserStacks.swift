/// The parser's stacks kept between parses by a ``JSONKeyCache`` (their buffers, empty).
final class ParserStacks {
    var values = MoveStack<JSONValue>()
    var members = MoveStack<JSONObject.Member>()
    var fingerprints = MoveStack<UInt64>()
    /// The member index of a `FlatJSONObject` being read.
    var flatEntries = MoveStack<FlatJSONObject.Entry>()

    deinit {
        values.release()
        members.release()
        fingerprints.release()
        flatEntries.release()
    }
}

/// A manually managed stack whose top segment can be moved (not copied) into an `Array`.
struct MoveStack<T> {
    var base: UnsafeMutablePointer<T>? = nil
    var count = 0
    var capacity = 0

    @inline(__always)
    mutating func push(_ value: consuming T) {
        if count == capacity { grow() }
        (base.unsafelyUnwrapped + count).initialize(to: value)
        count += 1
    }

    /// The elements; valid for indices below `count` until the next `push`.
    @inline(__always)
    var elements: UnsafeMutablePointer<T> { base.unsafelyUnwrapped }

    mutating func grow() {
        let newCapacity = max(16, capacity * 2)
        let newBase = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        if let base {
            newBase.moveInitialize(from: base, count: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }

    /// Moves the elements from `start` to the top into a new array and pops them.
    mutating func popArray(from start: Int) -> [T] {
        let n = count - start
        guard n > 0 else { return [] }
        let source = base.unsafelyUnwrapped + start
        let result = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            buffer.baseAddress.unsafelyUnwrapped.moveInitialize(from: source, count: n)
            initialized = n
        }
        count = start
        return result
    }

    mutating func release() {
        if let base {
            base.deinitialize(count: count)
            base.deallocate()
        }
        base = nil
        count = 0
        capacity = 0
    }

    /// Empties the stack and keeps its buffer.
    mutating func removeAll() {
        if let base { base.deinitialize(count: count) }
        count = 0
    }
}

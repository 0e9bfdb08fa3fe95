// libFuzzer entry point for the JSON parser (coverage-guided, with AddressSanitizer).
// Built and run by scripts/fuzz-json.sh; not part of the package build.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    do {
        let value = try JSONValue.parse(input)
        // What is accepted must round-trip exactly.
        let bytes = value.serialized()
        guard let back = try? JSONValue.parse(bytes), back == value, back.serialized() == bytes else {
            fatalError("accepted value does not round-trip: \(Array(input))")
        }
    } catch {
        precondition((0...size).contains(error.offset), "error offset \(error.offset) outside \(size) bytes")
    }
    return 0
}

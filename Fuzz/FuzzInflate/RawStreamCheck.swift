import Philote

/// Mode 0: arbitrary bytes as the payloads of successive compressed messages, inflated by Inflater and by
/// ReferenceInflater with the same context rule; they must agree message by message, and a success never
/// holds more than the limit. A third inflater writing into a kept buffer of limit + 1 bytes (`inflate(_:into:)`,
/// as `philote bench` uses it) must agree too. The first failure ends the run, as it ends the connection.
enum RawStreamCheck {
    static func run(_ input: inout FuzzInput, _ settings: InflateSettings) {
        let inflater = Inflater(contextTakeover: settings.contextTakeover)
        let reference = ReferenceInflater(contextTakeover: settings.contextTakeover)
        let keeping = Inflater(contextTakeover: settings.contextTakeover)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: settings.limit + 1, alignment: 1)
        defer { output.deallocate() }
        while !input.isAtEnd {
            let payload = input.piece()
            let got = payload.withUnsafeBytes { inflater.decompress($0, limit: settings.limit) }
            let expected = reference.decompress(payload, limit: settings.limit)
            if case .success(let message) = got {
                precondition(message.count <= settings.limit, "inflated \(message.count) bytes past the limit")
            }
            precondition(
                got == expected, "Inflater and zlib in one buffer disagree: \(got.summary) vs \(expected.summary)")
            let kept = payload.withUnsafeBytes { keeping.inflate($0, into: output).map(Array.init) }
            precondition(kept == expected, "a kept buffer and zlib disagree: \(kept.summary) vs \(expected.summary)")
            if case .failure = got { return }
        }
    }
}

/// The choices an input makes in its first two bytes, shared by every mode.
///
/// Byte 0: bit 0 context takeover; bits 1-2 the mode (see `FuzzInflate.swift`); bits 3-5 the limit, from
/// `limits`. Byte 1: the compressor's window (9 + value % 7 bits) and level ((value / 8) % 10).
struct InflateSettings {
    /// Around the edges that matter: nothing, tiny, a control frame, Inflater's 16 KiB output chunk, more.
    static let limits = [0, 1, 16, 125, 1024, 16384, 16385, 65536]

    let contextTakeover: Bool
    let mode: Int
    let limit: Int
    let windowBits: Int
    let level: Int32

    init(_ input: inout FuzzInput) {
        let flags = input.byte()
        contextTakeover = flags & 1 != 0
        mode = Int(flags >> 1) & 3
        limit = Self.limits[Int(flags >> 3) & 7]
        let compression = input.byte()
        windowBits = 9 + Int(compression % 7)
        level = Int32((compression / 8) % 10)
    }
}

/// Incremental UTF-8 validation (RFC 3629), resumable across fragment boundaries, failing at the first
/// byte that cannot start or continue a well-formed sequence (no overlongs, no surrogates, nothing above
/// U+10FFFF).
public struct UTF8Validator: Sendable {
    // The state is what the next byte must be.
    private enum State: UInt8 {
        case accept, tail1, tail2, tail3, afterE0, afterED, afterF0, afterF4, reject
    }

    private var state = State.accept

    public init() {}

    /// True when everything seen so far ends on a character boundary.
    public var isComplete: Bool { state == .accept }

    /// Feeds more bytes; false as soon as the input can no longer be valid UTF-8 (and from then on).
    @inline(__always)
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state != .reject else { return false }
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        var current = state
        while index < count {
            if current == .accept {
                // ASCII runs dominate JSON traffic: skip them eight bytes at a time.
                while index + 8 <= count {
                    let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                }
                if index == count { break }
            }
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            index += 1
            current = Self.next(current, byte)
            if current == .reject {
                state = .reject
                return false
            }
        }
        state = current
        return true
    }

    public mutating func validate(_ bytes: some Sequence<UInt8>) -> Bool {
        var copy = Array(bytes)
        return copy.withUnsafeMutableBytes { validate(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    private static func next(_ state: State, _ byte: UInt8) -> State {
        switch state {
        case .accept:
            switch byte {
            case 0x00...0x7F: return .accept
            case 0xC2...0xDF: return .tail1
            case 0xE0: return .afterE0
            case 0xED: return .afterED
            case 0xE1...0xEC, 0xEE...0xEF: return .tail2
            case 0xF0: return .afterF0
            case 0xF1...0xF3: return .tail3
            case 0xF4: return .afterF4
            default: return .reject
            }
        case .tail1: return (0x80...0xBF).contains(byte) ? .accept : .reject
        case .tail2: return (0x80...0xBF).contains(byte) ? .tail1 : .reject
        case .tail3: return (0x80...0xBF).contains(byte) ? .tail2 : .reject
        case .afterE0: return (0xA0...0xBF).contains(byte) ? .tail1 : .reject
        case .afterED: return (0x80...0x9F).contains(byte) ? .tail1 : .reject
        case .afterF0: return (0x90...0xBF).contains(byte) ? .tail2 : .reject
        case .afterF4: return (0x80...0x8F).contains(byte) ? .tail2 : .reject
        case .reject: return .reject
        }
    }
}

extension JSONReader {
    /// A string the reader has read: in place when its bytes in the input are already its decoded UTF-8 (no
    /// escapes, nothing replaced), so that most strings are never copied just to be looked at.
    enum ScannedString {
        /// The offsets of the string's body in the input, quotes excluded.
        case inPlace(Range<Int>)
        case decoded([UInt8])

        @inline(__always)
        func with<Result>(in input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
            switch self {
            case .inPlace(let range): body(UnsafeRawBufferPointer(rebasing: input[range]))
            case .decoded(let bytes): bytes.withUnsafeBytes(body)
            }
        }

        func bytes(in input: UnsafeRawBufferPointer) -> [UInt8] {
            switch self {
            case .inPlace(let range): Array(UnsafeRawBufferPointer(rebasing: input[range]))
            case .decoded(let bytes): bytes
            }
        }

        func string(in input: UnsafeRawBufferPointer) -> String {
            switch self {
            case .inPlace(let range): String(decoding: UnsafeRawBufferPointer(rebasing: input[range]), as: UTF8.self)
            case .decoded(let bytes): String(decoding: bytes, as: UTF8.self)
            }
        }
    }
}

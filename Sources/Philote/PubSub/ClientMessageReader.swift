/// Reads a client message strictly and without building a document: keys match `channel` and `data`
/// ASCII case-insensitively (the Go client sends `Channel`/`Data`), the last duplicate wins, `data` and
/// `channel` must be strings (null or absent mean empty), other members are validated and skipped, and
/// only whitespace may follow the object.
public enum ClientMessageReader {
    public struct Failure: Error, Equatable, Sendable {
        /// Short, safe to send back in an `error` reply (never echoes the payload).
        public var reason: String
    }

    static let maxDepth = 64

    public static func read(_ bytes: UnsafeRawBufferPointer) -> Result<ClientMessage, Failure> {
        var cursor = Cursor(bytes: bytes)
        cursor.skipWhitespace()
        guard cursor.peek == UInt8(ascii: "{") else {
            return .failure(Failure(reason: "message must be a JSON object"))
        }
        cursor.index += 1
        var message = ClientMessage(channel: [], data: [])
        do {
            cursor.skipWhitespace()
            if cursor.peek == UInt8(ascii: "}") {
                cursor.index += 1
            } else {
                while true {
                    cursor.skipWhitespace()
                    guard cursor.peek == UInt8(ascii: "\"") else {
                        throw Failure(reason: "invalid JSON: expected a key")
                    }
                    let key = try cursor.readString()
                    cursor.skipWhitespace()
                    guard cursor.peek == UInt8(ascii: ":") else { throw Failure(reason: "invalid JSON: expected ':'") }
                    cursor.index += 1
                    cursor.skipWhitespace()
                    switch Field(key) {
                    case .channel: message.channel = try cursor.readOptionalString(field: "channel")
                    case .data: message.data = try cursor.readOptionalString(field: "data")
                    case .other: try cursor.skipValue(depth: 1)
                    }
                    cursor.skipWhitespace()
                    if cursor.peek == UInt8(ascii: ",") {
                        cursor.index += 1
                        continue
                    }
                    guard cursor.peek == UInt8(ascii: "}") else {
                        throw Failure(reason: "invalid JSON: expected ',' or '}'")
                    }
                    cursor.index += 1
                    break
                }
            }
            cursor.skipWhitespace()
            guard cursor.atEnd else { throw Failure(reason: "invalid JSON: data after the object") }
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure(reason: "invalid JSON"))
        }
        return .success(message)
    }

    private enum Field {
        case channel, data, other

        init(_ key: [UInt8]) {
            if key.count == 7 && zip(key, "channel".utf8).allSatisfy({ asciiLower($0) == $1 }) {
                self = .channel
            } else if key.count == 4 && zip(key, "data".utf8).allSatisfy({ asciiLower($0) == $1 }) {
                self = .data
            } else {
                self = .other
            }
        }
    }

    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func readOptionalString(field: String) throws -> [UInt8] {
            if peek == UInt8(ascii: "\"") { return try readString() }
            if peek == UInt8(ascii: "n") {
                try literal("null")
                return []
            }
            throw Failure(reason: "\(field) must be a string")
        }

        mutating func literal(_ text: StaticString) throws {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw Failure(reason: "invalid JSON") }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] {
                throw Failure(reason: "invalid JSON")
            }
            index += count
        }

        /// Decodes a JSON string at the cursor (which is on the opening quote) into UTF-8 bytes. Invalid
        /// UTF-8 (possible in a binary frame) is replaced with U+FFFD, as Go's decoder does.
        mutating func readString() throws -> [UInt8] {
            index += 1
            let start = index
            // Fast path: no escapes, valid UTF-8, one copy.
            var validator = UTF8Validator()
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x22 || byte == 0x5C || byte < 0x20 { break }
                index += 1
            }
            if index < bytes.count && bytes[index] == 0x22 {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if validator.validate(raw) && validator.isComplete { return Array(raw) }
                return Array(String(decoding: raw, as: UTF8.self).utf8)
            }
            var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            while true {
                guard index < bytes.count else { throw Failure(reason: "invalid JSON: unterminated string") }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x22:
                    validator = UTF8Validator()
                    if out.withUnsafeBytes({ validator.validate($0) }) && validator.isComplete { return out }
                    return Array(String(decoding: out, as: UTF8.self).utf8)
                case 0x5C:
                    guard let escape = peek else { throw Failure(reason: "invalid JSON: unterminated string") }
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"): out.append(contentsOf: UTF8.encode(try readUnicodeEscape())!)
                    default: throw Failure(reason: "invalid JSON: bad escape")
                    }
                case 0x00..<0x20:
                    throw Failure(reason: "invalid JSON: control character in string")
                default:
                    out.append(byte)
                }
            }
        }

        mutating func readUnicodeEscape() throws -> Unicode.Scalar {
            guard let (scalar, used) = JSONUnicodeEscape.decode(bytes, at: index) else {
                throw Failure(reason: "invalid JSON: bad escape")
            }
            index += used
            return scalar
        }

        /// Validates and passes over one value of any type.
        mutating func skipValue(depth: Int) throws {
            guard depth <= ClientMessageReader.maxDepth else { throw Failure(reason: "invalid JSON: nesting too deep") }
            guard let byte = peek else { throw Failure(reason: "invalid JSON") }
            switch byte {
            case UInt8(ascii: "\""): _ = try readString()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                index += 1
                skipWhitespace()
                if peek == close {
                    index += 1
                    return
                }
                while true {
                    skipWhitespace()
                    if close == UInt8(ascii: "}") {
                        guard peek == UInt8(ascii: "\"") else { throw Failure(reason: "invalid JSON: expected a key") }
                        _ = try readString()
                        skipWhitespace()
                        guard peek == UInt8(ascii: ":") else { throw Failure(reason: "invalid JSON: expected ':'") }
                        index += 1
                        skipWhitespace()
                    }
                    try skipValue(depth: depth + 1)
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    guard peek == close else { throw Failure(reason: "invalid JSON") }
                    index += 1
                    return
                }
            default:
                try skipNumber()
            }
        }

        mutating func skipNumber() throws {
            func digits() throws {
                guard let byte = peek, byte >= 0x30 && byte <= 0x39 else { throw Failure(reason: "invalid JSON") }
                while let byte = peek, byte >= 0x30 && byte <= 0x39 { index += 1 }
            }
            if peek == UInt8(ascii: "-") { index += 1 }
            if peek == UInt8(ascii: "0") { index += 1 } else { try digits() }
            if peek == UInt8(ascii: ".") {
                index += 1
                try digits()
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                try digits()
            }
        }
    }
}

/// Builds a `JSONValue` tree from a whole document, for the few callers that want one (tests, the token fuzz
/// target's plain oracle, diagnostics): a strict RFC 8259 read (`JSONReader.Rules.strict`) through the
/// project's one JSON reader. Code on a request path reads with `JSONReader` directly and builds nothing.
public enum JSONParser {
    public struct Failure: Error, Equatable, Sendable {
        public var reason: String
        public var offset: Int
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = 32) throws(Failure) -> JSONValue {
        let result: Result<JSONValue, JSONReader.Failure> = bytes.withUnsafeBytes { input in
            var reader = JSONReader(input, rules: .strict(maxDepth: maxDepth))
            return Result { () throws(JSONReader.Failure) in
                let value = try read(&reader)
                try reader.finish()
                return value
            }
        }
        switch result {
        case .success(let value): return value
        case .failure(let failure): throw Failure(reason: failure.reason, offset: failure.offset)
        }
    }

    /// The value at the reader's cursor, whole.
    static func read(_ reader: inout JSONReader) throws(JSONReader.Failure) -> JSONValue {
        switch try reader.expectValue() {
        case .object:
            var members: [(key: String, value: JSONValue)] = []
            if try reader.beginObject() {
                repeat {
                    let key = try reader.readKey()
                    members.append((key, try read(&reader)))
                } while try reader.nextMember()
            }
            return .object(members)
        case .array:
            var elements: [JSONValue] = []
            if try reader.beginArray() {
                repeat {
                    elements.append(try read(&reader))
                } while try reader.nextElement()
            }
            return .array(elements)
        case .string: return .string(try reader.readString())
        case .number:
            let number = try reader.readNumber()
            return .number(number.value, isInteger: number.isInteger)
        case .bool: return .bool(try reader.readBool())
        case .null:
            try reader.readNull()
            return .null
        }
    }
}

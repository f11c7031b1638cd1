/// Reads a token's header and payload with `JSONReader`, building no document: each must be a JSON object
/// under `JSONReader.Rules.strict()` (invalid UTF-8, numbers out of range and more than 32 levels of
/// nesting are refused wherever they are), and one that is not is malformed whatever it holds. Of duplicate
/// members the last wins, as in Go's decoder and most JWT libraries; keys match exactly; other members are
/// validated and skipped.
enum TokenJSON {
    /// The header's `alg`.
    static func algorithm(inHeader header: [UInt8]) -> Result<HMACAlgorithm, TokenError> {
        // nil: absent or not a string.
        var name: String?
        let read = readObject(header, naming: { $0.elementsEqual("alg".utf8) ? () : nil }) {
            _, reader throws(JSONReader.Failure) in
            if reader.peekValueKind() == .string {
                name = try reader.readString()
            } else {
                try reader.skipValue()
                name = nil
            }
        }
        guard read else { return .failure(.malformed("bad header")) }
        guard let name, let algorithm = HMACAlgorithm(rawValue: name) else { return .failure(.unsupportedAlgorithm) }
        return .success(algorithm)
    }

    /// The claims Philote reads, with their types checked (not their times). Each slot holds what the last
    /// member of that name held: nil when that was of the wrong type.
    static func claims(inPayload payload: [UInt8]) -> Result<Claims, TokenError> {
        var read: [String]? = []
        var write: [String]? = []
        var api: Bool? = false
        var expiresAt: Double?? = .some(nil)
        var notBefore: Double?? = .some(nil)
        var issuedAt: Double?? = .some(nil)
        let wellFormed = readObject(payload, naming: ClaimName.init) { claim, reader throws(JSONReader.Failure) in
            switch claim {
            case .read: read = try stringList(&reader)
            case .write: write = try stringList(&reader)
            case .api:
                switch try reader.expectValue() {
                case .null:
                    try reader.readNull()
                    api = false
                case .bool: api = try reader.readBool()
                default:
                    try reader.skipValue()
                    api = nil
                }
            case .exp: expiresAt = try seconds(&reader)
            case .nbf: notBefore = try seconds(&reader)
            case .iat: issuedAt = try seconds(&reader)
            }
        }
        guard wellFormed else { return .failure(.malformed("bad payload")) }
        // Checked in this order whatever the members' order, so that a token always gets the same refusal.
        guard let read else { return .failure(.invalidClaim("read")) }
        guard let write else { return .failure(.invalidClaim("write")) }
        guard let api else { return .failure(.invalidClaim("api")) }
        guard let expiresAt else { return .failure(.invalidClaim("exp")) }
        guard let notBefore else { return .failure(.invalidClaim("nbf")) }
        guard let issuedAt else { return .failure(.invalidClaim("iat")) }
        var claims = Claims(read: read, write: write, api: api, expiresAt: expiresAt)
        claims.notBefore = notBefore
        claims.issuedAt = issuedAt
        return .success(claims)
    }

    /// Reads `document`, which must be one JSON object. `naming` tells from a key's bytes whether the member is
    /// one the caller wants; `member` then reads its value. Other members are skipped. False when the document
    /// is no well-formed JSON object.
    private static func readObject<Name>(
        _ document: [UInt8], naming: (UnsafeRawBufferPointer) -> Name?,
        member: (Name, inout JSONReader) throws(JSONReader.Failure) -> Void
    ) -> Bool {
        document.withUnsafeBytes { bytes in
            var reader = JSONReader(bytes, rules: .strict())
            guard reader.peekValueKind() == .object else { return false }
            do throws(JSONReader.Failure) {
                if try reader.beginObject() {
                    repeat {
                        if let name = try reader.withNextKey(naming) {
                            try member(name, &reader)
                        } else {
                            try reader.skipValue()
                        }
                    } while try reader.nextMember()
                }
                try reader.finish()
                return true
            } catch {
                return false
            }
        }
    }

    /// `[String]` for an array of strings, `[]` for null, nil for anything else.
    private static func stringList(_ reader: inout JSONReader) throws(JSONReader.Failure) -> [String]? {
        switch try reader.expectValue() {
        case .null:
            try reader.readNull()
            return []
        case .array:
            var list: [String]? = []
            if try reader.beginArray() {
                repeat {
                    if list != nil && reader.peekValueKind() == .string {
                        list!.append(try reader.readString())
                    } else {
                        list = nil
                        try reader.skipValue()
                    }
                } while try reader.nextElement()
            }
            return list
        default:
            try reader.skipValue()
            return nil
        }
    }

    /// A time claim: `.some(nil)` for null, the seconds, fraction included, for a number within ±9e15 (about
    /// 285 million years), nil for anything else. Not rounded: `exp: 100.9` expires at 100.9, not 100.
    private static func seconds(_ reader: inout JSONReader) throws(JSONReader.Failure) -> Double?? {
        switch try reader.expectValue() {
        case .null:
            try reader.readNull()
            return .some(nil)
        case .number:
            let value = try reader.readNumber().value
            guard value >= -9e15 && value <= 9e15 else { return nil }
            return .some(value)
        default:
            try reader.skipValue()
            return nil
        }
    }

    private enum ClaimName {
        case read, write, api, exp, nbf, iat

        init?(_ key: UnsafeRawBufferPointer) {
            // Exact bytes: no other UTF-8 string is canonically equivalent to these ASCII names, so this is the
            // `String` equality the claims were always looked up with.
            switch key.count {
            case 3 where key.elementsEqual("api".utf8): self = .api
            case 3 where key.elementsEqual("exp".utf8): self = .exp
            case 3 where key.elementsEqual("nbf".utf8): self = .nbf
            case 3 where key.elementsEqual("iat".utf8): self = .iat
            case 4 where key.elementsEqual("read".utf8): self = .read
            case 5 where key.elementsEqual("write".utf8): self = .write
            default: return nil
            }
        }
    }
}

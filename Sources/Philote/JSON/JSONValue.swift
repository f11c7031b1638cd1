/// A parsed JSON document (RFC 8259). Objects keep every member in order, duplicates included, so
/// callers choose their own duplicate rule.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's value; `isInteger` when its text had no fraction or exponent.
    case number(Double, isInteger: Bool)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a, let ai), .number(let b, let bi)): a == b && ai == bi
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.elementsEqual(b, by: { $0.key == $1.key && $0.value == $1.value })
        default: false
        }
    }

    /// The last member named `key` (exact match), as Go's decoder and most JWT libraries resolve duplicates.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }
}

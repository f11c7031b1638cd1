/// The query of a request target, decoded (`%XX`, `+` as a space), for the API's parameters.
public struct QueryParameters {
    private let pairs: [(name: String, value: String?)]

    public init(target: String) {
        guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else {
            pairs = []
            return
        }
        pairs = query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = TokenLocator.percentDecode(parts[0].utf8) ?? ""
            return (name, parts.count == 2 ? TokenLocator.percentDecode(parts[1].utf8) : "")
        }
    }

    /// The first value given for `name`; "" for a name without `=`; nil when absent or not valid UTF-8 once decoded.
    public func first(_ name: String) -> String? {
        pairs.first { $0.name == name }.flatMap { $0.value }
    }
}

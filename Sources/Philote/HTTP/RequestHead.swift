/// A parsed HTTP/1.x request line and header fields, in arrival order.
public struct RequestHead: Sendable, Equatable {
    public var method: String
    public var target: String
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: [(name: String, value: String)]

    public static func == (lhs: RequestHead, rhs: RequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.versionMajor == rhs.versionMajor
            && lhs.versionMinor == rhs.versionMinor && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }

    /// Every value of the field `name` (ASCII case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        headers.filter { $0.name.asciiCaseInsensitiveEquals(name) }.map(\.value)
    }

    /// Every comma-separated element of every value of `name`, trimmed and without empties.
    public func tokens(_ name: String) -> [Substring] {
        values(name).flatMap { value in
            value.split(separator: ",").map { $0.trimmingHTTPWhitespace() }.filter { !$0.isEmpty }
        }
    }

    /// The path part of the target, without the query.
    public var path: Substring { target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }
}

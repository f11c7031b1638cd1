/// The status line and header fields of an HTTP/1.x response: what a client reads back after its upgrade
/// request. Lenient where RFC 9112 allows a recipient to be (bare LF line ends), strict about the status line.
public struct HTTPResponseHead: Sendable {
    public enum ParseResult: Sendable {
        /// The blank line that ends the head has not arrived yet.
        case incomplete
        /// A whole head; the body or the first WebSocket frames start at byte `length`.
        case head(HTTPResponseHead, length: Int)
        case invalid(String)
    }

    /// A head larger than this is refused rather than buffered without end.
    public static let maxLength = 16384

    public var status: Int
    public var reasonPhrase: String
    public var headers: [(name: String, value: String)]

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

    /// `Content-Length` when there is exactly one valid value.
    public var contentLength: Int? {
        let lengths = values("Content-Length")
        guard lengths.count == 1 else { return nil }
        return Int(lengths[0].trimmingHTTPWhitespace())
    }

    public static func parse(_ bytes: [UInt8]) -> ParseResult {
        // Find the empty line: "\r\n\r\n", or "\n\n" from a sloppy server.
        var end: Int?
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x0A {
                if index + 1 < bytes.count && bytes[index + 1] == 0x0A {
                    end = index + 2
                    break
                }
                if index + 2 < bytes.count && bytes[index + 1] == 0x0D && bytes[index + 2] == 0x0A {
                    end = index + 3
                    break
                }
            }
            index += 1
        }
        guard let end else {
            return bytes.count > maxLength ? .invalid("response head larger than \(maxLength) bytes") : .incomplete
        }
        // Split bytes, not a String: Swift treats "\r\n" as one Character, so a String split on "\n" finds none.
        var lines = bytes[..<end].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let statusLine = lines.first else { return .invalid("empty response") }
        // "HTTP/1.1 101 Switching Protocols": version, a three-digit status, an optional reason.
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3,
            parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let status = Int(parts[1])
        else {
            return .invalid("not an HTTP response")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            if line.first == " " || line.first == "\t" {
                // Obsolete line folding: the line continues the previous field's value.
                guard !headers.isEmpty else { return .invalid("malformed header line") }
                headers[headers.count - 1].value += " " + line.trimmingHTTPWhitespace()
                continue
            }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .invalid("malformed header line")
            }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...].trimmingHTTPWhitespace())))
        }
        let head = HTTPResponseHead(
            status: status, reasonPhrase: parts.count > 2 ? String(parts[2]) : "", headers: headers)
        return .head(head, length: end)
    }
}

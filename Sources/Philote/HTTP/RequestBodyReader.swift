/// Collects the body of a plain HTTP request (e.g. `POST /api/publish`) after its head: exactly
/// `Content-Length` bytes, which the caller has already checked against its cap. Chunked bodies are not
/// read: the application answers those with 411. Made only for requests that announce a body, so an
/// idle connection never holds one.
public final class RequestBodyReader {
    public let head: RequestHead
    public let expectedLength: Int
    public private(set) var body: [UInt8] = []

    public init(head: RequestHead, expectedLength: Int) {
        self.head = head
        self.expectedLength = expectedLength
        // Grown as bytes arrive beyond a first 64 KiB: a client that announces a large body and sends it slowly
        // holds what it sent, not what it announced.
        body.reserveCapacity(min(expectedLength, 64 << 10))
    }

    public var isComplete: Bool { body.count == expectedLength }

    /// Takes what belongs to the body from `input`; bytes after it are ignored (the connection closes
    /// after the answer, so there is no next request).
    public func feed(_ input: UnsafeRawBufferPointer) {
        let take = min(input.count, expectedLength - body.count)
        if take > 0 { body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<take])) }
    }

    /// The body length `head` announces: 0 without `Content-Length`; 400 for a malformed or repeated
    /// conflicting value (a request-smuggling vector), 413 above `limit`.
    public static func announcedLength(of head: RequestHead, limit: Int) -> Result<Int, HandshakeError> {
        let values = head.values("Content-Length")
        guard !values.isEmpty else { return .success(0) }
        // "Content-Length: 5, 5" and repeated equal fields are allowed by RFC 9110 section 8.6; anything
        // else that disagrees is refused.
        let parts = values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingHTTPWhitespace() }
        guard let text = parts.first, parts.allSatisfy({ $0 == text }), !text.isEmpty, text.count <= 18,
            text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(text)
        else {
            return .failure(HandshakeError(.badRequest, "invalid Content-Length"))
        }
        guard length <= limit else {
            return .failure(HandshakeError(.contentTooLarge, "request body larger than \(limit) bytes"))
        }
        return .success(length)
    }
}

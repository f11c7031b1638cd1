/// Collects a request head across reads until the blank line, refusing heads over `maxHeadSize` (431)
/// and anything that is not well-formed HTTP/1.x (400). Bytes after the head are left to the caller.
public struct RequestHeadParser: Sendable {
    public enum Result: Equatable {
        case needMore
        /// The head is complete; `consumed` bytes of the last input belonged to it.
        case complete(RequestHead, consumed: Int)
        case failure(HandshakeError)
    }

    public let maxHeadSize: Int
    private var buffer: [UInt8] = []

    public init(maxHeadSize: Int = 8192) {
        self.maxHeadSize = maxHeadSize
    }

    /// Bytes held while the head is incomplete.
    public var bufferedCount: Int { buffer.count }

    public mutating func feed(_ input: UnsafeRawBufferPointer) -> Result {
        let previous = buffer.count
        // Look for CRLFCRLF starting three bytes back, in case it straddles two reads.
        let searchStart = max(0, previous - 3)
        let room = maxHeadSize - previous
        let take = min(input.count, room + 1)  // one byte over the cap proves the head is too large
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<take]))
        let headEnd = Self.findHeadEnd(buffer, from: searchStart)
        // A bare LF fails at once: a head with LF line endings would otherwise never show its CRLFCRLF
        // end and would hold the connection until the handshake timeout. Bytes after the head (a first
        // frame) are not looked at.
        for index in previous..<(headEnd ?? buffer.count) where buffer[index] == 0x0A {
            if index == 0 || buffer[index - 1] != 0x0D {
                buffer = []
                return .failure(HandshakeError(.badRequest, "bare LF in request head"))
            }
        }
        guard let end = headEnd else {
            if buffer.count > maxHeadSize {
                buffer = []
                return .failure(
                    HandshakeError(.requestHeaderFieldsTooLarge, "request head larger than \(maxHeadSize) bytes"))
            }
            return .needMore
        }
        if end > maxHeadSize {
            buffer = []
            return .failure(
                HandshakeError(.requestHeaderFieldsTooLarge, "request head larger than \(maxHeadSize) bytes"))
        }
        let consumed = end - previous
        let result = Self.parse(buffer[..<end])
        buffer = []
        switch result {
        case .success(let head): return .complete(head, consumed: consumed)
        case .failure(let error): return .failure(error)
        }
    }

    /// The index just past the first CRLFCRLF at or after `start`.
    private static func findHeadEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = start
        while index + 4 <= bytes.count {
            if bytes[index + 3] == 0x0A && bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D
            {
                return index + 4
            }
            index += 1
        }
        return nil
    }

    /// Parses a complete head (ending in CRLFCRLF) per RFC 9112: request line, then `name: value` lines.
    static func parse(_ head: ArraySlice<UInt8>) -> Swift.Result<RequestHead, HandshakeError> {
        func bad(_ reason: String) -> Swift.Result<RequestHead, HandshakeError> {
            .failure(HandshakeError(.badRequest, reason))
        }
        // Split on CRLF; a bare CR or LF anywhere else is malformed.
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = head.startIndex
        var index = head.startIndex
        let end = head.endIndex - 2  // the final CRLF ends the empty line
        while index < end {
            let byte = head[index]
            if byte == 0x0D {
                guard head[index + 1] == 0x0A else { return bad("bare CR in request head") }
                lines.append(head[lineStart..<index])
                index += 2
                lineStart = index
                continue
            }
            if byte == 0x0A { return bad("bare LF in request head") }
            if byte == 0 { return bad("NUL in request head") }
            index += 1
        }
        guard let requestLine = lines.first, !requestLine.isEmpty else { return bad("empty request line") }
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return bad("malformed request line") }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(HTTPToken.isTokenByte) else { return bad("malformed method") }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return bad("malformed request target")
        }
        guard version.count == 8, version.starts(with: Array("HTTP/".utf8)),
            let major = digit(version[version.startIndex + 5]), version[version.startIndex + 6] == 0x2E,
            let minor = digit(version[version.startIndex + 7])
        else { return bad("malformed HTTP version") }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 0x3A) else { return bad("header line without a colon") }
            let name = line[line.startIndex..<colon]
            // Whitespace before the colon and obsolete line folding are both refused (RFC 9112 section 5).
            guard !name.isEmpty, name.allSatisfy(HTTPToken.isTokenByte) else { return bad("malformed header name") }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
            while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
            guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return bad("control character in header value")
            }
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return .success(
            RequestHead(
                method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
                versionMajor: major, versionMinor: minor, headers: headers))
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (0x30...0x39).contains(byte) ? Int(byte - 0x30) : nil
    }

}

/// `GET /api/history`: a page of one channel's history for backends that catch up or audit (README "History and
/// recovery").
extension PubSubApplication {
    static let historyPageDefault = 100
    static let historyPageMax = 1000

    func history(_ head: RequestHead, connection: Connection) -> [UInt8] {
        guard head.method == "GET" else {
            return Self.jsonError(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET")])
        }
        let (claims, refusal) = authorizeAPI(head, connection: connection)
        guard let claims else { return refusal! }
        guard let history = hub.history else { return Self.jsonError(.notFound, "history is off") }
        let query = QueryParameters(target: head.target)
        guard let name = query.first("channel") else {
            return Self.jsonError(.badRequest, "the channel parameter is required")
        }
        let channel = Array(name.utf8)
        // As for a publish: a token without a read list may read any channel's history; with one, only those.
        if !claims.read.isEmpty && !claims.read.contains(name) {
            return Self.jsonError(.forbidden, "read not permitted")
        }
        var since: UInt64 = 0
        if let text = query.first("since") {
            guard let value = RecoveryRequest.decimal(text.utf8) else {
                return Self.jsonError(.badRequest, "since must be an offset: a decimal number below 2^63")
            }
            since = value
        }
        var limit = Self.historyPageDefault
        if let text = query.first("limit") {
            guard let value = RecoveryRequest.decimal(text.utf8).map(Int.init), (1...Self.historyPageMax).contains(value)
            else {
                return Self.jsonError(.badRequest, "limit must be a number from 1 to \(Self.historyPageMax)")
            }
            limit = value
        }
        let page = history.page(
            channel, after: since, limit: limit, now: MonotonicClock.milliseconds())
        var body: [UInt8] = Array(#"{"channel":""#.utf8)
        channel.withUnsafeBytes { JSONStringEncoder.append($0, to: &body) }
        body.append(contentsOf: #"","epoch":"#.utf8)
        if let epoch = page.current?.epoch {
            body.append(contentsOf: "\"\(epoch.text)\"".utf8)
        } else {
            body.append(contentsOf: "null".utf8)
        }
        body.append(contentsOf: #","offset":\#(page.current?.offset ?? 0),"oldest":\#(page.oldest),"messages":["#.utf8)
        for (index, frame) in page.messages.enumerated() {
            if index > 0 { body.append(0x2C) }
            // The stored frame's JSON text, without its header and its final newline.
            body.append(contentsOf: frame.buffer[headerLength(frame)..<(frame.length - 1)])
        }
        body.append(contentsOf: "]}".utf8)
        return HTTPResponse.json(.ok, String(decoding: body, as: UTF8.self))
    }

    /// The header length of a server frame, read from its second byte.
    private func headerLength(_ frame: SharedFrame) -> Int {
        switch frame.buffer[1] & 0x7F {
        case 126: 4
        case 127: 10
        default: 2
        }
    }
}

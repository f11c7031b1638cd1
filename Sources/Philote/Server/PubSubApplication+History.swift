/// History and recovery (README "History and recovery"): the answers to an upgrade's `since` parameters, history
/// on Redis, and `GET /api/history`, a page of one channel's history for backends that catch up or audit.
extension PubSubApplication {
    /// Answers the upgrade's `since` parameters: errors for those that cannot be used, then recovery (`Replay`).
    func recover(_ session: Session, connection: Connection) {
        let requests = session.recovery
        session.recovery = []
        var accepted: [(slot: Int, request: RecoveryRequest)] = []
        for result in requests {
            switch result {
            case .failure(let invalid):
                reply(connection, error: "invalid since: \(invalid.reason)", channel: invalid.channel)
            case .success(let request):
                guard let slot = session.permissions.read.firstIndex(of: request.channel) else {
                    reply(connection, error: "read not permitted", channel: request.channel)
                    continue
                }
                guard hub.history != nil else {
                    let answer = RecoveryAnswer.encode(
                        channel: request.channel, outcome: "failed", reason: "history off", position: nil,
                        withPosition: false)
                    answer.withUnsafeBytes { connection.send(.text, $0) }
                    continue
                }
                accepted.append((slot, request))
            }
        }
        guard !accepted.isEmpty else { return }
        session.positioned = true
        positionedCompressionUsage.add(connection.deflateWindowBits, 1)
        Replay.start(
            accepted, session: session, hub: hub, local: hub.local(connection.loop), counters: recoveryCounters,
            budget: configuration.maxBackpressure / 2)
    }

    /// History on Redis: Redis numbers every publish, every server delivers what Redis publishes and keeps a copy
    /// of what it heard (see `Hub.publishFromRedis`, `Replay`), and forgets a channel's copy when it stops hearing it.
    func attachHistory(_ store: HistoryStore, to broker: RedisBroker, services: LoopServices) {
        hub.historySize = configuration.historySize
        hub.positionedFrame = { frame, position in
            frame.withUnsafeBytes { frame in
                guard let json = BrokerEnvelope.textFramePayload(frame), json.count >= 2,
                    json[json.count - 1] == 0x0A, json[json.count - 2] == UInt8(ascii: "}")
                else { return nil }
                return ServerMessageEncoder.positionedFrame(json, at: position)
            }
        }
        broker.deliverPositioned = { [unowned self] channel, message in
            let positioned = ServerMessageEncoder.positionedFrame(message.payload, at: message.position)
            let delivery = Delivery(
                plain: SharedFrame.make(copying: message.frame, isMessage: true),
                compressed: compressedVariants(message.payload, services: services))
            hub.publishFromRedis(
                delivery, positioned: positioned, json: ServerMessageEncoder.payload(of: positioned), to: channel,
                at: message.position, sender: message.origin == broker.serverID ? message.sender : nil)
        }
        broker.subscriptionEnded = { [unowned broker] channel, shard in
            if let channel {
                store.forget(channel)
            } else {
                store.forget { broker.ring.shard(for: $0) == shard }
            }
        }
    }

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
            let json = ServerMessageEncoder.payload(of: frame)
            body.append(contentsOf: json[..<(json.count - 1)])
        }
        body.append(contentsOf: "]}".utf8)
        return HTTPResponse.json(.ok, String(decoding: body, as: UTF8.self))
    }
}

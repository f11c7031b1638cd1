#if canImport(Glibc)
    import Glibc
#endif

/// The Philote server: JWT admission at the upgrade, channels, publish with write checks, error replies,
/// token expiry, and the HTTP endpoints (PubSubApplication+HTTP.swift). Everything but the connection
/// count is per loop.
public final class PubSubApplication: WebSocketApplication, @unchecked Sendable {
    let configuration: Configuration
    let verifier: TokenVerifier
    var hub: Hub!
    private var connections: ConnectionCounter!
    /// For readiness and `/metrics`; weak because the server's loops hold this application.
    weak var server: Server?
    let compressionUsage = CompressionUsage()
    /// The same for connections that get positioned frames of some channel (history on).
    let positionedCompressionUsage = CompressionUsage()
    let recoveryCounters = RecoveryCounters()
    let startedAt = MonotonicClock.milliseconds()
    /// Set by `philote demo` before the server starts: the chat page and its token endpoint exist only then.
    public var demo: DemoSettings?

    public init(configuration: Configuration) {
        self.configuration = configuration
        verifier = TokenVerifier(secret: configuration.secret ?? "")
    }

    /// Connects the application to the server's loops; call once, before the server starts.
    public func attach(to server: Server) {
        hub = Hub(
            loops: server.loops, metrics: server.loopMetrics,
            history: configuration.historySettings)
        if let store = hub.history {
            let counters = recoveryCounters
            server.historyFigures = { HistoryFigures(statistics: [store.statistics()], counters: counters) }
            let services = server.loopServices[Hub.sequencer]
            hub.compressPositioned = { [unowned self] json in
                compressedVariants(json, services: services, usage: positionedCompressionUsage)
            }
        }
        connections = server.connections
        self.server = server
        if !configuration.redisEndpoints.isEmpty { attachBroker(to: server) }
    }

    /// Servers that share Redis act as one hub: the broker lives on loop 0 and connects once it runs.
    private func attachBroker(to server: Server) {
        let services = server.loopServices[0]
        let broker = RedisBroker(settings: configuration.brokerSettings, loop: services.loop, logger: server.logger)
        broker.deliver = { [unowned self] channel, message in
            // The frame arrives encoded; only the compressed variants this server's readers need are made here.
            let delivery = Delivery(
                plain: SharedFrame.make(copying: message.frame, isMessage: true),
                compressed: compressedVariants(message.payload, services: services))
            hub.publishFromBroker(delivery, to: channel)
        }
        if let store = hub.history { attachHistory(store, to: broker, services: services) }
        hub.attach(broker)
        server.brokerStatus = broker.status
        services.loop.execute { broker.start() }
    }

    public var connectionCount: Int { connections.current }

    // MARK: Admission

    public func shouldAccept(_ request: UpgradeRequest, connection: Connection) -> HandshakeError? {
        let head = request.head
        if configuration.checkOrigin, let refusal = OriginCheck.refusal(head) { return refusal }
        guard let token = TokenLocator.token(in: head) else {
            connection.services.metrics.authFailed(.missing)
            return HandshakeError(.unauthorized, TokenError.missing.reason)
        }
        let claims: Claims
        switch verifier.verify(token, now: ProcessStatistics.wallClockSeconds()) {
        case .success(let verified): claims = verified
        case .failure(let error):
            connection.services.metrics.authFailed(.init(error))
            return HandshakeError(.unauthorized, error.reason)
        }
        let local = hub.local(connection.loop)
        let session = Session(
            subscriber: connection.subscriber, issuer: IssuerID.random(),
            permissions: local.permissions(forToken: token, claims: claims))
        session.recovery = RecoveryRequest.all(inTarget: head.target)
        connection.userData = session
        connection.expiresAt = Self.deadline(expiresAt: claims.expiresAt)
        return nil
    }

    public func opened(_ connection: Connection) {
        guard let session = connection.userData as? Session else { return }
        hub.local(connection.loop).subscribe(session, sequence: hub.currentSequence)
        if !session.permissions.read.isEmpty { compressionUsage.add(connection.deflateWindowBits, 1) }
        if !session.recovery.isEmpty { recover(session, connection: connection) }
    }

    public func closed(_ connection: Connection) {
        guard let session = connection.userData as? Session else { return }
        if !session.permissions.read.isEmpty { compressionUsage.add(connection.deflateWindowBits, -1) }
        if session.positioned { positionedCompressionUsage.add(connection.deflateWindowBits, -1) }
        hub.local(connection.loop).unsubscribe(session)
        connection.userData = nil
    }

    // MARK: Messages

    public func received(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer) {
        guard let session = connection.userData as? Session else { return }
        let message: ClientMessage
        switch ClientMessageReader.read(payload) {
        case .success(let read): message = read
        case .failure(let failure):
            reply(connection, error: failure.reason, channel: nil)
            return
        }
        if let token = message.token {
            refresh(session, connection: connection, token: token)
            return
        }
        guard session.permissions.mayWrite(message.channel) else {
            connection.services.metrics.publishDenied(.websocket)
            reply(connection, error: "write not permitted", channel: message.channel)
            return
        }
        connection.services.metrics.published(.websocket)
        let json = message.channel.withUnsafeBytes { channel in
            message.data.withUnsafeBytes { data in
                ServerMessageEncoder.encode(issuer: session.issuer, channel: channel, data: data)
            }
        }
        let delivery = json.withUnsafeBytes { json in
            Delivery(
                plain: FrameWriter.frame(.text, payload: json),
                compressed: compressedVariants(json, services: connection.services))
        }
        if hub.history != nil {
            hub.publish(delivery, json: json, to: message.channel, from: session, on: connection.loop.index, tally: nil)
        } else {
            hub.publish(delivery, to: message.channel, from: session)
        }
    }

    /// The message compressed once for each deflate window size some subscriber uses, on the publisher's
    /// loop; empty when nobody compresses or the message is under COMPRESSION_MIN_SIZE.
    func compressedVariants(
        _ json: UnsafeRawBufferPointer, services: LoopServices, usage: CompressionUsage? = nil
    ) -> [SharedFrame?] {
        guard configuration.compression, json.count >= configuration.compressionMinSize else { return [] }
        let sizes = (usage ?? compressionUsage).inUse
        guard sizes != 0 else { return [] }
        var variants: [SharedFrame?] = Array(repeating: nil, count: 16)
        for bits in 9...15 where sizes & (1 << bits) != 0 {
            let compressed = services.deflater(windowBits: bits).compress(json)
            // No variant when compression does not pay: those subscribers get the plain frame.
            guard compressed.count < json.count else { continue }
            services.metrics.compressed(from: json.count, to: compressed.count)
            variants[bits] = compressed.withUnsafeBytes { FrameWriter.frame(.text, payload: $0, rsv: FrameHeader.rsv1) }
        }
        return variants
    }

    /// `{"error":"<reason>"[,"channel":"<name>"][,"auth":"failed"]}` + `\n` to the sender; the connection stays
    /// open. `"auth":"failed"` marks the answer to a refused token refresh.
    func reply(_ connection: Connection, error: String, channel: [UInt8]?, refusedRefresh: Bool = false) {
        var out: [UInt8] = Array(#"{"error":"#.utf8)
        out.append(contentsOf: JSONStringEncoder.quoted(error).utf8)
        if let channel {
            out.append(contentsOf: #","channel":""#.utf8)
            channel.withUnsafeBytes { JSONStringEncoder.append($0, to: &out) }
            out.append(0x22)
        }
        if refusedRefresh { out.append(contentsOf: #","auth":"failed""#.utf8) }
        out.append(contentsOf: "}\n".utf8)
        out.withUnsafeBytes { connection.send(.text, $0) }
    }
}

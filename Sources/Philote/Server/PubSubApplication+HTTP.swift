#if canImport(Glibc)
    import Glibc
#endif

/// The plain HTTP side of the server: health and readiness for orchestrators, `/metrics` for Prometheus,
/// and the `/api` endpoints (info, publish). Each request is answered and its connection closed.
extension PubSubApplication {
    public func respond(to head: RequestHead, body: [UInt8], connection: Connection) -> HTTPAnswer? {
        let path = head.path
        switch path {
        case "/livez":
            return .response(probe(head) ?? HTTPResponse.text(.ok, "ok"))
        case "/readyz", "/healthz":
            if let refusal = probe(head) { return .response(refusal) }
            guard let server else { return .response(HTTPResponse.text(.serviceUnavailable, "starting")) }
            if server.isDraining { return .response(HTTPResponse.text(.serviceUnavailable, "draining")) }
            if server.brokerStatus?.isConnected == false {
                return .response(HTTPResponse.text(.serviceUnavailable, "broker disconnected"))
            }
            return .response(HTTPResponse.text(.ok, "ready"))
        case "/metrics":
            return .response(metrics(head, connection: connection))
        case "/api/info":
            return .response(info(head, connection: connection))
        case "/api/publish":
            return publish(head, body: body, connection: connection)
        case "/api/history":
            return .response(history(head, connection: connection))
        default:
            if let response = browserResponse(path, head: head, connection: connection) { return .response(response) }
            guard path == "/api" || path.hasPrefix("/api/") else { return nil }
            return .response(Self.jsonError(.notFound, "not found"))
        }
    }

    /// Only a publish from a token that grants the API has its body read; every other request is answered from
    /// its head (the publish without a valid token with its 401 or 403, counted then).
    public func readsBody(of head: RequestHead, connection: Connection) -> Bool {
        guard head.path == "/api/publish", head.method == "POST", let token = TokenLocator.token(in: head),
            case .success(let claims) = verifier.verify(token, now: ProcessStatistics.wallClockSeconds())
        else { return false }
        return claims.api
    }

    /// Health and metrics answer GET and HEAD (some probes use HEAD); nil when the method is one of those.
    private func probe(_ head: RequestHead) -> [UInt8]? {
        guard head.method != "GET" && head.method != "HEAD" else { return nil }
        return HTTPResponse.text(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET, HEAD")])
    }

    // MARK: Tokens

    /// Checks the request's token for `api: true`: the claims, or the answer that refuses the request
    /// (401 without a valid token, 403 without the grant), each counted as an auth failure.
    func authorizeAPI(_ head: RequestHead, connection: Connection) -> (claims: Claims?, refusal: [UInt8]?) {
        let metrics = connection.services.metrics
        guard let token = TokenLocator.token(in: head) else {
            metrics.authFailed(.missing)
            return (nil, Self.jsonError(.unauthorized, TokenError.missing.reason))
        }
        switch verifier.verify(token, now: ProcessStatistics.wallClockSeconds()) {
        case .failure(let error):
            metrics.authFailed(.init(error))
            return (nil, Self.jsonError(.unauthorized, error.reason))
        case .success(let claims):
            guard claims.api else {
                metrics.authFailed(.apiNotGranted)
                return (nil, Self.jsonError(.forbidden, "token does not grant the API"))
            }
            return (claims, nil)
        }
    }

    static func jsonError(_ status: HTTPStatus, _ reason: String, headers: [(String, String)] = []) -> [UInt8] {
        HTTPResponse.json(status, #"{"error":\#(JSONStringEncoder.quoted(reason))}"#, headers: headers)
    }

    // MARK: /metrics

    private func metrics(_ head: RequestHead, connection: Connection) -> [UInt8] {
        if let refusal = probe(head) { return refusal }
        if !configuration.metricsPublic, let refusal = authorizeAPI(head, connection: connection).refusal {
            return refusal
        }
        guard let server else { return HTTPResponse.text(.serviceUnavailable, "not started") }
        return HTTPResponse.raw(
            .ok, contentType: PrometheusText.contentType, body: server.metricsSnapshot().prometheusText)
    }

    // MARK: /api/info

    private func info(_ head: RequestHead, connection: Connection) -> [UInt8] {
        guard head.method == "GET" else {
            return Self.jsonError(.methodNotAllowed, "method not allowed", headers: [("Allow", "GET")])
        }
        if let refusal = authorizeAPI(head, connection: connection).refusal { return refusal }
        let uptime = Double(MonotonicClock.milliseconds() - startedAt) / 1000
        let config = configuration
        let settings: [(String, String)] = [
            ("host", JSONStringEncoder.quoted(config.host)), ("port", String(config.port)),
            ("workers", String(config.workers)), ("log_level", JSONStringEncoder.quoted(config.logLevel.name)),
            ("max_connections", String(config.maxConnections)), ("read_buffer_size", String(config.readBufferSize)),
            ("write_buffer_size", String(config.writeBufferSize)), ("check_origin", String(config.checkOrigin)),
            ("max_message_size", String(config.maxMessageSize)), ("max_header_size", String(config.maxHeadSize)),
            ("max_backpressure", String(config.maxBackpressure)),
            ("ping_interval_ms", String(config.pingInterval)), ("pong_timeout_ms", String(config.pongTimeout)),
            ("handshake_timeout_ms", String(config.handshakeTimeout)),
            ("close_timeout_ms", String(config.closeTimeout)),
            ("drain_timeout_ms", String(config.drainTimeout)),
            ("log_format", JSONStringEncoder.quoted(config.logFormat.rawValue)),
            ("metrics_public", String(config.metricsPublic)),
            ("max_pending_handshakes", String(config.maxPendingHandshakes)),
            ("compression", String(config.compression)),
            ("compression_min_size", String(config.compressionMinSize)),
            ("tls", String(config.tlsCertificateFile != nil)),
            // The layer in use: `builtin` falls back to `openssl` when the start-up hand-over check fails.
            ("tls_record_layer", server?.tls.map { JSONStringEncoder.quoted($0.current.recordLayer.rawValue) } ?? "null"),
            // How many Redis instances, never their URLs: those can carry passwords.
            ("redis_instances", String(config.redisEndpoints.count)),
            ("redis_prefix", JSONStringEncoder.quoted(config.redisPrefix)),
            ("redis_max_pending", String(config.redisMaxPending)),
            ("redis_timeout_ms", String(config.redisTimeout)),
            ("history_size", String(config.historySize)),
            ("history_ttl_ms", String(config.historyTTL)),
            ("history_max_memory", String(config.historyMaxMemory)),
        ]
        let body = settings.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
        return HTTPResponse.json(
            .ok,
            #"{"version":"\#(PhiloteVersion.string)","uptime":\#(uptime),"pid":\#(getpid()),"connections":\#(connectionCount),"config":{\#(body)}}"#
        )
    }

    // MARK: /api/publish

    /// Publishes one message or a list as the issuer `api`, all or nothing: every message is checked
    /// (shape, size, write permission) before the first is delivered. Answers 202 with how many readers the
    /// messages reached on this server, which for several loops is known once each loop has delivered.
    private func publish(_ head: RequestHead, body: [UInt8], connection: Connection) -> HTTPAnswer {
        guard head.method == "POST" else {
            return .response(Self.jsonError(.methodNotAllowed, "method not allowed", headers: [("Allow", "POST")]))
        }
        let (claims, refusal) = authorizeAPI(head, connection: connection)
        guard let claims else { return .response(refusal!) }
        // Draining readers are being sent away, and loops that have finished would never report.
        if server?.isDraining ?? true {
            return .response(Self.jsonError(.serviceUnavailable, "server shutting down"))
        }
        guard head.values("Transfer-Encoding").isEmpty, !head.values("Content-Length").isEmpty else {
            return .response(Self.jsonError(.lengthRequired, "a Content-Length body is required"))
        }
        let messages: [ClientMessage]
        switch PublishRequestReader.read(body) {
        case .success(let read): messages = read
        case .failure(let failure): return .response(Self.jsonError(.badRequest, failure.reason))
        }
        let limit = configuration.maxMessageSize
        if messages.contains(where: { $0.channel.count + $0.data.count > limit }) {
            return .response(
                Self.jsonError(.contentTooLarge, "a message is larger than MAX_MESSAGE_SIZE (\(limit) bytes)"))
        }
        // A token without a write list may publish anywhere (it is an API token); with one, only there.
        if !claims.write.isEmpty {
            let writable = Set(claims.write.map { Array($0.utf8) })
            if let denied = messages.first(where: { !writable.contains($0.channel) }) {
                connection.services.metrics.publishDenied(.http)
                var body = #"{"error":"write not permitted","channel":""#.utf8 + []
                denied.channel.withUnsafeBytes { JSONStringEncoder.append($0, to: &body) }
                body.append(contentsOf: #""}"#.utf8)
                return .response(HTTPResponse.json(.forbidden, String(decoding: body, as: UTF8.self)))
            }
        }
        connection.services.metrics.published(.http, count: messages.count)
        let count = messages.count
        let otherLoops = hub.loopCount - 1
        var tally: PublishTally?
        if otherLoops > 0 {
            let loop = connection.loop
            nonisolated(unsafe) let target = connection
            // One report per message from every other loop, plus this loop's own total; with history the channel's
            // owner loop reports its own count too, and this loop's is part of the messages' reports.
            let perMessage = hub.history == nil ? otherLoops : otherLoops + 1
            tally = PublishTally(reports: count * perMessage + 1, initial: 0) { recipients in
                loop.execute { target.sendHTTPResponse(Self.accepted(messages: count, recipients: recipients)) }
            }
        }
        var local = 0
        for message in messages {
            let json = message.channel.withUnsafeBytes { channel in
                message.data.withUnsafeBytes { data in
                    ServerMessageEncoder.encode(issuer: "api", channel: channel, data: data)
                }
            }
            let delivery = json.withUnsafeBytes { json in
                Delivery(
                    plain: FrameWriter.frame(.text, payload: json),
                    compressed: compressedVariants(json, services: connection.services)
                )
            }
            if hub.history != nil {
                local += hub.publish(
                    delivery, json: json, to: message.channel, from: nil, on: connection.loop.index, tally: tally)
            } else {
                local += hub.publish(delivery, to: message.channel, on: connection.loop, tally: tally)
            }
        }
        guard let tally else { return .response(Self.accepted(messages: count, recipients: local)) }
        tally.report(local)
        return .later
    }

    static func accepted(messages: Int, recipients: Int) -> [UInt8] {
        HTTPResponse.json(.accepted, #"{"messages":\#(messages),"recipients":\#(recipients)}"#)
    }
}

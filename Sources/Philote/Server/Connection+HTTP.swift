/// The HTTP phase: the request is read through the exchange, then answered (the API, health, metrics, or a
/// refusal) or upgraded.
extension Connection {
    /// Largest body a plain HTTP request may carry: a list of messages for `POST /api/publish`, and at
    /// least one message of MAX_MESSAGE_SIZE.
    static func requestBodyLimit(_ configuration: Configuration) -> Int { max(configuration.maxMessageSize, 1 << 20) }

    func readHTTP(_ input: UnsafeMutableRawBufferPointer) {
        let step = exchange.feed(
            UnsafeRawBufferPointer(input), bodyLimit: Self.requestBodyLimit(services.configuration),
            readsBody: { services.application.readsBody(of: $0, connection: self) })
        switch step {
        case .needMore:
            break
        case .refused(let error, let head):
            services.metrics.handshakeFailed(.init(status: error.status))
            reject(error, head: head)
        case .request(let head, let body):
            serve(head, body: body)
        case .upgrade(let head, let consumed):
            upgrade(head, firstFrames: UnsafeMutableRawBufferPointer(rebasing: input[consumed...]))
        }
    }

    /// A plain HTTP request the application may serve (answered, then closed); if it does not, the engine
    /// answers it as the failed upgrade it then is.
    private func serve(_ head: RequestHead, body: [UInt8]) {
        switch services.application.respond(to: head, body: body, connection: self) {
        case .response(let response): answer(response, to: head)
        case .later: break  // `sendHTTPResponse` brings it
        case nil: upgrade(head, firstFrames: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The answer to a plain request that the application deferred (`HTTPAnswer.later`); ignored if the
    /// connection has gone meanwhile. Call on the connection's loop.
    public func sendHTTPResponse(_ response: [UInt8]) {
        guard phase == .handshake, exchange.isAwaitingAnswer else { return }
        answer(response, to: nil)
    }

    private func upgrade(_ head: RequestHead, firstFrames: UnsafeMutableRawBufferPointer) {
        let request: UpgradeRequest
        switch UpgradeRequest.validate(head) {
        case .failure(let error):
            services.metrics.handshakeFailed(.init(status: error.status))
            reject(error, head: head)
            return
        case .success(let valid):
            request = valid
        }
        if services.draining {
            services.metrics.rejected(.draining)
            reject(HandshakeError(.serviceUnavailable, "server shutting down"))
            return
        }
        // The place is reserved before the application admits the client, so that an admitted client always
        // gets one (the application may have set state up for it by then).
        guard services.connections.reserve() else {
            services.metrics.rejected(.maxConnections)
            reject(HandshakeError(.serviceUnavailable, "too many connections"))
            return
        }
        if let refusal = services.application.shouldAccept(request, connection: self) {
            services.connections.release()
            services.metrics.rejected(.init(status: refusal.status))
            reject(refusal)
            return
        }
        var extensions: [(String, String)] = []
        var windowBits: UInt8 = 0
        if services.configuration.compression,
            let deflate = DeflateParameters.negotiate(head.values("Sec-WebSocket-Extensions"))
        {
            windowBits = UInt8(deflate.serverWindowBits)
            enableInflate(contextTakeover: !deflate.clientNoContextTakeover)
            extensions.append(("Sec-WebSocket-Extensions", deflate.response))
        }
        services.logger.debug("connection opened", ["conn": String(handlerID), "path": String(head.path)])
        open(
            response: SharedFrame.make(
                bytes: HTTPResponse.switchingProtocols(accept: request.acceptValue, extraHeaders: extensions)),
            windowBits: windowBits, firstFrames: firstFrames)
    }

    private func reject(_ error: HandshakeError, head: RequestHead? = nil) {
        services.logger.debug(
            "handshake refused",
            ["conn": String(handlerID), "status": String(error.status.rawValue), "reason": error.reason])
        answer(HTTPResponse.error(error), to: head)
    }
}

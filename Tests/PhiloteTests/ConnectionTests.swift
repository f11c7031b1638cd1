import CSystem
import Glibc
import Testing

@testable import Philote

/// One `Connection` on the server end of a socket pair, driven tick by tick on the test's thread without the
/// `Server` type: the listener's part at accept is done here by hand. The test plays the client on the other end.
private final class Harness {
    // Declared first so that it goes first: it refers to the services and the loop without references.
    let connection: Connection
    let services: LoopServices
    let loop: EventLoop
    let connections: ConnectionCounter
    let pendingHandshakes: ConnectionCounter
    let client: Int32
    /// What the client has read and not yet taken.
    var received: [UInt8] = []
    /// The client read the server's FIN.
    private(set) var sawEOF = false

    /// The configuration every test states; `configure` changes what a test is about.
    init(_ configure: (inout Configuration) -> Void = { _ in }) throws {
        var configuration = Configuration()
        configuration.maxHeadSize = 8192
        configuration.maxMessageSize = 65536
        configuration.maxBackpressure = 1 << 20
        configuration.handshakeTimeout = 10_000
        configuration.closeTimeout = 5_000
        // No pings: the client would see them in its byte stream.
        configuration.pingInterval = 0
        configuration.pongTimeout = 10_000
        configuration.compression = false
        configure(&configuration)
        loop = try EventLoop(index: 0)
        connections = ConnectionCounter(limit: 10)
        pendingHandshakes = ConnectionCounter(limit: 10)
        services = LoopServices(
            configuration: configuration, logger: Logger(level: .error), application: EchoApplication(), loop: loop,
            connections: connections, pendingHandshakes: pendingHandshakes, tls: nil)
        let server: Int32
        (client, server) = nonBlockingSocketPair()
        // What the listener does at accept: a pending place, then the connection, then the count.
        precondition(pendingHandshakes.reserve())
        connection = Connection(fd: server, loop: loop, services: services)
        try connection.start()
        services.connectionOpened()
    }

    deinit {
        if connection.phase != .closed { connection.closeNow() }
        // Lets the deregistered connection go.
        tickOnce(loop)
        close(client)
    }

    func send(_ bytes: [UInt8]) {
        let written = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        precondition(written == bytes.count, "the socket pair takes a test's request at once")
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Half-closes the client's side: the server reads its FIN.
    func shutDownClient() { shutdown(client, Int32(SHUT_WR)) }

    /// Runs ticks, reading what the client end has after each, until `done`; at most `maxTicks`.
    @discardableResult
    func pump(maxTicks: Int = 50, until done: (Harness) -> Bool) -> Bool {
        for _ in 0..<maxTicks {
            if done(self) { return true }
            tickOnce(loop)
            readClient()
        }
        return done(self)
    }

    /// Reads whatever the client end has now (never waits).
    func readClient() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !sawEOF {
            let count = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if count > 0 {
                received += buffer[..<count]
            } else if count == 0 {
                sawEOF = true
            } else {
                break  // EAGAIN: nothing more now
            }
        }
    }

    /// A whole HTTP response at the front of what was read (head, and a body as long as its Content-Length).
    var hasResponse: Bool { responseLength != nil }

    func takeResponse() -> String? {
        guard let length = responseLength else { return nil }
        defer { received.removeFirst(length) }
        return String(decoding: received[..<length], as: UTF8.self)
    }

    private var responseLength: Int? {
        let blank = Array("\r\n\r\n".utf8)
        guard received.count >= 4,
            let end = (0...(received.count - 4)).first(where: { Array(received[$0..<($0 + 4)]) == blank })
        else { return nil }
        let head = String(decoding: received[..<end], as: UTF8.self)
        var bodyLength = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            bodyLength = Int(line.dropFirst("content-length:".count).trimmingHTTPWhitespace()) ?? 0
        }
        let total = end + 4 + bodyLength
        return received.count >= total ? total : nil
    }

    /// A whole server frame at the front of what was read: FIN, opcode, payload (server frames are never masked).
    var hasFrame: Bool { frameLength != nil }

    func takeFrame() -> ServerFrame? {
        guard let (header, payload) = frameLength else { return nil }
        defer { received.removeFirst(header + payload) }
        return ServerFrame(
            fin: received[0] & 0x80 != 0, masked: received[1] & 0x80 != 0, opcode: received[0] & 0x0F,
            payload: Array(received[header..<(header + payload)]))
    }

    private var frameLength: (header: Int, payload: Int)? {
        guard received.count >= 2 else { return nil }
        var header = 2
        var payload = Int(received[1] & 0x7F)
        if payload == 126 {
            guard received.count >= 4 else { return nil }
            payload = Int(received[2]) << 8 | Int(received[3])
            header = 4
        } else if payload == 127 {
            guard received.count >= 10 else { return nil }
            payload = received[2..<10].reduce(0) { $0 << 8 | Int($1) }
            header = 10
        }
        return received.count >= header + payload ? (header, payload) : nil
    }
}

private struct ServerFrame: Equatable {
    var fin = true
    var masked = false
    var opcode: UInt8
    var payload: [UInt8]

    static func text(_ text: String) -> ServerFrame { ServerFrame(opcode: 0x1, payload: Array(text.utf8)) }
    static func close(_ code: UInt16, _ reason: String = "") -> ServerFrame {
        ServerFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }
}

/// RFC 6455 section 1.3's key and the accept value it must get (computed independently of the server's code).
private let upgradeRequest =
    "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
private let rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

private func masked(_ text: String) -> [UInt8] {
    ClientFrameEncoder.frame(.text, payload: Array(text.utf8), maskKey: 0x5A5A_1234)
}

extension LoopMetrics {
    fileprivate func handshakeFailures(_ reason: HandshakeFailure) -> UInt64 {
        handshakeFailures[reason.rawValue].load(ordering: .relaxed)
    }
}

@Suite struct ConnectionTests {
    /// The whole life of a WebSocket connection: 101 with the right accept value, an echoed message, then the
    /// client's close echoed, the server's write side shut (the client reads EOF), and on the client's FIN the
    /// socket closed with every count given back.
    @Test func upgradeEchoAndCloseHandshake() throws {
        let harness = try Harness()
        let connection = harness.connection
        #expect(connection.phase == .handshake)
        #expect(harness.pendingHandshakes.current == 1)

        harness.send(upgradeRequest)
        #expect(harness.pump { $0.hasResponse })
        let response = try #require(harness.takeResponse())
        #expect(response.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(response.contains("\r\nSec-WebSocket-Accept: \(rfcAccept)\r\n"))
        #expect(response.contains("\r\nUpgrade: websocket\r\n"))
        #expect(connection.phase == .open)
        #expect(harness.connections.current == 1)
        #expect(harness.pendingHandshakes.current == 0, "the pending place is given back at the upgrade")

        harness.send(masked("hello"))
        #expect(harness.pump { $0.hasFrame })
        #expect(harness.takeFrame() == .text("hello"))

        harness.send(ClientFrameEncoder.close(code: 1000, reason: "done", maskKey: 0x0102_0304))
        #expect(harness.pump { $0.sawEOF })
        #expect(harness.takeFrame() == .close(1000), "the code echoed, without the reason")
        #expect(harness.received.isEmpty)
        #expect(connection.phase == .closing)
        #expect(harness.connections.current == 0, "the open place is given back when closing begins")
        #expect(harness.services.connectionCount == 1, "the socket is still open")

        harness.shutDownClient()
        #expect(harness.pump { _ in connection.phase == .closed })
        #expect(harness.services.connectionCount == 0)
        #expect(harness.connections.current == 0 && harness.pendingHandshakes.current == 0)
        #expect(harness.loop.registeredHandlers.isEmpty)
    }

    /// Frames that arrive in the same packet as the upgrade request are read after the 101 is queued.
    @Test func framesInTheUpgradePacketAreRead() throws {
        let harness = try Harness()
        harness.send(Array(upgradeRequest.utf8) + masked("first") + masked("second"))
        #expect(harness.pump { $0.hasResponse })
        let response = try #require(harness.takeResponse())
        #expect(response.hasPrefix("HTTP/1.1 101 "))
        #expect(harness.pump { $0.received.count >= (2 + 5) + (2 + 6) })
        #expect(harness.takeFrame() == .text("first"))
        #expect(harness.takeFrame() == .text("second"))
    }

    /// A client that drops the connection without a close frame: the socket is closed at its FIN.
    @Test func aFINWithoutACloseFrameClosesAtOnce() throws {
        let harness = try Harness()
        harness.send(upgradeRequest)
        #expect(harness.pump { $0.hasResponse })
        harness.shutDownClient()
        #expect(harness.pump { _ in harness.connection.phase == .closed })
        #expect(harness.connections.current == 0 && harness.services.connectionCount == 0)
    }

    /// A plain GET that the echo application does not serve is answered as the failed upgrade it is (426), then
    /// the server's write side is shut.
    @Test func aPlainRequestTheApplicationDoesNotServeGetsAnErrorThenEOF() throws {
        let harness = try Harness()
        harness.send("GET /health HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(harness.pump { $0.sawEOF })
        let response = try #require(harness.takeResponse())
        #expect(response.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
        #expect(response.hasSuffix("expected Upgrade: websocket\n"))
        #expect(harness.received.isEmpty)
        #expect(harness.connection.phase == .closing)
        #expect(harness.connections.current == 0, "never opened")
        #expect(harness.services.metrics.handshakeFailures(.upgradeRequired) == 1)
        harness.shutDownClient()
        #expect(harness.pump { _ in harness.connection.phase == .closed })
        #expect(harness.pendingHandshakes.current == 0)
    }

    /// A malformed head is answered 400, then EOF; what the client sends after it is not read as a request.
    @Test func aMalformedHeadGets400ThenEOF() throws {
        let harness = try Harness()
        harness.send("GET / HTTP/1.1\nHost: example.com\n\n")
        #expect(harness.pump { $0.sawEOF })
        let response = try #require(harness.takeResponse())
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(response.hasSuffix("bare LF in request head\n"))
        #expect(harness.received.isEmpty)
        #expect(harness.services.metrics.handshakeFailures(.badRequest) == 1)
        #expect(harness.connection.phase == .closing)
        harness.send(upgradeRequest)
        harness.pump(maxTicks: 3) { _ in false }
        #expect(harness.received.isEmpty && harness.connection.phase == .closing)
    }

    /// A request head too large for `maxHeadSize` is answered 431.
    @Test func anOversizedHeadGets431() throws {
        let harness = try Harness { $0.maxHeadSize = 1024 }
        harness.send("GET / HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 1100))
        #expect(harness.pump { $0.sawEOF })
        let response = try #require(harness.takeResponse())
        #expect(response.hasPrefix("HTTP/1.1 431 "))
    }

    /// A client that never finishes its request is closed at the handshake timeout, without an answer. The loop
    /// waits for the deadline itself (a task at the same deadline stops it).
    @Test func anIncompleteRequestIsClosedAtTheHandshakeTimeout() throws {
        let harness = try Harness { $0.handshakeTimeout = 20 }
        let connection = harness.connection
        harness.send("GET /chat HTTP/1.1\r\nHost: exa")
        let deadline = connection.startedAt + 20
        var phaseAtDeadline: Connection.Phase?
        harness.loop.schedule(at: deadline) {
            phaseAtDeadline = connection.phase
            harness.loop.stop()
        }
        #expect(runUntilStopped(harness.loop))
        #expect(phaseAtDeadline == .closed, "the timer, due with the task, fired first")
        #expect(harness.loop.now >= deadline)
        harness.readClient()
        #expect(harness.sawEOF && harness.received.isEmpty)
        #expect(harness.services.metrics.handshakeFailures(.timeout) == 1)
        #expect(harness.pendingHandshakes.current == 0 && harness.services.connectionCount == 0)
    }

    /// With the default timeouts nothing times out while a test drives the connection.
    @Test func aHandshakeInProgressIsNotClosedBeforeItsTimeout() throws {
        let harness = try Harness()
        harness.send("GET /chat HTTP/1.1\r\n")
        harness.pump(maxTicks: 5) { _ in false }
        #expect(harness.connection.phase == .handshake)
        #expect(!harness.sawEOF)
    }

    /// An open connection upgraded by the client's request, with the 101 taken.
    private func openHarness(_ configure: (inout Configuration) -> Void = { _ in }) throws -> Harness {
        let harness = try Harness(configure)
        harness.send(upgradeRequest)
        try #require(harness.pump { $0.hasResponse })
        let response = try #require(harness.takeResponse())
        try #require(response.hasPrefix("HTTP/1.1 101 "))
        return harness
    }

    /// A client's ping is answered with a pong carrying its payload.
    @Test func aPingGetsAPong() throws {
        let harness = try openHarness()
        harness.send(ClientFrameEncoder.frame(.ping, payload: Array("tick".utf8), maskKey: 0xDEAD_BEEF))
        #expect(harness.pump { $0.hasFrame })
        #expect(harness.takeFrame() == ServerFrame(opcode: 0xA, payload: Array("tick".utf8)))
        #expect(harness.connection.phase == .open)
    }

    /// A protocol error (an unmasked client frame) closes with its code and reason: the close frame, then EOF.
    @Test func aProtocolErrorClosesWith1002() throws {
        let harness = try openHarness()
        harness.send(clientFrame(Opcode.text.rawValue, Array("unmasked".utf8), mask: nil) + masked("ignored"))
        #expect(harness.pump { $0.sawEOF })
        let frame = try #require(harness.takeFrame())
        #expect(frame.opcode == 0x8 && Array(frame.payload.prefix(2)) == [0x03, 0xEA])
        #expect(harness.received.isEmpty, "nothing after the error was echoed")
        #expect(harness.connection.phase == .closing)
    }

    /// An idle client is pinged at the ping interval and, when it does not answer within the pong timeout, closed
    /// with 1001 and its socket shut at once. The loop waits for both deadlines itself; the connection's end stops
    /// it (the services' `onIdle`).
    @Test func anIdleClientIsPingedThenClosedWhenItDoesNotAnswer() throws {
        let harness = try openHarness {
            $0.pingInterval = 20
            $0.pongTimeout = 20
        }
        let loop = harness.loop
        let openedAt = loop.now
        harness.services.onIdle = { loop.stop() }
        #expect(runUntilStopped(loop))
        #expect(harness.connection.phase == .closed)
        #expect(loop.now >= openedAt + 40, "a ping interval, then a pong timeout")
        harness.readClient()
        #expect(harness.takeFrame() == ServerFrame(opcode: 0x9, payload: []))
        #expect(harness.takeFrame() == .close(1001, "pong timeout"))
        #expect(harness.sawEOF && harness.received.isEmpty)
        #expect(harness.connections.current == 0)
    }

    /// After this side's close frame, a client that never answers nor sends its FIN is cut off at the close timeout.
    @Test func aClosingConnectionIsCutOffAtTheCloseTimeout() throws {
        let harness = try openHarness { $0.closeTimeout = 20 }
        let loop = harness.loop
        let connection = harness.connection
        harness.services.onIdle = { loop.stop() }
        connection.close(.goingAway, reason: "bye")
        let closingAt = loop.now
        #expect(connection.phase == .closing)
        #expect(runUntilStopped(loop))
        #expect(connection.phase == .closed)
        #expect(loop.now >= closingAt + 20)
        harness.readClient()
        #expect(harness.takeFrame() == .close(1001, "bye"))
        #expect(harness.sawEOF && harness.received.isEmpty)
    }

    /// A token's expiry closes the open connection with 4001 when it comes.
    @Test func anExpiredTokenClosesWith4001() throws {
        let harness = try openHarness()
        harness.connection.expiresAt = harness.loop.now
        #expect(harness.pump { $0.sawEOF })
        #expect(harness.takeFrame() == .close(4001, "token expired"))
        #expect(harness.connection.phase == .closing)
    }

    /// A slow consumer: the client stops reading, deliveries fill the socket and then the queue until one would
    /// pass `maxBackpressure`. That delivery is refused and closes nothing by itself; the connection's next flush
    /// drops what was queued and not started, and queues a 1008 close. When the client reads again it gets whole
    /// frames, fewer than were accepted, then the close, then EOF.
    @Test func aSlowConsumerGetsA1008AndItsQueueDropped() throws {
        let harness = try Harness { $0.maxBackpressure = 64 * 1024 }
        let connection = harness.connection
        harness.send(upgradeRequest)
        #expect(harness.pump { $0.hasResponse })
        _ = harness.takeResponse()

        // The client reads nothing from here on.
        let payload = [UInt8](repeating: 0x62, count: 16 * 1024)
        var accepted = 0
        var refused = false
        for _ in 0..<1000 {
            let frame = payload.withUnsafeBytes { FrameWriter.frame(.binary, payload: $0) }
            harness.loop.keepAlive(frame)
            if !connection.subscriber.send(heldFrame: frame) {
                refused = true
                break
            }
            accepted += 1
            tickOnce(harness.loop)
        }
        try #require(refused, "the queue reached maxBackpressure")
        #expect(connection.subscriber.isOverflowed && !connection.subscriber.isAccepting)
        #expect(connection.phase == .open, "nothing is closed inside the delivery")
        #expect(connection.subscriber.queue.queuedBytes > 64 * 1024 - payload.count)

        tickOnce(harness.loop)
        #expect(connection.phase == .closing)
        #expect(!connection.subscriber.isOverflowed)
        #expect(harness.services.metrics.slowConsumerCloses.load(ordering: .relaxed) == 1)
        #expect(harness.connections.current == 0)
        // At most the frame the socket had started, and the close.
        let closeFrame = 2 + 2 + "slow consumer".utf8.count
        #expect(connection.subscriber.queue.queuedBytes <= 4 + payload.count + closeFrame)
        #expect(
            !connection.subscriber.send(
                heldFrame: FrameWriter.frame(.binary, payload: UnsafeRawBufferPointer(start: nil, count: 0))))

        // The client reads again: whole frames, then the close, then EOF.
        #expect(harness.pump(maxTicks: 1000) { $0.sawEOF })
        var delivered = 0
        var last: ServerFrame?
        while let frame = harness.takeFrame() {
            if frame.opcode == 0x2 {
                #expect(frame.payload == payload)
                delivered += 1
            } else {
                last = frame
                break
            }
        }
        #expect(harness.received.isEmpty)
        #expect(last == .close(1008, "slow consumer"))
        #expect(delivered > 0 && delivered < accepted, "some queued frames were dropped (\(delivered) of \(accepted))")

        harness.shutDownClient()
        #expect(harness.pump { _ in connection.phase == .closed })
        #expect(harness.services.connectionCount == 0)
    }
}

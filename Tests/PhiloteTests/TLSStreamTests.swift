import CSystem
import Glibc
import Testing

@testable import Philote

// The hand-over of the traffic keys after OpenSSL's handshake (CSystemTLSTraffic.c), checked against OpenSSL as
// the client over a socket pair: every suite the server allows, both versions, resumption, KeyUpdate, alerts.


/// The server's side of one connection and OpenSSL's client side, on a non-blocking socket pair.
private final class Pair {
    let clientContext: OpaquePointer
    let client: OpaquePointer
    let server: TLSStream
    let ciphers = TLSCiphers(plaintextCapacity: 64 * 1024)
    let clientFD: Int32
    let serverFD: Int32
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 17, alignment: 16)

    init(_ suite: TLSTestSuite, noTicket: Bool = false, resuming session: OpaquePointer? = nil) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        (clientFD, serverFD) = (fds[0], fds[1])
        clientContext = SSL_CTX_new(TLS_client_method())!
        if suite.tls13 {
            SSL_CTX_set_ciphersuites(clientContext, suite.name)
        } else {
            SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
            SSL_CTX_set_cipher_list(clientContext, suite.name)
        }
        if noTicket { SSL_CTX_set_options(clientContext, 1 << 14) }  // SSL_OP_NO_TICKET, a macro Swift cannot import
        client = SSL_new(clientContext)!
        SSL_set_fd(client, clientFD)
        SSL_set_connect_state(client)
        if let session { SSL_set_session(client, session) }
        server = TLSStream(context: tlsTestServerContext, fd: serverFD)!
    }

    deinit {
        // An orderly end for the client, so that OpenSSL keeps its session resumable.
        SSL_set_shutdown(client, SSL_SENT_SHUTDOWN)
        SSL_free(client)
        SSL_CTX_free(clientContext)
        close(clientFD)
        close(serverFD)
        buffer.deallocate()
    }

    func handshake() {
        var clientDone = false
        var serverDone = false
        for _ in 0..<100 where !(clientDone && serverDone) {
            if !clientDone {
                let result = SSL_do_handshake(client)
                clientDone = result == 1
                if !clientDone { #expect(SSL_get_error(client, result) == SSL_ERROR_WANT_READ) }
            }
            if !serverDone {
                let status = server.handshake()
                serverDone = status == .done
                if !serverDone { #expect(status == .wantRead) }
            }
        }
        #expect(clientDone && serverDone)
        #expect(server.handshakeComplete)
    }

    var resumed: Bool { SSL_session_reused(client) == 1 }

    func clientWrite(_ bytes: [UInt8]) {
        #expect(SSL_write(client, bytes, Int32(bytes.count)) == Int32(bytes.count))
    }

    /// What the client can read now, and the SSL error that stopped it.
    func clientRead() -> (bytes: [UInt8], error: Int32) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = SSL_read(client, &chunk, Int32(chunk.count))
            if count <= 0 { return (bytes, SSL_get_error(client, count)) }
            bytes += chunk[..<Int(count)]
        }
    }

    /// Raw bytes the client sent.
    func serverReceive() -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let count = read(serverFD, buffer.baseAddress, buffer.count)
            if count <= 0 { return bytes }
            bytes += buffer[..<count]
        }
    }

    /// Opens `bytes` as the connection does: the application data and each record's outcome.
    func serverOpen(_ bytes: [UInt8]) -> (data: [UInt8], records: [TLSRecordLayer.Inbound]) {
        buffer.copyBytes(from: bytes)
        var offset = 0
        var data: [UInt8] = []
        var records: [TLSRecordLayer.Inbound] = []
        while true {
            let record = server.records!.open(buffer, end: bytes.count, offset: &offset, ciphers: ciphers)
            records.append(record)
            if case .data(let range) = record { data += buffer[range] }
            if record == .needMore || record == .failure || record == .closeNotify { return (data, records) }
        }
    }

    func serverSend(_ bytes: [UInt8]) {
        var start = 0
        while start < bytes.count {
            let sealed = bytes[start...].withUnsafeBytes { server.records!.seal($0, into: ciphers.buffer, ciphers: ciphers) }
            guard let (consumed, length) = sealed else {
                Issue.record("sealing failed")
                return
            }
            #expect(write(serverFD, ciphers.buffer.baseAddress, length) == length)
            start += consumed
        }
    }

    func serverSendUnsent() {
        #expect(write(serverFD, server.records!.unsent, server.records!.unsent.count) == server.records!.unsent.count)
        server.records!.unsent = []
    }
}

private func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

@Suite struct TLSStreamTests {
    @Test(arguments: tlsTestSuites)
    func trafficBothWaysAfterAFullAndAResumedHandshake(suite: TLSTestSuite) {
        var session: OpaquePointer?
        for round in 0..<2 {
            let pair = Pair(suite, resuming: session)
            pair.handshake()
            #expect(pair.resumed == (round == 1))
            pair.clientWrite(pattern(300))
            let (data, records) = pair.serverOpen(pair.serverReceive())
            #expect(data == pattern(300))
            #expect(records.last == .needMore)
            // Several records, after the tickets OpenSSL sent under the same keys.
            pair.serverSend(pattern(40000))
            #expect(pair.clientRead().bytes == pattern(40000))
            pair.server.records!.sealCloseNotify(ciphers: pair.ciphers)
            pair.serverSendUnsent()
            #expect(pair.clientRead().error == SSL_ERROR_ZERO_RETURN)
            if let session { SSL_SESSION_free(session) }
            session = SSL_get1_session(pair.client)
        }
        SSL_SESSION_free(session)
    }

    /// An idle connection holds no keyed cipher context: the upgrade answer, or a ping now and then, is sealed with
    /// the loop's shared one. A connection that sends again within `sealingKeptFor` keys its own, and gives it back
    /// once it has been quiet that long. What it seals either way reads the same at the client.
    @Test(arguments: [tlsTestSuites[1], tlsTestSuites[5]])
    func onlyASendingConnectionHoldsAKeyedContext(suite: TLSTestSuite) throws {
        let pair = Pair(suite)
        pair.handshake()
        _ = pair.clientRead()  // the tickets
        let keptFor = TLSStream.sealingKeptFor
        func send(_ text: String, at now: UInt64) throws {
            let bytes = Array(text.utf8)
            let sent = try bytes.withUnsafeBytes {
                try pair.server.send($0, fd: pair.serverFD, ciphers: pair.ciphers, now: now, sealing: nil)
            }
            #expect(sent?.consumed == bytes.count && sent?.blocked == false)
            #expect(pair.clientRead().bytes == bytes)
        }
        try send("upgrade answer", at: 10_000)
        #expect(!pair.server.records!.holdsSealingContext)
        try send("a ping, later", at: 10_000 + keptFor)
        #expect(!pair.server.records!.holdsSealingContext)
        try send("fan-out 1", at: 10_000 + keptFor + 5)
        #expect(pair.server.records!.holdsSealingContext)
        try send("fan-out 2", at: 10_000 + keptFor + 10)
        #expect(!pair.server.releaseIdleSealing(now: 10_000 + 2 * keptFor))
        #expect(pair.server.records!.holdsSealingContext)
        #expect(pair.server.releaseIdleSealing(now: 10_000 + 2 * keptFor + 10))
        #expect(!pair.server.records!.holdsSealingContext)
        try send("after the sweep", at: 10_000 + 3 * keptFor)
        #expect(!pair.server.records!.holdsSealingContext)
    }

    @Test func tls12ResumesBySessionIDWithoutTickets() {
        let suite = tlsTestSuites[3]
        let first = Pair(suite, noTicket: true)
        first.handshake()
        first.server.records!.sealCloseNotify(ciphers: first.ciphers)
        first.serverSendUnsent()
        #expect(first.clientRead().error == SSL_ERROR_ZERO_RETURN)
        let session = SSL_get1_session(first.client)
        defer { SSL_SESSION_free(session) }
        let second = Pair(suite, noTicket: true, resuming: session)
        second.handshake()
        #expect(second.resumed)
        second.clientWrite(Array("resumed".utf8))
        #expect(second.serverOpen(second.serverReceive()).data == Array("resumed".utf8))
    }

    @Test func tls12SessionOfAConnectionEndedByAFatalAlertIsNotResumed() {
        let suite = tlsTestSuites[3]
        var session: OpaquePointer?
        do {
            let first = Pair(suite, noTicket: true)
            first.handshake()
            session = SSL_get1_session(first.client)
            first.clientWrite(pattern(10))
            var bytes = first.serverReceive()
            bytes[bytes.count - 1] ^= 1
            #expect(first.serverOpen(bytes).records == [.failure])
        }
        defer { SSL_SESSION_free(session) }
        let second = Pair(suite, noTicket: true, resuming: session)
        second.handshake()
        #expect(!second.resumed, "RFC 5246 section 7.2.2: a session that ended in a fatal alert is not resumed")
    }

    @Test(arguments: tlsTestSuites.filter(\.tls13))
    func keyUpdateRequestedIsAnsweredAndTrafficGoesOn(suite: TLSTestSuite) {
        let pair = Pair(suite)
        pair.handshake()
        _ = pair.clientRead()  // the tickets
        for round in 0..<3 {
            #expect(SSL_key_update(pair.client, SSL_KEY_UPDATE_REQUESTED) == 1)
            pair.clientWrite(Array("after \(round)".utf8))
            let (data, records) = pair.serverOpen(pair.serverReceive())
            #expect(records.first == .control)
            #expect(data == Array("after \(round)".utf8))
            #expect(!pair.server.records!.unsent.isEmpty)
            pair.serverSendUnsent()
            pair.serverSend(Array("reply \(round)".utf8))
            #expect(pair.clientRead().bytes == Array("reply \(round)".utf8))
        }
        #expect(SSL_key_update(pair.client, SSL_KEY_UPDATE_NOT_REQUESTED) == 1)
        pair.clientWrite(Array("again".utf8))
        #expect(pair.serverOpen(pair.serverReceive()).data == Array("again".utf8))
        #expect(pair.server.records!.unsent.isEmpty)
        pair.serverSend(Array("still".utf8))
        #expect(pair.clientRead().bytes == Array("still".utf8))
    }

    @Test(arguments: [tlsTestSuites[1], tlsTestSuites[4]])
    func corruptedRecordIsRefusedWithBadRecordMAC(suite: TLSTestSuite) {
        let pair = Pair(suite)
        pair.handshake()
        pair.clientWrite(pattern(100))
        var bytes = pair.serverReceive()
        bytes[bytes.count - 3] ^= 0x40
        #expect(pair.serverOpen(bytes).records == [.failure])
        #expect(pair.server.records!.failed)
        pair.serverSendUnsent()
        // The client takes it as a fatal alert, not as the end of the stream.
        #expect(pair.clientRead().error == SSL_ERROR_SSL)
        #expect(SSL_get_shutdown(pair.client) & SSL_RECEIVED_SHUTDOWN != 0)
        let after = [UInt8]([1, 2, 3]).withUnsafeBytes {
            pair.server.records!.seal($0, into: pair.ciphers.buffer, ciphers: pair.ciphers)
        }
        #expect(after == nil, "nothing is sealed after a fatal alert")
    }

    @Test(arguments: [tlsTestSuites[0], tlsTestSuites[3]])
    func partialRecordWaitsForTheRest(suite: TLSTestSuite) {
        let pair = Pair(suite)
        pair.handshake()
        pair.clientWrite(pattern(1000))
        let bytes = pair.serverReceive()
        for cut in [0, 3, 5, 7, bytes.count - 1] {
            let (data, records) = pair.serverOpen(Array(bytes[..<cut]))
            #expect(data.isEmpty && records == [.needMore])
        }
        #expect(pair.serverOpen(bytes).data == pattern(1000))
    }

    @Test func oversizedRecordIsRefusedFromItsHeader() {
        let pair = Pair(tlsTestSuites[0])
        pair.handshake()
        #expect(pair.serverOpen([23, 3, 3, 0x48, 0x01]).records == [.failure])
        #expect(!pair.server.records!.unsent.isEmpty)
    }

    @Test func clientCloseNotifyIsReported() {
        for suite in [tlsTestSuites[0], tlsTestSuites[3]] {
            let pair = Pair(suite)
            pair.handshake()
            pair.clientWrite(Array("bye".utf8))
            SSL_shutdown(pair.client)
            let (data, records) = pair.serverOpen(pair.serverReceive())
            #expect(data == Array("bye".utf8))
            #expect(records.count == 2 && records.last == .closeNotify)
        }
    }

    @Test func tls12RenegotiationIsRefusedWithAWarning() {
        let pair = Pair(tlsTestSuites[3])
        pair.handshake()
        #expect(SSL_renegotiate(pair.client) == 1)
        #expect(SSL_do_handshake(pair.client) <= 0)
        let (data, records) = pair.serverOpen(pair.serverReceive())
        #expect(data.isEmpty && records == [.control, .needMore])
        #expect(!pair.server.records!.failed)
        #expect(pair.server.records!.unsent.count == 2 + pair.server.records!.overhead)
    }

    @Test func headerThatIsNotARecordIsRefusedBeforeItsBody() {
        for suite in [tlsTestSuites[0], tlsTestSuites[3]] {
            let pair = Pair(suite)
            pair.handshake()
            // "GET /" reads as a record of type 'G', version "ET", 8,239 bytes long: refused at once.
            #expect(pair.serverOpen(Array("GET /".utf8)).records == [.failure])
        }
    }

    /// Damaged copies of real records (one bit flipped, cut short, bytes inserted or dropped): each is refused
    /// or waited on, never delivered as different data, never a crash.
    @Test(arguments: tlsTestSuites)
    func damagedRecordsNeverDeliverOtherData(suite: TLSTestSuite) {
        var generator = SystemRandomNumberGenerator()
        let message = pattern(600)
        for round in 0..<40 {
            let pair = Pair(suite)
            pair.handshake()
            pair.clientWrite(message)
            var bytes = pair.serverReceive()
            switch round % 4 {
            case 0:
                let bit = Int.random(in: 0..<(bytes.count * 8), using: &generator)
                bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            case 1: bytes.removeLast(Int.random(in: 1..<bytes.count, using: &generator))
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0..<bytes.count))
            default: bytes.remove(at: Int.random(in: 0..<bytes.count, using: &generator))
            }
            let (data, records) = pair.serverOpen(bytes)
            #expect(data.isEmpty, "round \(round): damaged record delivered \(data.count) bytes")
            #expect(records.last == .failure || records.last == .needMore)
        }
    }
}

@Suite struct TLSHandOverCheckTests {
    private func files() -> (certificate: String, key: String) {
        (tlsTemporaryFile(tlsTestCertificate), tlsTemporaryFile(tlsTestKey))
    }

    @Test func passesWithThisOpenSSLForBothVersions() {
        #expect(TLSHandOverCheck.run(tlsTestServerContext) == nil)
    }

    @Test func aFailedCheckLeavesTheRecordsToOpenSSL() throws {
        let (certificate, key) = files()
        defer {
            unlink(certificate)
            unlink(key)
        }
        let fallback = try TLSContext.serving(
            certificateFile: certificate, keyFile: key, recordLayer: .builtin, check: { _ in "keys do not work" })
        #expect(fallback.context.recordLayer == .openssl)
        #expect(fallback.handOverFailure == "keys do not work")
        let passed = try TLSContext.serving(certificateFile: certificate, keyFile: key, recordLayer: .builtin)
        #expect(passed.context.recordLayer == .builtin && passed.handOverFailure == nil)
        var checked = false
        let asked = try TLSContext.serving(
            certificateFile: certificate, keyFile: key, recordLayer: .openssl,
            check: { _ in
                checked = true
                return "unused"
            })
        #expect(asked.context.recordLayer == .openssl && asked.handOverFailure == nil && !checked)
    }

    /// A session of the fallback context keeps OpenSSL after the handshake: nothing is handed over.
    @Test func openSSLModeKeepsTheConnection() throws {
        let (certificate, key) = files()
        defer {
            unlink(certificate)
            unlink(key)
        }
        let context = try TLSContext(certificateFile: certificate, keyFile: key, recordLayer: .openssl)
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { for fd in fds { close(fd) } }
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        let clientContext = SSL_CTX_new(TLS_client_method())!
        defer { SSL_CTX_free(clientContext) }
        let client = SSL_new(clientContext)!
        defer { SSL_free(client) }
        SSL_set_fd(client, fds[0])
        SSL_set_connect_state(client)
        let server = TLSStream(context: context, fd: fds[1])!
        var done = false
        for _ in 0..<64 where !done {
            _ = SSL_do_handshake(client)
            done = server.handshake() == .done
        }
        #expect(done && server.readsThroughOpenSSL && server.records == nil)
        #expect(SSL_write(client, "over openssl", 12) == 12)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        var received: [UInt8] = []
        #expect(server.readThroughOpenSSL(into: buffer) { received += $0; return true } == .wouldBlock)
        #expect(received == Array("over openssl".utf8))
    }
}

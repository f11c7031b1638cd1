import CSystem
import Glibc
import Testing

@testable import Philote

// TLSRecordLayer's decisions about what a client sends after the handshake, checked record by record. The keys come
// from a real handshake (OpenSSL's client against the server's TLSContext on a socket pair, then
// CSystem_tls_detach); the client is played by layers made from the same hand-over with `read` and `write` swapped
// (records have the same format both ways), so that any record can be sealed: empty, oversized, split handshake
// messages, padding, at any sequence number. Where a real client matters (max_fragment_length, KeyUpdates before
// the key's limit) OpenSSL's client reads what the server layer sealed.

private let allSuites = tlsTestSuites
private let tls13Suites = allSuites.filter(\.tls13)
private let tls12Suites = allSuites.filter { !$0.tls13 }

/// A real handshake, OpenSSL's client against the server context, through CSystem_tls_handshake and
/// CSystem_tls_detach: the hand-over, and the client, which stays connected to `serverFD`.
private final class HandshakenConnection {
    let clientContext: OpaquePointer
    let client: OpaquePointer
    let clientFD: Int32
    let serverFD: Int32
    /// Without the TLS 1.2 cached session (released at once), so that layers made from copies free nothing.
    private(set) var handOver = CSystem_TLSHandOver()

    init(_ suite: TLSTestSuite, maxFragment512: Bool = false) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        (clientFD, serverFD) = (fds[0], fds[1])
        clientContext = SSL_CTX_new(TLS_client_method())!
        if suite.tls13 {
            SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_3_VERSION), nil)
            SSL_CTX_set_ciphersuites(clientContext, suite.name)
        } else {
            SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
            SSL_CTX_set_cipher_list(clientContext, suite.name)
        }
        if maxFragment512 {
            #expect(SSL_CTX_set_tlsext_max_fragment_length(clientContext, UInt8(TLSEXT_max_fragment_length_512)) == 1)
        }
        client = SSL_new(clientContext)!
        SSL_set_fd(client, clientFD)
        SSL_set_connect_state(client)
        let server = CSystem_tls_new(tlsTestServerContext.pointer, serverFD)!
        var clientDone = false
        var serverDone = false
        for _ in 0..<100 where !(clientDone && serverDone) {
            if !clientDone { clientDone = SSL_do_handshake(client) == 1 }
            if !serverDone {
                let result = CSystem_tls_handshake(server)
                precondition(result == 1 || result == Int32(CSystem_TLS_WANT_READ), "\(suite.name): handshake failed")
                serverDone = result == 1
            }
        }
        precondition(clientDone && serverDone, "\(suite.name): the handshake did not finish")
        precondition(CSystem_tls_detach(server, &handOver) == 1, "\(suite.name): no hand-over")
        CSystem_tls_session_release(handOver.session, 0)
        handOver.session = nil
        precondition(handOver.version == (suite.tls13 ? 0x0304 : 0x0303))
    }

    deinit {
        SSL_set_shutdown(client, SSL_SENT_SHUTDOWN)
        SSL_free(client)
        SSL_CTX_free(clientContext)
        close(clientFD)
        close(serverFD)
    }

    /// Everything the client can read now (TLS 1.3 tickets are taken on the way).
    func clientRead() -> (bytes: [UInt8], error: Int32) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = SSL_read(client, &chunk, Int32(chunk.count))
            if count <= 0 { return (bytes, SSL_get_error(client, count)) }
            bytes += chunk[..<Int(count)]
        }
    }

    func serverWrite(_ bytes: [UInt8]) {
        var start = 0
        while start < bytes.count {
            let written = bytes[start...].withUnsafeBytes { write(serverFD, $0.baseAddress, $0.count) }
            precondition(written > 0, "the socket pair is full")
            start += written
        }
    }
}

/// What the server layer made of a record.
private enum Opened: Equatable {
    case data([UInt8])
    case control
    case closeNotify
    case failure
}

/// A record's type and content (TLS 1.3: the inner type, the padding removed).
private struct PlainRecord: Equatable, CustomStringConvertible {
    let type: UInt8
    let content: [UInt8]
    var description: String { "\(type) \(content)" }

    static func alert(_ level: UInt8, _ description: TLSAlert) -> PlainRecord {
        PlainRecord(type: 21, content: [level, description.rawValue])
    }
    static let keyUpdate = PlainRecord(type: 22, content: [24, 0, 0, 1, 0])
}

/// The server layer under test, and its client played from the same hand-over: `sender` seals what the client
/// sends; `receiver` opens what the server seals (a TLSRecordLayer refuses a no_renegotiation warning, which a
/// server never expects, so the client's two directions are two layers); `shadow` is a copy of the sender's write
/// keys for the records sealed by hand (TLS 1.3 padding, any sequence number).
private final class MirroredLayer {
    let tls13: Bool
    let handOver: CSystem_TLSHandOver
    let server: TLSRecordLayer
    let sender: TLSRecordLayer
    var receiver: TLSRecordLayer
    var shadow: CSystem_TLSDirection
    let ciphers = TLSCiphers(plaintextCapacity: 1 << 16)
    /// The start of a record the server has not had all of.
    var partial: [UInt8] = []
    /// How much of `server.unsent` the receiver has opened.
    var unsentOpened = 0

    init(_ handOver: CSystem_TLSHandOver) {
        self.handOver = handOver
        tls13 = handOver.version == 0x0304
        server = TLSRecordLayer(handOver)
        sender = TLSRecordLayer(Self.swapped(handOver))
        receiver = Self.receiver(handOver, readSequence: handOver.write.sequence)
        shadow = handOver.read
    }

    convenience init(_ suite: TLSTestSuite) {
        self.init(HandshakenConnection(suite).handOver)
    }

    static func swapped(_ handOver: CSystem_TLSHandOver) -> CSystem_TLSHandOver {
        var client = handOver
        client.read = handOver.write
        client.write = handOver.read
        return client
    }

    static func receiver(_ handOver: CSystem_TLSHandOver, readSequence: UInt64) -> TLSRecordLayer {
        let receiver = TLSRecordLayer(swapped(handOver))
        receiver.limits.maxWarnings = .max
        receiver.limits.maxKeyUpdates = .max
        receiver.setSequences(read: readSequence, write: handOver.read.sequence)
        return receiver
    }

    var explicitNonceLength: Int { !tls13 && handOver.aead != UInt8(CSystem_CHACHA20_POLY1305) ? 8 : 0 }

    // MARK: The client sealing

    /// One record sealed by the client's layer.
    func seal(_ type: TLSContentType, _ content: [UInt8]) -> [UInt8] {
        var record = [UInt8](repeating: 0, count: content.count + sender.overhead)
        let length = content.withUnsafeBytes { text in
            record.withUnsafeMutableBytes { sender.sealRecord(type, text, at: $0.baseAddress!, ciphers) }
        }
        precondition(length == record.count)
        return record
    }

    func data(_ content: [UInt8]) -> [UInt8] { seal(.applicationData, content) }

    /// A TLS 1.3 record whose inner plaintext is `inner` (content, type, zero padding), sealed by hand at the
    /// client's next sequence number.
    func sealInner(_ inner: [UInt8]) -> [UInt8] {
        precondition(tls13)
        let sequence = sender.writeSequence
        sender.setSequences(read: sender.readSequence, write: sequence + 1)
        return sealByHand(type: 23, inner, sequence: sequence)
    }

    /// A record sealed by hand with the client's write keys at `sequence`, without the layer's code. TLS 1.3: `text`
    /// is the whole inner plaintext; TLS 1.2: the content of a record of `type`.
    func sealByHand(type: UInt8, _ text: [UInt8], sequence: UInt64) -> [UInt8] {
        let explicit = explicitNonceLength
        let length = explicit + text.count + 16
        let bigEndian = (0..<8).map { UInt8(truncatingIfNeeded: sequence >> (56 - 8 * $0)) }
        var record: [UInt8] = [tls13 ? 23 : type, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF)]
        var nonce = withUnsafeBytes(of: shadow.iv) { Array($0) }
        for index in 0..<8 {
            if explicit > 0 { nonce[4 + index] = bigEndian[index] } else { nonce[4 + index] ^= bigEndian[index] }
        }
        if explicit > 0 { record += bigEndian }
        let aad =
            tls13
            ? Array(record[..<5]) : bigEndian + [type, 3, 3, UInt8(text.count >> 8), UInt8(text.count & 0xFF)]
        let start = record.count
        record += text + [UInt8](repeating: 0, count: 16)
        let sealed = withUnsafeBytes(of: shadow.key) { key in
            record.withUnsafeMutableBufferPointer { record in
                CSystem_tls_aead_seal(
                    ciphers.sealer(handOver.aead), key.baseAddress!.assumingMemoryBound(to: UInt8.self), nonce, aad,
                    aad.count, record.baseAddress! + start, text.count, record.baseAddress! + start + text.count)
            }
        }
        precondition(sealed == 1)
        return record
    }

    /// The client's next write keys, after it sealed a KeyUpdate (TLS 1.3).
    func clientChangesKeys() {
        #expect(sender.changeWriteKeys())
        let sha384: Int32 = handOver.aead == UInt8(CSystem_AES_256_GCM) ? 1 : 0
        let secretLength = Int(handOver.secret_length)
        var next = shadow.secret
        withUnsafeBytes(of: shadow.secret) { secret in
            withUnsafeMutableBytes(of: &next) { next in
                precondition(
                    CSystem_tls13_next_secret(
                        sha384, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), secretLength,
                        next.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1)
            }
        }
        shadow.secret = next
        var key = shadow.key
        var iv = shadow.iv
        withUnsafeBytes(of: shadow.secret) { secret in
            withUnsafeMutableBytes(of: &key) { key in
                withUnsafeMutableBytes(of: &iv) { iv in
                    precondition(
                        CSystem_tls13_traffic_keys(
                            sha384, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), secretLength,
                            key.baseAddress!.assumingMemoryBound(to: UInt8.self), Int(handOver.key_length),
                            iv.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1)
                }
            }
        }
        shadow.key = key
        shadow.iv = iv
    }

    /// A whole KeyUpdate from the client in one record, then its new keys.
    func keyUpdate(requested: Bool = false) -> [UInt8] {
        let record = seal(.handshake, [24, 0, 0, 1, requested ? 1 : 0])
        clientChangesKeys()
        return record
    }

    // MARK: The server opening

    /// Gives `bytes` to the server after what it kept, as TLSStream.openRecords does: what it made of each record,
    /// up to the first that ends the input (an incomplete last record is kept for next time).
    func open(_ bytes: [UInt8]) -> [Opened] {
        let input = partial + bytes
        partial = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(input.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: input)
        var offset = 0
        var outcomes: [Opened] = []
        while true {
            switch server.open(buffer, end: input.count, offset: &offset, ciphers: ciphers) {
            case .data(let range): outcomes.append(.data(Array(buffer[range])))
            case .control: outcomes.append(.control)
            case .closeNotify: return outcomes + [.closeNotify]
            case .failure: return outcomes + [.failure]
            case .needMore:
                partial = Array(input[offset...])
                return outcomes
            }
        }
    }

    // MARK: The client opening what the server sealed

    /// The records the server added to `unsent` since last asked, as the client opens them.
    func serverSent(sourceLocation: SourceLocation = #_sourceLocation) -> [PlainRecord] {
        let bytes = Array(server.unsent[unsentOpened...])
        unsentOpened = server.unsent.count
        return receive(bytes, sourceLocation: sourceLocation)
    }

    /// Opens whole records the server sealed with the client's receiving layer.
    func receive(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [PlainRecord] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        var records: [PlainRecord] = []
        var offset = 0
        while offset < bytes.count {
            let start = offset
            let sequence = receiver.readSequence
            let outcome = receiver.open(buffer, end: bytes.count, offset: &offset, ciphers: ciphers)
            guard outcome != .needMore else {
                Issue.record("the server sealed an incomplete record", sourceLocation: sourceLocation)
                break
            }
            let opened = receiver.readSequence == sequence &+ 1 || (tls13 && receiver.readSequence == 0)
            guard opened else {
                Issue.record(
                    "the client could not open the server's record (\(outcome))", sourceLocation: sourceLocation)
                break
            }
            // Opened in place: the plaintext is between the header (and explicit nonce) and the tag.
            var content = Array(buffer[(start + 5 + explicitNonceLength)..<(offset - 16)])
            var type = buffer[start]
            if tls13 {
                while content.last == 0 { content.removeLast() }
                type = content.popLast() ?? 0
            }
            let record = PlainRecord(type: type, content: content)
            records.append(record)
            if !receiver.unsent.isEmpty {
                // The receiving layer refuses what no server asks of it; a new one goes on from there.
                #expect(record == .alert(1, .noRenegotiation), sourceLocation: sourceLocation)
                receiver = Self.receiver(handOver, readSequence: receiver.readSequence)
            }
        }
        return records
    }

    /// Seals `plaintext` with the server layer and opens it as the client: its data, and the records.
    func serverSeals(_ plaintext: [UInt8]) -> (data: [UInt8], records: [PlainRecord])? {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 17, alignment: 16)
        defer { out.deallocate() }
        let sealed = plaintext.withUnsafeBytes { server.seal($0, into: out, ciphers: ciphers) }
        guard let (consumed, length) = sealed else { return nil }
        #expect(consumed == plaintext.count)
        let records = receive(Array(out[..<length]))
        return (records.filter { $0.type == 23 }.flatMap(\.content), records)
    }

    // MARK: Refusals

    /// `bytes` make the server fail with exactly one fatal alert, `alert`, after which it opens and seals nothing.
    func expectRefusal(_ bytes: [UInt8], _ alert: TLSAlert, sourceLocation: SourceLocation = #_sourceLocation) {
        let outcomes = open(bytes)
        #expect(outcomes.last == .failure, "\(outcomes)", sourceLocation: sourceLocation)
        #expect(serverSent(sourceLocation: sourceLocation) == [.alert(2, alert)], sourceLocation: sourceLocation)
        expectEnded(sourceLocation: sourceLocation)
    }

    /// After a failure: nothing is opened or sealed any more.
    func expectEnded(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(server.failed, sourceLocation: sourceLocation)
        let unsent = server.unsent.count
        #expect(open(data([1, 2, 3])) == [.failure], sourceLocation: sourceLocation)
        #expect(serverSeals([1, 2, 3]) == nil, "sealed after a failure", sourceLocation: sourceLocation)
        server.sealCloseNotify(ciphers: ciphers)
        #expect(server.unsent.count == unsent, "sealed after a failure", sourceLocation: sourceLocation)
    }
}

private func pattern(_ count: Int, _ seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) }
}

@Suite struct TLSRecordLayerTests {
    // MARK: Empty records

    @Test(arguments: allSuites)
    func thirtyTwoEmptyRecordsInARowAreAcceptedTheThirtyThirdIsRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        for _ in 0..<32 { #expect(layer.open(layer.data([])) == [.control]) }
        #expect(layer.server.unsent.isEmpty)
        layer.expectRefusal(layer.data([]), .unexpectedMessage)
    }

    @Test(arguments: allSuites)
    func aRecordWithContentResetsTheEmptyCount(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        for _ in 0..<32 { #expect(layer.open(layer.data([])) == [.control]) }
        #expect(layer.open(layer.data([7])) == [.data([7])])
        for _ in 0..<32 { #expect(layer.open(layer.data([])) == [.control]) }
        layer.expectRefusal(layer.data([]), .unexpectedMessage)
    }

    @Test(arguments: tls13Suites, [TLSContentType.alert, .handshake])
    func tls13EmptyAlertOrHandshakeRecordIsRefused(suite: TLSTestSuite, type: TLSContentType) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(type, []), .unexpectedMessage)
    }

    @Test(arguments: tls12Suites)
    func tls12EmptyHandshakeRecordsCountAsEmpty(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        for index in 0..<32 {
            #expect(layer.open(layer.seal(index % 2 == 0 ? .handshake : .applicationData, [])) == [.control])
        }
        layer.expectRefusal(layer.seal(.handshake, []), .unexpectedMessage)
    }

    @Test(arguments: tls12Suites)
    func tls12EmptyAlertRecordIsRefused(suite: TLSTestSuite) {
        // As OpenSSL does: an alert too short to read.
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.alert, []), .unexpectedMessage)
    }

    // MARK: Warnings

    @Test(arguments: allSuites)
    func fourWarningsInARowAreAcceptedTheFifthIsRefused(suite: TLSTestSuite) {
        // TLS 1.2: any warning but close_notify (here bad_certificate); TLS 1.3: user_canceled, the only one.
        let layer = MirroredLayer(suite)
        let warning: [UInt8] = suite.tls13 ? [1, TLSAlert.userCanceled.rawValue] : [1, 42]
        for _ in 0..<4 { #expect(layer.open(layer.seal(.alert, warning)) == [.control]) }
        #expect(layer.server.unsent.isEmpty)
        layer.expectRefusal(layer.seal(.alert, warning), .unexpectedMessage)
    }

    @Test(arguments: allSuites)
    func aRecordThatIsNotAnAlertResetsTheWarningCount(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        let warning: [UInt8] = suite.tls13 ? [1, TLSAlert.userCanceled.rawValue] : [1, 42]
        for _ in 0..<4 { #expect(layer.open(layer.seal(.alert, warning)) == [.control]) }
        #expect(layer.open(layer.data([1])) == [.data([1])])
        for _ in 0..<4 { #expect(layer.open(layer.seal(.alert, warning)) == [.control]) }
        layer.expectRefusal(layer.seal(.alert, warning), .unexpectedMessage)
    }

    // MARK: KeyUpdate (TLS 1.3)

    /// Split after the first two bytes of its header, or between its header and its body.
    @Test(arguments: tls13Suites, [2, 4])
    func keyUpdateSplitAcrossTwoRecordsChangesTheKeys(suite: TLSTestSuite, split: Int) {
        let layer = MirroredLayer(suite)
        let message: [UInt8] = [24, 0, 0, 1, 0]
        #expect(layer.open(layer.seal(.handshake, Array(message[..<split]))) == [.control])
        #expect(layer.open(layer.seal(.handshake, Array(message[split...]))) == [.control])
        #expect(layer.server.readSequence == 0, "the read keys changed")
        layer.clientChangesKeys()
        #expect(layer.open(layer.data(pattern(100))) == [.data(pattern(100))])
        #expect(layer.server.unsent.isEmpty)
    }

    @Test(arguments: tls13Suites)
    func keyUpdateWithTheOldKeysAfterAKeyUpdateIsRefused(suite: TLSTestSuite) {
        // The other half of the test above: data under the old keys does not open after a KeyUpdate.
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.seal(.handshake, [24, 0, 0, 1, 0])) == [.control])
        layer.expectRefusal(layer.data([1]), .badRecordMAC)
    }

    @Test(arguments: tls13Suites)
    func updateRequestedIsAnsweredWithAKeyUpdateUnderTheOldKeys(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.keyUpdate(requested: true)) == [.control])
        let before = layer.receiver.readSequence
        #expect(layer.serverSent() == [.keyUpdate], "the answer opens with the keys the client had")
        #expect(layer.receiver.readSequence == 0 && before > 0, "the client's read keys changed")
        #expect(layer.server.writeSequence == 0, "the server's write keys changed")
        // The server seals with its new keys, which only the updated client opens; and reads with the new ones.
        #expect(layer.serverSeals(pattern(300))?.data == pattern(300))
        #expect(layer.open(layer.data(pattern(50))) == [.data(pattern(50))])
        // Not requested: no answer.
        #expect(layer.open(layer.keyUpdate()) == [.control])
        #expect(layer.serverSent() == [])
    }

    @Test(arguments: tls13Suites)
    func thirtyTwoKeyUpdatesInARowAreAcceptedTheThirtyThirdIsRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        for _ in 0..<32 { #expect(layer.open(layer.keyUpdate()) == [.control]) }
        #expect(layer.open(layer.data([1])) == [.data([1])])  // application data resets the count
        for _ in 0..<32 { #expect(layer.open(layer.keyUpdate()) == [.control]) }
        layer.expectRefusal(layer.keyUpdate(), .illegalParameter)
    }

    @Test(arguments: tls13Suites, [[24, 0, 0, 1, 0, 24, 0, 0, 1, 0], [24, 0, 0, 1, 0, 0]] as [[UInt8]])
    func keyUpdateFollowedByMoreBytesInItsRecordIsRefused(suite: TLSTestSuite, record: [UInt8]) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.handshake, record), .unexpectedMessage)
    }

    @Test(arguments: tls13Suites, [1, 3, 4])
    func keyUpdateFragmentFollowedByApplicationDataIsRefused(suite: TLSTestSuite, fragment: Int) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.seal(.handshake, Array([24, 0, 0, 1, 0][..<fragment]))) == [.control])
        layer.expectRefusal(layer.data([1, 2, 3]), .unexpectedMessage)
    }

    @Test(
        arguments: tls13Suites,
        [
            ([24, 0, 0, 1, 2], TLSAlert.illegalParameter),  // request_update 2: not a value
            ([24, 0, 0, 0], .decodeError),  // no body
            ([24, 0, 0, 2, 0, 0], .illegalParameter),  // a body of two bytes
        ] as [([UInt8], TLSAlert)])
    func malformedKeyUpdateIsRefused(suite: TLSTestSuite, message: ([UInt8], TLSAlert)) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.handshake, message.0), message.1)
    }

    // MARK: Renegotiation (TLS 1.2)

    /// A ClientHello (made-up body) in one record, split in its header, or split in its body.
    @Test(arguments: tls12Suites, [0, 2, 10])
    func clientHelloIsRefusedWithANoRenegotiationWarning(suite: TLSTestSuite, split: Int) {
        let layer = MirroredLayer(suite)
        let hello: [UInt8] = [1, 0, 0, 40] + pattern(40)
        if split == 0 {
            #expect(layer.open(layer.seal(.handshake, hello)) == [.control])
        } else {
            #expect(layer.open(layer.seal(.handshake, Array(hello[..<split]))) == [.control])
            #expect(layer.serverSent() == [], "nothing before the whole ClientHello")
            #expect(layer.open(layer.seal(.handshake, Array(hello[split...]))) == [.control])
        }
        #expect(layer.serverSent() == [.alert(1, .noRenegotiation)])
        #expect(!layer.server.failed)
        // The connection goes on both ways.
        #expect(layer.open(layer.data(pattern(20))) == [.data(pattern(20))])
        #expect(layer.serverSeals(pattern(30))?.data == pattern(30))
    }

    @Test(arguments: tls12Suites)
    func sixthClientHelloInARowIsRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        let hello: [UInt8] = [1, 0, 0, 3, 3, 3, 0]
        for _ in 0..<5 {
            #expect(layer.open(layer.seal(.handshake, hello)) == [.control])
            #expect(layer.serverSent() == [.alert(1, .noRenegotiation)])
        }
        layer.expectRefusal(layer.seal(.handshake, hello), .unexpectedMessage)
    }

    // MARK: Alerts

    @Test(arguments: tls12Suites)
    func twoAlertsInOneRecordAreRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.alert, [1, 42, 1, 42]), .unexpectedMessage)
    }

    @Test(arguments: allSuites, [[1], [1, 0, 0]] as [[UInt8]])
    func alertOfOneOrThreeBytesIsRefused(suite: TLSTestSuite, alert: [UInt8]) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.alert, alert), .unexpectedMessage)
    }

    @Test(arguments: tls12Suites)
    func unknownAlertLevelIsRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.alert, [3, 42]), .illegalParameter)
    }

    @Test(arguments: allSuites)
    func fatalAlertFromThePeerEndsTheConnectionWithoutAReply(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.data([1]) + layer.seal(.alert, [2, 40])) == [.data([1]), .failure])
        #expect(layer.server.unsent.isEmpty, "nothing is sent after a fatal alert")
        layer.expectEnded()
    }

    @Test(arguments: allSuites)
    func closeNotifyIsReported(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.data([1]) + layer.seal(.alert, [1, 0])) == [.data([1]), .closeNotify])
        #expect(layer.server.unsent.isEmpty)
        #expect(!layer.server.failed)
        // Answered with the server's own close_notify.
        layer.server.sealCloseNotify(ciphers: layer.ciphers)
        #expect(layer.serverSent() == [.alert(1, .closeNotify)])
    }

    // MARK: Sizes

    @Test(arguments: tls13Suites)
    func tls13InnerPlaintextOverTheLimitIsRefusedThoughItsContentIsSmall(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        // 2^14 + 1 bytes of content, type and padding is the most there may be.
        let content = pattern(100)
        let fits = content + [23] + [UInt8](repeating: 0, count: 16385 - 101)
        #expect(layer.open(layer.sealInner(fits)) == [.data(content)])
        let over = content + [23] + [UInt8](repeating: 0, count: 16386 - 101)
        layer.expectRefusal(layer.sealInner(over), .recordOverflow)
    }

    @Test(arguments: allSuites)
    func contentOverTwoToTheFourteenIsRefused(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.data(pattern(16384))) == [.data(pattern(16384))])
        layer.expectRefusal(layer.data(pattern(16385)), .recordOverflow)
    }

    @Test(arguments: allSuites)
    func headerAnnouncingTooLongARecordIsRefusedFromTheHeaderAlone(suite: TLSTestSuite) {
        let limit = 16384 + (suite.tls13 ? 256 : 2048)
        let atLimit = MirroredLayer(suite)
        #expect(atLimit.open([23, 3, 3, UInt8(limit >> 8), UInt8(limit & 0xFF)]) == [], "waits for the body")
        let over = MirroredLayer(suite)
        over.expectRefusal([23, 3, 3, UInt8((limit + 1) >> 8), UInt8((limit + 1) & 0xFF)], .recordOverflow)
    }

    @Test(arguments: tls13Suites, [0, 1, 40])
    func tls13RecordOfPaddingAloneIsRefused(suite: TLSTestSuite, padding: Int) {
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.sealInner([UInt8](repeating: 0, count: padding)), .unexpectedMessage)
    }

    @Test(arguments: tls13Suites)
    func tls13PaddedRecordsAreOpened(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        #expect(layer.open(layer.sealInner([5, 6, 23, 0, 0, 0])) == [.data([5, 6])])
        #expect(layer.open(layer.sealInner([23] + [UInt8](repeating: 0, count: 300))) == [.control])  // empty
        #expect(layer.open(layer.sealInner([1, 0, 21, 0])) == [.closeNotify])
    }

    // MARK: Headers after the handshake

    struct HeaderChange: Sendable, CustomStringConvertible {
        let suite: Int
        let byte: Int
        let value: UInt8
        let alert: TLSAlert
        let what: String
        var description: String { "\(allSuites[suite].name): \(what)" }
    }

    /// The header of a real record with one byte changed: refused from its five bytes.
    @Test(arguments: [
        HeaderChange(suite: 0, byte: 2, value: 1, alert: .decodeError, what: "legacy_record_version 0x0301"),
        HeaderChange(suite: 1, byte: 0, value: 22, alert: .unexpectedMessage, what: "outer type handshake"),
        HeaderChange(suite: 2, byte: 0, value: 21, alert: .unexpectedMessage, what: "outer type alert"),
        HeaderChange(suite: 0, byte: 1, value: 2, alert: .protocolVersion, what: "major version 2"),
        HeaderChange(suite: 3, byte: 2, value: 1, alert: .protocolVersion, what: "version 0x0301"),
        HeaderChange(suite: 4, byte: 1, value: 2, alert: .protocolVersion, what: "major version 2"),
        HeaderChange(suite: 5, byte: 0, value: 20, alert: .unexpectedMessage, what: "ChangeCipherSpec"),
        HeaderChange(suite: 3, byte: 0, value: 24, alert: .unexpectedMessage, what: "unknown type 24"),
    ])
    func headerIsCheckedBeforeTheBody(change: HeaderChange) {
        let layer = MirroredLayer(allSuites[change.suite])
        var record = layer.data(pattern(10))
        record[change.byte] = change.value
        layer.expectRefusal(Array(record[..<5]), change.alert)
    }

    @Test(arguments: allSuites)
    func changeCipherSpecAfterTheHandshakeIsRefused(suite: TLSTestSuite) {
        // TLS 1.3: inside a protected record; TLS 1.2: refused from the header.
        let layer = MirroredLayer(suite)
        layer.expectRefusal(layer.seal(.changeCipherSpec, [1]), .unexpectedMessage)
    }

    // MARK: max_fragment_length

    @Test(arguments: allSuites)
    func maxFragmentLengthOf512IsHonouredBothWays(suite: TLSTestSuite) {
        let connection = HandshakenConnection(suite, maxFragment512: true)
        #expect(connection.handOver.max_fragment == 512)
        let layer = MirroredLayer(connection.handOver)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { out.deallocate() }
        let sealed = pattern(5000).withUnsafeBytes { layer.server.seal($0, into: out, ciphers: layer.ciphers) }
        #expect(sealed?.consumed == 5000)
        let bytes = Array(out[..<(sealed?.sealed ?? 0)])
        // Each record's content, from its header: at most 512 bytes.
        var offset = 0
        var records = 0
        while offset + 5 <= bytes.count {
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            #expect(length - (layer.server.overhead - 5) <= 512)
            offset += 5 + length
            records += 1
        }
        #expect(offset == bytes.count && records == 10)
        let received = layer.receive(bytes)
        #expect(received.count == 10 && received.allSatisfy { $0.type == 23 && $0.content.count <= 512 })
        #expect(received.flatMap(\.content) == pattern(5000))
        connection.serverWrite(bytes)
        #expect(connection.clientRead().bytes == pattern(5000), "OpenSSL's client reads them all")
        // The client may not send more than 512 bytes in a record either.
        #expect(layer.open(layer.data(pattern(512))) == [.data(pattern(512))])
        layer.expectRefusal(layer.data(pattern(513)), .recordOverflow)
    }

    // MARK: Key usage limits

    /// With a limit of 3 records per key, no key seals more than 3 records (its KeyUpdate included), so the write
    /// sequence number never reaches 3; OpenSSL's client follows the KeyUpdates and reads everything.
    @Test(arguments: tls13Suites, [false, true])
    func tls13KeyUpdatesBeforeAKeySealsMoreThanItsLimit(suite: TLSTestSuite, keyed: Bool) {
        let connection = HandshakenConnection(suite)
        let layer = MirroredLayer(connection.handOver)
        layer.server.limits.maxRecordsPerKey = 3
        // A connection that is sending holds a context keyed with its write key: each KeyUpdate must re-key it.
        if keyed { #expect(layer.server.keySealing()) }
        var sent: [UInt8] = []
        var stream: [UInt8] = []
        var sequences: [UInt64] = []
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { out.deallocate() }
        for round in 0..<10 {
            let plaintext = pattern(100, round)
            let sealed = plaintext.withUnsafeBytes { layer.server.seal($0, into: out, ciphers: layer.ciphers) }
            #expect(sealed?.consumed == 100)
            sequences.append(layer.server.writeSequence)
            sent += plaintext
            stream += out[..<(sealed?.sealed ?? 0)]
        }
        // The records each key sealed, as the client opens them (the tickets first).
        var perKey = [Int(connection.handOver.write.sequence)]
        let records = layer.receive(stream)
        for record in records {
            perKey[perKey.count - 1] += 1
            if record == .keyUpdate { perKey.append(0) }
        }
        #expect(records.filter { $0.type == 23 }.flatMap(\.content) == sent)
        #expect(perKey.count >= 4, "KeyUpdates: \(perKey.count - 1)")
        #expect(sequences.allSatisfy { $0 < 3 }, "write sequence after each seal: \(sequences)")
        #expect(perKey.allSatisfy { $0 <= 3 }, "records per key: \(perKey)")
        connection.serverWrite(stream)
        #expect(connection.clientRead().bytes == sent, "OpenSSL's client reads it all")
    }

    @Test(arguments: tls12Suites)
    func tls12KeyUsedUpSealsNoMore(suite: TLSTestSuite) {
        let connection = HandshakenConnection(suite)
        let layer = MirroredLayer(connection.handOver)
        layer.server.limits.maxRecordsPerKey = 3
        // The server's Finished was the first record under this key.
        #expect(connection.handOver.write.sequence == 1)
        var sent: [UInt8] = []
        var stream: [UInt8] = []
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { out.deallocate() }
        for round in 0..<2 {
            let plaintext = pattern(100, round)
            let sealed = plaintext.withUnsafeBytes { layer.server.seal($0, into: out, ciphers: layer.ciphers) }
            #expect(sealed?.consumed == 100)
            sent += plaintext
            stream += out[..<(sealed?.sealed ?? 0)]
        }
        #expect(!layer.server.keyExhausted)
        let fourth = [UInt8](repeating: 1, count: 10).withUnsafeBytes {
            layer.server.seal($0, into: out, ciphers: layer.ciphers)
        }
        #expect(fourth == nil, "the fourth record is not sealed")
        #expect(layer.server.keyExhausted)
        #expect(layer.server.writeSequence == 3)
        // TLSStream.send closes then.
        layer.server.sealCloseNotify(ciphers: layer.ciphers)
        connection.serverWrite(stream + layer.server.unsent)
        let read = connection.clientRead()
        #expect(read.bytes == sent)
        #expect(read.error == SSL_ERROR_ZERO_RETURN, "the client reads the close_notify")
    }

    /// The key runs out after some of the records one `seal` call makes: those are the client's to read, and the
    /// close_notify that follows them opens.
    @Test(arguments: tls12Suites)
    func tls12KeyRunningOutWithinASealKeepsTheRecordsBeforeIt(suite: TLSTestSuite) {
        let connection = HandshakenConnection(suite)
        let layer = MirroredLayer(connection.handOver)
        layer.server.limits.maxRecordsPerKey = 3  // two more records after the Finished
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { out.deallocate() }
        let plaintext = pattern(40000)  // three records' worth
        let sealed = plaintext.withUnsafeBytes { layer.server.seal($0, into: out, ciphers: layer.ciphers) }
        #expect(layer.server.writeSequence == 3)
        // What TLSStream.send does with the outcome: write what was sealed; once nothing is, close.
        var stream = Array(out[..<(sealed?.sealed ?? 0)])
        if sealed == nil || layer.server.keyExhausted {
            layer.server.sealCloseNotify(ciphers: layer.ciphers)
            stream += layer.server.unsent
        }
        connection.serverWrite(stream)
        let read = connection.clientRead()
        #expect(sealed?.consumed == 32768, "the two records the key could seal")
        let complete = read.bytes == Array(plaintext[..<32768])
        #expect(complete, "the client read \(read.bytes.count) bytes")
        #expect(read.error == SSL_ERROR_ZERO_RETURN, "the client reads the close_notify")
    }

    @Test(arguments: tls12Suites.filter { $0.name.contains("CHACHA") })
    func tls12ChaCha20StopsBeforeTheSequenceWraps(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        layer.server.setSequences(read: 0, write: .max - 2)
        layer.receiver.setSequences(read: .max - 2, write: 0)
        #expect(layer.serverSeals([1])?.data == [1])
        #expect(layer.serverSeals([2]) == nil)
        #expect(layer.server.keyExhausted)
        #expect(layer.server.writeSequence == UInt64.max - 1)
    }

    @Test(arguments: allSuites)
    func readSequenceNeverWraps(suite: TLSTestSuite) {
        let layer = MirroredLayer(suite)
        // The records just below the end open (and show that the records sealed by hand are right).
        layer.server.setSequences(read: .max - 2, write: layer.server.writeSequence)
        let type = TLSContentType.applicationData.rawValue
        let text: (UInt8) -> [UInt8] = { suite.tls13 ? [$0, type] : [$0] }
        #expect(layer.open(layer.sealByHand(type: type, text(1), sequence: .max - 2)) == [.data([1])])
        #expect(layer.open(layer.sealByHand(type: type, text(2), sequence: .max - 1)) == [.data([2])])
        #expect(layer.server.readSequence == .max)
        // The record at 2^64 - 1 would leave nothing for the next one: refused, as is one at the wrapped 0.
        layer.expectRefusal(layer.sealByHand(type: type, text(3), sequence: .max), .badRecordMAC)
        let wrapped = MirroredLayer(suite)
        wrapped.server.setSequences(read: .max, write: wrapped.server.writeSequence)
        wrapped.expectRefusal(wrapped.sealByHand(type: type, text(4), sequence: 0), .badRecordMAC)
    }

    @Test func tls13ChaCha20RekeysInsteadOfWrapping() {
        let layer = MirroredLayer(allSuites[2])
        #expect(layer.server.limits.maxRecordsPerKey == UInt64.max - 1)
        layer.server.setSequences(read: 0, write: .max - 2)
        layer.receiver.setSequences(read: .max - 2, write: 0)
        var records: [PlainRecord] = []
        for round in 0..<3 {
            let sealed = layer.serverSeals(pattern(10, round))
            #expect(sealed?.data == pattern(10, round))
            records += sealed?.records ?? []
            #expect(layer.server.writeSequence < .max, "round \(round): sequence \(layer.server.writeSequence)")
        }
        #expect(records.contains(.keyUpdate), "a KeyUpdate before the sequence runs out")
        // The KeyUpdate is the old key's last record (at 2^64 - 3): all three messages go under the new keys.
        #expect(layer.receiver.readSequence == 3, "the client reads under the new keys")
    }
}

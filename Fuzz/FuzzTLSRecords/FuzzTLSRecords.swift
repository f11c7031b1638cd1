import CSystem
import FuzzSupport

@testable import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives the built-in TLS record layer (TLSRecordLayer) after a real handshake with what a client could send it.
///
/// Once, at start: one real handshake per suite the server allows (TLS 1.3 with AES-128-GCM, AES-256-GCM and
/// ChaCha20-Poly1305; TLS 1.2 ECDHE-ECDSA with the same three), OpenSSL client against the server's TLSContext over
/// a socket pair, through CSystem_tls_handshake and CSystem_tls_detach; the hand-overs are kept.
///
/// Per input: the first byte picks the suite. A fresh server layer is made from its hand-over, and a peer playing
/// the client from the same hand-over with `read` and `write` swapped (records have the same format both ways): one
/// layer seals what the client sends, another opens what the server seals. The rest of the input is a script, one
/// operation byte and its arguments at a time (see `Operation`): the peer seals records (application data, alerts,
/// handshake bytes, empty records, KeyUpdates, ClientHellos; TLS 1.3 padding by hand), the script damages the last
/// one (a bit flipped, cut short, duplicated, a header byte set) or adds raw bytes, the stream goes to the server in
/// chunks of a chosen size (an incomplete record kept for the next chunk, as TLSStream does), the server seals data
/// or close_notify, the socket takes what waits in `unsent`, the server's key gets a low usage limit.
///
/// Oracles, besides "no crash, no sanitizer error":
/// - nothing unauthenticated is delivered: the server's application data, concatenated, is always a prefix of the
///   application data of the records the peer sealed and that were not damaged, in order; and when nothing was
///   damaged and the server neither failed nor saw close_notify, it is all of it;
/// - every refusal sends exactly one fatal alert: when `open` fails and the failing record was not an authenticated
///   fatal alert from the peer, `unsent` grew by one fatal alert (after the no_renegotiation warnings the same
///   record earned, TLS 1.2), which the peer opens; after a failure the server opens, delivers and seals nothing;
/// - everything the server seals opens at the peer in order: warnings (TLS 1.2 no_renegotiation), KeyUpdates
///   (TLS 1.3), data, close_notify, a fatal alert last;
/// - `unsent` stays bounded: at most six records per `open` call, and never more than a few times the bytes fed;
/// - no key seals data at or past its usage limit: TLS 1.3 sends a KeyUpdate first, TLS 1.2 stops.
///
/// FUZZ_TLS_RECORDS_TRACE=1 prints what an input does.

// MARK: The handshakes, once

struct FuzzSuite {
    let name: String
    let tls13: Bool
}

let fuzzSuites = [
    FuzzSuite(name: "TLS_AES_128_GCM_SHA256", tls13: true),
    FuzzSuite(name: "TLS_AES_256_GCM_SHA384", tls13: true),
    FuzzSuite(name: "TLS_CHACHA20_POLY1305_SHA256", tls13: true),
    FuzzSuite(name: "ECDHE-ECDSA-AES128-GCM-SHA256", tls13: false),
    FuzzSuite(name: "ECDHE-ECDSA-AES256-GCM-SHA384", tls13: false),
    FuzzSuite(name: "ECDHE-ECDSA-CHACHA20-POLY1305", tls13: false),
]

/// The test pair of Tests/PhiloteTests/TLSStreamTests.swift: P-256, self-signed for CN=localhost, valid 2000-2100.
let fuzzKeyPEM = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6udQ2CcLa84yD3e3
    Hul7zKB2Rgtk70K+bH6pL9S0wLahRANCAAS+I4mEZdG8aMVaVbIrS77TvOwQKyFv
    IT1aPeUsWLVb2b31bxXx1fCeR4lRNwiSFms1Tvj5Sh4B8ld8LtzxClzY
    -----END PRIVATE KEY-----

    """
let fuzzCertificatePEM = """
    -----BEGIN CERTIFICATE-----
    MIIBGDCBv6ADAgECAgEBMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCWxvY2FsaG9z
    dDAiGA8yMDAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAUMRIwEAYDVQQD
    DAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS+I4mEZdG8aMVa
    VbIrS77TvOwQKyFvIT1aPeUsWLVb2b31bxXx1fCeR4lRNwiSFms1Tvj5Sh4B8ld8
    LtzxClzYMAoGCCqGSM49BAMCA0gAMEUCIQCRNFkYvRZNLtDFLCviMeXhmRz48wCS
    k9pdBb0PiZemqgIgZt1chkbmW2enY16QqGfT0RIzlkeW2K7dZOAgSo5w3lk=
    -----END CERTIFICATE-----

    """

func temporaryPEM(_ contents: String) -> String {
    var template = Array("/tmp/philote-fuzz-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    precondition(fd >= 0, "cannot create a temporary file")
    _ = contents.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A real handshake for `suite`, OpenSSL's client against the server's context on a socket pair, and the traffic
/// keys it hands over (without the TLS 1.2 cached session, released here, so that no copy frees it again).
func realHandOver(_ context: TLSContext, _ suite: FuzzSuite) -> CSystem_TLSHandOver {
    var fds: [Int32] = [-1, -1]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0, "no socket pair")
    defer { for fd in fds { close(fd) } }
    for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
    let clientContext = SSL_CTX_new(TLS_client_method())!
    defer { SSL_CTX_free(clientContext) }
    if suite.tls13 {
        SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_3_VERSION), nil)
        SSL_CTX_set_ciphersuites(clientContext, suite.name)
    } else {
        SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        SSL_CTX_set_cipher_list(clientContext, suite.name)
    }
    let client = SSL_new(clientContext)!
    defer { SSL_free(client) }
    SSL_set_fd(client, fds[0])
    SSL_set_connect_state(client)
    let server = CSystem_tls_new(context.pointer, fds[1])!
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
    var handOver = CSystem_TLSHandOver()
    precondition(CSystem_tls_detach(server, &handOver) == 1, "\(suite.name): no hand-over")
    CSystem_tls_session_release(handOver.session, 0)
    handOver.session = nil
    precondition(handOver.version == (suite.tls13 ? 0x0304 : 0x0303), "\(suite.name): wrong version")
    return handOver
}

nonisolated(unsafe) let handOvers: [CSystem_TLSHandOver] = {
    let certificate = temporaryPEM(fuzzCertificatePEM)
    let key = temporaryPEM(fuzzKeyPEM)
    defer {
        unlink(certificate)
        unlink(key)
    }
    let context = try! TLSContext(certificateFile: certificate, keyFile: key)
    let all = fuzzSuites.map { realHandOver(context, $0) }
    let aeads = all.map(\.aead)
    precondition(aeads == [0, 1, 2, 0, 1, 2].map { UInt8($0) }, "unexpected AEADs \(aeads)")
    return all
}()

nonisolated(unsafe) let fuzzCiphers = TLSCiphers(plaintextCapacity: 1 << 16)

/// FUZZ_TLS_RECORDS_TRACE=1: each operation and each record's outcome on stderr, to read what an input does.
let tracing = getenv("FUZZ_TLS_RECORDS_TRACE") != nil


func trace(_ line: @autoclosure () -> String) {
    guard tracing else { return }
    let text = Array((line() + "\n").utf8)
    _ = write(2, text, text.count)
}

/// The hand-over as the client sees it: what the server reads, it writes, and the other way round.
func swapped(_ handOver: CSystem_TLSHandOver) -> CSystem_TLSHandOver {
    var peer = handOver
    peer.read = handOver.write
    peer.write = handOver.read
    return peer
}

// MARK: The script

struct ScriptReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var atEnd: Bool { index >= bytes.count }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u16() -> Int { Int(byte()) << 8 | Int(byte()) }

    /// A length: one byte below 192, else two more bytes modulo `limit` (most records are small, a few are large).
    mutating func length(_ limit: Int) -> Int {
        let first = byte()
        return first < 192 ? Int(first) : u16() % limit
    }

    mutating func take(_ count: Int) -> [UInt8] {
        let taken = min(count, bytes.count - index)
        defer { index += taken }
        return Array(bytes[index..<index + taken])
    }
}

/// `count` bytes of a pattern that depends on `seed`.
func pattern(_ count: Int, seed: UInt8, step: UInt8 = 31) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
        // The sequence repeats every 256 bytes: the first period byte by byte, the rest copied (every step of the
        // byte-by-byte loop is instrumented, and records run to 16 KiB).
        var value = seed
        for index in 0..<min(count, 256) {
            bytes[index] = value
            value &+= step
        }
        var filled = min(count, 256)
        while filled < count {
            let chunk = min(filled, count - filled)
            (bytes.baseAddress! + filled).update(from: bytes.baseAddress!, count: chunk)
            filled += chunk
        }
        initialized = count
    }
}

/// Whether two stretches of bytes are equal.
func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
}

enum Operation: UInt8, CaseIterable {
    /// Application data: length (one byte below 192, else two more modulo 2^14 + 300), a seed for its bytes.
    case data
    /// A two-byte alert: level, description.
    case alert
    /// An alert of another length: length (modulo 5), its bytes.
    case oddAlert
    /// Handshake bytes: length (modulo 32), the bytes.
    case handshakeBytes
    /// An empty record: type (modulo 5: change_cipher_spec, alert, handshake, application_data; 4: TLS 1.3 inner
    /// plaintext without a type, the padding alone).
    case empty
    /// A KeyUpdate: request (modulo 3), where it is split into two records (modulo 5; 0: one record). TLS 1.3: the
    /// peer then changes its write keys.
    case keyUpdate
    /// A ClientHello with a made-up body: body length, where it is split (modulo message length + 1; 0: one record).
    case clientHello
    /// Raw bytes into the stream: length (modulo 32), the bytes.
    case raw
    /// A bit of the last record flipped, if not fed yet: bit (2 bytes, modulo its bits).
    case flip
    /// The last record cut short, if not fed yet: bytes removed (1 to all but one), and its last remaining body byte
    /// changed, so that what follows cannot complete it again.
    case cut
    /// The last record sent again.
    case duplicate
    /// A header byte of the last record set, if not fed yet: which (modulo 5), value.
    case header
    /// TLS 1.3 zero padding after the content type of the records that follow: length (2 bytes, modulo 300).
    case padding
    /// The stream so far to the server, in chunks: size (1 to 128, then steps of 128).
    case deliver
    /// The server seals application data: length (as for `data`, modulo 20,000), room in its output (2 bytes), a
    /// seed.
    case serverData
    /// The socket takes everything in `unsent`.
    case drain
    /// The server seals close_notify.
    case serverClose
    /// The server's key may seal only a few more records (`TLSRecordLimits.maxRecordsPerKey`): 0 to 5 more, at
    /// least one in all. TLS 1.3 then sends a KeyUpdate between its records, TLS 1.2 stops sealing.
    case keyLimit
}

/// The server under test, the peer that plays its client, and what each has seen.
final class RecordRun {
    let tls13: Bool
    let handOver: CSystem_TLSHandOver
    let server: TLSRecordLayer
    /// The client's sending side.
    let peer: TLSRecordLayer
    /// The client's receiving side, opening what the server seals.
    var peerReader: TLSRecordLayer
    /// A copy of the peer's write keys, for the TLS 1.3 records sealed by hand (padding, no type).
    var shadow: CSystem_TLSDirection
    let explicitNonce: Int
    var padding = 0

    // The stream towards the server.
    /// Sealed or appended, not fed yet.
    var pending: [UInt8] = []
    /// The last record sealed, while all of it is in `pending`: the operations that damage a record apply to it.
    struct LastRecord {
        var range: Range<Int>
        /// Its bytes as sealed.
        let original: [UInt8]
        /// Its application data.
        let data: [UInt8]
        /// Its bytes are as sealed, and its data is at the end of `expected`.
        var intact = true
    }
    var last: LastRecord?
    /// Bytes sealed so far (an input seals 256 KiB at most).
    var sealedBytes = 0
    /// The incomplete record the server keeps for the next chunk.
    var partial: [UInt8] = []
    var fed = 0
    var damaged = false
    /// The application data of the undamaged records the peer sealed, in order.
    var expected: [UInt8] = []
    var delivered = 0

    // The server's state as seen from outside.
    var serverFailed = false
    var closeNotifyReceived = false
    var serverSentClose = false

    // What the server sealed, as the peer opens it.
    /// The sequence number of each record `peerOpen` opened last, under its key.
    var openedSequences: [UInt64] = []
    var unsentRead = 0
    var fedSinceDrain = 0
    var peerSawEnd = false

    init(_ handOver: CSystem_TLSHandOver, tls13: Bool) {
        self.handOver = handOver
        self.tls13 = tls13
        server = TLSRecordLayer(handOver)
        peer = TLSRecordLayer(swapped(handOver))
        peerReader = RecordRun.reader(handOver, readSequence: handOver.write.sequence)
        shadow = handOver.read
        explicitNonce = !tls13 && handOver.aead != UInt8(CSystem_CHACHA20_POLY1305) ? 8 : 0
    }

    static func reader(_ handOver: CSystem_TLSHandOver, readSequence: UInt64) -> TLSRecordLayer {
        let reader = TLSRecordLayer(swapped(handOver))
        reader.limits.maxKeyUpdates = .max
        reader.limits.maxWarnings = .max
        reader.setSequences(read: readSequence, write: handOver.read.sequence)
        return reader
    }

    // MARK: Sealing as the client

    /// The peer seals one record of `type` (by hand when TLS 1.3 padding is set) into the stream.
    func seal(_ type: TLSContentType, _ content: [UInt8]) {
        if tls13 && padding > 0 {
            sealByHand(content + [type.rawValue] + [UInt8](repeating: 0, count: padding), type: type, content: content)
            return
        }
        let start = pending.count
        pending += [UInt8](repeating: 0, count: content.count + peer.overhead)
        let length = content.withUnsafeBytes { text in
            pending.withUnsafeMutableBytes { out in
                peer.sealRecord(type, text, at: out.baseAddress! + start, fuzzCiphers)
            }
        }
        precondition(length == content.count + peer.overhead, "the peer could not seal")
        recordSealed(start..<pending.count, type: type, content: content)
    }

    /// A TLS 1.3 record whose inner plaintext is `inner` (content, type, padding), sealed with the peer's keys and
    /// sequence number without the layer's code.
    func sealByHand(_ inner: [UInt8], type: TLSContentType?, content: [UInt8]) {
        precondition(tls13)
        let length = inner.count + 16
        var record: [UInt8] = [23, 3, 3, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        record += inner
        record += [UInt8](repeating: 0, count: 16)
        let sequence = peer.writeSequence
        var nonce = shadow.iv
        withUnsafeMutableBytes(of: &nonce) { nonce in
            for index in 0..<8 { nonce[4 + index] ^= UInt8(truncatingIfNeeded: sequence >> (56 - 8 * index)) }
        }
        let context = fuzzCiphers.sealer(handOver.aead)!
        let ok = withUnsafeBytes(of: &shadow.key) { key in
            withUnsafeBytes(of: &nonce) { nonce in
                record.withUnsafeMutableBufferPointer { record in
                    let base = record.baseAddress!
                    return CSystem_tls_aead_seal(
                        context, key.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), base, 5, base + 5, inner.count,
                        base + 5 + inner.count)
                }
            }
        }
        precondition(ok == 1, "sealing by hand failed")
        peer.setSequences(read: peer.readSequence, write: sequence + 1)
        let start = pending.count
        pending += record
        recordSealed(start..<pending.count, type: type, content: content)
    }

    func recordSealed(_ range: Range<Int>, type: TLSContentType?, content: [UInt8]) {
        forgetLast()
        let data = type == .applicationData ? content : []
        expected += data
        sealedBytes += range.count
        last = LastRecord(range: range, original: Array(pending[range]), data: data)
    }

    /// TLS 1.3: the peer's next write keys, after it sealed a KeyUpdate.
    func peerChangesKeys() {
        guard tls13 else { return }
        precondition(peer.changeWriteKeys(), "the peer could not change keys")
        let sha384: Int32 = handOver.aead == UInt8(CSystem_AES_256_GCM) ? 1 : 0
        let secretLength = Int(handOver.secret_length)
        var next = shadow.secret
        var key = shadow.key
        var iv = shadow.iv
        let ok = withUnsafeBytes(of: &shadow.secret) { secret in
            withUnsafeMutableBytes(of: &next) { next in
                withUnsafeMutableBytes(of: &key) { key in
                    withUnsafeMutableBytes(of: &iv) { iv in
                        let nextSecret = next.baseAddress!.assumingMemoryBound(to: UInt8.self)
                        return CSystem_tls13_next_secret(
                            sha384, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), secretLength, nextSecret)
                            == 1
                            && CSystem_tls13_traffic_keys(
                                sha384, nextSecret, secretLength, key.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                Int(handOver.key_length), iv.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
                    }
                }
            }
        }
        precondition(ok, "the shadow keys could not change")
        shadow.secret = next
        shadow.key = key
        shadow.iv = iv
    }

    /// The last record's bytes were changed in place: its data is expected only if they are as sealed (flipping a
    /// bit twice, or setting a header byte to its value, gives the record back).
    func lastChanged() {
        guard var record = last else { return }
        let intact = pending.withUnsafeBytes { pending in
            record.original.withUnsafeBytes { same(UnsafeRawBufferPointer(rebasing: pending[record.range]), $0) }
        }
        if intact != record.intact {
            if intact { expected += record.data } else { expected.removeLast(record.data.count) }
            record.intact = intact
        }
        last = record
    }

    /// The last record is damaged for good (cut short), or stays as it is: no operation applies to it any more.
    func forgetLast(damaging: Bool = false) {
        guard let record = last else { return }
        if damaging && record.intact {
            expected.removeLast(record.data.count)
            last!.intact = false
        }
        if !last!.intact { damaged = true }
        last = nil
    }

    // MARK: The server opening

    /// Everything pending to the server, `chunk` bytes at a time.
    func deliver(chunk: Int) {
        forgetLast()
        var next = 0
        while next < pending.count {
            // Past the first bytes of a large record, chunks grow with it (as a read of a full socket would), so
            // that a byte at a time does not cost the square of its length.
            let count = min(max(chunk, partial.count > 64 ? partial.count : 0), pending.count - next)
            let start = next
            next += count
            fed += count
            fedSinceDrain += count
            if closeNotifyReceived {  // the connection is closed: nothing more is read
                partial = []
                continue
            }
            // Exactly the bytes a read would hold, so that the sanitizer sees any read past them; copied as memory
            // (concatenating arrays went byte by byte, every step instrumented: a fifth of the target's time).
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: partial.count + count, alignment: 16)
            defer { buffer.deallocate() }
            partial.withUnsafeBytes { buffer.copyMemory(from: $0) }
            pending.withUnsafeBytes {
                UnsafeMutableRawBufferPointer(rebasing: buffer[partial.count...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + count]))
            }
            partial = []
            openAll(buffer)
        }
        pending = []
    }

    func openAll(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while true {
            let start = offset
            let unsentBefore = server.unsent.count
            let sequenceBefore = server.readSequence
            let result = server.open(buffer, end: buffer.count, offset: &offset, ciphers: fuzzCiphers)
            trace("  server: \(result), offset \(start) -> \(offset), unsent \(unsentBefore) -> \(server.unsent.count)")
            precondition(offset >= start && offset <= buffer.count, "offset out of range")
            if serverFailed {
                precondition(result == .failure, "the server opened a record after it failed")
                precondition(server.unsent.count == unsentBefore, "the server sealed after it failed")
                return
            }
            switch result {
            case .data(let range):
                precondition(!range.isEmpty, "empty data delivered")
                precondition(
                    range.lowerBound >= start + 5 && range.upperBound <= offset - 16, "data outside its record")
                precondition(server.unsent.count == unsentBefore, "data with something sealed")
                let end = delivered + range.count
                precondition(
                    end <= expected.count
                        && expected.withUnsafeBytes {
                            same(
                                UnsafeRawBufferPointer(rebasing: $0[delivered..<end]),
                                UnsafeRawBufferPointer(rebasing: buffer[range]))
                        },
                    "delivered data the peer did not seal intact (bytes \(delivered)..<\(end), \(expected.count) expected)"
                )
                delivered = end
            case .needMore:
                precondition(offset == start, "needMore moved the offset")
                if buffer.count - offset >= 5 {
                    let length = Int(buffer[offset + 3]) << 8 | Int(buffer[offset + 4])
                    precondition(buffer.count - offset < 5 + length, "needMore with a whole record")
                }
                partial = Array(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                return
            case .control:
                precondition(offset > start, "a record handled without moving on")
                readUnsent(from: unsentBefore, refusal: false)
            case .closeNotify:
                precondition(offset > start, "close_notify without moving on")
                if server.unsent.count > unsentBefore {
                    // TLS 1.2: a renegotiation attempt the used-up key may not answer ends the input, with the
                    // server's close_notify instead of a warning.
                    precondition(!tls13 && server.keyExhausted, "close_notify with something sealed")
                    let records = peerOpen(Array(server.unsent[unsentBefore...]))
                    unsentRead = server.unsent.count
                    // Warnings for the attempts the key could still answer (one record may carry several), then it.
                    precondition(
                        records.last.map { $0.0 == 21 && $0.1 == [1, 0] } == true
                            && records.dropLast().allSatisfy { $0.0 == 21 && $0.1 == [1, 100] },
                        "not warnings and then close_notify: \(records)")
                    serverSentClose = true
                }
                closeNotifyReceived = true
                return
            case .failure:
                serverFailed = true
                let authenticated = server.readSequence == sequenceBefore &+ 1 && offset > start
                if serverSentClose {
                    // Nothing follows close_notify, not even a fatal alert.
                    precondition(server.unsent.count == unsentBefore, "an alert sealed after close_notify")
                } else if server.unsent.count == unsentBefore {
                    // Only a fatal alert from the peer ends the connection without one from the server.
                    precondition(authenticated, "refused without an alert")
                    let (type, content) = plaintext(buffer, record: start..<offset)
                    let fatal = content.count == 2 && (tls13 ? content[1] != 0 && content[1] != 90 : content[0] == 2)
                    precondition(type == 21 && fatal, "refused without an alert (type \(type), \(content))")
                } else {
                    readUnsent(from: unsentBefore, refusal: true)
                }
                afterFailure(buffer)
                return
            }
            checkUnsentBound(unsentBefore)
        }
    }

    /// The inner plaintext of a record opened in place: its type and content.
    func plaintext(_ buffer: UnsafeMutableRawBufferPointer, record: Range<Int>) -> (UInt8, [UInt8]) {
        let text = record.lowerBound + 5 + explicitNonce..<record.upperBound - 16
        var content = Array(UnsafeRawBufferPointer(rebasing: buffer[text]))
        var type = buffer[record.lowerBound]
        if tls13 {
            while content.last == 0 { content.removeLast() }
            type = content.popLast() ?? 0
        }
        return (type, content)
    }

    func checkUnsentBound(_ before: Int) {
        let limit = 6 * (5 + server.overhead)
        precondition(server.unsent.count - before <= limit, "one record sealed \(server.unsent.count - before) bytes")
        precondition(server.unsent.count <= 4 * fedSinceDrain + limit, "unsent grows faster than the input")
    }

    /// After a failure: nothing is opened, delivered or sealed any more.
    func afterFailure(_ buffer: UnsafeMutableRawBufferPointer) {
        let unsent = server.unsent.count
        var offset = 0
        precondition(server.open(buffer, end: buffer.count, offset: &offset, ciphers: fuzzCiphers) == .failure)
        precondition(offset == 0, "a failed layer moved on")
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
        defer { out.deallocate() }
        let sealed = [UInt8](repeating: 7, count: 10).withUnsafeBytes {
            server.seal($0, into: out, ciphers: fuzzCiphers)
        }
        precondition(sealed == nil, "sealed after a failure")
        server.sealCloseNotify(ciphers: fuzzCiphers)
        precondition(server.unsent.count == unsent, "close_notify sealed after a failure")
    }

    // MARK: The peer opening what the server seals

    /// The records the server added to `unsent` since `from`, opened by the peer: warnings (TLS 1.2
    /// no_renegotiation) or KeyUpdates (TLS 1.3), then, for a refusal, exactly one fatal alert.
    func readUnsent(from: Int, refusal: Bool) {
        let records = peerOpen(Array(server.unsent[from...]))
        unsentRead = server.unsent.count
        for (index, (type, content)) in records.enumerated() {
            if refusal && index == records.count - 1 {
                precondition(type == 21 && content.count == 2 && content[0] == 2, "a refusal without a fatal alert")
                precondition(
                    [10, 20, 22, 40, 47, 50, 70].contains(content[1]), "unexpected alert \(content[1])")
            } else if tls13 {
                precondition(type == 22 && content == [24, 0, 0, 1, 0], "sealed \(type) \(content), not a KeyUpdate")
            } else {
                precondition(type == 21 && content == [1, 100], "sealed \(type) \(content), not no_renegotiation")
            }
        }
        precondition(!refusal || !records.isEmpty, "a refusal sealed nothing")
    }

    /// Opens whole records the server sealed, as its client: their types and contents.
    @discardableResult
    func peerOpen(_ bytes: [UInt8]) -> [(UInt8, [UInt8])] {
        guard !bytes.isEmpty else { return [] }
        precondition(!peerSawEnd, "the server sealed after its close_notify or a fatal alert")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        var records: [(UInt8, [UInt8])] = []
        defer { trace("  the peer opens what the server sealed: \(records) at \(openedSequences)") }
        openedSequences = []
        var offset = 0
        while offset < bytes.count {
            precondition(!peerSawEnd, "the server sealed after its close_notify or a fatal alert")
            let start = offset
            openedSequences.append(peerReader.readSequence)
            let result = peerReader.open(buffer, end: buffer.count, offset: &offset, ciphers: fuzzCiphers)
            precondition(offset > start, "the server sealed an incomplete record (\(result))")
            let record = plaintext(buffer, record: start..<offset)
            records.append(record)
            switch result {
            case .data(let range):
                precondition(
                    record.0 == 23
                        && record.1.withUnsafeBytes { same(UnsafeRawBufferPointer(rebasing: buffer[range]), $0) })
            case .control:
                precondition(peerReader.unsent.isEmpty, "the server's record made its peer answer")
            case .closeNotify:
                precondition(record == (21, [1, 0]) || tls13 && record.0 == 21 && record.1 == [2, 0])
                peerSawEnd = true
            case .failure:
                if !tls13 && record.0 == 21 && record.1 == [1, 100] {
                    // TLSRecordLayer refuses a no_renegotiation warning (it never asks for one); a new reader takes
                    // over at the next sequence number.
                    peerReader = RecordRun.reader(handOver, readSequence: peerReader.readSequence)
                } else {
                    precondition(peerReader.unsent.isEmpty, "the peer refused the server's record")
                    precondition(record.0 == 21 && record.1.count == 2 && record.1[0] == 2, "not a fatal alert")
                    peerSawEnd = true
                }
            case .needMore:
                preconditionFailure("the server sealed an incomplete record")
            }
        }
        return records
    }

    func serverData(_ count: Int, room: Int, seed: UInt8) {
        let plaintext = pattern(count, seed: seed, step: 13)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(room, 1), alignment: 16)
        defer { out.deallocate() }
        let sequence = server.writeSequence
        let limit = server.limits.maxRecordsPerKey
        let result = plaintext.withUnsafeBytes {
            server.seal($0, into: UnsafeMutableRawBufferPointer(rebasing: out[..<room]), ciphers: fuzzCiphers)
        }
        if serverFailed || serverSentClose {
            precondition(result == nil, "sealed after a failure or close_notify")
            return
        }
        guard let (consumed, sealed) = result else {
            // Only a TLS 1.2 key that is used up stops the server.
            precondition(!tls13 && server.keyExhausted && count > 0, "the server could not seal (sequence \(sequence))")
            precondition(server.writeSequence >= limit, "the key stopped before its limit")
            precondition(server.writeSequence == sequence, "records sealed \(sequence)..<\(server.writeSequence) dropped")
            return
        }
        precondition(consumed <= count && sealed <= room, "sealed out of range")
        let records = peerOpen(Array(out[..<sealed]))
        var data: [UInt8] = []
        data.reserveCapacity(consumed)
        for (type, content) in records where type == 23 { data.append(contentsOf: content) }
        precondition(
            data.withUnsafeBytes { returned in
                plaintext.withUnsafeBytes { same(returned, UnsafeRawBufferPointer(rebasing: $0[..<consumed])) }
            },
            "the server's data did not come back")
        let fragment = min(16384, Int(handOver.max_fragment))
        for ((type, content), recordSequence) in zip(records, openedSequences) {
            precondition(type == 23 || type == 22 && content == [24, 0, 0, 1, 0], "sealed \(type) with data")
            precondition(content.count <= fragment, "a record over the fragment length")
            // No key seals data at or past its limit. (Where the KeyUpdates fall is checked record by record in
            // TLSRecordLayerTests; here the peer's count can also include the server's earlier answers.)
            precondition(
                type != 23 || recordSequence < limit,
                "data sealed at sequence \(recordSequence), limit \(limit), key at \(sequence) before")
        }
        // Room for a record (and a KeyUpdate before it when the key is at its limit) is used.
        let needed = server.overhead + 1 + (tls13 && sequence + 1 >= limit ? 5 + server.overhead : 0)
        if count > 0 && room >= needed {
            precondition(consumed > 0, "nothing sealed with room for a record")
        }
    }

    func serverClose() {
        let before = server.unsent.count
        server.sealCloseNotify(ciphers: fuzzCiphers)
        if serverFailed || serverSentClose {
            precondition(server.unsent.count == before, "close_notify sealed twice or after a fatal alert")
            return
        }
        serverSentClose = true
        let records = peerOpen(Array(server.unsent[before...]))
        unsentRead = server.unsent.count
        precondition(records.count == 1 && records[0].0 == 21 && records[0].1 == [1, 0], "not a close_notify")
    }

    func drain() {
        server.unsent = []
        unsentRead = 0
        fedSinceDrain = 0
    }

    // MARK: The script

    func run(_ script: inout ScriptReader) {
        var lastChunk = 4096
        var operations = 0
        while !script.atEnd && operations < 512 {
            operations += 1
            let operation = Operation(rawValue: script.byte() % UInt8(Operation.allCases.count))!
            trace("\(operation)")
            switch operation {
            case .data:
                let count = script.length(16384 + 300)
                let seed = script.byte()
                guard sealedBytes + count < 1 << 18 else { break }
                seal(.applicationData, pattern(count, seed: seed))
            case .alert:
                seal(.alert, [script.byte(), script.byte()])
            case .oddAlert:
                let count = Int(script.byte() % 5)
                seal(.alert, script.take(count))
            case .handshakeBytes:
                let count = Int(script.byte() % 32)
                seal(.handshake, script.take(count))
            case .empty:
                let choice = script.byte() % 5
                if choice == 4 {
                    if tls13 { sealByHand([UInt8](repeating: 0, count: padding), type: nil, content: []) }
                } else {
                    seal(TLSContentType(rawValue: 20 + choice)!, [])
                }
            case .keyUpdate:
                let request = script.byte() % 3
                let split = Int(script.byte() % 5)
                let message: [UInt8] = [24, 0, 0, 1, request]
                if split == 0 {
                    seal(.handshake, message)
                } else {
                    seal(.handshake, Array(message[..<split]))
                    seal(.handshake, Array(message[split...]))
                }
                peerChangesKeys()
            case .clientHello:
                let length = Int(script.byte())
                let message = [1, 0, 0, UInt8(length)] + pattern(length, seed: 0, step: 5)
                let split = Int(script.byte()) % (message.count + 1)
                if split == 0 || split == message.count {
                    seal(.handshake, message)
                } else {
                    seal(.handshake, Array(message[..<split]))
                    seal(.handshake, Array(message[split...]))
                }
            case .raw:
                let count = Int(script.byte() % 32)
                forgetLast()
                pending += script.take(count)
                damaged = true
            case .flip:
                let bit = script.u16()
                if let range = last?.range {
                    let index = bit % (range.count * 8)
                    pending[range.lowerBound + index / 8] ^= UInt8(1 << (index % 8))
                    lastChanged()
                }
            case .cut:
                let count = Int(script.byte())
                if let range = last?.range {
                    let removed = 1 + count % (range.count - 1)
                    pending.removeSubrange(range.upperBound - removed..<range.upperBound)
                    // The bytes sent after a cut record complete it: if they happened to equal the removed ones
                    // (1 in 256 for one byte), the record would be whole again, authentic, and rightly delivered.
                    // Changing its last remaining body byte keeps it damaged whatever follows.
                    let end = range.upperBound - removed
                    if end - range.lowerBound > 5 { pending[end - 1] ^= 0xFF }
                    forgetLast(damaging: true)
                }
            case .duplicate:
                if let range = last?.range {
                    forgetLast()
                    pending += pending[range]
                    damaged = true
                }
            case .header:
                let index = Int(script.byte() % 5)
                let value = script.byte()
                if let range = last?.range {
                    pending[range.lowerBound + index] = value
                    lastChanged()
                }
            case .padding:
                padding = script.u16() % 300
            case .deliver:
                let size = Int(script.byte())
                lastChunk = size < 128 ? size + 1 : (size - 127) * 128
                deliver(chunk: lastChunk)
            case .serverData:
                let count = script.length(20000)
                let room = script.u16()
                let seed = script.byte()
                guard sealedBytes + count < 1 << 18 else { break }
                sealedBytes += count
                serverData(count, room: room, seed: seed)
            case .drain:
                drain()
            case .serverClose:
                serverClose()
            case .keyLimit:
                server.limits.maxRecordsPerKey = max(1, server.writeSequence + UInt64(script.byte() % 6))
            }
        }
        deliver(chunk: lastChunk)
        trace(
            "end: \(delivered) of \(expected.count) bytes delivered, failed \(serverFailed), close_notify \(closeNotifyReceived)"
        )
        if !damaged && !serverFailed && !closeNotifyReceived {
            // Nothing was damaged and nothing refused: every record arrived whole and was opened.
            precondition(partial.isEmpty, "a whole stream left an incomplete record")
            precondition(delivered == expected.count, "data lost: \(delivered) of \(expected.count) bytes delivered")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    var script = ScriptReader(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let suite = Int(script.byte()) % fuzzSuites.count
    let run = RecordRun(handOvers[suite], tls13: fuzzSuites[suite].tls13)
    run.run(&script)
    return 0
}

@main
struct FuzzMain {
    static func main() {
        #if FUZZING
            _ = handOvers.count  // the handshakes before the first input, not inside it
        #endif
        runFuzzer(fuzz)
    }
}

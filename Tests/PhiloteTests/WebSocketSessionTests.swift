import Glibc
import Testing

@testable import Philote

/// Reads `chunks` through one session the way a connection does (each read in a buffer of its own, unmasked in
/// place), into one recording sink, and stops as a connection does at an error or a close frame. Returns the events
/// and the error that ended it, if any.
private func read(
    _ chunks: [[UInt8]], session: inout WebSocketSession
) -> (events: [RecordingSink.Event], error: ProtocolError?) {
    let sink = RecordingSink()
    for chunk in chunks {
        var bytes = chunk
        if let error = bytes.withUnsafeMutableBytes({ session.read($0, into: sink) }) { return (sink.events, error) }
        if case .close = sink.events.last { break }
    }
    return (sink.events, nil)
}

private func read(_ chunks: [[UInt8]], maxMessageSize: Int = 65536) -> (
    events: [RecordingSink.Event], error: ProtocolError?
) {
    var session = WebSocketSession(maxMessageSize: maxMessageSize, now: 0)
    return read(chunks, session: &session)
}

private let text = Array("hello, world".utf8)
private let binary = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
private let ping = Array("are you there".utf8)

/// Masked client frames with different keys and every length encoding up to 16 bits, a fragmented message with
/// a control frame inside it, and an empty message.
private let stream: [UInt8] =
    ClientFrameEncoder.frame(.text, payload: text, maskKey: 0xA1B2_C3D4)
    + ClientFrameEncoder.frame(.binary, payload: binary, maskKey: 0x0102_0304)
    + ClientFrameEncoder.frame(.ping, payload: ping, maskKey: 0xFFFF_0000)
    + clientFrame(Opcode.text.rawValue, Array("frag".utf8), fin: false)
    + ClientFrameEncoder.frame(.pong, payload: [UInt8](), maskKey: 0x5555_AAAA)
    + clientFrame(Opcode.continuation.rawValue, Array("mented".utf8), fin: true, mask: [9, 8, 7, 6])
    + ClientFrameEncoder.frame(.binary, payload: [UInt8](), maskKey: 0x7777_7777)

private let expectedEvents: [RecordingSink.Event] = [
    .message(.text, text), .message(.binary, binary), .ping(ping), .pong([]),
    .message(.text, Array("fragmented".utf8)), .message(.binary, []),
]

@Suite struct WebSocketSessionTests {
    @Test func wholeStreamInOneRead() {
        let (events, error) = read([stream])
        #expect(error == nil)
        #expect(events == expectedEvents)
    }

    /// The stream cut in two at every byte delivers the same messages: the session holds the incomplete frame.
    @Test func aStreamSplitAtEveryByteDeliversTheSameMessages() {
        for cut in 0...stream.count {
            let (events, error) = read([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(error == nil, "cut at \(cut)")
            #expect(events == expectedEvents, "cut at \(cut)")
        }
    }

    /// One byte per read, and cuts in three places at varied strides.
    @Test func aStreamReadByteByByteOrInThreeDeliversTheSameMessages() {
        #expect(read(stream.map { [$0] }).events == expectedEvents)
        for first in stride(from: 1, to: stream.count, by: 13) {
            for second in stride(from: first, to: stream.count, by: 29) {
                let chunks = [Array(stream[..<first]), Array(stream[first..<second]), Array(stream[second...])]
                #expect(read(chunks).events == expectedEvents, "cuts at \(first), \(second)")
            }
        }
    }

    /// A protocol error (here an unmasked client frame) is returned, and ends the read: nothing after it is
    /// delivered, nor kept for the next read.
    @Test func aProtocolErrorIsReturnedAndStopsReading() {
        let good = ClientFrameEncoder.frame(.text, payload: Array("before".utf8), maskKey: 0x0BAD_F00D)
        let unmasked = clientFrame(Opcode.text.rawValue, Array("bad".utf8), mask: nil)
        let after = ClientFrameEncoder.frame(.text, payload: Array("after".utf8), maskKey: 0x0BAD_F00D)
        var session = WebSocketSession(maxMessageSize: 65536, now: 0)
        let outcome = read([good + unmasked + after + after.prefix(5)], session: &session)
        #expect(outcome.events == [.message(.text, Array("before".utf8))])
        guard case .protocolViolation = outcome.error else {
            Issue.record("expected a protocol violation, got \(String(describing: outcome.error))")
            return
        }
        #expect(outcome.error?.closeCode == .protocolError)
        // The partial frame after the error was dropped: a later read starts at a frame boundary.
        let fresh = ClientFrameEncoder.frame(.binary, payload: [1, 2, 3], maskKey: 0x2468_ACE0)
        #expect(read([fresh], session: &session).events == [.message(.binary, [1, 2, 3])])

        // Cut anywhere inside the bad frame: the error comes with the read that completes its header.
        for cut in good.count..<(good.count + unmasked.count) {
            let bytes = good + unmasked + after
            let (events, error) = read([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(events == [.message(.text, Array("before".utf8))], "cut at \(cut)")
            #expect(error?.closeCode == .protocolError, "cut at \(cut)")
        }
    }

    /// Invalid UTF-8 in a text message is a 1007, and a message over the limit a 1009.
    @Test func payloadErrorsCarryTheirCloseCodes() {
        let invalid = ClientFrameEncoder.frame(.text, payload: [0x68, 0xC3, 0x28], maskKey: 0x1111_2222)
        #expect(read([invalid]).error?.closeCode == .invalidPayload)
        let big = ClientFrameEncoder.frame(.binary, payload: [UInt8](repeating: 1, count: 101), maskKey: 0x1111_2222)
        #expect(read([big], maxMessageSize: 100).error?.closeCode == .messageTooBig)
    }

    /// A close frame is reported with its code and reason, is not an error, and ends the read: the frames after it
    /// are not delivered, nor kept for a next read.
    @Test func aCloseFrameStopsReading() {
        let before = ClientFrameEncoder.frame(.text, payload: Array("last words".utf8), maskKey: 0x0F0F_0F0F)
        let close = ClientFrameEncoder.close(code: 1000, reason: "bye", maskKey: 0x1357_9BDF)
        let after = ClientFrameEncoder.frame(.text, payload: Array("too late".utf8), maskKey: 0x0F0F_0F0F)
        let bytes = before + close + after + after
        let expected: [RecordingSink.Event] = [
            .message(.text, Array("last words".utf8)), .close(1000, Array("bye".utf8)),
        ]
        for cut in 0...(before.count + close.count) {
            let (events, error) = read([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(error == nil, "cut at \(cut)")
            #expect(events == expected, "cut at \(cut)")
        }
        // Part of a frame after the close, in the same read, is not held: a later read starts afresh.
        var session = WebSocketSession(maxMessageSize: 65536, now: 0)
        #expect(read([before + close + after.prefix(5)], session: &session).events == expected)
        let fresh = ClientFrameEncoder.frame(.binary, payload: [4, 5], maskKey: 0x1020_3040)
        #expect(read([fresh], session: &session).events == [.message(.binary, [4, 5])])
        // An empty close has no code.
        #expect(read([ClientFrameEncoder.close(code: nil, maskKey: 1)]).events == [.close(nil, [])])
    }

    // MARK: Liveness

    /// Quiet until the ping interval has passed since the peer was last heard, then `.ping` once, then quiet until
    /// the pong timeout has passed since the ping, then `.unresponsive`.
    @Test func theLivenessClockPingsOnceThenGivesUp() {
        var session = WebSocketSession(maxMessageSize: 1024, now: 1_000)
        let interval: UInt64 = 100
        let timeout: UInt64 = 50
        #expect(session.livenessDeadline(pingInterval: interval, pongTimeout: timeout) == 1_100)
        #expect(session.checkLiveness(now: 1_000, pingInterval: interval, pongTimeout: timeout) == .quiet)
        #expect(session.checkLiveness(now: 1_099, pingInterval: interval, pongTimeout: timeout) == .quiet)
        #expect(session.livenessDeadline(pingInterval: interval, pongTimeout: timeout) == 1_100)

        #expect(session.checkLiveness(now: 1_100, pingInterval: interval, pongTimeout: timeout) == .ping)
        #expect(session.livenessDeadline(pingInterval: interval, pongTimeout: timeout) == 1_150)
        #expect(session.checkLiveness(now: 1_100, pingInterval: interval, pongTimeout: timeout) == .quiet)
        #expect(session.checkLiveness(now: 1_149, pingInterval: interval, pongTimeout: timeout) == .quiet)
        #expect(session.checkLiveness(now: 1_150, pingInterval: interval, pongTimeout: timeout) == .unresponsive)
    }

    /// A late check pings at the time of the check, and the pong deadline counts from then.
    @Test func aLateCheckPingsThenAndTheTimeoutCountsFromIt() {
        var session = WebSocketSession(maxMessageSize: 1024, now: 1_000)
        #expect(session.checkLiveness(now: 5_000, pingInterval: 100, pongTimeout: 50) == .ping)
        #expect(session.livenessDeadline(pingInterval: 100, pongTimeout: 50) == 5_050)
        #expect(session.checkLiveness(now: 5_049, pingInterval: 100, pongTimeout: 50) == .quiet)
        #expect(session.checkLiveness(now: 5_050, pingInterval: 100, pongTimeout: 50) == .unresponsive)
    }

    /// Hearing from the peer (anything, a pong included) resets the clock, before or after a ping.
    @Test func hearingFromThePeerResetsTheClock() {
        var session = WebSocketSession(maxMessageSize: 1024, now: 1_000)
        session.heard(at: 1_080)
        #expect(session.checkLiveness(now: 1_100, pingInterval: 100, pongTimeout: 50) == .quiet)
        #expect(session.livenessDeadline(pingInterval: 100, pongTimeout: 50) == 1_180)
        #expect(session.checkLiveness(now: 1_180, pingInterval: 100, pongTimeout: 50) == .ping)
        session.heard(at: 1_200)
        #expect(session.livenessDeadline(pingInterval: 100, pongTimeout: 50) == 1_300)
        #expect(
            session.checkLiveness(now: 1_230, pingInterval: 100, pongTimeout: 50) == .quiet, "the ping was answered")
        #expect(session.checkLiveness(now: 1_299, pingInterval: 100, pongTimeout: 50) == .quiet)
        #expect(session.checkLiveness(now: 1_300, pingInterval: 100, pongTimeout: 50) == .ping)
    }

    /// A ping interval of 0 turns the clock off: no deadline, never a ping or a give-up.
    @Test func aZeroIntervalTurnsPingsOff() {
        var session = WebSocketSession(maxMessageSize: 1024, now: 1_000)
        #expect(session.livenessDeadline(pingInterval: 0, pongTimeout: 50) == nil)
        for now: UInt64 in [1_000, 1_100, 1_000_000, .max] {
            #expect(session.checkLiveness(now: now, pingInterval: 0, pongTimeout: 50) == .quiet)
        }
        #expect(session.livenessDeadline(pingInterval: 0, pongTimeout: 50) == nil)
    }
}

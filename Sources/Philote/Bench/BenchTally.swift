/// The counters of one event loop's share of a bench run, cumulative from the start; the loops' tallies add
/// up to the run's. A value type, so a loop can hand a copy to the thread that prints.
public struct BenchTally: Equatable, Sendable {
    public var subscribersOpen = 0
    public var publishersOpen = 0
    /// Connections that could not be opened (TCP or handshake), and of those the handshakes refused.
    public var connectFailures = 0
    public var handshakeFailures = 0
    /// The first failure's reason, for the report.
    public var firstFailure: String?

    /// Publishes written to a socket or its send queue, all and in the measured window.
    public var published: UInt64 = 0
    public var publishedMeasured: UInt64 = 0
    /// Publishes due at the fixed rate that were never sent because the publisher's send queue was full
    /// (the server did not read): the offered load the server refused.
    public var backlog: UInt64 = 0
    /// Of `publishedMeasured`: those sent compressed (permessage-deflate agreed, `--deflate`).
    public var publishedCompressed: UInt64 = 0
    /// `--rate max`: times a publisher gave up waiting (1 s without progress) and wrote its window off.
    public var stalls: UInt64 = 0

    /// Messages subscribers received with a bench stamp: all, and those sent in the measured window.
    public var delivered: UInt64 = 0
    public var deliveredMeasured: UInt64 = 0
    /// Messages received without a stamp (error replies, other clients' messages).
    public var otherMessages: UInt64 = 0
    /// Open connections that ended before the run did: by close code (0: no close frame, the connection
    /// dropped), and protocol errors found in what the server sent.
    public var closeCodes: [UInt16: UInt64] = [:]
    public var protocolErrors: UInt64 = 0

    public init() {}

    public mutating func add(_ other: BenchTally) {
        subscribersOpen += other.subscribersOpen
        publishersOpen += other.publishersOpen
        connectFailures += other.connectFailures
        handshakeFailures += other.handshakeFailures
        if firstFailure == nil { firstFailure = other.firstFailure }
        published += other.published
        publishedMeasured += other.publishedMeasured
        backlog += other.backlog
        publishedCompressed += other.publishedCompressed
        stalls += other.stalls
        delivered += other.delivered
        deliveredMeasured += other.deliveredMeasured
        otherMessages += other.otherMessages
        closeCodes.merge(other.closeCodes, uniquingKeysWith: +)
        protocolErrors += other.protocolErrors
    }

    /// Connections closed, dropped or broken while open: the live line's "errors".
    public var errors: UInt64 { closeCodes.values.reduce(0, +) + protocolErrors + UInt64(connectFailures) }
}

import Philote
import Synchronization

/// One event loop's share of a bench run: its connections (opened at the loop's share of --connect-rate),
/// the latency histogram and counters of what its subscribers receive, and its publishers. Everything but
/// `slot` is touched on the loop's thread only; the coordinator asks for copies through `execute`.
final class BenchWorker: EventHandler, @unchecked Sendable {
    /// Connects in progress per loop at most: more only fills the server's listen backlog.
    static let maxConnectsInProgress = 64

    let handlerID: UInt64
    let index: Int
    let loop: EventLoop
    let plan: BenchPlan
    private let channels: Int
    var tally = BenchTally()
    /// What every delivery updates, behind a pointer: a class's stored properties cost a dynamic exclusivity
    /// check per access, and this path runs hundreds of thousands of times a second.
    private let hot: UnsafeMutablePointer<BenchDeliveries>
    /// The time of the read being parsed (ns): one clock read per read, not per message.
    var readTime: UInt64 = 0
    /// Compresses the loop's publishes when the server agreed to permessage-deflate (no context takeover: one
    /// zlib state serves every publisher of the loop). Window 15 and zlib's default level, as the harness uses.
    private(set) lazy var deflater = Deflater(windowBits: 15, level: -1)
    /// Inflates the loop's compressed deliveries into one kept buffer (see BenchInflater).
    private(set) lazy var inflater = BenchInflater()

    private var queue: [(role: BenchConnection.Role, index: Int)] = []
    private var queued = 0
    private var started = 0
    private var inProgress = 0
    private var pacingSince: UInt64 = 0
    private var pacedCount = 0
    private var pacing = false
    private var nextHandlerID: UInt64

    private var subscribers: [BenchConnection] = []
    private var publishers: [BenchPublisher] = []
    private var subscribersOpen: [Int]
    private var subscribersSettled = 0
    private var publishersSettled = 0

    private let dataSize: Int

    /// The latest copy for the coordinator.
    let slot = Mutex<BenchSnapshot?>(nil)

    init(index: Int, loop: EventLoop, plan: BenchPlan) {
        self.index = index
        self.loop = loop
        self.plan = plan
        channels = plan.settings.channels
        handlerID = UInt64(index + 1) << 48
        nextHandlerID = (UInt64(index + 1) << 48) + 1
        subscribersOpen = [Int](repeating: 0, count: plan.settings.channels)
        dataSize = plan.settings.size
        hot = .allocate(capacity: 1)
        hot.initialize(to: BenchDeliveries(publishers: plan.settings.streams))
    }

    deinit {
        hot.deinitialize(count: 1)
        hot.deallocate()
    }

    // MARK: Connecting

    /// Opens these connections (on the loop), paced; subscribers and publishers go in separate calls.
    func open(_ role: BenchConnection.Role, indices: [Int]) {
        queue += indices.map { (role, $0) }
        pacingSince = loop.now
        pacedCount = 0
        if !pacing {
            pacing = true
            pace()
        }
    }

    /// Starts the connects the rate allows so far, and comes back in 5 ms while any are left.
    private func pace() {
        let perLoop = Double(plan.settings.connectRate) / Double(plan.settings.workers)
        let allowed = Int(Double(loop.now - pacingSince) * perLoop / 1000) + 1
        while queued < queue.count && pacedCount < allowed && inProgress < Self.maxConnectsInProgress {
            let (role, index) = queue[queued]
            queued += 1
            pacedCount += 1
            start(role, index: index)
        }
        if queued < queue.count {
            loop.schedule(at: loop.now + 5) { [self] in pace() }
        } else {
            pacing = false
        }
    }

    private func start(_ role: BenchConnection.Role, index: Int) {
        let connection = BenchConnection(
            role: role, index: index, channel: plan.settings.channel(of: index), worker: self, handlerID: nextHandlerID)
        nextHandlerID += 1
        inProgress += 1
        started += 1
        _ = connection.connect(to: plan.address)
    }

    func opened(_ connection: BenchConnection) {
        inProgress -= 1
        switch connection.role {
        case .subscriber:
            subscribers.append(connection)
            subscribersOpen[connection.channel] += 1
            subscribersSettled += 1
            tally.subscribersOpen += 1
        case .publisher:
            for stream in plan.settings.streams(of: connection.index) {
                let publisher = BenchPublisher(stream: stream, connection: connection, worker: self)
                connection.publishers.append(publisher)
                publishers.append(publisher)
            }
            publishersSettled += 1
            tally.publishersOpen += 1
        }
    }

    func failed(_ connection: BenchConnection, reason: String, refused: Bool) {
        inProgress -= 1
        if connection.role == .subscriber { subscribersSettled += 1 } else { publishersSettled += 1 }
        tally.connectFailures += 1
        if refused { tally.handshakeFailures += 1 }
        if tally.firstFailure == nil { tally.firstFailure = reason }
    }

    /// An open connection ended before the run did (`code` 0: dropped without a close frame).
    func closed(_ connection: BenchConnection, code: UInt16) {
        guard plan.shared.phase != .draining || code != 0 else { return }
        tally.closeCodes[code, default: 0] += 1
        if connection.role == .subscriber { subscribersOpen[connection.channel] -= 1 }
    }

    func protocolError(_ connection: BenchConnection, _ why: String) {
        tally.protocolErrors += 1
        if tally.firstFailure == nil { tally.firstFailure = "protocol error from the server: \(why)" }
    }

    // MARK: Publishing

    /// Publishing starts; `fans[c]`: open subscribers of channel c over all loops.
    func startPublishing(fans: [Int]) {
        for publisher in publishers {
            publisher.start(fan: fans[publisher.channel])
        }
    }

    // MARK: Receiving

    @inline(__always)
    func received(_ payload: UnsafeRawBufferPointer, by subscriber: BenchConnection) {
        guard let stamp = BenchStamp.find(in: payload, dataSize: dataSize),
            stamp.publisher < UInt64(hot.pointee.delivered.count), Int(stamp.publisher) % channels == subscriber.channel
        else {
            hot.pointee.otherMessages += 1
            return
        }
        let publisher = Int(stamp.publisher)
        if hot.pointee.count(publisher) && !hot.pointee.isDirty {
            hot.pointee.isDirty = true
            loop.markDirty(self)
        }
        guard stamp.measured else { return }
        hot.pointee.deliveredMeasured += 1
        hot.pointee.latency.record(readTime > stamp.sentAt ? readTime - stamp.sentAt : 0)
        subscriber.trackers[publisher / channels].record(stamp.sequence)
    }

    /// End of the loop's tick: publish this tick's delivery counts and wake the publishers that wait on them.
    func flush() {
        hot.pointee.isDirty = false
        for publisher in hot.pointee.touched {
            hot.pointee.isTouched[publisher] = false
            let gauge = plan.gauges[publisher]
            gauge.deliveredBy[index].value.store(hot.pointee.delivered[publisher], ordering: .sequentiallyConsistent)
            gauge.deliveriesCounted(on: loop)
        }
        hot.pointee.touched.removeAll(keepingCapacity: true)
    }

    func handleEvents(_ events: UInt32) {}
    func handleTimer(scheduled: UInt64) {}

    // MARK: Reporting

    /// Copies the figures into `slot` (on the loop); `final` adds every subscriber's sequence trackers.
    func snapshot(generation: UInt64, final: Bool) {
        var tally = self.tally
        tally.delivered = hot.pointee.deliveredCount
        tally.deliveredMeasured = hot.pointee.deliveredMeasured
        tally.otherMessages = hot.pointee.otherMessages
        let copy = BenchSnapshot(
            generation: generation, tally: tally, latency: hot.pointee.latency, subscribersOpen: subscribersOpen,
            subscribersSettled: subscribersSettled, publishersSettled: publishersSettled,
            measuredSent: publishers.map { ($0.index, $0.measuredSent) },
            trackers: final ? subscribers.map { ($0.channel, Array($0.trackers)) } : [])
        slot.withLock { $0 = copy }
    }
}

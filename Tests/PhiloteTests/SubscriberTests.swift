import Testing

@testable import Philote

/// Stands in for a connection: the handler a subscriber's dirty mark puts in the loop's flush pass. Its flush
/// writes nothing (a full socket), so whatever is queued stays and must become the queue's own.
private final class QueueOwner: EventHandler {
    let handlerID = HandlerIDs.make()
    let subscriber: Subscriber
    private(set) var flushes = 0
    /// What the owner does about an overflow in its flush; a connection closes with 1008 here.
    private(set) var overflowsSeen = 0

    init(loop: EventLoop, maxBackpressure: Int = 1 << 20) {
        subscriber = Subscriber(loop: loop, maxBackpressure: maxBackpressure)
        subscriber.attach(to: self)
        subscriber.opened(windowBits: 0)
    }

    func handleEvents(_ events: UInt32) {}
    func handleTimer(scheduled: UInt64) {}

    func flush() {
        flushes += 1
        subscriber.flushBegan()
        if subscriber.isOverflowed {
            overflowsSeen += 1
            subscriber.overflowHandled()
            subscriber.discardAll()
        }
        subscriber.flushEnded()
    }
}

/// Runs one tick of `loop` on this thread: its flush pass, one wait (woken at once by `stop`), and the pass again.
private func runOneTick(_ loop: EventLoop) {
    loop.stop()
    loop.run()
}

private func message(_ length: Int) -> SharedFrame {
    [UInt8](repeating: 0x61, count: length).withUnsafeBytes { SharedFrame.make(copying: $0, isMessage: true) }
}

/// `#expect` cannot look into the noncopyable queue itself.
extension Subscriber {
    fileprivate var queuedMessages: Int { queue.queuedMessages }
    fileprivate var queueIsEmpty: Bool { queue.isEmpty }
}

private func session(_ owner: QueueOwner, reading channels: [String], on hub: LocalHub) -> Session {
    let token = "token-" + channels.joined(separator: ",")
    let permissions = hub.permissions(forToken: token, claims: Claims(read: channels))
    return Session(subscriber: owner.subscriber, issuer: .random(), permissions: permissions)
}

@Suite struct SubscriberTests {
    /// The loop keeps a frame alive for one pass only; a queue that could not write it keeps it after that with a
    /// reference of its own, and lets it go when freed.
    @Test func keptAliveFramesLiveForOnePassAndUnsentOnesStayWithTheQueue() throws {
        let loop = try EventLoop(index: 0)
        weak var passing: SharedFrame?
        weak var queued: SharedFrame?
        do {
            let frame = message(10)
            passing = frame
            loop.keepAlive(frame)
        }
        let owner = QueueOwner(loop: loop)
        do {
            let frame = message(10)
            queued = frame
            loop.keepAlive(frame)
            #expect(owner.subscriber.send(heldFrame: frame))
        }
        #expect(passing != nil && queued != nil)
        runOneTick(loop)
        #expect(passing == nil, "released when the pass ended")
        #expect(queued != nil, "unsent, so retained by the queue")
        #expect(owner.flushes == 1)
        owner.subscriber.discardAll()
        #expect(queued == nil)
    }

    /// One flush per tick however many frames are queued: the dirty mark is taken once.
    @Test func manySendsMarkTheOwnerDirtyOnce() throws {
        let loop = try EventLoop(index: 0)
        let owner = QueueOwner(loop: loop)
        let frame = message(5)
        loop.keepAlive(frame)
        for _ in 0..<100 { owner.subscriber.send(heldFrame: frame) }
        runOneTick(loop)
        #expect(owner.flushes == 1)
        #expect(owner.subscriber.queuedMessages == 100)
        owner.subscriber.discardAll()
    }

    /// Nothing is taken before the connection opens or after it stops accepting.
    @Test func onlyAnAcceptingSubscriberTakesDeliveries() throws {
        let loop = try EventLoop(index: 0)
        let subscriber = Subscriber(loop: loop, maxBackpressure: 1 << 20)
        let frame = message(5)
        loop.keepAlive(frame)
        #expect(!subscriber.send(heldFrame: frame))
        subscriber.opened(windowBits: 0)
        subscriber.stopAccepting()
        #expect(!subscriber.send(heldFrame: frame))
        #expect(subscriber.queueIsEmpty)
    }

    /// A slow consumer found in the middle of a delivery is not a recipient, stays in the hub's lists while they
    /// are walked (its connection closes it in its flush), and the readers after it still get the message.
    @Test func aSlowConsumerFoundMidDeliveryIsClosedInItsFlushNotInTheLoop() throws {
        let loop = try EventLoop(index: 0)
        let hub = LocalHub()
        let first = QueueOwner(loop: loop)
        let slow = QueueOwner(loop: loop, maxBackpressure: 15)
        let last = QueueOwner(loop: loop)
        let sessions = [first, slow, last].map { session($0, reading: ["news"], on: hub) }
        for session in sessions { hub.subscribe(session, sequence: 0) }
        let channel = Array("news".utf8)

        #expect(hub.deliver(Delivery(plain: message(10)), to: channel, except: nil, publishedAt: .max) == 3)
        // The slow one now holds 10 bytes; 10 more would pass its 15.
        #expect(hub.deliver(Delivery(plain: message(10)), to: channel, except: nil, publishedAt: .max) == 2)
        #expect(slow.subscriber.isOverflowed && !slow.subscriber.isAccepting)
        #expect(slow.overflowsSeen == 0, "nothing is closed inside the delivery loop")
        #expect(hub.deliver(Delivery(plain: message(10)), to: channel, except: nil, publishedAt: .max) == 2)

        runOneTick(loop)
        #expect(slow.overflowsSeen == 1)
        #expect(slow.subscriber.queueIsEmpty)
        #expect(first.subscriber.queuedMessages == 3 && last.subscriber.queuedMessages == 3)
        for session in sessions { hub.unsubscribe(session) }
        first.subscriber.discardAll()
        last.subscriber.discardAll()
    }

    /// The sender is skipped, and so is a reader that subscribed after the publish was numbered.
    @Test func deliveryExcludesTheSenderAndLaterSubscribers() throws {
        let loop = try EventLoop(index: 0)
        let hub = LocalHub()
        let sender = QueueOwner(loop: loop)
        let early = QueueOwner(loop: loop)
        let late = QueueOwner(loop: loop)
        let senderSession = session(sender, reading: ["a"], on: hub)
        hub.subscribe(senderSession, sequence: 0)
        let earlySession = session(early, reading: ["a"], on: hub)
        hub.subscribe(earlySession, sequence: 3)
        let lateSession = session(late, reading: ["a"], on: hub)
        hub.subscribe(lateSession, sequence: 7)
        let delivered = hub.deliver(
            Delivery(plain: message(4)), to: Array("a".utf8), except: senderSession, publishedAt: 5)
        #expect(delivered == 1)
        #expect(sender.subscriber.queueIsEmpty && late.subscriber.queueIsEmpty)
        #expect(early.subscriber.queuedMessages == 1)
        runOneTick(loop)
        for session in [senderSession, earlySession, lateSession] { hub.unsubscribe(session) }
        early.subscriber.discardAll()
    }

    /// Unsubscribing from the middle of a list moves the last reader into the gap; every reader still gets
    /// exactly one copy afterwards, and the loop's first and last reader of a channel are reported.
    @Test func unsubscribeKeepsTheListWholeAndReportsFirstAndLastReaders() throws {
        let loop = try EventLoop(index: 0)
        let hub = LocalHub()
        var changes: [(String, Bool)] = []
        hub.readersChanged = { channel, present in changes.append((String(decoding: channel, as: UTF8.self), present)) }
        let owners = (0..<5).map { _ in QueueOwner(loop: loop) }
        let sessions = owners.map { session($0, reading: ["x", "y"], on: hub) }
        for session in sessions { hub.subscribe(session, sequence: 0) }
        hub.unsubscribe(sessions[1])
        hub.unsubscribe(sessions[3])
        for channel in ["x", "y"] {
            #expect(
                hub.deliver(Delivery(plain: message(3)), to: Array(channel.utf8), except: nil, publishedAt: .max) == 3)
        }
        for index in [0, 2, 4] { #expect(owners[index].subscriber.queuedMessages == 2) }
        for index in [1, 3] { #expect(owners[index].subscriber.queueIsEmpty) }
        runOneTick(loop)
        for index in [0, 2, 4] { hub.unsubscribe(sessions[index]) }
        #expect(changes.map { "\($0.0)\($0.1 ? "+" : "-")" } == ["x+", "y+", "x-", "y-"])
        for owner in owners { owner.subscriber.discardAll() }
    }

    /// Token refreshes (`LocalHub.change`) against a model, over seeded random steps: after each, a message to
    /// every channel reaches exactly the sessions whose current token reads it, once, and the loop reports a
    /// channel's first and last reader exactly when the model's reader set becomes non-empty or empty.
    @Test(arguments: 1...6)
    func tokenRefreshesMatchAModelOfWhoReadsWhat(seed: UInt64) throws {
        let loop = try EventLoop(index: 0)
        let hub = LocalHub()
        var present: Set<String> = []
        hub.readersChanged = { channel, isPresent in
            let name = String(decoding: channel, as: UTF8.self)
            #expect(isPresent != present.contains(name), "reported \(name) \(isPresent) twice")
            if isPresent { present.insert(name) } else { present.remove(name) }
        }
        var random = SeededGenerator(seed: seed)
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &random) }
        let pool = ["a", "b", "c", "d", "e"]
        func someChannels() -> [String] { pool.filter { _ in next(2) == 0 }.shuffled(using: &random) }
        let owners = (0..<6).map { _ in QueueOwner(loop: loop) }
        var reads: [[String]] = owners.map { _ in someChannels() }
        let sessions = owners.indices.map { session(owners[$0], reading: reads[$0], on: hub) }
        for session in sessions { hub.subscribe(session, sequence: 0) }
        var received = Array(repeating: 0, count: owners.count)
        for step in 0..<60 {
            let who = next(owners.count)
            reads[who] = someChannels()
            let token = "token-\(step)-" + reads[who].joined(separator: ",")
            _ = hub.change(
                sessions[who], to: hub.permissions(forToken: token, claims: Claims(read: reads[who])), sequence: 0)
            for channel in pool {
                let readers = owners.indices.filter { reads[$0].contains(channel) }
                let delivered = hub.deliver(
                    Delivery(plain: message(1)), to: Array(channel.utf8), except: nil, publishedAt: .max)
                #expect(delivered == readers.count, "step \(step), channel \(channel)")
                for index in readers { received[index] += 1 }
                #expect(present.contains(channel) == !readers.isEmpty, "step \(step), channel \(channel)")
            }
            for index in owners.indices {
                #expect(owners[index].subscriber.queuedMessages == received[index], "step \(step), session \(index)")
            }
            runOneTick(loop)
            for owner in owners { owner.subscriber.discardAll() }
            received = Array(repeating: 0, count: owners.count)
        }
        for session in sessions { hub.unsubscribe(session) }
        #expect(present.isEmpty)
    }
}

#if DEBUG
    /// An owner whose flush forgets `flushEnded`: its queue still refers to kept-alive frames without references.
    private final class ForgetfulOwner: EventHandler {
        let handlerID = HandlerIDs.make()
        func handleEvents(_ events: UInt32) {}
        func handleTimer(scheduled: UInt64) {}
        func flush() {}
    }

    @Suite struct FanOutInvariantTests {
        /// Debug builds check the fan-out lifetime invariant: a pass that would release frames some queue still
        /// refers to without a reference traps instead of leaving a dangling pointer.
        @Test func aBorrowStillOpenWhenThePassEndsTraps() async {
            await #expect(processExitsWith: .failure) {
                let loop = try EventLoop(index: 0)
                let owner = ForgetfulOwner()
                let subscriber = Subscriber(loop: loop, maxBackpressure: 1 << 20)
                subscriber.attach(to: owner)
                subscriber.opened(windowBits: 0)
                let frame = SharedFrame.make(bytes: [0x81, 0x01, 0x61])
                loop.keepAlive(frame)
                subscriber.send(heldFrame: frame)
                loop.stop()
                loop.run()
                withExtendedLifetime((owner, subscriber)) {}
            }
        }
    }
#endif

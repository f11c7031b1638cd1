/// The outbound side of one connection: its queue of frames, its place in the loop's flush pass, and the
/// backpressure rule. Every connection has one from accept (its HTTP answer and handshake go through it);
/// the hub reaches it once the connection is open and subscribed.
///
/// ## Fan-out lifetime, the whole invariant
///
/// A publish is encoded once into shared frames, and each recipient's queue refers to them *without* a
/// reference count, which is what makes fan-out cheap (an atomic increment and decrement per recipient was
/// most of its cost). This is safe because of three rules, all kept here:
///
/// 1. Whoever queues a frame unretained (`send(heldFrame:)`) has made the loop keep it alive until the end of
///    the tick's flush pass (`EventLoop.keepAlive`, once per publish per loop: `Delivery.keepAlive(on:)`), and
///    own frames are kept alive by `enqueue` itself.
/// 2. Queuing marks the subscriber's connection dirty, so it is flushed in that same pass.
/// 3. Every flush ends with `flushEnded()`, which makes whatever the socket did not take owned by the queue
///    (`OutboundQueue.retainUnsent`); a connection closed before its flush frees its queue (`discardAll`).
///
/// So when the pass lets the kept-alive frames go, no queue refers to one without its own reference. Debug
/// builds check it: a queue holding unretained entries is an open borrow on the loop (`borrowOpened`), and
/// the pass traps if one is still open when it releases the frames.
///
/// A subscriber whose unsent bytes would pass `MAX_BACKPRESSURE` is a slow consumer: it takes nothing more,
/// and its connection closes it with 1008 in its flush, after the delivery loop (so the hub's subscriber lists
/// never change while they are walked).
public final class Subscriber {
    // What a delivery touches comes first, together, for as few cache lines per recipient as possible.
    /// True while the connection is open: fan-out and replies are queued only then.
    public private(set) var isAccepting = false
    private var isDirty = false
    /// Set when a delivery found the backpressure limit passed; the connection closes it in its flush.
    public private(set) var isOverflowed = false
    /// The deflate window bits of this connection's messages (permessage-deflate), 0 without it: the hub picks
    /// the frame variant with it.
    public private(set) var windowBits: UInt8 = 0
    #if DEBUG
        /// The queue holds unretained entries: an open borrow on the loop.
        private var borrowing = false
    #endif
    private let maxBackpressure: Int
    // unowned(unsafe): the loop outlives every connection on it, and the connection owns this subscriber;
    // checked references would cost atomics on every delivery.
    public unowned(unsafe) let loop: EventLoop
    /// The owner, flushed in the loop's pass when something is queued: set once, right after the connection is
    /// made. Kept as the loop's own unretained entry, so that a mark costs no reference count.
    private var owner: DirtyList.Entry?
    var queue = OutboundQueue()
    /// Compressed messages queued (for the connection's closing log line).
    private(set) var compressedSent: UInt32 = 0
    /// Set while history is replayed to this connection: more is queued as the queue drains.
    var replay: Replay?

    public init(loop: EventLoop, maxBackpressure: Int) {
        self.loop = loop
        self.maxBackpressure = maxBackpressure
    }

    /// Names the handler whose `flush` writes this queue; call once, before anything is queued.
    func attach(to owner: any EventHandler) {
        self.owner = DirtyList.Entry(owner)
    }

    /// The connection is open, with these deflate window bits (0: none): deliveries are taken from now on.
    func opened(windowBits: UInt8) {
        self.windowBits = windowBits
        isAccepting = true
    }

    /// The connection is closing or closed: nothing more is taken.
    func stopAccepting() {
        isAccepting = false
        replay?.cancel()
        replay = nil
    }

    /// Queues a shared frame (a fan-out delivery) that the loop keeps alive until the end of this tick's flush
    /// pass (rule 1), at no reference count. False, and nothing queued, unless the connection is open; false
    /// too when it would pass `MAX_BACKPRESSURE`, which makes this subscriber a slow consumer (see the type).
    @inline(__always)
    @discardableResult
    public func send(heldFrame frame: SharedFrame) -> Bool {
        guard isAccepting else { return false }
        if !queue.isEmpty && queue.queuedBytes + frame.length > maxBackpressure {
            overflowed()
            return false
        }
        if frame.bytes.load(as: UInt8.self) & FrameHeader.rsv1 != 0 { compressedSent &+= 1 }
        appendHeld(frame)
        return true
    }

    /// Out of line: the rare branch stays out of the per-delivery code that `send(heldFrame:)` inlines into.
    @inline(never)
    private func overflowed() {
        isAccepting = false
        isOverflowed = true
        markDirty()
    }

    /// The connection has dealt with the overflow (its queue dropped, its close begun).
    func overflowHandled() {
        isOverflowed = false
    }

    /// Queues a frame made for this connection alone (a reply, a control frame, an HTTP answer): the loop keeps
    /// it alive for this pass, and the queue takes its own reference at the flush if it is not all written.
    func enqueue(_ frame: SharedFrame, compressed: Bool = false) {
        if compressed { compressedSent &+= 1 }
        loop.keepAlive(frame)
        appendHeld(frame)
    }

    @inline(__always)
    private func appendHeld(_ frame: SharedFrame) {
        queue.append(held: frame)
        #if DEBUG
            if !borrowing {
                borrowing = true
                loop.borrowOpened()
            }
        #endif
        markDirty()
    }

    /// Puts the owner in this tick's flush pass, once.
    @inline(__always)
    func markDirty() {
        if !isDirty {
            isDirty = true
            // Guaranteed: the loop outlives its connections; a plain access would retain it around the call.
            let entry = owner.unsafelyUnwrapped
            Unmanaged.passUnretained(loop)._withUnsafeGuaranteedRef { $0.markDirty(entry) }
        }
    }

    /// The owner's flush has begun: anything queued from now on marks it dirty again.
    @inline(__always)
    func flushBegan() {
        isDirty = false
    }

    /// The owner's flush is over: what the socket did not take becomes the queue's own (rule 3).
    @inline(__always)
    func flushEnded() {
        queue.retainUnsent()
        settle()
        if let replay, isAccepting, queue.queuedBytes < maxBackpressure / 2 {
            // Queued now, the frames are written by this same pass (the owner is marked dirty again).
            replay.refill(budget: replayBudget)
        }
    }

    /// How much more a replay may queue now: up to half of MAX_BACKPRESSURE.
    var replayBudget: Int { max(maxBackpressure / 2 - queue.queuedBytes, 0) }

    /// Frees the whole queue (the connection is closed, or TLS cannot go on).
    func discardAll() {
        replay?.cancel()
        replay = nil
        queue.removeAll()
        settle()
    }

    @inline(__always)
    private func settle() {
        #if DEBUG
            if borrowing {
                borrowing = false
                loop.borrowSettled()
            }
        #endif
    }
}

/// The connections of one loop that hold a keyed sealing context (TLSStream.send), checked once a second: one
/// that has not sent for `TLSStream.sealingKeptFor` gives its context back, so that only connections that are
/// sending hold one and an idle connection costs no more than its keys.
final class TLSSealingSweep {
    private unowned(unsafe) let loop: EventLoop
    private var holders: [TLSStream] = []
    private var scheduled = false

    init(loop: EventLoop) {
        self.loop = loop
    }

    func add(_ session: TLSStream) {
        holders.append(session)
        guard !scheduled else { return }
        scheduled = true
        loop.schedule(at: loop.now + TLSStream.sealingKeptFor) { [self] in sweep() }
    }

    private func sweep() {
        let now = loop.now
        holders.removeAll { $0.releaseIdleSealing(now: now) }
        scheduled = !holders.isEmpty
        if scheduled { loop.schedule(at: now + TLSStream.sealingKeptFor) { [self] in sweep() } }
    }
}

/// Token refresh on an open connection (README "Token refresh"): `{"auth":"<jwt>"}`, verified as at the upgrade.
/// A good token moves the 4001 deadline to its `exp` and its `read` and `write` lists apply at once; a bad one
/// changes nothing. Either way the client gets one answer it can wait for.
extension PubSubApplication {
    func refresh(_ session: Session, connection: Connection, token bytes: [UInt8]) {
        let metrics = connection.services.metrics
        let token = String(decoding: bytes, as: UTF8.self)
        let claims: Claims
        switch verifier.verify(token, now: ProcessStatistics.wallClockSeconds()) {
        case .success(let verified): claims = verified
        case .failure(let error):
            metrics.authFailed(.init(error))
            metrics.tokenRefreshed(.refused)
            reply(connection, error: error.reason, channel: nil, refusedRefresh: true)
            return
        }
        metrics.tokenRefreshed(.accepted)
        let local = hub.local(connection.loop)
        let bits = connection.deflateWindowBits
        if !session.permissions.read.isEmpty { compressionUsage.add(bits, -1) }
        let added = local.change(
            session, to: local.permissions(forToken: token, claims: claims), sequence: hub.currentSequence)
        if !session.permissions.read.isEmpty { compressionUsage.add(bits, 1) }
        session.subscriber.replay?.forgetUnreadable()
        connection.expiresAt = Self.deadline(expiresAt: claims.expiresAt)

        var answer: [UInt8] = Array(#"{"auth":"ok""#.utf8)
        if let exp = claims.expiresAt { answer.append(contentsOf: #","exp":\#(Self.numericDate(exp))"#.utf8) }
        answer.append(contentsOf: "}\n".utf8)
        answer.withUnsafeBytes { connection.send(.text, $0) }

        // A connection that opted in to positions gets the new channels as `since=::<channel>` would give them.
        guard session.positioned, hub.history != nil, !added.isEmpty else { return }
        let requests = added.map { slot in
            (slot: slot, request: RecoveryRequest(channel: session.permissions.read[slot], position: nil))
        }
        Replay.start(
            requests, session: session, hub: hub, local: local, counters: recoveryCounters,
            budget: session.subscriber.replayBudget)
    }

    /// A NumericDate as JSON: whole seconds as an integer, a fraction as Swift's shortest exact form.
    static func numericDate(_ seconds: Double) -> String {
        if seconds == seconds.rounded(), abs(seconds) < 9.0e15 { return String(Int64(seconds)) }
        return String(seconds)
    }

    /// The monotonic moment to close with 4001 for a token that expires at `exp` (wall-clock seconds); nil: never.
    /// Never before `exp`: the time left is rounded up, counted from a fresh monotonic reading (the loop's `now` is
    /// from before this tick's work), plus 1 ms for the millisecond the timer check truncates.
    static func deadline(expiresAt exp: Double?) -> UInt64? {
        guard let exp else { return nil }
        let remaining = max(0, ((exp - ProcessStatistics.wallClockSeconds()) * 1000).rounded(.up))
        return MonotonicClock.milliseconds() + UInt64(min(remaining, 1e15)) + 1
    }
}

/// The pub/sub side of one open connection: who it is (the issuer id the others see) and what it may do.
/// Kept small: an idle connection's cost is mostly this, its connection and the kernel's socket.
public final class Session {
    /// unowned(unsafe): the connection owns both its subscriber and its session (`userData`), and drops the
    /// session when it closes, before the subscriber can go; a checked reference would cost atomics.
    public unowned(unsafe) let subscriber: Subscriber
    public let issuer: IssuerID
    /// Replaced by a token refresh (`LocalHub.change`).
    var permissions: Permissions
    /// The upgrade's `since` parameters, read at admission and answered once the connection is open.
    var recovery: [Result<RecoveryRequest, RecoveryRequest.Invalid>] = []
    /// Some channel gets positioned frames (counted in the application's positioned compression usage).
    var positioned = false
    /// This session's index in the subscriber list of `permissions.read[0]`; `otherPositions` holds the
    /// rest, so the common one-channel token needs no array.
    private var firstPosition = -1
    private var otherPositions: [Int] = []

    init(subscriber: Subscriber, issuer: IssuerID, permissions: Permissions) {
        self.subscriber = subscriber
        self.issuer = issuer
        self.permissions = permissions
        resetPositions()
    }

    /// One position per read channel of `permissions`, none set yet.
    func resetPositions() {
        firstPosition = -1
        let others = max(0, permissions.read.count - 1)
        otherPositions = others == 0 ? [] : Array(repeating: -1, count: others)
    }

    /// Index in the subscriber list of read channel number `slot`.
    func position(_ slot: Int) -> Int { slot == 0 ? firstPosition : otherPositions[slot - 1] }

    func setPosition(_ slot: Int, _ position: Int) {
        if slot == 0 { firstPosition = position } else { otherPositions[slot - 1] = position }
    }
}

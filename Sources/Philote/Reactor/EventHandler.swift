/// Something registered with an `EventLoop`: a listener, the wake-up eventfd, or a connection.
/// Every method runs on the owning loop's thread.
public protocol EventHandler: AnyObject {
    /// Unique for the process lifetime, so that a timer set for a closed connection never fires for a
    /// later one that reuses its descriptor.
    var handlerID: UInt64 { get }
    /// epoll readiness bits (`CSystem_EPOLL*`).
    func handleEvents(_ events: UInt32)
    /// The deadline `scheduled` that this handler asked for has passed (it checks whether it still cares).
    func handleTimer(scheduled: UInt64)
    /// Called once per loop tick, before sleeping, after `EventLoop.markDirty`.
    func flush()
}

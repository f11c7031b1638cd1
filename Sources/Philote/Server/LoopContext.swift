/// What every connection on one loop shares: configuration, logger, application, and the loop's own
/// bookkeeping. Touched only by that loop's thread, except the connection count, which is read anywhere.
final class LoopContext: @unchecked Sendable {
    let configuration: Configuration
    let logger: Logger
    let application: WebSocketApplication
    let loop: EventLoop
    let connections: ConnectionCounter
    private(set) var connectionCount = 0
    /// Called when the last connection of a draining loop is gone.
    var onIdle: (() -> Void)?

    init(
        configuration: Configuration, logger: Logger, application: WebSocketApplication, loop: EventLoop,
        connections: ConnectionCounter
    ) {
        self.connections = connections
        self.configuration = configuration
        self.logger = logger
        self.application = application
        self.loop = loop
    }

    func connectionOpened() { connectionCount += 1 }

    func connectionClosed() {
        connectionCount -= 1
        if connectionCount == 0, let onIdle { onIdle() }
    }
}

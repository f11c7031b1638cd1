import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// One loop's `SO_REUSEPORT` listening socket: accepts connections and hands them to that loop.
final class Listener: EventHandler, @unchecked Sendable {
    let handlerID = HandlerIDs.make()
    let fd: Int32
    private let services: LoopServices
    private var isClosed = false

    init(fd: Int32, services: LoopServices) {
        self.fd = fd
        self.services = services
    }

    func start() throws(Errno) {
        try services.loop.register(fd: fd, handler: self, events: UInt32(CSystem_EPOLLIN))
    }

    func handleEvents(_ events: UInt32) {
        // A bounded batch per wake-up keeps a connection storm from starving established connections.
        for _ in 0..<64 {
            guard !isClosed else { return }
            let accepted: Int32
            do {
                switch try Socket.accept(fd) {
                case .wouldBlock: return
                case .processed(let newFD): accepted = newFD
                }
            } catch {
                handleAcceptError(error)
                return
            }
            guard services.pendingHandshakes.reserve() else {
                refuse(accepted)
                continue
            }
            Socket.setNoDelay(accepted)
            var tls: TLSStream?
            if let store = services.tls {
                tls = TLSStream(context: store.current, fd: accepted)
                if tls == nil {
                    services.pendingHandshakes.release()
                    Socket.close(accepted)
                    continue
                }
            }
            let connection = Connection(fd: accepted, loop: services.loop, services: services, tls: tls)
            do {
                try connection.start()
                services.connectionOpened()
            } catch {
                services.pendingHandshakes.release()
                Socket.close(accepted)
            }
        }
    }

    /// A socket over `MAX_PENDING_HANDSHAKES`: it costs nothing beyond this call. A plain HTTP client is told why
    /// (503, best effort: one non-blocking write into an empty socket buffer); a TLS client, who could only read
    /// an answer after a handshake, is closed.
    private func refuse(_ fd: Int32) {
        services.metrics.rejected(.pendingHandshakes)
        if services.tls == nil {
            Self.pendingRefusal.withUnsafeBytes { _ = try? Socket.write(fd, $0) }
            Socket.shutdownWrite(fd)
            // Closing with the request unread would send a reset, which can destroy the answer before the client
            // reads it: what has arrived is read and dropped first.
            _ = try? Socket.read(fd, into: services.loop.readBuffer)
        }
        Socket.close(fd)
    }

    private static let pendingRefusal = HTTPResponse.error(
        HandshakeError(.serviceUnavailable, "too many pending handshakes"))

    private func handleAcceptError(_ error: Errno) {
        switch error.code {
        case ECONNABORTED, EPROTO, EPERM:
            return  // that one connection failed; the next accept may succeed
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            // Out of descriptors: level-triggered epoll would report the backlog again at once, so stop
            // listening for a moment instead of spinning.
            services.logger.warning("accept failed, pausing accepts", ["error": error.description])
            services.loop.setInterest(fd: fd, events: 0)
            services.loop.schedule(at: services.loop.now + 100) { [self] in
                if !isClosed { services.loop.setInterest(fd: fd, events: UInt32(CSystem_EPOLLIN)) }
            }
        default:
            services.logger.error("accept failed", ["error": error.description])
        }
    }

    func handleTimer(scheduled: UInt64) {}
    func flush() {}

    func close() {
        guard !isClosed else { return }
        isClosed = true
        services.loop.deregister(fd: fd)
        Socket.close(fd)
    }
}

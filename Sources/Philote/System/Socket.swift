import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Thin, typed socket operations over raw descriptors. Ownership (who closes) stays with the caller.
enum Socket {
    /// A non-blocking listening TCP socket on `address`, with `SO_REUSEPORT` so that every event loop
    /// can own one and the kernel spreads connections across them.
    static func listen(on address: SocketAddress, backlog: Int32 = 4096) throws(Errno) -> Int32 {
        let fd = try syscallBlocking("socket") { CSystem_socket_nonblocking(address.family, CSystem_SOCK_STREAM()) }
        do {
            try syscallBlocking("setsockopt(SO_REUSEADDR)") {
                CSystem_set_int_option(fd, CSystem_SOL_SOCKET(), CSystem_SO_REUSEADDR(), 1)
            }
            try syscallBlocking("setsockopt(SO_REUSEPORT)") {
                CSystem_set_int_option(fd, CSystem_SOL_SOCKET(), CSystem_SO_REUSEPORT(), 1)
            }
            _ = try address.withSockAddr { pointer, length throws(Errno) in
                try syscallBlocking("bind") { Glibc.bind(fd, pointer, length) }
            }
            try syscallBlocking("listen") { Glibc.listen(fd, backlog) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Accepts one pending connection (non-blocking, close-on-exec), or `.wouldBlock` when none waits.
    static func accept(_ listener: Int32) throws(Errno) -> IOResult<Int32> {
        try syscall("accept4") { CSystem_accept4(listener, nil, nil) }
    }

    static func setNoDelay(_ fd: Int32) {
        _ = try? syscall("setsockopt(TCP_NODELAY)") {
            CSystem_set_int_option(fd, CSystem_IPPROTO_TCP(), CSystem_TCP_NODELAY(), 1)
        }
    }

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func writev(_ fd: Int32, _ vectors: UnsafePointer<iovec>, count: Int32) throws(Errno) -> IOResult<Int> {
        try syscall("writev") { CSystem_writev(fd, vectors, count) }
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try syscall("write") { CSystem_write(fd, bytes.baseAddress, bytes.count) }
    }

    /// The port a socket is bound to (useful when binding port 0).
    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return 0 }
        return withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port sit at the same offset, in network byte order.
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
    }

    /// Stops sending (FIN) while still reading: the lingering close after an error response or a close frame.
    static func shutdownWrite(_ fd: Int32) {
        // ENOTCONN (peer already gone) needs no handling: the next read reports the end.
        _ = try? syscall("shutdown") { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    static func close(_ fd: Int32) {
        // Never retry close on EINTR: on Linux the descriptor is already released.
        _ = Glibc.close(fd)
    }
}

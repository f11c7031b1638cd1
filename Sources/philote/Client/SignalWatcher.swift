#if canImport(Glibc)
    import Glibc
#endif

/// The write end of the self-pipe, for the signal handler (a C function pointer cannot capture). Set once,
/// before the handler is installed, and only read afterwards.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// SIGINT and SIGTERM as a readable descriptor (the self-pipe trick), so the session's poll(2) loop sees
/// Ctrl-C like any other event and can end with a proper close handshake. The handler does the one
/// async-signal-safe thing needed: write a byte. Installed only once connected; before that the default
/// action (exit at once) is what a user pressing Ctrl-C wants.
final class SignalWatcher {
    let fd: Int32

    init?() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        fd = ends[0]
        signalPipeWriteEnd = ends[1]
        let handler: @convention(c) (Int32) -> Void = { _ in
            let saved = errno
            var byte: UInt8 = 1
            // A full pipe already says "a signal came"; the byte may be dropped.
            _ = write(signalPipeWriteEnd, &byte, 1)
            errno = saved
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// Reads every pending notification; returns how many signals arrived.
    func drain() -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got <= 0 { return count }
            count += got
        }
    }
}

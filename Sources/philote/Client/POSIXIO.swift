#if canImport(Glibc)
    import Glibc
#endif

/// Thin wrappers over read(2), write(2) and poll(2) for the client: `EINTR` is retried here once, so the
/// callers only see data, end of file, "try again" or a real error.
enum POSIXIO {
    enum Status: Equatable {
        case transferred(Int)
        case endOfFile
        case wouldBlock
        case failed(Int32)
    }

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Status {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .transferred(count) }
            if count == 0 { return .endOfFile }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
        }
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Status {
        while true {
            let count = Glibc.write(fd, bytes.baseAddress, bytes.count)
            if count >= 0 { return .transferred(count) }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
        }
    }

    /// Writes everything to a descriptor the client does not own the mode of (stdout, stderr): it may be
    /// non-blocking if a parent made it so, so `EAGAIN` waits in poll instead of failing. False on error.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let status = bytes.withUnsafeBytes { write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            switch status {
            case .transferred(let count): offset += count
            case .wouldBlock: _ = wait(fd, for: Int16(POLLOUT), milliseconds: -1)
            case .endOfFile, .failed: return false
            }
        }
        return true
    }

    /// poll(2) on one descriptor; the returned events, or 0 on timeout.
    static func wait(_ fd: Int32, for events: Int16, milliseconds: Int32) -> Int16 {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return entry.revents }
            if ready == 0 { return 0 }
            if errno != EINTR { return Int16(POLLERR) }
        }
    }

    /// `strerror` in the lower case that reads well after a colon ("connection refused").
    static func describe(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        guard let first = text.first else { return "error \(code)" }
        return first.lowercased() + text.dropFirst()
    }
}

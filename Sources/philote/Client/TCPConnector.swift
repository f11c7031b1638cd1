import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Opens the TCP connection: getaddrinfo, then each address in turn with a non-blocking connect bounded by
/// one overall deadline (a blocking connect to a host that drops packets would hang for minutes).
/// The socket stays non-blocking: the session multiplexes it with standard input in poll(2).
enum TCPConnector {
    static func connect(to url: WebSocketURL, deadline: Deadline) throws(ClientFailure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(url.host, String(url.port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == EAI_SYSTEM ? POSIXIO.describe(errno) : String(cString: gai_strerror(status))
            throw ClientFailure("cannot resolve \(url.host): \(reason.prefix(1).lowercased() + reason.dropFirst())")
        }
        defer { freeaddrinfo(first) }
        var lastError = "no address to connect to"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry?.pointee {
            entry = info.ai_next
            switch attempt(info, deadline: deadline) {
            case .success(let fd): return fd
            case .failure(let reason): lastError = reason
            }
            if deadline.hasPassed { break }
        }
        throw ClientFailure("cannot connect to \(url.endpoint): \(lastError)")
    }

    private enum Attempt {
        case success(Int32)
        case failure(String)
    }

    private static func attempt(_ info: addrinfo, deadline: Deadline) -> Attempt {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(info.ai_family, type, info.ai_protocol)
        guard fd >= 0 else { return .failure(POSIXIO.describe(errno)) }
        if Glibc.connect(fd, info.ai_addr, info.ai_addrlen) != 0 {
            let code = errno
            guard code == EINPROGRESS || code == EINTR else {
                close(fd)
                return .failure(POSIXIO.describe(code))
            }
            // Non-blocking connect: writable means finished; SO_ERROR says how.
            if POSIXIO.wait(fd, for: Int16(POLLOUT), milliseconds: deadline.remainingMilliseconds) == 0 {
                close(fd)
                return .failure("timed out")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
            if error != 0 {
                close(fd)
                return .failure(POSIXIO.describe(error))
            }
        }
        // Publishes are small and interactive: send each at once instead of waiting to coalesce (Nagle).
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return .success(fd)
    }
}

#if canImport(Glibc)
    import Glibc
#endif

/// Turns a Redis host name into an address without blocking an event loop: hiredis would call
/// getaddrinfo on the loop's thread, which can stall every connection of the loop for as long as DNS
/// takes. A name is looked up on a short-lived thread and the answer handed back through the loop's
/// inbox; a numeric address needs no lookup.
enum HostResolver {
    static func isNumeric(_ host: String) -> Bool {
        var scratch = in6_addr()
        return inet_pton(AF_INET, host, &scratch) == 1 || inet_pton(AF_INET6, host, &scratch) == 1
    }

    /// Calls `done` on `loop` with every TCP address of `host` (numeric, in getaddrinfo's order of
    /// preference, no repeats) or the reason there is none.
    static func resolve(
        _ host: String, on loop: EventLoop, _ done: @escaping @Sendable (Result<[String], ResolutionError>) -> Void
    ) {
        LoopGroup.spawnDetached {
            let result = lookUp(host)
            loop.execute { done(result) }
        }
    }

    struct ResolutionError: Error {
        let reason: String
    }

    private static func lookUp(_ host: String) -> Result<[String], ResolutionError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            return .failure(ResolutionError(reason: "cannot resolve \(host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            if let address = numeric(current.pointee), !addresses.contains(address) { addresses.append(address) }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(ResolutionError(reason: "cannot resolve \(host)")) }
        return .success(addresses)
    }

    private static func numeric(_ info: addrinfo) -> String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let converted: UnsafePointer<CChar>?
        switch info.ai_family {
        case AF_INET6:
            converted = info.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                withUnsafePointer(to: address.pointee.sin6_addr) {
                    inet_ntop(AF_INET6, $0, &text, socklen_t(text.count))
                }
            }
        case AF_INET:
            converted = info.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                withUnsafePointer(to: address.pointee.sin_addr) { inet_ntop(AF_INET, $0, &text, socklen_t(text.count)) }
            }
        default:
            return nil
        }
        guard converted != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

#if canImport(Glibc)
    import Glibc
#endif

/// The server's address, resolved once before the run (thousands of connects must not each ask the resolver).
struct BenchAddress: @unchecked Sendable {
    let family: Int32
    private let storage: sockaddr_storage
    private let length: socklen_t

    /// The first address of `host`; nil with the resolver's reason.
    static func resolve(host: String, port: Int) -> Result<BenchAddress, BenchFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == EAI_SYSTEM ? POSIXIO.describe(errno) : String(cString: gai_strerror(status))
            return .failure(BenchFailure("cannot resolve \(host): \(reason)", status: 1))
        }
        defer { freeaddrinfo(first) }
        var storage = sockaddr_storage()
        let length = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(length))) }
        return .success(BenchAddress(family: first.pointee.ai_family, storage: storage, length: length))
    }

    func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

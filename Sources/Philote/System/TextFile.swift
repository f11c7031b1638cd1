#if canImport(Glibc)
    import Glibc
#endif

/// Small files the kernel generates (/proc, /sys): read whole, at start-up only.
enum TextFile {
    /// The file's text, or nil when it cannot be opened (absent, or no permission). At most `limit` bytes.
    static func read(_ path: String, limit: Int = 65536) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes.prefix(limit), as: UTF8.self)
    }
}

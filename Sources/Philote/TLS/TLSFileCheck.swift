#if canImport(Glibc)
    import Glibc
#endif

/// Looks at a certificate or key file before OpenSSL reads it. OpenSSL reports a file it cannot open as
/// `...:SSL routines::system lib`, which names neither the cause nor the remedy; an operator mounting
/// certificates into a container needs both. Each problem is one line: the variable and path, the system's
/// reason, and what to do about it.
enum TLSFileCheck {
    /// nil when the file can be opened for reading (OpenSSL then judges what is in it); otherwise the problem.
    /// `role` says what the file should hold ("certificate chain", "private key").
    static func problem(variable: String, path: String, role: String) -> String? {
        let subject = "cannot read the \(role) \(variable)=\(path)"
        var info = stat()
        if stat(path, &info) != 0 {
            let code = errno
            switch code {
            case ENOENT:
                if let link = danglingLink(on: path) {
                    return "\(subject): \(link.path) is a dangling symbolic link to \(link.target), which does not "
                        + "exist here: mount the whole directory the links point into, not the links alone (for certbot all of "
                        + "/etc/letsencrypt, so that live/ links into ../../archive resolve)"
                }
                return "\(subject): no such file: check the path (in a container: is the directory that holds it "
                    + "mounted there?)"
            case EACCES:
                return "\(subject): permission denied on a directory above it for \(identity): give that user "
                    + "search (x) permission on each directory of the path"
            default:
                return "\(subject): \(describe(code))"
            }
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            return "\(subject): it is a directory: point \(variable) at the PEM file in it"
        }
        // O_NONBLOCK: a FIFO given by mistake must not hang start-up waiting for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        if fd >= 0 {
            close(fd)
            return nil
        }
        let code = errno
        guard code == EACCES || code == EPERM else { return "\(subject): \(describe(code))" }
        let owner = "owner \(info.st_uid):\(info.st_gid), mode 0\(String(info.st_mode & 0o7777, radix: 8))"
        // Suggesting the file's group to the container is only sound when that group is not root's.
        let groupAdd = info.st_gid == 0 ? "" : ", or give the server that group (docker run --group-add \(info.st_gid))"
        return "\(subject): permission denied for \(identity) (the file has \(owner)): make it readable by the "
            + "server's user, e.g. chgrp \(getegid()) \(path) && chmod 640 \(path)\(groupAdd)"
    }

    /// Who the server runs as, in the terms chown and docker --user use.
    private static var identity: String { "uid \(geteuid()) gid \(getegid())" }

    /// The first symbolic link on `path` (itself or a directory above it) whose target does not exist: what a
    /// certbot `live/` directory mounted without its `archive/` looks like.
    private static func danglingLink(on path: String) -> (path: String, target: String)? {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
            prefix += component
            var info = stat()
            guard lstat(prefix, &info) == 0 else { return nil }
            guard info.st_mode & S_IFMT == S_IFLNK else { continue }
            if stat(prefix, &info) != 0 && errno == ENOENT { return (prefix, linkTarget(prefix)) }
        }
        return nil
    }

    private static func linkTarget(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let count = readlink(path, &buffer, buffer.count)
        guard count >= 0 else { return "(unreadable)" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `strerror` starting in lower case, to read well after a colon ("no such device").
    private static func describe(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }
}

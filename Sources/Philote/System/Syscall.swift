import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The one wrapper every system call goes through: `EINTR` is retried, `EAGAIN` becomes
/// `.wouldBlock`, any other failure is thrown as `Errno` naming the call.
@inline(__always)
func syscall<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(Errno) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .processed(result) }
        let code = CSystem_errno()
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        throw Errno(code: code, call: name)
    }
}

/// For calls that never legitimately return `EAGAIN` (setup: socket, bind, epoll_ctl, ...).
@inline(__always)
@discardableResult
func syscallBlocking<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(Errno) -> T {
    switch try syscall(name, body) {
    case .processed(let value): return value
    case .wouldBlock: throw Errno(code: EAGAIN, call: name)
    }
}

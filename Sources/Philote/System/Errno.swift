#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call: the C `errno` and the call it came from, for messages.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int32
    public let call: StaticString

    public init(code: Int32, call: StaticString) {
        self.code = code
        self.call = call
    }

    public static func == (lhs: Errno, rhs: Errno) -> Bool { lhs.code == rhs.code }

    public var description: String {
        "\(call): \(String(cString: strerror(code))) (errno \(code))"
    }
}

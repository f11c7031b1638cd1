/// Which field of a client message an object key names. Keys match ASCII case-insensitively (the Go client
/// sends `Channel`/`Data`), over the decoded key's bytes. `auth` means something only over WebSocket (a token
/// refresh); the HTTP publish body skips it like any other key.
enum ClientMessageField {
    case channel, data, auth, other

    @inline(__always)
    init(_ key: UnsafeRawBufferPointer) {
        if key.count == 7 && Self.matches(key, lowercase: "channel") {
            self = .channel
        } else if key.count == 4 && Self.matches(key, lowercase: "data") {
            self = .data
        } else if key.count == 4 && Self.matches(key, lowercase: "auth") {
            self = .auth
        } else {
            self = .other
        }
    }

    var name: String {
        switch self {
        case .channel: "channel"
        case .data: "data"
        case .auth: "auth"
        case .other: "other"
        }
    }

    /// `lowercase` is letters only, and for a lowercase letter `byte | 0x20` equals it exactly when `byte` is
    /// that letter in either case.
    @inline(__always)
    private static func matches(_ key: UnsafeRawBufferPointer, lowercase: StaticString) -> Bool {
        let expected = lowercase.utf8Start
        for offset in 0..<key.count where key[offset] | 0x20 != expected[offset] { return false }
        return true
    }
}

import CSystem

/// HMAC over OpenSSL, for the three JWT algorithms this server accepts.
public enum HMACAlgorithm: String, Sendable, CaseIterable {
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"

    var digestName: String {
        switch self {
        case .hs256: "SHA256"
        case .hs384: "SHA384"
        case .hs512: "SHA512"
        }
    }

    public func authenticate(_ message: some Collection<UInt8>, key: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        let input = Array(message)
        let length = key.withUnsafeBufferPointer { key in
            input.withUnsafeBufferPointer { input in
                out.withUnsafeMutableBufferPointer { out in
                    CSystem_hmac(
                        digestName, key.baseAddress, key.count, input.baseAddress, input.count, out.baseAddress)
                }
            }
        }
        precondition(length > 0, "OpenSSL HMAC failed")
        return Array(out.prefix(Int(length)))
    }
}

/// Equality whose time depends only on the length, so a forger learns nothing from timing.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { a in
        b.withUnsafeBytes { b in CSystem_memcmp_consttime(a.baseAddress, b.baseAddress, a.count) == 0 }
    }
}

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

    /// Bytes of the MAC (and of a valid signature).
    var digestSize: Int {
        switch self {
        case .hs256: 32
        case .hs384: 48
        case .hs512: 64
        }
    }

    /// One-shot, for minting tokens; verification uses an `HMACKey` prepared once.
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

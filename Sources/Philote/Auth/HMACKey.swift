import CSystem

/// The secret prepared for one algorithm, so that verifying a token hashes only the token
/// (CSystem_hmac_key_compute); safe to use from every event loop at once.
final class HMACKey: @unchecked Sendable {
    let algorithm: HMACAlgorithm
    private let pointer: OpaquePointer

    init(algorithm: HMACAlgorithm, secret: [UInt8]) {
        let prepared = secret.withUnsafeBufferPointer { secret in
            CSystem_hmac_key_new(algorithm.digestName, secret.baseAddress, secret.count)
        }
        guard let prepared else { preconditionFailure("OpenSSL cannot prepare an \(algorithm.rawValue) key") }
        self.algorithm = algorithm
        pointer = prepared
    }

    deinit { CSystem_hmac_key_free(pointer) }

    /// Writes the MAC of `message` to `out`, which holds 64 bytes (the longest MAC).
    func authenticate(_ message: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        let length = CSystem_hmac_key_compute(
            pointer, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, out)
        precondition(length == algorithm.digestSize, "OpenSSL HMAC failed")
    }
}

/// The per-record AEAD nonce: the IV XOR the sequence number (TLS 1.3, RFC 8446 section 5.3; ChaCha20-Poly1305 in
/// TLS 1.2, RFC 7905), or the 4-byte salt followed by the explicit nonce the record carries (AES-GCM in TLS 1.2,
/// RFC 5288).
struct RecordNonce {
    var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    init(
        iv: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8),
        sequence: UInt64, explicit: UnsafePointer<UInt8>?
    ) {
        bytes = iv
        withUnsafeMutableBytes(of: &bytes) { nonce in
            if let explicit {
                for index in 0..<8 { nonce[4 + index] = explicit[index] }
            } else {
                for index in 0..<8 { nonce[4 + index] ^= UInt8(truncatingIfNeeded: sequence >> (56 - 8 * index)) }
            }
        }
    }
}

/// The additional data a record's AEAD authenticates: the record header in TLS 1.3 (RFC 8446 section 5.2); the
/// sequence number, type, version and plaintext length in TLS 1.2 (RFC 5246 section 6.2.3.3).
struct RecordAdditionalData {
    var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    private(set) var count = 0

    init(header: UnsafePointer<UInt8>) {
        withUnsafeMutableBytes(of: &bytes) { aad in
            for index in 0..<5 { aad[index] = header[index] }
        }
        count = 5
    }

    init(sequence: UInt64, type: UInt8, length: Int) {
        withUnsafeMutableBytes(of: &bytes) { aad in
            for index in 0..<8 { aad[index] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * index)) }
            aad[8] = type
            aad[9] = 3
            aad[10] = 3
            aad[11] = UInt8(truncatingIfNeeded: length >> 8)
            aad[12] = UInt8(truncatingIfNeeded: length)
        }
        count = 13
    }
}

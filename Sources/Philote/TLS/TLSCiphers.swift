import CSystem

/// One loop's AEAD contexts (one per cipher and direction, given each record's key and nonce) and the buffer
/// records are sealed into for one write: no connection holds a cipher context or an output buffer of its own.
final class TLSCiphers {
    let pointer: OpaquePointer
    /// Room for `plaintextCapacity` bytes of application data sealed in 16 KiB records.
    let buffer: UnsafeMutableRawBufferPointer

    init(plaintextCapacity: Int) {
        pointer = CSystem_tls_ciphers_new()!
        let records = plaintextCapacity / TLSSession.maxPlaintext + 1
        // 29 bytes: the largest overhead of a record (TLS 1.2 AES-GCM: header, explicit nonce, tag).
        buffer = .allocate(byteCount: plaintextCapacity + records * 29, alignment: 16)
    }

    deinit {
        CSystem_tls_ciphers_free(pointer)
        buffer.deallocate()
    }
}

import CSystem

/// One loop's AEAD contexts without a key (one per cipher and direction, given each record's key and nonce) and
/// the buffer records are sealed into for one write: no connection holds an output buffer of its own, and only a
/// connection that is sending often holds a keyed context (TLSRecordLayer.keySealing).
final class TLSCiphers {
    /// Room for `plaintextCapacity` bytes of application data sealed in records of at most 16 KiB.
    let buffer: UnsafeMutableRawBufferPointer
    private var openers: [UnsafeMutableRawPointer?] = [nil, nil, nil]
    private var sealers: [UnsafeMutableRawPointer?] = [nil, nil, nil]

    init(plaintextCapacity: Int) {
        // Small records (max_fragment_length) carry more overhead per byte: room for records of 512 bytes.
        let records = plaintextCapacity / 512 + 2
        buffer = .allocate(byteCount: plaintextCapacity + records * TLSRecordLayer.maxOverhead, alignment: 16)
    }

    deinit {
        for context in openers + sealers { CSystem_tls_aead_free(context) }
        buffer.deallocate()
    }

    /// The context records of this AEAD are opened with, made on first use; nil when out of memory.
    func opener(_ aead: UInt8) -> UnsafeMutableRawPointer? {
        if let context = openers[Int(aead)] { return context }
        openers[Int(aead)] = CSystem_tls_aead_new(Int32(aead), nil, 0)
        return openers[Int(aead)]
    }

    /// The context records of this AEAD are sealed with when their connection holds none of its own.
    func sealer(_ aead: UInt8) -> UnsafeMutableRawPointer? {
        if let context = sealers[Int(aead)] { return context }
        sealers[Int(aead)] = CSystem_tls_aead_new(Int32(aead), nil, 1)
        return sealers[Int(aead)]
    }
}

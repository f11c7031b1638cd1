import CSystem

/// What a peer may make the record layer do without sending data, and how long a key may be used: the bounds
/// of every input after the handshake, with the counters they are checked against.
///
/// The counters count in a row, reset as OpenSSL resets its own: empty records by any record with content,
/// warnings by any such record that is not an alert, the others by application data with content. OpenSSL's
/// numbers are kept where it has one, so that both record layers refuse the same input with the same alert.
struct TLSRecordLimits {
    /// Empty records (any type in TLS 1.2, application data in TLS 1.3) in a row; the next one gets
    /// unexpected_message (OpenSSL: MAX_EMPTY_RECORDS).
    var maxEmptyRecords = 32
    /// TLS 1.2 warning alerts (and TLS 1.3 user_canceled) in a row: this many is refused with unexpected_message
    /// (OpenSSL: MAX_WARN_ALERT_COUNT).
    var maxWarnings = 5
    /// TLS 1.3 KeyUpdates in a row; the next one gets illegal_parameter (OpenSSL: MAX_KEY_UPDATE_MESSAGES). Each
    /// costs two key derivations, and three more and a sealed answer when it asks for an update back.
    var maxKeyUpdates = 32
    /// TLS 1.2 renegotiation attempts in a row, each refused with a no_renegotiation warning; the next one gets
    /// unexpected_message. OpenSSL sets no bound: a client that tries more often than this is not one that
    /// will give up.
    var maxRenegotiations = 5
    /// A handshake message after the handshake (a KeyUpdate; a TLS 1.2 ClientHello that is skipped) longer than
    /// this is refused with illegal_parameter, as OpenSSL refuses an excessive message.
    var maxHandshakeMessage = 1 << 16
    /// Records one AES-GCM key may seal (RFC 8446 section 5.5 allows 2^24.5 full-size records): in TLS 1.3 the
    /// last is a KeyUpdate; TLS 1.2, which cannot change keys, then seals only its close_notify. ChaCha20-Poly1305
    /// is bounded only by the sequence number, which must never wrap.
    var maxRecordsPerKey: UInt64

    init(aead: UInt8) {
        maxRecordsPerKey = aead == UInt8(CSystem_CHACHA20_POLY1305) ? UInt64.max - 1 : 1 << 24
    }

    // The counters.
    var emptyRecords = 0
    var warnings = 0
    var keyUpdates = 0
    var renegotiations = 0

    /// A record with content of this type was opened.
    mutating func opened(_ type: TLSContentType) {
        emptyRecords = 0
        if type != .alert { warnings = 0 }
        if type == .applicationData {
            keyUpdates = 0
            renegotiations = 0
        }
    }
}

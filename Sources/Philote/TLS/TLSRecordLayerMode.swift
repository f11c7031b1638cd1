/// Who protects the records after the handshake (`TLS_RECORD_LAYER`).
public enum TLSRecordLayerMode: String, Sendable, CaseIterable {
    /// OpenSSL hands over the traffic keys and is freed; TLSRecordLayer seals and opens the records (about 1 KB
    /// per idle connection).
    case builtin
    /// OpenSSL keeps the whole connection (SSL_read, SSL_write): about 14 KB per idle connection. The way back
    /// should a defect ever be found in the built-in layer, and the oracle its tests compare it with.
    case openssl
}

import CSystem

/// A loaded certificate chain and key with the server's TLS policy (CSystem_tls_server_context): TLS 1.2
/// and 1.3, AEAD suites with forward secrecy, X25519/P-256/P-384, ALPN http/1.1, tickets, no renegotiation or
/// compression.
/// Immutable once made; a reload makes a new one and connections keep the one they started with (OpenSSL
/// counts the references).
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    public let certificateFile: String
    public let keyFile: String
    /// The leaf certificate's serial number (hex), for the logs.
    public let serial: String
    /// Who protects the records of the connections that start with this context.
    public let recordLayer: TLSRecordLayerMode

    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Loads and checks the pair: unreadable files, a key that does not match, or a certificate that is
    /// expired or not yet valid are errors naming the file. A file that cannot be opened is reported with the
    /// system's reason and the remedy (TLSFileCheck), not OpenSSL's opaque "system lib".
    public init(
        certificateFile: String, keyFile: String, recordLayer: TLSRecordLayerMode = .builtin
    ) throws(LoadError) {
        for (variable, path, role) in [
            ("TLS_CERT_FILE", certificateFile, "certificate chain"), ("TLS_KEY_FILE", keyFile, "private key"),
        ] {
            if let problem = TLSFileCheck.problem(variable: variable, path: path, role: role) {
                throw LoadError(description: problem)
            }
        }
        var message = [CChar](repeating: 0, count: 512)
        guard
            let context = CSystem_tls_server_context(
                certificateFile, keyFile, recordLayer == .builtin ? 1 : 0, &message, message.count)
        else {
            throw LoadError(description: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        pointer = context
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.recordLayer = recordLayer
        var hex = [CChar](repeating: 0, count: 128)
        CSystem_tls_context_serial(context, &hex, hex.count)
        serial = hex.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit { CSystem_tls_context_free(pointer) }

    /// The context to serve with: the record layer asked for, unless the built-in one fails `check` with the
    /// OpenSSL this process runs on; then OpenSSL keeps the records, and `handOverFailure` says why.
    public static func serving(
        certificateFile: String, keyFile: String, recordLayer: TLSRecordLayerMode,
        check: (TLSContext) -> String? = TLSHandOverCheck.run
    ) throws(LoadError) -> (context: TLSContext, handOverFailure: String?) {
        let context = try TLSContext(certificateFile: certificateFile, keyFile: keyFile, recordLayer: recordLayer)
        guard recordLayer == .builtin, let failure = check(context) else { return (context, nil) }
        return (try TLSContext(certificateFile: certificateFile, keyFile: keyFile, recordLayer: .openssl), failure)
    }

    /// The OpenSSL the process runs with ("OpenSSL 3.0.19 27 Jan 2026"), for the logs.
    public static var libraryVersion: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}

import CSystem
import Glibc

@testable import Philote

// What the TLS unit tests share: one test certificate, the server context made from it, and the six version/suite
// pairs the server allows.

/// P-256, self-signed for CN=localhost, valid 2000-2100: the tests need no openssl command.
let tlsTestKey = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6udQ2CcLa84yD3e3
    Hul7zKB2Rgtk70K+bH6pL9S0wLahRANCAAS+I4mEZdG8aMVaVbIrS77TvOwQKyFv
    IT1aPeUsWLVb2b31bxXx1fCeR4lRNwiSFms1Tvj5Sh4B8ld8LtzxClzY
    -----END PRIVATE KEY-----

    """
let tlsTestCertificate = """
    -----BEGIN CERTIFICATE-----
    MIIBGDCBv6ADAgECAgEBMAoGCCqGSM49BAMCMBQxEjAQBgNVBAMMCWxvY2FsaG9z
    dDAiGA8yMDAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAUMRIwEAYDVQQD
    DAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS+I4mEZdG8aMVa
    VbIrS77TvOwQKyFvIT1aPeUsWLVb2b31bxXx1fCeR4lRNwiSFms1Tvj5Sh4B8ld8
    LtzxClzYMAoGCCqGSM49BAMCA0gAMEUCIQCRNFkYvRZNLtDFLCviMeXhmRz48wCS
    k9pdBb0PiZemqgIgZt1chkbmW2enY16QqGfT0RIzlkeW2K7dZOAgSo5w3lk=
    -----END CERTIFICATE-----

    """

func tlsTemporaryFile(_ contents: String) -> String {
    var template = Array("/tmp/philote-test-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    precondition(fd >= 0)
    _ = contents.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// One server context for all the tests: a TLS 1.2 session cached by one connection is found by the next.
let tlsTestServerContext: TLSContext = {
    let certificate = tlsTemporaryFile(tlsTestCertificate)
    let key = tlsTemporaryFile(tlsTestKey)
    defer {
        unlink(certificate)
        unlink(key)
    }
    return try! TLSContext(certificateFile: certificate, keyFile: key)
}()

struct TLSTestSuite: CustomStringConvertible, Sendable {
    let name: String
    let tls13: Bool
    var description: String { name }
}

let tlsTestSuites = [
    TLSTestSuite(name: "TLS_AES_128_GCM_SHA256", tls13: true),
    TLSTestSuite(name: "TLS_AES_256_GCM_SHA384", tls13: true),
    TLSTestSuite(name: "TLS_CHACHA20_POLY1305_SHA256", tls13: true),
    TLSTestSuite(name: "ECDHE-ECDSA-AES128-GCM-SHA256", tls13: false),
    TLSTestSuite(name: "ECDHE-ECDSA-AES256-GCM-SHA384", tls13: false),
    TLSTestSuite(name: "ECDHE-ECDSA-CHACHA20-POLY1305", tls13: false),
]

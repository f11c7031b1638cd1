#include "CSystem.h"
#include "CSystemTLSTraffic.h"

#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void set_error(char *error, size_t length, const char *what, const char *file) {
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    snprintf(error, length, "%s %s%s%s", what, file, code ? ": " : "", reason);
    ERR_clear_error();
}

// For a file named by a variable: "<what> TLS_CERT_FILE=/path: <OpenSSL's reason>", so that the operator knows
// which setting to fix.
static void set_file_error(char *error, size_t length, const char *what, const char *variable, const char *file) {
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    snprintf(error, length, "%s %s=%s%s%s", what, variable, file, code ? ": " : "", reason);
    ERR_clear_error();
}

// ALPN: the only protocol spoken here is HTTP/1.1 (the WebSocket upgrade); a client that offers ALPN
// without it is refused, one that offers none proceeds.
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length, const unsigned char *in,
                       unsigned int in_length, void *argument) {
    (void)ssl;
    (void)argument;
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (SSL_select_next_proto((unsigned char **)out, out_length, http11, sizeof http11, in, in_length) ==
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

CSystem_TLSContext *CSystem_tls_server_context(const char *cert_file, const char *key_file, int hand_over,
                                               char *error, size_t error_length) {
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (!context) {
        set_error(error, error_length, "cannot create a TLS context for", cert_file);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION);
    SSL_CTX_set_options(context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // TLS 1.2: ECDHE key exchange (forward secrecy) with AEAD ciphers only. TLS 1.3: OpenSSL's default suites,
    // named so that a system-wide configuration cannot add others. After the handshake the record layer seals
    // the records itself and knows exactly these AEADs (AES-128/256-GCM, ChaCha20-Poly1305).
    SSL_CTX_set_cipher_list(context, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_ciphersuites(context, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    // Elliptic-curve groups only: OpenSSL 3.0 would otherwise agree to a TLS 1.3 finite-field (FFDHE) group with a
    // client that offers nothing else, a slow key exchange that no browser needs.
    if (SSL_CTX_set1_groups_list(context, "X25519:P-256:P-384") != 1) {
        set_error(error, error_length, "cannot set the key exchange groups for", cert_file);
        SSL_CTX_free(context);
        return NULL;
    }
    // A handshake that stalls holds no buffers, nor does an idle connection OpenSSL keeps (TLS_RECORD_LAYER=openssl).
    // Partial and moving writes: the connection hands SSL_write whatever its queue holds, copied afresh each time.
    SSL_CTX_set_mode(context,
                     SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(context, select_alpn, NULL);
    if (hand_over) CSystem_tls_capture_traffic(context);
    if (SSL_CTX_use_certificate_chain_file(context, cert_file) != 1) {
        set_file_error(error, error_length, "cannot load the certificate chain", "TLS_CERT_FILE", cert_file);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1) {
        set_file_error(error, error_length, "cannot load the private key", "TLS_KEY_FILE", key_file);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        snprintf(error, error_length,
                 "the private key TLS_KEY_FILE=%s does not match the certificate TLS_CERT_FILE=%s", key_file,
                 cert_file);
        ERR_clear_error();
        SSL_CTX_free(context);
        return NULL;
    }
    X509 *leaf = SSL_CTX_get0_certificate(context);
    if (!leaf || X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        snprintf(error, error_length, "the certificate in TLS_CERT_FILE=%s has expired", cert_file);
        SSL_CTX_free(context);
        return NULL;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        snprintf(error, error_length, "the certificate in TLS_CERT_FILE=%s is not valid yet (is the clock right?)",
                 cert_file);
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

void CSystem_tls_context_free(CSystem_TLSContext *context) { SSL_CTX_free(context); }

void CSystem_tls_context_serial(CSystem_TLSContext *context, char *out, size_t length) {
    out[0] = 0;
    X509 *leaf = SSL_CTX_get0_certificate(context);
    if (!leaf) return;
    BIGNUM *number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    if (!number) return;
    char *hex = BN_bn2hex(number);
    if (hex) {
        snprintf(out, length, "%s", hex);
        OPENSSL_free(hex);
    }
    BN_free(number);
}

CSystem_TLS *CSystem_tls_new(CSystem_TLSContext *context, int fd) {
    SSL *tls = SSL_new(context);
    if (!tls) return NULL;
    int hand_over = SSL_CTX_get_keylog_callback(context) != NULL;
    if (SSL_set_fd(tls, fd) != 1 || (hand_over && !CSystem_tls_attach_traffic(tls))) {
        CSystem_tls_free(tls);
        return NULL;
    }
    SSL_set_accept_state(tls);
    return tls;
}

void CSystem_tls_free(CSystem_TLS *tls) {
    // A server connection that never got to CSystem_tls_detach still owns its traffic capture.
    CSystem_tls_capture_free(tls);
    SSL_free(tls);
}

static int map_result(CSystem_TLS *tls, int result) {
    switch (SSL_get_error(tls, result)) {
    case SSL_ERROR_WANT_READ: return CSystem_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return CSystem_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return CSystem_TLS_CLOSED;
    default: ERR_clear_error(); return CSystem_TLS_FAILED;
    }
}

int CSystem_tls_handshake(CSystem_TLS *tls) {
    int result = SSL_do_handshake(tls);
    return result == 1 ? 1 : map_result(tls, result);
}

int CSystem_tls_read(CSystem_TLS *tls, void *buffer, int length) {
    int result = SSL_read(tls, buffer, length);
    return result > 0 ? result : map_result(tls, result);
}

int CSystem_tls_write(CSystem_TLS *tls, const void *buffer, int length) {
    int result = SSL_write(tls, buffer, length);
    return result > 0 ? result : map_result(tls, result);
}

void CSystem_tls_close_notify(CSystem_TLS *tls) {
    SSL_shutdown(tls);
    ERR_clear_error();
}

CSystem_TLSContext *CSystem_tls_client_context(const char *ca_file, int insecure, char *error,
                                               size_t error_length) {
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (!context) {
        set_error(error, error_length, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(context, http11, sizeof http11);
    if (insecure) {
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
        return context;
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    int loaded = ca_file ? SSL_CTX_load_verify_locations(context, ca_file, NULL) : SSL_CTX_set_default_verify_paths(context);
    if (loaded != 1) {
        set_error(error, error_length, "cannot load the certificate authorities in", ca_file ? ca_file : "the system store");
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

CSystem_TLS *CSystem_tls_client_new(CSystem_TLSContext *context, int fd, const char *host) {
    SSL *tls = SSL_new(context);
    if (!tls) return NULL;
    if (SSL_set_fd(tls, fd) != 1) {
        SSL_free(tls);
        return NULL;
    }
    X509_VERIFY_PARAM *parameters = SSL_get0_param(tls);
    // An IP literal is checked against the certificate's IP addresses, a name against its DNS names.
    if (X509_VERIFY_PARAM_set1_ip_asc(parameters, host) != 1) {
        ERR_clear_error();
        SSL_set_tlsext_host_name(tls, host);
        X509_VERIFY_PARAM_set1_host(parameters, host, 0);
    }
    SSL_set_connect_state(tls);
    return tls;
}

int CSystem_tls_pending(CSystem_TLS *tls) { return SSL_pending(tls); }

const char *CSystem_tls_verify_error(CSystem_TLS *tls) {
    long result = SSL_get_verify_result(tls);
    return result == X509_V_OK ? "" : X509_verify_cert_error_string(result);
}

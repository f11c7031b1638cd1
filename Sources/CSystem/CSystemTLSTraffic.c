// The TLS record layer after the handshake (see CSystem.h, "TLS traffic").
//
// Why it exists: OpenSSL 3.0's SSL object is 7.6 KB by itself (its record layer keeps state for 32 pipelines
// inline) and holds on to about 6 KB more until SSL_free (two cipher contexts, the session, a copy of the
// certificate configuration, the key shares, the transcript hash contexts, locks). That is 14 KB for an idle
// connection whose only lasting state is two keys, two IVs and two sequence numbers. So OpenSSL does the
// handshake, hands over the traffic keys through its public hooks (the keylog callback for the TLS 1.3 traffic
// secrets, the session's master secret for TLS 1.2, the message callback to count the records already protected
// with them), and is freed; records are then sealed and opened here with EVP AEAD contexts shared by a loop, as
// kernel TLS does with the same hand-over.
#include "CSystem.h"
#include "CSystemTLSTraffic.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

enum { AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305, AEAD_COUNT };
enum { TAG_LENGTH = 16, HEADER_LENGTH = 5, MAX_PLAINTEXT = 16384 };
enum { ALERT_UNEXPECTED_MESSAGE = 10, ALERT_BAD_RECORD_MAC = 20, ALERT_RECORD_OVERFLOW = 22, ALERT_PROTOCOL_VERSION = 70 };

typedef struct {
    uint8_t key[32];
    // TLS 1.3 and ChaCha20-Poly1305: the 12-byte IV the sequence number is XORed into; TLS 1.2 AES-GCM: the
    // 4-byte salt before the explicit nonce.
    uint8_t iv[12];
    // During the handshake: records seen since the keys last changed (the message callback counts them).
    uint64_t sequence;
    // TLS 1.3: the traffic secret, from which KeyUpdate derives the next one.
    uint8_t secret[48];
} Direction;

struct CSystem_TLSTraffic {
    Direction read, write;
    uint16_t version;
    uint8_t aead;
    uint8_t key_length;
    uint8_t secret_length;
    uint8_t read_secret_seen, write_secret_seen;
    // TLS 1.2 without tickets: the session in the server's cache, removed after a fatal alert (RFC 5246 7.2.2).
    SSL_SESSION *session;
    SSL_CTX *context;
};

struct CSystem_TLSCiphers {
    EVP_CIPHER_CTX *seal[AEAD_COUNT];
    EVP_CIPHER_CTX *open[AEAD_COUNT];
};

// MARK: Capture during the handshake

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A keylog line is "LABEL <client random, hex> <secret, hex>"; only the TLS 1.3 application traffic secrets are
// kept (the server reads with the client's and writes with its own).
static void capture_secret(const SSL *ssl, const char *line) {
    CSystem_TLSTraffic *traffic = SSL_get_app_data(ssl);
    if (!traffic) return;
    static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ", server[] = "SERVER_TRAFFIC_SECRET_0 ";
    Direction *direction;
    uint8_t *seen;
    if (strncmp(line, client, sizeof client - 1) == 0) {
        direction = &traffic->read;
        seen = &traffic->read_secret_seen;
    } else if (strncmp(line, server, sizeof server - 1) == 0) {
        direction = &traffic->write;
        seen = &traffic->write_secret_seen;
    } else {
        return;
    }
    const char *hex = strchr(line + sizeof client - 1, ' ');
    if (!hex) return;
    hex++;
    size_t length = strlen(hex) / 2;
    if (length == 0 || length > sizeof direction->secret) return;
    for (size_t i = 0; i < length; i++) {
        int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
        if (high < 0 || low < 0) return;
        direction->secret[i] = (uint8_t)(high << 4 | low);
    }
    traffic->secret_length = (uint8_t)length;
    *seen = 1;
}

// Counts the records protected with the newest keys in each direction: their number is where the sequence
// number stands when the connection is handed over (the tickets a TLS 1.3 server sends after its Finished). A
// record's header is reported before the message it carries. Finished is the last message under the handshake
// keys in TLS 1.3, and the first under the new keys in TLS 1.2 (where OpenSSL does not report a ChangeCipherSpec
// it reads).
static void count_records(int write_p, int version, int content_type, const void *buffer, size_t length, SSL *ssl,
                          void *argument) {
    (void)version;
    (void)argument;
    CSystem_TLSTraffic *traffic = SSL_get_app_data(ssl);
    if (!traffic) return;
    Direction *direction = write_p ? &traffic->write : &traffic->read;
    if (content_type == SSL3_RT_HEADER) {
        direction->sequence++;
    } else if (content_type == SSL3_RT_HANDSHAKE && length > 0 && *(const uint8_t *)buffer == SSL3_MT_FINISHED) {
        direction->sequence = SSL_version(ssl) == TLS1_3_VERSION ? 0 : 1;
    }
}

void CSystem_tls_capture_traffic(CSystem_TLSContext *context) {
    SSL_CTX_set_keylog_callback(context, capture_secret);
    SSL_CTX_set_msg_callback(context, count_records);
}

int CSystem_tls_attach_traffic(CSystem_TLS *tls) {
    CSystem_TLSTraffic *traffic = OPENSSL_zalloc(sizeof *traffic);
    if (!traffic) return 0;
    SSL_set_app_data(tls, traffic);
    return 1;
}

// MARK: Key derivation

// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
static int expand_label(const char *digest, const uint8_t *secret, size_t secret_length, const char *label,
                        uint8_t *out, size_t length) {
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t label_length = strlen(label);
    info[0] = (uint8_t)(length >> 8);
    info[1] = (uint8_t)length;
    info[2] = (uint8_t)(6 + label_length);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, label_length);
    info[9 + label_length] = 0;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *context = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!context) return 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM parameters[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_length),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + label_length),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(context, out, length, parameters) == 1;
    EVP_KDF_CTX_free(context);
    return ok;
}

static const char *digest_name(const CSystem_TLSTraffic *traffic) {
    return traffic->aead == AES_256_GCM ? "SHA384" : "SHA256";
}

static int derive_tls13(CSystem_TLSTraffic *traffic, Direction *direction) {
    return expand_label(digest_name(traffic), direction->secret, traffic->secret_length, "key", direction->key,
                        traffic->key_length) &&
           expand_label(digest_name(traffic), direction->secret, traffic->secret_length, "iv", direction->iv, 12);
}

// TLS 1.2 key block (RFC 5246 section 6.3): PRF(master secret, "key expansion", server random + client random),
// cut into client key, server key, client IV, server IV (AEAD suites have no MAC keys).
static int derive_tls12(CSystem_TLSTraffic *traffic, CSystem_TLS *tls) {
    uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], seed[13 + 2 * SSL3_RANDOM_SIZE], block[2 * 32 + 2 * 12];
    size_t master_length = SSL_SESSION_get_master_key(SSL_get_session(tls), master, sizeof master);
    memcpy(seed, "key expansion", 13);
    SSL_get_server_random(tls, seed + 13, SSL3_RANDOM_SIZE);
    SSL_get_client_random(tls, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE);
    size_t iv_length = traffic->aead == CHACHA20_POLY1305 ? 12 : 4;
    size_t block_length = 2 * (traffic->key_length + iv_length);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *context = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    int ok = 0;
    if (context && master_length > 0) {
        OSSL_PARAM parameters[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest_name(traffic), 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, master_length),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
            OSSL_PARAM_construct_end(),
        };
        ok = EVP_KDF_derive(context, block, block_length, parameters) == 1;
    }
    EVP_KDF_CTX_free(context);
    if (ok) {
        const uint8_t *p = block;
        memcpy(traffic->read.key, p, traffic->key_length);
        memcpy(traffic->write.key, p += traffic->key_length, traffic->key_length);
        memcpy(traffic->read.iv, p += traffic->key_length, iv_length);
        memcpy(traffic->write.iv, p + iv_length, iv_length);
    }
    OPENSSL_cleanse(master, sizeof master);
    OPENSSL_cleanse(block, sizeof block);
    return ok;
}

static int take_keys(CSystem_TLSTraffic *traffic, CSystem_TLS *tls) {
    if (!SSL_is_init_finished(tls) || SSL_has_pending(tls)) return 0;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(tls);
    switch (cipher ? SSL_CIPHER_get_cipher_nid(cipher) : NID_undef) {
    case NID_aes_128_gcm: traffic->aead = AES_128_GCM, traffic->key_length = 16; break;
    case NID_aes_256_gcm: traffic->aead = AES_256_GCM, traffic->key_length = 32; break;
    case NID_chacha20_poly1305: traffic->aead = CHACHA20_POLY1305, traffic->key_length = 32; break;
    default: return 0;  // only the AEAD suites the server context allows
    }
    traffic->version = (uint16_t)SSL_version(tls);
    if (traffic->version == TLS1_3_VERSION) {
        size_t expected = traffic->aead == AES_256_GCM ? 48 : 32;
        return traffic->read_secret_seen && traffic->write_secret_seen && traffic->secret_length == expected &&
               derive_tls13(traffic, &traffic->read) && derive_tls13(traffic, &traffic->write);
    }
    if (traffic->version != TLS1_2_VERSION || !derive_tls12(traffic, tls)) return 0;
    unsigned int id_length = 0;
    SSL_SESSION_get_id(SSL_get_session(tls), &id_length);
    if (id_length > 0) {
        traffic->session = SSL_get1_session(tls);
        traffic->context = SSL_get_SSL_CTX(tls);
        SSL_CTX_up_ref(traffic->context);
    }
    return 1;
}

CSystem_TLSTraffic *CSystem_tls_detach(CSystem_TLS *tls) {
    CSystem_TLSTraffic *traffic = SSL_get_app_data(tls);
    SSL_set_app_data(tls, NULL);
    int ok = traffic && take_keys(traffic, tls);
    // The connection carries on without OpenSSL: freeing its SSL must not count as a failed connection (that
    // would drop a TLS 1.2 session from the cache).
    if (ok) SSL_set_shutdown(tls, SSL_SENT_SHUTDOWN);
    SSL_free(tls);
    if (!ok && traffic) {
        CSystem_tls_traffic_free(traffic, 0);
        return NULL;
    }
    return traffic;
}

void CSystem_tls_traffic_free(CSystem_TLSTraffic *traffic, int failed) {
    if (!traffic) return;
    if (traffic->session) {
        if (failed) SSL_CTX_remove_session(traffic->context, traffic->session);
        SSL_SESSION_free(traffic->session);
        SSL_CTX_free(traffic->context);
    }
    OPENSSL_clear_free(traffic, sizeof *traffic);
}

int CSystem_tls_traffic_version(const CSystem_TLSTraffic *traffic) { return traffic->version; }

int CSystem_tls_update_traffic_keys(CSystem_TLSTraffic *traffic, int write) {
    if (traffic->version != TLS1_3_VERSION) return 0;
    Direction *direction = write ? &traffic->write : &traffic->read;
    uint8_t next[sizeof direction->secret];
    if (!expand_label(digest_name(traffic), direction->secret, traffic->secret_length, "traffic upd", next,
                      traffic->secret_length)) {
        return 0;
    }
    memcpy(direction->secret, next, traffic->secret_length);
    OPENSSL_cleanse(next, sizeof next);
    direction->sequence = 0;
    return derive_tls13(traffic, direction);
}

// MARK: Records

CSystem_TLSCiphers *CSystem_tls_ciphers_new(void) { return OPENSSL_zalloc(sizeof(CSystem_TLSCiphers)); }

void CSystem_tls_ciphers_free(CSystem_TLSCiphers *ciphers) {
    if (!ciphers) return;
    for (int i = 0; i < AEAD_COUNT; i++) {
        EVP_CIPHER_CTX_free(ciphers->seal[i]);
        EVP_CIPHER_CTX_free(ciphers->open[i]);
    }
    OPENSSL_free(ciphers);
}

// The loop's context for this AEAD and direction, made on first use; every record sets its own key and nonce.
static EVP_CIPHER_CTX *cipher_context(CSystem_TLSCiphers *ciphers, int aead, int seal) {
    EVP_CIPHER_CTX **slot = seal ? &ciphers->seal[aead] : &ciphers->open[aead];
    if (*slot) return *slot;
    static const char *const names[AEAD_COUNT] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, names[aead], NULL);
    EVP_CIPHER_CTX *context = cipher ? EVP_CIPHER_CTX_new() : NULL;
    if (context && EVP_CipherInit_ex2(context, cipher, NULL, NULL, seal, NULL) != 1) {
        EVP_CIPHER_CTX_free(context);
        context = NULL;
    }
    EVP_CIPHER_free(cipher);
    *slot = context;
    return context;
}

static int explicit_nonce_length(const CSystem_TLSTraffic *traffic) {
    return traffic->version == TLS1_2_VERSION && traffic->aead != CHACHA20_POLY1305 ? 8 : 0;
}

static void put_u64(uint8_t *out, uint64_t value) {
    for (int i = 7; i >= 0; i--, value >>= 8) out[i] = (uint8_t)value;
}

// The per-record nonce: the IV XOR the sequence number (TLS 1.3, RFC 8446 section 5.3; ChaCha20-Poly1305 in TLS
// 1.2, RFC 7905), or the salt followed by the explicit nonce carried in the record (AES-GCM in TLS 1.2, RFC 5288).
static void make_nonce(const Direction *direction, const uint8_t *explicit_nonce, uint8_t nonce[12]) {
    if (explicit_nonce) {
        memcpy(nonce, direction->iv, 4);
        memcpy(nonce + 4, explicit_nonce, 8);
        return;
    }
    uint8_t sequence[8];
    put_u64(sequence, direction->sequence);
    memcpy(nonce, direction->iv, 12);
    for (int i = 0; i < 8; i++) nonce[4 + i] ^= sequence[i];
}

size_t CSystem_tls_record_overhead(const CSystem_TLSTraffic *traffic) {
    return HEADER_LENGTH + (size_t)explicit_nonce_length(traffic) + TAG_LENGTH +
           (traffic->version == TLS1_3_VERSION ? 1 : 0);
}

// The checks a record's header allows before its body arrives: version, content type. TLS 1.3 protects everything
// as application data; a ChangeCipherSpec after the handshake is unexpected in either version (RFC 8446
// section 5, RFC 5246 section 7.1). 0 when acceptable, else the alert to send.
static int header_alert(const CSystem_TLSTraffic *traffic, const uint8_t *header) {
    if (header[1] != 3 || header[2] != 3) return ALERT_PROTOCOL_VERSION;
    uint8_t outer = header[0];
    if (traffic->version == TLS1_3_VERSION ? outer != SSL3_RT_APPLICATION_DATA
                                           : outer != SSL3_RT_ALERT && outer != SSL3_RT_HANDSHAKE &&
                                                 outer != SSL3_RT_APPLICATION_DATA) {
        return ALERT_UNEXPECTED_MESSAGE;
    }
    return 0;
}

int CSystem_tls_record_length(const CSystem_TLSTraffic *traffic, const void *record) {
    const uint8_t *header = record;
    // Refused from its first five bytes: a peer sending something that is not a record (say, cleartext HTTP)
    // is not left waiting for a body its "length" made up.
    int alert = header_alert(traffic, header);
    if (alert) return -alert;
    size_t length = (size_t)header[3] << 8 | header[4];
    // RFC 8446 section 5.2 and RFC 5246 section 6.2.3: the largest ciphertext a peer may send.
    size_t limit = MAX_PLAINTEXT + (traffic->version == TLS1_3_VERSION ? 256 : 2048);
    return length > limit ? -ALERT_RECORD_OVERFLOW : (int)length;
}

int CSystem_tls_seal(CSystem_TLSTraffic *traffic, CSystem_TLSCiphers *ciphers, uint8_t type, const void *in,
                     size_t length, void *record) {
    uint8_t *out = record;
    EVP_CIPHER_CTX *context = cipher_context(ciphers, traffic->aead, 1);
    if (!context || length > MAX_PLAINTEXT) return -1;
    int tls13 = traffic->version == TLS1_3_VERSION;
    size_t explicit_length = (size_t)explicit_nonce_length(traffic);
    size_t body = explicit_length + length + (tls13 ? 1 : 0) + TAG_LENGTH;
    out[0] = tls13 ? SSL3_RT_APPLICATION_DATA : type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    uint8_t nonce[12], aad[13];
    size_t aad_length = HEADER_LENGTH;
    if (explicit_length) put_u64(out + HEADER_LENGTH, traffic->write.sequence);  // unique per key, as RFC 5288 asks
    make_nonce(&traffic->write, explicit_length ? out + HEADER_LENGTH : NULL, nonce);
    if (tls13) {
        memcpy(aad, out, HEADER_LENGTH);
    } else {
        put_u64(aad, traffic->write.sequence);
        aad[8] = type;
        aad[9] = 3;
        aad[10] = 3;
        aad[11] = (uint8_t)(length >> 8);
        aad[12] = (uint8_t)length;
        aad_length = 13;
    }
    uint8_t *cipher_text = out + HEADER_LENGTH + explicit_length;
    size_t inner_length = length;
    if (tls13) {
        // TLSInnerPlaintext (the content, then its type) laid out in place and sealed with one update instead of
        // two: each update costs several hundred instructions of provider dispatch, and fan-out records are small.
        memmove(cipher_text, in, length);
        cipher_text[length] = type;
        in = cipher_text;
        inner_length++;
    }
    int written = 0, extra = 0;
    if (EVP_EncryptInit_ex2(context, NULL, traffic->write.key, nonce, NULL) != 1 ||
        EVP_EncryptUpdate(context, NULL, &extra, aad, (int)aad_length) != 1 ||
        EVP_EncryptUpdate(context, cipher_text, &written, in, (int)inner_length) != 1 ||
        EVP_EncryptFinal_ex(context, cipher_text + written, &extra) != 1 ||
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, TAG_LENGTH, cipher_text + written + extra) != 1) {
        return -1;
    }
    traffic->write.sequence++;
    return (int)(HEADER_LENGTH + body);
}

int CSystem_tls_open(CSystem_TLSTraffic *traffic, CSystem_TLSCiphers *ciphers, void *bytes, size_t length,
                     uint8_t *type, size_t *offset) {
    uint8_t *record = bytes;
    int tls13 = traffic->version == TLS1_3_VERSION;
    int alert = header_alert(traffic, record);
    if (alert) return -alert;
    uint8_t outer = record[0];
    size_t explicit_length = (size_t)explicit_nonce_length(traffic);
    if (length < HEADER_LENGTH + explicit_length + TAG_LENGTH) return -ALERT_BAD_RECORD_MAC;
    size_t cipher_length = length - HEADER_LENGTH - explicit_length - TAG_LENGTH;
    EVP_CIPHER_CTX *context = cipher_context(ciphers, traffic->aead, 0);
    if (!context) return -ALERT_BAD_RECORD_MAC;
    uint8_t nonce[12], aad[13];
    size_t aad_length = HEADER_LENGTH;
    make_nonce(&traffic->read, explicit_length ? record + HEADER_LENGTH : NULL, nonce);
    if (tls13) {
        memcpy(aad, record, HEADER_LENGTH);
    } else {
        put_u64(aad, traffic->read.sequence);
        aad[8] = outer;
        aad[9] = 3;
        aad[10] = 3;
        aad[11] = (uint8_t)(cipher_length >> 8);
        aad[12] = (uint8_t)cipher_length;
        aad_length = 13;
    }
    uint8_t *text = record + HEADER_LENGTH + explicit_length;
    int opened = 0, extra = 0;
    if (EVP_DecryptInit_ex2(context, NULL, traffic->read.key, nonce, NULL) != 1 ||
        EVP_DecryptUpdate(context, NULL, &extra, aad, (int)aad_length) != 1 ||
        EVP_DecryptUpdate(context, text, &opened, text, (int)cipher_length) != 1 ||
        EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, TAG_LENGTH, text + cipher_length) != 1 ||
        EVP_DecryptFinal_ex(context, text + opened, &extra) != 1) {
        return -ALERT_BAD_RECORD_MAC;
    }
    traffic->read.sequence++;
    size_t plain_length = cipher_length;
    if (tls13) {
        // TLSInnerPlaintext: the content, its type, then zero padding (RFC 8446 section 5.4).
        while (plain_length > 0 && text[plain_length - 1] == 0) plain_length--;
        if (plain_length == 0) return -ALERT_UNEXPECTED_MESSAGE;
        plain_length--;
        *type = text[plain_length];
    } else {
        *type = outer;
    }
    if (plain_length > MAX_PLAINTEXT) return -ALERT_RECORD_OVERFLOW;
    *offset = HEADER_LENGTH + explicit_length;
    return (int)plain_length;
}

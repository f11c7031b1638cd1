// The hand-over of a TLS connection after the handshake, and the AEAD primitives records are sealed with (see
// CSystem.h, "TLS traffic"). Every decision about records is made in Swift (Sources/Philote/TLS/TLSRecordLayer);
// this file only does what needs OpenSSL's C API.
//
// Why it exists: OpenSSL 3.0's SSL object is 7.6 KB by itself (its record layer keeps state for 32 pipelines
// inline) and holds on to about 6 KB more until SSL_free (two cipher contexts, the session, a copy of the
// certificate configuration, the key shares, the transcript hash contexts, locks). That is 14 KB for an idle
// connection whose only lasting state is two keys, two IVs and two sequence numbers. So OpenSSL does the
// handshake, hands over the traffic keys through its public hooks (the keylog callback for the TLS 1.3 traffic
// secrets, the session's master secret for TLS 1.2, the message callback to count the records already protected
// with them), and is freed, as kernel TLS does with the same hand-over.
#include "CSystem.h"
#include "CSystemTLSTraffic.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

enum { TAG_LENGTH = 16 };

// What the callbacks gather during one connection's handshake (its app data).
typedef struct {
    CSystem_TLSDirection read, write;
    uint8_t secret_length;
    uint8_t read_secret_seen, write_secret_seen;
} Capture;

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
    Capture *capture = SSL_get_app_data(ssl);
    if (!capture) return;
    static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ", server[] = "SERVER_TRAFFIC_SECRET_0 ";
    CSystem_TLSDirection *direction;
    uint8_t *seen;
    if (strncmp(line, client, sizeof client - 1) == 0) {
        direction = &capture->read;
        seen = &capture->read_secret_seen;
    } else if (strncmp(line, server, sizeof server - 1) == 0) {
        direction = &capture->write;
        seen = &capture->write_secret_seen;
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
    capture->secret_length = (uint8_t)length;
    *seen = 1;
}

// Counts the records protected with the newest keys in each direction: their number is where the sequence
// number stands when the connection is handed over. OpenSSL reports each record's header (read or written)
// before the messages it carries.
// - TLS 1.2: the keys change right after a ChangeCipherSpec record, whatever the records after it carry (the
//   Finished may span several, an empty record may come first), so counting starts again at that record's header.
// - TLS 1.3: Finished is the last message under the handshake keys (its records may come before it); the
//   ChangeCipherSpec records of middlebox compatibility change nothing.
static void count_records(int write_p, int version, int content_type, const void *buffer, size_t length, SSL *ssl,
                          void *argument) {
    (void)version;
    (void)argument;
    Capture *capture = SSL_get_app_data(ssl);
    if (!capture) return;
    CSystem_TLSDirection *direction = write_p ? &capture->write : &capture->read;
    int tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    if (content_type == SSL3_RT_HEADER && length >= 1) {
        if (!tls13 && *(const uint8_t *)buffer == SSL3_RT_CHANGE_CIPHER_SPEC) {
            direction->sequence = 0;
        } else {
            direction->sequence++;
        }
    } else if (tls13 && content_type == SSL3_RT_HANDSHAKE && length > 0 &&
               *(const uint8_t *)buffer == SSL3_MT_FINISHED) {
        direction->sequence = 0;
    }
}

void CSystem_tls_capture_traffic(CSystem_TLSContext *context) {
    SSL_CTX_set_keylog_callback(context, capture_secret);
    SSL_CTX_set_msg_callback(context, count_records);
}

int CSystem_tls_attach_traffic(CSystem_TLS *tls) {
    Capture *capture = OPENSSL_zalloc(sizeof *capture);
    if (!capture) return 0;
    SSL_set_app_data(tls, capture);
    return 1;
}

void CSystem_tls_capture_free(CSystem_TLS *tls) {
    Capture *capture = SSL_get_app_data(tls);
    SSL_set_app_data(tls, NULL);
    if (capture) OPENSSL_clear_free(capture, sizeof *capture);
}

// MARK: Key derivation

// HKDF, fetched once per process: a fetch looks the name up in the provider store under its lock, and a KeyUpdate
// (which a peer may send many of) derives three labels. Kept for the process's life.
static EVP_KDF *hkdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;
static void fetch_hkdf(void) { hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL); }

// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
static int expand_label(int sha384, const uint8_t *secret, size_t secret_length, const char *label, uint8_t *out,
                        size_t length) {
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t label_length = strlen(label);
    info[0] = (uint8_t)(length >> 8);
    info[1] = (uint8_t)length;
    info[2] = (uint8_t)(6 + label_length);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, label_length);
    info[9 + label_length] = 0;
    pthread_once(&hkdf_once, fetch_hkdf);
    EVP_KDF_CTX *context = hkdf ? EVP_KDF_CTX_new(hkdf) : NULL;
    if (!context) return 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM parameters[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, sha384 ? "SHA384" : "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_length),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + label_length),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(context, out, length, parameters) == 1;
    EVP_KDF_CTX_free(context);
    return ok;
}

int CSystem_tls13_next_secret(int sha384, const uint8_t *secret, size_t length, uint8_t *next) {
    return expand_label(sha384, secret, length, "traffic upd", next, length);
}

int CSystem_tls13_traffic_keys(int sha384, const uint8_t *secret, size_t length, uint8_t *key, size_t key_length,
                               uint8_t *iv) {
    return expand_label(sha384, secret, length, "key", key, key_length) &&
           expand_label(sha384, secret, length, "iv", iv, 12);
}

// TLS 1.2 key block (RFC 5246 section 6.3): PRF(master secret, "key expansion", server random + client random),
// cut into client key, server key, client IV, server IV (AEAD suites have no MAC keys).
static int derive_tls12(CSystem_TLSHandOver *out, CSystem_TLS *tls) {
    uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], seed[13 + 2 * SSL3_RANDOM_SIZE], block[2 * 32 + 2 * 12];
    size_t master_length = SSL_SESSION_get_master_key(SSL_get_session(tls), master, sizeof master);
    memcpy(seed, "key expansion", 13);
    SSL_get_server_random(tls, seed + 13, SSL3_RANDOM_SIZE);
    SSL_get_client_random(tls, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE);
    size_t iv_length = out->aead == CSystem_CHACHA20_POLY1305 ? 12 : 4;
    size_t block_length = 2 * (out->key_length + iv_length);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *context = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    int ok = 0;
    if (context && master_length > 0) {
        OSSL_PARAM parameters[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                             out->aead == CSystem_AES_256_GCM ? "SHA384" : "SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, master_length),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
            OSSL_PARAM_construct_end(),
        };
        ok = EVP_KDF_derive(context, block, block_length, parameters) == 1;
    }
    EVP_KDF_CTX_free(context);
    if (ok) {
        const uint8_t *p = block;
        memcpy(out->read.key, p, out->key_length);
        memcpy(out->write.key, p += out->key_length, out->key_length);
        memcpy(out->read.iv, p += out->key_length, iv_length);
        memcpy(out->write.iv, p + iv_length, iv_length);
    }
    OPENSSL_cleanse(master, sizeof master);
    OPENSSL_cleanse(block, sizeof block);
    return ok;
}

static int take_keys(CSystem_TLSHandOver *out, const Capture *capture, CSystem_TLS *tls) {
    if (!SSL_is_init_finished(tls) || SSL_has_pending(tls)) return 0;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(tls);
    switch (cipher ? SSL_CIPHER_get_cipher_nid(cipher) : NID_undef) {
    case NID_aes_128_gcm: out->aead = CSystem_AES_128_GCM, out->key_length = 16; break;
    case NID_aes_256_gcm: out->aead = CSystem_AES_256_GCM, out->key_length = 32; break;
    case NID_chacha20_poly1305: out->aead = CSystem_CHACHA20_POLY1305, out->key_length = 32; break;
    default: return 0;  // only the AEAD suites the server context allows
    }
    out->version = (uint16_t)SSL_version(tls);
    uint8_t code = SSL_SESSION_get_max_fragment_length(SSL_get_session(tls));
    out->max_fragment = code >= TLSEXT_max_fragment_length_512 && code <= TLSEXT_max_fragment_length_4096
                            ? (uint16_t)(256 << code)
                            : 16384;
    out->read.sequence = capture->read.sequence;
    out->write.sequence = capture->write.sequence;
    if (out->version == TLS1_3_VERSION) {
        int sha384 = out->aead == CSystem_AES_256_GCM;
        size_t expected = sha384 ? 48 : 32;
        if (!capture->read_secret_seen || !capture->write_secret_seen || capture->secret_length != expected) return 0;
        out->secret_length = capture->secret_length;
        memcpy(out->read.secret, capture->read.secret, expected);
        memcpy(out->write.secret, capture->write.secret, expected);
        return CSystem_tls13_traffic_keys(sha384, out->read.secret, expected, out->read.key, out->key_length,
                                          out->read.iv) &&
               CSystem_tls13_traffic_keys(sha384, out->write.secret, expected, out->write.key, out->key_length,
                                          out->write.iv);
    }
    if (out->version != TLS1_2_VERSION || !derive_tls12(out, tls)) return 0;
    unsigned int id_length = 0;
    SSL_SESSION_get_id(SSL_get_session(tls), &id_length);
    if (id_length > 0) {
        // The session keeps its context alive (it is what SSL_CTX_remove_session needs); see session_release.
        SSL_SESSION **kept = OPENSSL_malloc(sizeof(SSL_SESSION *) + sizeof(SSL_CTX *));
        if (!kept) return 0;
        kept[0] = SSL_get1_session(tls);
        SSL_CTX *context = SSL_get_SSL_CTX(tls);
        SSL_CTX_up_ref(context);
        memcpy(kept + 1, &context, sizeof context);
        out->session = kept;
    }
    return 1;
}

int CSystem_tls_detach(CSystem_TLS *tls, CSystem_TLSHandOver *out) {
    memset(out, 0, sizeof *out);
    Capture *capture = SSL_get_app_data(tls);
    int ok = capture && take_keys(out, capture, tls);
    CSystem_tls_capture_free(tls);
    // The connection carries on without OpenSSL: freeing its SSL must not count as a failed connection (that
    // would drop a TLS 1.2 session from the cache).
    if (ok) SSL_set_shutdown(tls, SSL_SENT_SHUTDOWN);
    SSL_free(tls);
    if (!ok) {
        CSystem_tls_session_release(out->session, 0);
        OPENSSL_cleanse(out, sizeof *out);
    }
    return ok;
}

void CSystem_tls_session_release(void *session, int failed) {
    if (!session) return;
    SSL_SESSION **kept = session;
    SSL_CTX *context;
    memcpy(&context, kept + 1, sizeof context);
    if (failed) SSL_CTX_remove_session(context, kept[0]);
    SSL_SESSION_free(kept[0]);
    SSL_CTX_free(context);
    OPENSSL_free(kept);
}

// MARK: AEAD

// Records are sealed and opened by calling the provider's cipher functions (the stable provider interface,
// core_dispatch.h) on its own context, which is what EVP_Encrypt* do too after work of their own: OpenSSL 3.0's
// EVP layer looks up the IV length and block size through parameter lists on every call, and for a fan-out record
// of 100 bytes that was half of the cost of sealing it (callgrind: 3,070 instructions a record through EVP).
typedef struct {
    // Held for the life of the process: it keeps its provider, whose functions these are, loaded.
    EVP_CIPHER *cipher;
    void *provider_context;
    size_t key_length;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init;
    OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
} Implementation;

typedef struct {
    const Implementation *implementation;
    void *context;
} Aead;

// Whether `name` is one of the colon-separated names of an algorithm.
static int names_include(const char *names, const char *name) {
    size_t length = strlen(name);
    for (const char *p = names; p && *p;) {
        const char *end = strchr(p, ':');
        size_t span = end ? (size_t)(end - p) : strlen(p);
        if (span == length && OPENSSL_strncasecmp(p, name, length) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

// The functions of the implementation EVP_CIPHER_fetch chooses for `aead`, found once per process; NULL if that
// provider does not list them all.
static const Implementation *implementation(int aead) {
    static const char *const names[] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
    static const size_t key_lengths[] = {16, 32, 32};
    static Implementation found[3];
    static int state[3];  // 0: not looked for, 1: found, 2: missing
    if (aead < 0 || aead > CSystem_CHACHA20_POLY1305) return NULL;
    int known = __atomic_load_n(&state[aead], __ATOMIC_ACQUIRE);
    if (known) return known == 1 ? &found[aead] : NULL;
    Implementation candidate = {0};
    candidate.key_length = key_lengths[aead];
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, names[aead], NULL);
    const OSSL_PROVIDER *provider = cipher ? EVP_CIPHER_get0_provider(cipher) : NULL;
    int no_cache = 0;
    const OSSL_ALGORITHM *algorithms = provider ? OSSL_PROVIDER_query_operation(provider, OSSL_OP_CIPHER, &no_cache) : NULL;
    for (const OSSL_ALGORITHM *algorithm = algorithms; algorithm && algorithm->algorithm_names; algorithm++) {
        if (!names_include(algorithm->algorithm_names, names[aead])) continue;
        for (const OSSL_DISPATCH *function = algorithm->implementation; function->function_id != 0; function++) {
            switch (function->function_id) {
            case OSSL_FUNC_CIPHER_NEWCTX: candidate.newctx = OSSL_FUNC_cipher_newctx(function); break;
            case OSSL_FUNC_CIPHER_FREECTX: candidate.freectx = OSSL_FUNC_cipher_freectx(function); break;
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: candidate.encrypt_init = OSSL_FUNC_cipher_encrypt_init(function); break;
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: candidate.decrypt_init = OSSL_FUNC_cipher_decrypt_init(function); break;
            case OSSL_FUNC_CIPHER_UPDATE: candidate.update = OSSL_FUNC_cipher_update(function); break;
            case OSSL_FUNC_CIPHER_FINAL: candidate.final = OSSL_FUNC_cipher_final(function); break;
            case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: candidate.get_ctx_params = OSSL_FUNC_cipher_get_ctx_params(function); break;
            case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: candidate.set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(function); break;
            default: break;
            }
        }
        candidate.provider_context = OSSL_PROVIDER_get0_provider_ctx(provider);
        break;
    }
    if (algorithms) OSSL_PROVIDER_unquery_operation(provider, OSSL_OP_CIPHER, algorithms);
    candidate.cipher = cipher;
    int complete = candidate.newctx && candidate.freectx && candidate.encrypt_init && candidate.decrypt_init &&
                   candidate.update && candidate.final && candidate.get_ctx_params && candidate.set_ctx_params;
    if (complete) {
        found[aead] = candidate;
    } else {
        EVP_CIPHER_free(cipher);
    }
    __atomic_store_n(&state[aead], complete ? 1 : 2, __ATOMIC_RELEASE);
    return complete ? &found[aead] : NULL;
}

void *CSystem_tls_aead_new(int aead, const uint8_t *key, int seal) {
    const Implementation *functions = implementation(aead);
    Aead *made = functions ? OPENSSL_malloc(sizeof *made) : NULL;
    if (!made) return NULL;
    made->implementation = functions;
    made->context = functions->newctx(functions->provider_context);
    int ready = made->context != NULL;
    if (ready && key) {
        ready = seal ? functions->encrypt_init(made->context, key, functions->key_length, NULL, 0, NULL)
                     : functions->decrypt_init(made->context, key, functions->key_length, NULL, 0, NULL);
    }
    if (!ready) {
        CSystem_tls_aead_free(made);
        return NULL;
    }
    return made;
}

void CSystem_tls_aead_free(void *pointer) {
    Aead *aead = pointer;
    if (!aead) return;
    if (aead->context) aead->implementation->freectx(aead->context);
    OPENSSL_free(aead);
}

int CSystem_tls_aead_seal(void *pointer, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
                          size_t aad_length, uint8_t *data, size_t length, uint8_t *tag) {
    Aead *aead = pointer;
    const Implementation *f = aead->implementation;
    size_t written = 0, extra = 0;
    OSSL_PARAM parameters[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_LENGTH),
        OSSL_PARAM_construct_end(),
    };
    // Without `out`, an update takes additional data, as EVP_EncryptUpdate(ctx, NULL, ...) does (the provider still
    // checks `outsize` against the input's length first).
    return f->encrypt_init(aead->context, key, key ? f->key_length : 0, nonce, 12, NULL) == 1 &&
           f->update(aead->context, NULL, &extra, aad_length, aad, aad_length) == 1 &&
           f->update(aead->context, data, &written, length, data, length) == 1 && written == length &&
           f->final(aead->context, data + written, &extra, 0) == 1 &&
           f->get_ctx_params(aead->context, parameters) == 1;
}

int CSystem_tls_aead_open(void *pointer, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
                          size_t aad_length, uint8_t *data, size_t length, const uint8_t *tag) {
    Aead *aead = pointer;
    const Implementation *f = aead->implementation;
    size_t opened = 0, extra = 0;
    OSSL_PARAM parameters[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, TAG_LENGTH),
        OSSL_PARAM_construct_end(),
    };
    return f->decrypt_init(aead->context, key, key ? f->key_length : 0, nonce, 12, NULL) == 1 &&
           f->update(aead->context, NULL, &extra, aad_length, aad, aad_length) == 1 &&
           f->update(aead->context, data, &opened, length, data, length) == 1 && opened == length &&
           f->set_ctx_params(aead->context, parameters) == 1 &&
           f->final(aead->context, data + opened, &extra, 0) == 1;
}

void CSystem_cleanse(void *pointer, size_t length) { OPENSSL_cleanse(pointer, length); }

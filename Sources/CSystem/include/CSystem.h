// The C boundary of Philote. Swift imports most of Glibc by itself; this header declares only what it
// cannot: packed kernel structs (epoll_event on x86_64), function-like macros (deflateInit2/inflateInit2),
// and a few OpenSSL one-shots whose natural C shape (out-parameters, EVP lookups) is clumsy from Swift.
#ifndef CSYSTEM_H
#define CSYSTEM_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <zlib.h>
#include <openssl/ssl.h>
// hiredis's asynchronous API imports as is: its adapter hooks are plain function pointers that Swift fills
// in (RedisLink), and the non-variadic redisAsyncCommandArgv stands in for redisAsyncCommand.
#include <hiredis/async.h>

// epoll_event is declared __attribute__((packed)) on x86_64, which Swift imports poorly; this
// unpacked mirror is what the Swift side sees. `token` is the registration's 64-bit user data.
typedef struct {
    uint32_t events;
    uint64_t token;
} CSystem_Event;

enum {
    CSystem_EPOLLIN = 0x001,
    CSystem_EPOLLPRI = 0x002,
    CSystem_EPOLLOUT = 0x004,
    CSystem_EPOLLERR = 0x008,
    CSystem_EPOLLHUP = 0x010,
    CSystem_EPOLLRDHUP = 0x2000,
};

/// CPUs in this thread's scheduler affinity mask (CPU_COUNT, a macro Swift cannot call), or -1 on failure.
int CSystem_affinity_cpus(void);
int CSystem_epoll_create(void);
// Returns -1 with errno set on failure, like the syscall.
int CSystem_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
// Waits up to `timeout_ms` (-1: forever) and converts at most `max` (<= 1024) events into `out`.
int CSystem_epoll_wait(int epfd, CSystem_Event *out, int max, int timeout_ms);
int CSystem_EPOLL_CTL_ADD(void);
int CSystem_EPOLL_CTL_MOD(void);
int CSystem_EPOLL_CTL_DEL(void);

// eventfd in non-blocking, close-on-exec mode: the cross-thread wake-up of an event loop.
int CSystem_eventfd(void);

// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC: one syscall instead of accept + two fcntl.
int CSystem_accept4(int fd, struct sockaddr *addr, socklen_t *len);
// socket() with SOCK_NONBLOCK|SOCK_CLOEXEC (the flags are macros combined with the type).
int CSystem_socket_nonblocking(int domain, int type);
int CSystem_SOCK_STREAM(void);
int CSystem_set_int_option(int fd, int level, int name, int value);
int CSystem_SO_REUSEPORT(void);
int CSystem_SO_REUSEADDR(void);
int CSystem_TCP_NODELAY(void);
int CSystem_SOL_SOCKET(void);
int CSystem_IPPROTO_TCP(void);
int CSystem_IOV_MAX(void);
// writev and write as plain system calls. glibc wraps its own in pthread cancellation bookkeeping (they
// are cancellation points), which is most of their user-space cost, once per connection per loop tick on
// the fan-out path; this server never cancels a thread. -1 with errno set on failure.
ssize_t CSystem_writev(int fd, const struct iovec *vectors, int count);
ssize_t CSystem_write(int fd, const void *bytes, size_t count);
// The calling thread's errno: Swift's `errno` is thread-local through a function on Glibc too, but going
// through one place keeps the syscall wrapper independent of Glibc's Swift overlay.
int CSystem_errno(void);

// OpenSSL one-shots. Each returns the output length, or -1 on failure.
// SHA-1 for Sec-WebSocket-Accept (RFC 6455 section 4.2.2); out must hold 20 bytes.
int CSystem_sha1(const uint8_t *data, size_t length, uint8_t *out);
// HMAC with the digest named by `digest` ("SHA256", "SHA384", "SHA512"); out must hold 64 bytes.
int CSystem_hmac(const char *digest, const uint8_t *key, size_t key_length, const uint8_t *data,
                 size_t length, uint8_t *out);
// HMAC with the key prepared once, for verifying tokens at every WebSocket upgrade. The one-shot
// CSystem_hmac looks the MAC implementation and the digest up and hashes the padded key again on every
// call, three times the cost of hashing a token. Each thread computes with its own copy of the prepared
// context, made on its first use and freed when the thread exits, so one key serves every event loop
// without a lock; a copy of a freed key stays with a thread until that thread needs its slot or exits.
typedef struct CSystem_HMACKey CSystem_HMACKey;
// `digest` as for CSystem_hmac; NULL when OpenSSL refuses (unknown digest, out of memory).
CSystem_HMACKey *CSystem_hmac_key_new(const char *digest, const uint8_t *key, size_t key_length);
void CSystem_hmac_key_free(CSystem_HMACKey *key);
// The MAC of `data` into `out` (64 bytes); returns its length, or -1 on failure.
int CSystem_hmac_key_compute(const CSystem_HMACKey *key, const uint8_t *data, size_t length, uint8_t *out);
// Standard base64 with padding; out must hold 4 * ceil(length / 3) + 1 bytes (a NUL is written).
int CSystem_base64_encode(const uint8_t *data, size_t length, char *out);
// Constant-time comparison: 0 when equal. Timing depends only on `length`.
int CSystem_memcmp_consttime(const void *a, const void *b, size_t length);
// Fills `out` with cryptographically strong random bytes; 1 on success.
int CSystem_random_bytes(uint8_t *out, int length);

// zlib's deflateInit2/inflateInit2 are macros (they pass the library version and struct size).
int CSystem_deflateInit2(z_stream *stream, int level, int window_bits, int mem_level);
int CSystem_inflateInit2(z_stream *stream, int window_bits);

// TLS over OpenSSL 3. The SSL_CTX_set_* configuration calls are macros, and the error queue and
// WANT_READ/WANT_WRITE mapping are easier to get right once in C; Swift sees opaque pointers and results.
typedef struct ssl_ctx_st CSystem_TLSContext;
typedef struct ssl_st CSystem_TLS;

// A server context: TLS 1.2 and 1.3 only, AEAD suites with forward secrecy, server preference, key exchange
// over X25519, P-256 or P-384 only, ALPN http/1.1, session tickets, no renegotiation, no compression, buffers
// released when idle. Loads a PEM certificate chain and key and checks that they match and that the certificate
// is valid now. `hand_over`: connections are prepared for CSystem_tls_detach (the keys are captured during the
// handshake); otherwise OpenSSL keeps the whole connection (CSystem_tls_read/write). NULL on failure with a
// one-line reason in `error`.
CSystem_TLSContext *CSystem_tls_server_context(const char *cert_file, const char *key_file, int hand_over,
                                               char *error, size_t error_length);
void CSystem_tls_context_free(CSystem_TLSContext *context);
// The leaf certificate's serial number in hex (for logs), into `out`.
void CSystem_tls_context_serial(CSystem_TLSContext *context, char *out, size_t length);

enum {
    CSystem_TLS_WANT_READ = -2,
    CSystem_TLS_WANT_WRITE = -3,
    CSystem_TLS_FAILED = -1,
    CSystem_TLS_CLOSED = 0,
};

// A server connection on accepted socket `fd`, ready for CSystem_tls_handshake and then, on a hand-over context,
// CSystem_tls_detach.
CSystem_TLS *CSystem_tls_new(CSystem_TLSContext *context, int fd);
void CSystem_tls_free(CSystem_TLS *tls);
// 1 when the handshake is complete, else one of the CSystem_TLS_* results.
int CSystem_tls_handshake(CSystem_TLS *tls);
// Bytes read (> 0) or a CSystem_TLS_* result.
int CSystem_tls_read(CSystem_TLS *tls, void *buffer, int length);
// Bytes written (> 0, possibly fewer than `length`) or a CSystem_TLS_* result.
int CSystem_tls_write(CSystem_TLS *tls, const void *buffer, int length);
// Sends close_notify (best effort, never blocks).
void CSystem_tls_close_notify(CSystem_TLS *tls);
// A client context for `philote client`: TLS 1.2+, ALPN http/1.1, the peer verified against `ca_file`
// (or the system's trust store when NULL) unless `insecure`. NULL with a reason in `error`.
CSystem_TLSContext *CSystem_tls_client_context(const char *ca_file, int insecure, char *error,
                                               size_t error_length);
// A client session on connected socket `fd` for `host` (SNI, and the name or IP address checked in the
// certificate).
CSystem_TLS *CSystem_tls_client_new(CSystem_TLSContext *context, int fd, const char *host);
// Decrypted bytes OpenSSL holds that the socket will not signal again.
int CSystem_tls_pending(CSystem_TLS *tls);

// TLS traffic after the handshake (CSystemTLSTraffic.c): OpenSSL hands over the traffic keys and is freed; the
// record layer (Sources/Philote/TLS) seals and opens records with the AEAD primitives below.

enum { CSystem_AES_128_GCM = 0, CSystem_AES_256_GCM = 1, CSystem_CHACHA20_POLY1305 = 2 };

// One direction's traffic keys. TLS 1.3 and ChaCha20-Poly1305: `iv` is the 12-byte IV the sequence number is
// XORed into; TLS 1.2 AES-GCM: its first 4 bytes are the salt before the explicit nonce.
typedef struct {
    uint8_t key[32];
    uint8_t iv[12];
    // TLS 1.3: the traffic secret, from which KeyUpdate derives the next one.
    uint8_t secret[48];
    // Records already protected with these keys (the tickets a TLS 1.3 server sends after its Finished).
    uint64_t sequence;
} CSystem_TLSDirection;

// What a finished handshake leaves for the record layer.
typedef struct {
    uint16_t version;  // 0x0303 or 0x0304
    uint8_t aead;      // CSystem_AES_128_GCM, ...
    uint8_t key_length;
    uint8_t secret_length;
    // RFC 6066 max_fragment_length: the plaintext a record may carry either way (16384 when not negotiated).
    uint16_t max_fragment;
    CSystem_TLSDirection read, write;
    // TLS 1.2 with a session ID: the cached session, to be removed if the connection fails (RFC 5246 7.2.2).
    // Release with CSystem_tls_session_release.
    void *session;
} CSystem_TLSHandOver;

// After a server handshake completed (CSystem_tls_handshake returned 1): fills `out` and frees the SSL object,
// whatever the outcome. 0 if the connection cannot go on without OpenSSL (a suite other than the AEAD suites of
// CSystem_tls_server_context, or bytes OpenSSL already read past the handshake); `out` is cleared then.
int CSystem_tls_detach(CSystem_TLS *tls, CSystem_TLSHandOver *out);
// Releases a hand-over's session; `failed`: it leaves the server's cache first.
void CSystem_tls_session_release(void *session, int failed);
// TLS 1.3 (RFC 8446 section 7): the next traffic secret after a KeyUpdate ("traffic upd"), and the key and IV of
// a secret. `sha384`: the suite's hash is SHA-384, else SHA-256. 1 on success.
int CSystem_tls13_next_secret(int sha384, const uint8_t *secret, size_t length, uint8_t *next);
int CSystem_tls13_traffic_keys(int sha384, const uint8_t *secret, size_t length, uint8_t *key, size_t key_length,
                               uint8_t *iv);

// An AEAD context for one cipher and direction (seal = 1 encrypts). With `key` it is keyed once and each record
// then sets only its nonce; without, each call passes the key. NULL when out of memory.
void *CSystem_tls_aead_new(int aead, const uint8_t *key, int seal);
void CSystem_tls_aead_free(void *context);
// Encrypts `length` bytes in place and writes the 16-byte tag at `tag`; `key` NULL keeps the context's key.
// 1 on success.
int CSystem_tls_aead_seal(void *context, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
                          size_t aad_length, uint8_t *data, size_t length, uint8_t *tag);
// Decrypts `length` bytes in place if the tag at `tag` authenticates them and `aad`. 1 when authentic.
int CSystem_tls_aead_open(void *context, const uint8_t *key, const uint8_t nonce[12], const uint8_t *aad,
                          size_t aad_length, uint8_t *data, size_t length, const uint8_t *tag);
// Zeroes memory the compiler may not elide (key material).
void CSystem_cleanse(void *pointer, size_t length);

// Why certificate verification failed (after a failed handshake), or "" when it did not.
const char *CSystem_tls_verify_error(CSystem_TLS *tls);

#endif

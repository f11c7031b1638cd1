#define _GNU_SOURCE
#include "CSystem.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

int CSystem_affinity_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int CSystem_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int CSystem_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

int CSystem_epoll_wait(int epfd, CSystem_Event *out, int max, int timeout_ms) {
    struct epoll_event events[1024];
    if (max > 1024) max = 1024;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].events = events[i].events;
        out[i].token = events[i].data.u64;
    }
    return n;
}

ssize_t CSystem_writev(int fd, const struct iovec *vectors, int count) {
    return syscall(SYS_writev, fd, vectors, count);
}

ssize_t CSystem_write(int fd, const void *bytes, size_t count) { return syscall(SYS_write, fd, bytes, count); }

int CSystem_EPOLL_CTL_ADD(void) { return EPOLL_CTL_ADD; }
int CSystem_EPOLL_CTL_MOD(void) { return EPOLL_CTL_MOD; }
int CSystem_EPOLL_CTL_DEL(void) { return EPOLL_CTL_DEL; }

int CSystem_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int CSystem_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int CSystem_socket_nonblocking(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int CSystem_SOCK_STREAM(void) { return SOCK_STREAM; }

int CSystem_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

int CSystem_SO_REUSEPORT(void) { return SO_REUSEPORT; }
int CSystem_SO_REUSEADDR(void) { return SO_REUSEADDR; }
int CSystem_TCP_NODELAY(void) { return TCP_NODELAY; }
int CSystem_SOL_SOCKET(void) { return SOL_SOCKET; }
int CSystem_IPPROTO_TCP(void) { return IPPROTO_TCP; }
int CSystem_IOV_MAX(void) { return IOV_MAX; }
int CSystem_errno(void) { return errno; }

int CSystem_sha1(const uint8_t *data, size_t length, uint8_t *out) {
    return SHA1(data, length, out) ? SHA_DIGEST_LENGTH : -1;
}

int CSystem_hmac(const char *digest, const uint8_t *key, size_t key_length, const uint8_t *data,
                 size_t length, uint8_t *out) {
    const EVP_MD *md = EVP_get_digestbyname(digest);
    if (!md) return -1;
    unsigned int out_length = 0;
    if (!HMAC(md, key, (int)key_length, data, length, out, &out_length)) return -1;
    return (int)out_length;
}

struct CSystem_HMACKey {
    // Keyed once and only ever duplicated afterwards, which reads it: threads may do so at the same time.
    EVP_MAC_CTX *prepared;
    // Unique for the life of the process, so a thread's copy of a freed key is never taken for a new key
    // that malloc placed at the same address.
    uint64_t serial;
};

// A thread's copies, direct-mapped by serial: a server has one key per algorithm, so they never evict
// each other there.
enum { CSystem_HMAC_SLOTS = 8 };
typedef struct {
    uint64_t serial;  // 0: empty
    EVP_MAC_CTX *context;
} CSystem_HMACSlot;

static pthread_key_t hmac_slots_key;
static pthread_once_t hmac_slots_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t hmac_next_serial = 1;

static void hmac_slots_free(void *value) {
    CSystem_HMACSlot *slots = value;
    for (int i = 0; i < CSystem_HMAC_SLOTS; i++) EVP_MAC_CTX_free(slots[i].context);
    free(slots);
}

static void hmac_slots_key_create(void) { pthread_key_create(&hmac_slots_key, hmac_slots_free); }

CSystem_HMACKey *CSystem_hmac_key_new(const char *digest, const uint8_t *key, size_t key_length) {
    // EVP_MAC_init takes a NULL key as "keep the current key", which a new context does not have.
    static const uint8_t empty_key[1] = {0};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) return NULL;
    EVP_MAC_CTX *context = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context holds its own reference
    CSystem_HMACKey *prepared = malloc(sizeof *prepared);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!context || !prepared || !EVP_MAC_init(context, key ? key : empty_key, key_length, params)) {
        EVP_MAC_CTX_free(context);
        free(prepared);
        return NULL;
    }
    prepared->prepared = context;
    prepared->serial = atomic_fetch_add(&hmac_next_serial, 1);
    return prepared;
}

void CSystem_hmac_key_free(CSystem_HMACKey *key) {
    if (!key) return;
    EVP_MAC_CTX_free(key->prepared);
    free(key);
}

int CSystem_hmac_key_compute(const CSystem_HMACKey *key, const uint8_t *data, size_t length, uint8_t *out) {
    pthread_once(&hmac_slots_once, hmac_slots_key_create);
    CSystem_HMACSlot *slots = pthread_getspecific(hmac_slots_key);
    if (!slots) {
        slots = calloc(CSystem_HMAC_SLOTS, sizeof *slots);
        if (!slots) return -1;
        if (pthread_setspecific(hmac_slots_key, slots) != 0) {
            free(slots);
            return -1;
        }
    }
    CSystem_HMACSlot *slot = &slots[key->serial % CSystem_HMAC_SLOTS];
    if (slot->serial == key->serial) {
        // A NULL key restarts the MAC from the hashed key the context keeps: no lookup, no key hashing.
        if (!EVP_MAC_init(slot->context, NULL, 0, NULL)) return -1;
    } else {
        EVP_MAC_CTX_free(slot->context);
        slot->context = EVP_MAC_CTX_dup(key->prepared);
        slot->serial = slot->context ? key->serial : 0;
        if (!slot->context) return -1;
    }
    size_t out_length = 0;
    if (!EVP_MAC_update(slot->context, data, length) || !EVP_MAC_final(slot->context, out, &out_length, 64)) {
        return -1;
    }
    return (int)out_length;
}

int CSystem_base64_encode(const uint8_t *data, size_t length, char *out) {
    return EVP_EncodeBlock((unsigned char *)out, data, (int)length);
}

int CSystem_memcmp_consttime(const void *a, const void *b, size_t length) {
    return CRYPTO_memcmp(a, b, length);
}

int CSystem_random_bytes(uint8_t *out, int length) { return RAND_bytes(out, length); }

int CSystem_deflateInit2(z_stream *stream, int level, int window_bits, int mem_level) {
    return deflateInit2(stream, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
}

int CSystem_inflateInit2(z_stream *stream, int window_bits) { return inflateInit2(stream, window_bits); }

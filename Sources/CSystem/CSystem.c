#define _GNU_SOURCE
#include "CSystem.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

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

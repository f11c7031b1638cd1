// An LD_PRELOAD shim for the cross-server benchmark (scripts/bench-redis.sh): wsload connects every
// client to one port, subscribers first, then publishers. This sends the first REDIRECT_AFTER connections
// to REDIRECT_PORT as asked (the subscribers' server) and every later one to REDIRECT_TO (the publishers'
// server), so the load generator itself stays unmodified.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

static atomic_long connections;

int connect(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect) real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    const char *port = getenv("REDIRECT_PORT"), *after = getenv("REDIRECT_AFTER"), *to = getenv("REDIRECT_TO");
    if (!port || !after || !to || address->sa_family != AF_INET || length < (socklen_t)sizeof(struct sockaddr_in))
        return real_connect(fd, address, length);
    struct sockaddr_in target = *(const struct sockaddr_in *)address;
    if (ntohs(target.sin_port) != atoi(port)) return real_connect(fd, address, length);
    if (atomic_fetch_add(&connections, 1) >= atol(after)) target.sin_port = htons((uint16_t)atoi(to));
    return real_connect(fd, (const struct sockaddr *)&target, sizeof target);
}

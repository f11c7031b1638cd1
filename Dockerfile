# Philote in a container: built with the Swift toolchain image, run on slim Debian with only the C
# libraries the binary links (the Swift runtime is linked in with --static-swift-stdlib). Configuration
# comes from the environment only (README: "Configuration"); TLS files are mounted as volumes.
#   make docker                      # or: docker build -t philote .
#   docker run -p 6380:6380 -e SECRET=... philote
#   make docker-test                 # builds the image and checks it in a real Docker engine
# Both stages use Debian 12 (bookworm), so the runtime package names below are the ones the build
# linked against; Tests/integration/test_operations.py checks them against `ldd` of the binary.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev libhiredis-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, at the versions Package.resolved pins: a source change does not fetch them again.
COPY Package.swift Package.resolved ./
RUN swift package resolve
COPY . .
# Stripped: the symbol and debug tables are most of the statically linked binary's size and nothing at run
# time reads them (Swift finds its type metadata in its own sections; the dynamic symbols stay).
RUN swift build -c release --product philote --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/philote" /out/philote \
    && strip --strip-all /out/philote \
    && /out/philote --version

FROM ${RUNTIME_IMAGE}
# Every shared library the binary needs besides glibc, and nothing else.
ARG RUNTIME_PACKAGES="libssl3 zlib1g libhiredis0.14 libstdc++6 libgcc-s1"
# The user and its group are both 10001, created with that gid rather than taken from the system range
# (which differs between images), so that a mounted key can be granted on the host with a number known in
# advance: chgrp 10001 privkey.pem && chmod 640 privkey.pem. --no-log-init: no lastlog entry to write.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 philote \
    && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init --home-dir /nonexistent \
        --shell /usr/sbin/nologin philote
COPY --from=build /out/philote /usr/local/bin/philote
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
EXPOSE 6380
# Liveness, not readiness: `philote health --path /livez` (the image has no curl) asks this container's server
# whether it runs, over 127.0.0.1 or ::1, whichever answers (HOST=:: works in a container without IPv6).
# /readyz also fails while Redis is unreachable and while draining: as a health check it would mark every
# container unhealthy during a Redis outage, and an orchestrator would replace servers that are fine.
# Readiness (/readyz) is for load balancers and Kubernetes readinessProbes.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/philote", "health", "--path", "/livez"]
# SIGTERM drains: /readyz fails, clients get close 1001, exit 0 within DRAIN_TIMEOUT (default 10 s). Docker
# kills after 10 s by default: give `docker run --stop-timeout 15` (or a shorter DRAIN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/philote"]
CMD ["serve"]

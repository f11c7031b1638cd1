# syntax=docker/dockerfile:1
# Philote in a container: built with the Swift toolchain image, run on slim Debian with only the C
# libraries the binary links (the Swift runtime is linked in with --static-swift-stdlib). Configuration
# comes from the environment only (README: "Configuration"); TLS files are mounted as volumes.
#   make docker                      # or: docker build -t philote .
#   docker run -p 6380:6380 -e SECRET=... philote
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
RUN swift build -c release --product philote --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/philote" /out/philote

FROM ${RUNTIME_IMAGE}
# Every shared library the binary needs besides glibc, and nothing else.
ARG RUNTIME_PACKAGES="libssl3 zlib1g libhiredis0.14 libstdc++6 libgcc-s1"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin philote
COPY --from=build /out/philote /usr/local/bin/philote
USER philote:philote
EXPOSE 6380
# `philote health` asks this container's server for /readyz (the image has no curl): unhealthy while
# draining after SIGTERM, and until the server listens.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/usr/local/bin/philote", "health"]
# SIGTERM drains: /readyz fails, clients get close 1001, exit 0 within DRAIN_TIMEOUT (default 10 s). Docker
# kills after 10 s by default: give `docker run --stop-timeout 15` (or a shorter DRAIN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/philote"]
CMD ["serve"]

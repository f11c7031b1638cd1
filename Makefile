# Philote: `make server` runs it, `make test` proves it. Both install what they need first.
SWIFT ?= swift
PREFIX ?= /usr/local
PORT ?= 6380
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 15
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: all release deps test layers unit integration js web demo fuzz sanitize server echo install clean bench bench-scaling bench-tool bench-history bench-recovery bench-redis soak docker docker-test

all: release

# System libraries for CSystem (OpenSSL, zlib, hiredis) and the clients the tests talk to.
deps:
	@scripts/install-deps.sh

release: deps
	$(SWIFT) build -c release --product philote

debug: deps
	$(SWIFT) build

# Runs the pub/sub server with a development secret, so it works at once, and first prints a ready token
# and the client command to try in two other terminals (type a line in one, see it arrive in the other).
DEV_SECRET ?= development-secret-do-not-use-in-production
server: release
	@secret="$${SECRET:-$(DEV_SECRET)}"; shown="$(DEV_SECRET)"; \
	if [ -n "$$SECRET" ]; then shown='"$$SECRET"'; fi; \
	token=$$(SECRET="$$secret" .build/release/philote token --read demo --write demo) || exit 1; \
	echo ""; \
	echo "Philote on ws://127.0.0.1:$(PORT)/ with SECRET=$$shown."; \
	echo "A token that reads and writes channel \"demo\":"; \
	echo "  $$token"; \
	echo "Try it: run this in two other terminals (in this directory), then type a line in one of them:"; \
	echo "  .build/release/philote client --url ws://127.0.0.1:$(PORT)/ --channel demo --token $$token"; \
	echo "or let the client mint its own token from the secret:"; \
	echo "  SECRET=$$shown .build/release/philote client --url ws://127.0.0.1:$(PORT)/ --channel demo"; \
	echo ""; \
	SECRET="$$secret" PORT=$(PORT) exec .build/release/philote

test: deps
	scripts/check-layers.sh
	$(SWIFT) build
	$(SWIFT) test
	Fuzz/run.sh $(TEST_FUZZ_SECONDS)
	node --test Tests/js/
	ulimit -n $$(ulimit -Hn); python3 -m pytest -q Tests/integration
	scripts/sanitize.sh

# The browser module's own tests under Node (fake clock, fake sockets, and Node's `ws` against a stub server).
js:
	node --test Tests/js/

# After editing web/ (the module, its typings, the demo page): compiles them into the server (WebAssets.swift).
web:
	scripts/embed-web.sh

# The server with the chat demo at /demo and the development secret (`philote demo`); open the URL it prints.
demo: release
	PORT=$(PORT) .build/release/philote demo

# The dependency rules between the folders of Sources/Philote (ARCHITECTURE.md): seconds, no build.
layers:
	scripts/check-layers.sh

unit: deps
	$(SWIFT) test

integration: deps
	$(SWIFT) build
	ulimit -n $$(ulimit -Hn); python3 -m pytest -q Tests/integration

# The server under AddressSanitizer and ThreadSanitizer, through a subset of the integration suite.
sanitize: deps
	scripts/sanitize.sh

fuzz: deps
	Fuzz/run.sh $(FUZZ_SECONDS)

# Fan-out figures beside the Node and Python peers and the limit server (../shared/bench), appended to
# BENCHMARKS.md, then wss:// with each TLS record layer beside ws:// (BENCH_TLS=0 skips it). Needs root (a
# private network namespace) and two CPUs; takes about 20 minutes.
bench: release
	scripts/bench.sh

# Fan-out over WORKERS=1,2,4,8 with a free core per loop (as far as the machine has them), appended to
# BENCHMARKS.md; part of `make bench`. Root, like bench.
bench-scaling: release
	scripts/bench-scaling.sh

# `philote bench` beside wsload on fanout1k (plain, wss://, deflate), alternating; appended to BENCHMARKS.md. Root.
bench-tool: release
	scripts/bench-tool.sh

# Cross-server fan-out through Redis beside single-server fan-out (appends to BENCHMARKS.md).
# Fan-out with history on (HISTORY_SIZE=1000) against the same binary without, alternating (issue 15's bar: 0.9).
bench-history: release
	AB_OUT=bench-history.txt B_ENV="HISTORY_SIZE=1000" TESTS="$${TESTS:-fanout1k fanout10k channels}" TLS_TESTS="" \
		scripts/bench-ab.sh .build/release/philote .build/release/philote

# Messages per second replayed from history: to one client, and to 1,000 reconnecting at once.
bench-recovery: release
	python3 scripts/bench_recovery.py --append

bench-redis: release
	python3 scripts/bench_redis.py --append

# Soak (issue 13, scripts/soak.py): two ws:// servers and a wss:// one sharing a Redis, thousands of clients
# churning (plain, TLS, permessage-deflate; slow, expiring, abrupt), Redis restarted twice, then exact delivery
# accounting, descriptors and memory back to their post-warm-up baseline, exit 0 on SIGTERM. SOAK_MINUTES
# (default 10) after a 30 s warm-up. Not part of `make test`.
SOAK_MINUTES ?= 10
soak: release
	ulimit -n $$(ulimit -Hn); SOAK_MINUTES=$(SOAK_MINUTES) python3 scripts/soak.py

# The container image (Dockerfile); needs a Docker engine, nothing else from this machine.
IMAGE ?= philote:latest
docker:
	docker build -t $(IMAGE) .

# Builds the image (as philote:docker-test) and checks it in a real Docker engine: runs as 10001:10001, binary
# stripped, HEALTHCHECK healthy (also with HOST=:: and with Redis down), wss:// from a mounted certbot
# directory, `docker stop` drains, a key only root can read gives a clear error. Without an engine it says it
# skipped and succeeds.
docker-test:
	scripts/docker-test.sh

install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 .build/release/philote $(DESTDIR)$(PREFIX)/bin/philote

clean:
	rm -rf .build .build-fuzz .build-unit

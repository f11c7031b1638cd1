# Philote: `make server` runs it, `make test` proves it. Both install what they need first.
SWIFT ?= swift
PREFIX ?= /usr/local
PORT ?= 6380
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 15
export PATH := $(PATH):/opt/swift/usr/bin

.PHONY: all release deps test unit integration fuzz server echo install clean

all: release

# System libraries for CSystem (OpenSSL, zlib, hiredis) and the clients the tests talk to.
deps:
	@scripts/install-deps.sh

release: deps
	$(SWIFT) build -c release --product philote

debug: deps
	$(SWIFT) build

# Runs the server with a development secret, so it works at once. Until pub/sub lands the server is
# the echo engine.
server: release
	SECRET=$${SECRET:-development-secret-do-not-use-in-production} PORT=$(PORT) .build/release/philote echo

test: deps
	$(SWIFT) build
	$(SWIFT) test
	Fuzz/run.sh $(TEST_FUZZ_SECONDS)
	ulimit -n $$(ulimit -Hn); python3 -m pytest -q Tests/integration

unit: deps
	$(SWIFT) test

integration: deps
	$(SWIFT) build
	ulimit -n $$(ulimit -Hn); python3 -m pytest -q Tests/integration

fuzz: deps
	Fuzz/run.sh $(FUZZ_SECONDS)

install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 .build/release/philote $(DESTDIR)$(PREFIX)/bin/philote

clean:
	rm -rf .build .build-fuzz .build-unit

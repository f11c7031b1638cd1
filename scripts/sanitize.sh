#!/usr/bin/env bash
# `make sanitize` (part of `make test`): the server built with AddressSanitizer, then with ThreadSanitizer, runs a
# representative part of the integration suite: framing, handshakes, pub/sub, ordering, backpressure, deflate and
# the TLS record layer. A sanitizer report makes the server exit non-zero (ASan at the first error; TSan with 66
# after any report), which the tests' exit-status checks turn into failures. Tests whose assertion is a memory
# bound skip themselves under a sanitizer (conftest.memory_bound). About 6 minutes on two cores.
#   scripts/sanitize.sh [address|thread]...      (default: both)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift=${SWIFT:-swift}
sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)
subset=(test_smoke.py test_framing.py test_handshake.py test_pubsub_protocol.py test_ordering.py test_backpressure.py
    test_deflate.py test_tls_records.py test_preauth_limits.py test_history.py test_history_redis.py test_refresh.py)
ulimit -n "$(ulimit -Hn)"
for sanitizer in "${sanitizers[@]}"; do
    case $sanitizer in
    address) options=(ASAN_OPTIONS=detect_leaks=1:halt_on_error=1) ;;
    thread) options=(TSAN_OPTIONS=halt_on_error=0) ;;
    *) echo "sanitize: unknown sanitizer '$sanitizer' (address or thread)" >&2; exit 2 ;;
    esac
    scratch="$root/.build-$sanitizer"
    echo "sanitize: building with -sanitize=$sanitizer into $scratch"
    mkdir -p "$scratch"
    "$swift" build --scratch-path "$scratch" --sanitize="$sanitizer" --product philote >"$scratch/sanitize-build.log" 2>&1 \
        || { tail -30 "$scratch/sanitize-build.log" >&2; exit 1; }
    binary="$("$swift" build --scratch-path "$scratch" --sanitize="$sanitizer" --show-bin-path)/philote"
    echo "sanitize: integration subset against $binary"
    # SWIFT_BACKTRACE=enable=no: Swift's crash handler would otherwise run before the sanitizer's report.
    (cd Tests/integration && env PHILOTE_BIN="$binary" PHILOTE_SANITIZER="$sanitizer" SWIFT_BACKTRACE=enable=no \
        "${options[@]}" python3 -m pytest -q -p no:cacheprovider "${subset[@]}")
done

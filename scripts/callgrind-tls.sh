#!/usr/bin/env bash
# User-space instructions per delivery spent writing to subscribers (Connection.flush, inclusive: gathering,
# sealing, the write call), counted by valgrind's callgrind on a fixed fan-out workload: plain ws://, then wss://
# with each TLS record layer. Handshakes and the rest of the server are not counted (--toggle-collect), so the
# figures compare what TLS adds to each delivery, repeatably on a noisy machine.
#   scripts/callgrind-tls.sh [BINARY]     (default .build/release/philote)
#   KEEP_CALLGRIND=DIR keeps the callgrind.out files there, for callgrind_annotate
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/.build/release/philote}
shared=${SHARED:-$root/../shared}
build=${WSLOAD_BUILD:-${TMPDIR:-/tmp}/wsload-build}
mkdir -p "$build"
if [ ! -x "$build/wsload" ] || [ "$shared/bench/wsload.c" -nt "$build/wsload" ]; then
    cc -O2 -pthread -o "$build/wsload" "$shared/bench/wsload.c" -lssl -lcrypto -lz
fi
work=$(mktemp -d)
trap '[ -n "${KEEP_CALLGRIND:-}" ] && cp "$work"/*.out "$KEEP_CALLGRIND"/ ; rm -rf "$work"' EXIT
objcopy --strip-debug "$binary" "$work/philote"  # valgrind 3.19 cannot read the toolchain's DWARF 5
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
for config in plain builtin openssl; do
    port=$((21000 + RANDOM % 2000))
    tls_env=() tls_arg=()
    if [ "$config" != plain ]; then
        tls_env=(TLS_CERT_FILE="$work/cert.pem" TLS_KEY_FILE="$work/key.pem" TLS_RECORD_LAYER="$config")
        tls_arg=(--tls)
    fi
    env SECRET=benchsecret PORT=$port WORKERS=1 LOGLEVEL=error MAX_CONNECTIONS=10000 "${tls_env[@]}" \
        valgrind --tool=callgrind --toggle-collect='*ConnectionC5flushyyF' --callgrind-out-file="$work/$config.out" \
        "$work/philote" >/dev/null 2>"$work/valgrind-$config.log" &
    server=$!
    for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    result=$("$build/wsload" --port "$port" --secret benchsecret --mode fanout --subs 100 --pubs 1 --rate 200 \
        --duration 4 --warmup 1 --drain 3 --connect-timeout 60 "${tls_arg[@]}" 2>/dev/null | grep '^RESULT')
    kill -TERM "$server"
    wait "$server" || true
    received=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$result")
    total=$(grep -m1 '^summary:' "$work/$config.out" | awk '{print $2}')
    echo "$config: flush instructions=$total deliveries=$received per_delivery=$((total / (received > 0 ? received : 1)))"
done

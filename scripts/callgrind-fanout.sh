#!/usr/bin/env bash
# Instructions per delivery on a fixed fan-out workload, counted by valgrind's callgrind (repeatable on
# a noisy machine, unlike time): the server under callgrind, 100 subscribers, one publisher at 200
# messages/s for 4 s. Prints total instructions, deliveries and instructions per delivery.
#   scripts/callgrind-fanout.sh [BINARY]     (default .build/release/philote)
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
trap 'rm -rf "$work"' EXIT
# Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes; the symbol table is enough.
objcopy --strip-debug "$binary" "$work/philote"
port=$((21000 + RANDOM % 2000))
SECRET=benchsecret PORT=$port WORKERS=1 LOGLEVEL=error MAX_CONNECTIONS=10000 \
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/philote" >/dev/null 2>"$work/valgrind.log" &
server=$!
for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
result=$("$build/wsload" --port "$port" --secret benchsecret --mode fanout --subs 100 --pubs 1 --rate 200 \
    --duration 4 --warmup 1 --drain 3 --connect-timeout 30 2>/dev/null | grep '^RESULT')
kill -TERM "$server"
wait "$server" || true
received=$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<"$result")
total=$(grep -m1 '^summary:' "$work/out" | awk '{print $2}')
echo "instructions=$total deliveries=$received per_delivery=$((total / (received > 0 ? received : 1)))"

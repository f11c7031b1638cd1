#!/usr/bin/env bash
# Two builds of the server through ../shared/bench/compare.sh in one run, alternating (A, B, A, B, ...) so that
# both see the same machine state, with the limit server beside them; prints the medians of delivered/s and
# server CPU per delivery for each test and B's ratio to A. For "before and after" claims about a change:
#
#   git stash; swift build -c release --product philote; cp .build/release/philote /tmp/philote-before
#   git stash pop; swift build -c release --product philote
#   scripts/bench-ab.sh /tmp/philote-before .build/release/philote
#
# ROUNDS (default 3) alternations; TESTS (default "fanout1k fanout10k") over ws://, and TLS_TESTS (default
# "fanout1k") over wss://; either may be empty for none. Raw lines go to AB_OUT (default bench-ab.txt). Needs two CPUs.
#
# One build with two settings works the same way: A_ENV and B_ENV add VAR=value words to each side's server
# environment (after EXTRA_ENV, default WORKERS=1). `make bench-history` is
#
#   B_ENV="HISTORY_SIZE=1000" scripts/bench-ab.sh .build/release/philote .build/release/philote
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BINARY_A BINARY_B" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
[ -x "$shared/bench/compare.sh" ] || { echo "bench-ab: $shared/bench/compare.sh not found (set SHARED)" >&2; exit 1; }
a=$(realpath "$1")
b=$(realpath "$2")
out=${AB_OUT:-$root/bench-ab.txt}
: > "$out"
rounds=${ROUNDS:-3}
tests=${TESTS-"fanout1k fanout10k"}
tls_tests=${TLS_TESTS-"fanout1k"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One compare.sh repetition of SERVER (philote with BINARY, or limit) over TLS (0/1), labelled LABEL in $out.
run() {
    local label=$1 binary=$2 tls=$3 tests=$4 servers=$5 side_env=$6
    PHILOTE_CMD=$binary SERVERS=$servers TESTS=$tests REPS=1 TLS=$tls EXTRA_ENV="${EXTRA_ENV:-WORKERS=1} $side_env" \
        "$shared/bench/compare.sh" "$work/run.txt" >/dev/null
    grep RESULT "$work/run.txt" | sed "s/^/build=$label /" >> "$out"
    : > "$work/run.txt"
}

for round in $(seq "$rounds"); do
    echo "bench-ab: round $round of $rounds" >&2
    if [ -n "$tests" ]; then
        run A "$a" 0 "$tests" "philote limit" "${A_ENV:-}"
        run B "$b" 0 "$tests" philote "${B_ENV:-}"
    fi
    if [ -n "$tls_tests" ]; then
        run A "$a" 1 "$tls_tests" philote "${A_ENV:-}"
        run B "$b" 1 "$tls_tests" philote "${B_ENV:-}"
    fi
done

python3 - "$out" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
    build = "limit" if kv.get("server") == "limit" else kv["build"]
    rows[(kv.get("test"), kv.get("tls", "0"), build)].append(kv)
def med(key, field):
    values = [float(r[field]) for r in rows.get(key, []) if field in r]
    return statistics.median(values) if values else float("nan")
print("| test | tls | A delivered/s | B delivered/s | B/A | A cpu us/delivery | B cpu us/delivery | limit delivered/s | runs |")
print("|---|---|---|---|---|---|---|---|---|")
for test, tls in sorted({(t, s) for t, s, _ in rows}):
    a, b = med((test, tls, "A"), "delivered_per_s"), med((test, tls, "B"), "delivered_per_s")
    ca = med((test, tls, "A"), "server_cpu_us_per_delivery")
    cb = med((test, tls, "B"), "server_cpu_us_per_delivery")
    limit = med((test, tls, "limit"), "delivered_per_s")
    runs = len(rows.get((test, tls, "B"), []))
    print(f"| {test} | {tls} | {a:.0f} | {b:.0f} | {b / a:.3f} | {ca:.3f} | {cb:.3f} | {limit:.0f} | {runs} |")
EOF

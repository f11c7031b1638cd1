#!/usr/bin/env bash
# Instructions per client message read (ClientMessageReader, the WebSocket hot path), and per token verified
# (a token's header and claims are JSON too), counted by valgrind's callgrind, which is repeatable on a noisy
# machine. Each typical message (and the token) is read REPS and 11*REPS times by the release JSONBench
# (Benchmarks/JSONBench); the difference between the two runs divided by 10*REPS is the cost of one read, with
# start-up and set-up cancelled out.
#   scripts/callgrind-json.sh [REPS]     (default 2000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=${1:-2000}
swift=${SWIFT:-swift}
"$swift" build --package-path "$root" -c release --product JSONBench >/dev/null
binary=$("$swift" build --package-path "$root" -c release --show-bin-path)/JSONBench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes; the symbol table is enough.
objcopy --strip-debug "$binary" "$work/JSONBench"
count() {
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/JSONBench" "$1" "$2" >/dev/null 2>"$work/log"
    grep -m1 '^summary:' "$work/out" | awk '{print $2}'
}
total=0
for message in small escapes large unicode; do
    low=$(count "$message" "$reps")
    high=$(count "$message" $((reps * 11)))
    per=$(((high - low) / (reps * 10)))
    total=$((total + per))
    echo "$message: $per instructions per message"
done
echo "sum of the four: $total"
low=$(count token "$reps")
high=$(count token $((reps * 11)))
echo "token (TokenVerifier.verify, claims read from JSON): $(((high - low) / (reps * 10))) instructions per token"

#!/usr/bin/env bash
# Builds the libFuzzer targets (frames, request heads, client messages, tokens, broker envelopes, TLS records after
# a real handshake) with -sanitize=fuzzer,address into .build-fuzz and runs each for SECONDS on a temporary copy of
# its seed corpus (Fuzz/seeds/...).
# Prints one summary line per target; exits non-zero if a build fails or any target finds a crash,
# a timeout or an out-of-memory input (the input is kept under $FUZZ_ARTIFACTS for reproduction:
# pass it as the only argument to the fuzz binary).
#
#   Fuzz/run.sh 30            # 30 s per target
#   FUZZ_ARTIFACTS=/tmp/x Fuzz/run.sh 600
set -uo pipefail

usage() { echo "usage: $0 SECONDS   (seconds of fuzzing per target, a positive integer)" >&2; exit 2; }
[[ $# -eq 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
duration=$1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
scratch="$root/.build-fuzz"
artifacts=${FUZZ_ARTIFACTS:-$scratch/artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/philote-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

swift=${SWIFT:-swift}
flags=(--scratch-path "$scratch" -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)
targets=("FuzzFrames:frames" "FuzzRequestHead:request-head" "FuzzClientMessage:client-message" "FuzzToken:token"
    "FuzzEnvelope:envelope" "FuzzTLSRecords:tls-records")

build_start=$(date +%s%N)
for entry in "${targets[@]}"; do
    product=${entry%%:*}
    if ! "$swift" build "${flags[@]}" --product "$product" >"$work/build-$product.log" 2>&1; then
        echo "$product: BUILD FAILED" >&2
        grep -E "error:" "$work/build-$product.log" | head -20 >&2 || tail -20 "$work/build-$product.log" >&2
        exit 1
    fi
done
bin=$("$swift" build "${flags[@]}" --show-bin-path)
build_ms=$(( ($(date +%s%N) - build_start) / 1000000 ))
printf 'fuzz build: %d.%01d s (%s)\n' $((build_ms / 1000)) $((build_ms % 1000 / 100)) "$bin"

status=0
for entry in "${targets[@]}"; do
    product=${entry%%:*}
    seeds="$root/Fuzz/seeds/${entry#*:}"
    corpus="$work/corpus-$product"
    mkdir -p "$corpus"
    if [[ -d $seeds ]]; then cp "$seeds"/* "$corpus"/ 2>/dev/null; fi
    seed_count=$(find "$corpus" -type f | wc -l)
    log="$work/$product.log"
    # SWIFT_BACKTRACE=enable=no: otherwise Swift's crash handler runs before ASan's report.
    SWIFT_BACKTRACE=enable=no "$bin/$product" -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/$product-" -print_final_stats=1 "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    if [[ $rc -eq 0 ]] && grep -q '^Done [0-9]* runs' "$log"; then
        echo "$product: ok, ${runs:-?} runs in ${duration} s (${rate:-?}/s), coverage ${cov:-?} edges, corpus ${seed_count} seeds -> ${corp:-?} inputs"
    else
        status=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer): [a-zA-Z-]+|Fatal error: .*|deadly signal|timeout after [0-9]+ seconds|out-of-memory' "$log" || true)
        echo "$product: FAILED (exit $rc${kind:+, $kind}) after ${runs:-?} runs; input: ${artifact:-none written}"
        kept="$artifacts/$product-$(date +%Y%m%d-%H%M%S).log"
        cp "$log" "$kept"
        echo "  log: $kept" >&2
        grep -m5 -E 'Fatal error|ERROR:|SUMMARY:|precondition' "$log" | sed 's/^/  /' >&2
    fi
done
exit $status

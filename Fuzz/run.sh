#!/usr/bin/env bash
# Builds the libFuzzer targets (frames, request heads, client messages, tokens, broker envelopes, TLS records after
# a real handshake, publish bodies, permessage-deflate inflation, `since` parameters) into .build-fuzz and runs each
# for SECONDS on a temporary copy of its seed corpus (Fuzz/seeds/...).
# The build is optimised (-c release, with -enable-testing for the targets' @testable imports) with the fuzzer's
# coverage and AddressSanitizer in the Swift code and in CSystem's C code alike; preconditions keep their messages.
# Prints one summary line per target; exits non-zero if a build fails or any target finds a crash,
# a timeout or an out-of-memory input (the input is kept under $FUZZ_ARTIFACTS for reproduction:
# pass it as the only argument to the fuzz binary).
#
#   Fuzz/run.sh 30                                # 30 s per target
#   FUZZ_ARTIFACTS=/tmp/x Fuzz/run.sh 600
#   FUZZ_TARGETS="FuzzInflate FuzzToken" Fuzz/run.sh 60   # only these targets
#   FUZZ_BUILD_ONLY=1 Fuzz/run.sh 1                       # build, run nothing
#
# The long runs of RELIABILITY.md (10 million executions per target) are Fuzz/record.sh's.
#
# Refreshing the committed corpus (CI starts from it): run a few minutes per target with FUZZ_MERGE=1, which
# merges (-merge=1) whatever new inputs add coverage into Fuzz/seeds/<name>/, then commit those files:
#
#   FUZZ_MERGE=1 Fuzz/run.sh 300 && git add Fuzz/seeds && git commit -m "Fuzz corpus refreshed"
#
# Merging only adds files. Keep each directory to a few hundred small files, well under 1 MB; to shrink one,
# minimise it afresh (hand-made seeds that add nothing go too):
#
#   mv Fuzz/seeds/inflate /tmp/old && mkdir Fuzz/seeds/inflate &&
#       .build-fuzz/release/FuzzInflate -merge=1 -use_counters=0 Fuzz/seeds/inflate /tmp/old
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
# -assert-config Debug: at -O a failed precondition would trap without its message (about 9 % of the speed).
# -fsanitize=fuzzer-no-link: coverage for the C code without a second libFuzzer main (swiftc links the one).
flags=(--scratch-path "$scratch" -c release -Xswiftc -enable-testing -Xswiftc "-sanitize=fuzzer,address"
    -Xswiftc -DFUZZING -Xswiftc -assert-config -Xswiftc Debug -Xcc -fsanitize=address -Xcc -fsanitize=fuzzer-no-link)
targets=("FuzzFrames:frames" "FuzzRequestHead:request-head" "FuzzClientMessage:client-message" "FuzzToken:token"
    "FuzzEnvelope:envelope" "FuzzTLSRecords:tls-records" "FuzzPublishRequest:publish-request" "FuzzInflate:inflate"
    "FuzzSince:since")
if [[ -n ${FUZZ_TARGETS:-} ]]; then
    chosen=()
    for entry in "${targets[@]}"; do
        [[ " $FUZZ_TARGETS " == *" ${entry%%:*} "* ]] && chosen+=("$entry")
    done
    [[ ${#chosen[@]} -gt 0 ]] || { echo "FUZZ_TARGETS names no known target: $FUZZ_TARGETS" >&2; exit 2; }
    targets=("${chosen[@]}")
fi

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
[[ -n ${FUZZ_BUILD_ONLY:-} ]] && exit 0  # Fuzz/record.sh runs the binaries its own way

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
        if [[ -n ${FUZZ_MERGE:-} ]]; then
            mkdir -p "$seeds"
            before=$(find "$seeds" -type f | wc -l)
            # -use_counters=0: an input is kept for a new edge, not for a new hit count on a known one, which
            # keeps a directory to about a hundred files instead of several hundred.
            if SWIFT_BACKTRACE=enable=no "$bin/$product" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
                "$seeds" "$corpus" >"$work/$product-merge.log" 2>&1; then
                bytes=$(du -s --apparent-size -B1 "$seeds" | cut -f1)
                echo "  merged into Fuzz/seeds/${entry#*:}: $before -> $(find "$seeds" -type f | wc -l) files, $bytes bytes"
            else
                status=1
                echo "  merge into Fuzz/seeds/${entry#*:} FAILED (log: $work/$product-merge.log)" >&2
                tail -5 "$work/$product-merge.log" >&2
            fi
        fi
    else
        status=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer): [a-zA-Z-]+|Fatal error: .*|Precondition failed: .*|deadly signal|timeout after [0-9]+ seconds|out-of-memory' "$log" || true)
        echo "$product: FAILED (exit $rc${kind:+, $kind}) after ${runs:-?} runs; input: ${artifact:-none written}"
        kept="$artifacts/$product-$(date +%Y%m%d-%H%M%S).log"
        cp "$log" "$kept"
        echo "  log: $kept" >&2
        grep -m5 -E 'Fatal error|ERROR:|SUMMARY:|[Pp]recondition' "$log" | sed 's/^/  /' >&2
    fi
done
exit $status

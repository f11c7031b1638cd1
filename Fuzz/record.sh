#!/usr/bin/env bash
# The long fuzz runs RELIABILITY.md records: RUNS executions (default 10 million) of each named target, all at once
# (one process each: give each a core of its own), every one from a copy of its committed corpus (Fuzz/seeds/...),
# with the build of Fuzz/run.sh (optimised, AddressSanitizer and coverage in the Swift and C code alike). The
# binaries are copied first, so builds during the hours a run takes do not touch it. Prints one line per target as
# it ends (executions, seconds, rate, edges, corpus) and exits non-zero if any found a crash, a failed oracle, a
# hang or an out-of-memory input; the input is kept in the run's folder for reproduction.
#
#   Fuzz/record.sh FuzzToken FuzzSince FuzzTLSRecords
#   RUNS=100000 Fuzz/record.sh FuzzSince        # a short try of the same set-up
#   RECORD_DIR=/tmp/rec Fuzz/record.sh ...       # where logs, corpora and inputs go (default: a new folder in /tmp)
#
# The options, and why:
# - ASAN_OPTIONS=malloc_context_size=0: no stack is saved per allocation, about a fifth of the time of these
#   allocation-heavy targets. Detection is the same; a report lacks where the memory was allocated and freed, so
#   replay the kept input with the binary alone (`<binary> <input>`, default options) for the full report.
# - -fork=1: the fuzzing runs in a child process that is replaced every few seconds to minutes (its corpus merged
#   back), the parent counting every execution toward -runs. One process running for hours slowed to a quarter of
#   a fresh one's rate on the same corpus (FuzzSince: 350/s against 1,400/s side by side; FuzzTLSRecords likewise),
#   while the children keep a fresh process's rate. The first crash still ends the run.
# - -timeout=600: a run may be paused (SIGSTOP) while the machine is needed, and a pause must not pass for a hang.
# - -max_len=1024 for FuzzSince and FuzzTLSRecords (others: libFuzzer's default, 4 KiB). Their per-input cost grows
#   with the input: a 4 KiB query is about 170 `since` parameters, each read four ways by the oracle (400
#   executions/s), and a 4 KiB script about a thousand record operations. 1 KiB still holds about 40 parameters
#   (every per-parameter limit, a 32-character epoch or a 19-digit offset, fits many times over) or a few hundred
#   operations.
set -uo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 TARGET...   (e.g. FuzzToken FuzzSince FuzzTLSRecords)" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-10000000}
dir=${RECORD_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/philote-fuzz-record.XXXXXX")}
mkdir -p "$dir"

declare -A seeds=([FuzzFrames]=frames [FuzzRequestHead]=request-head [FuzzClientMessage]=client-message
    [FuzzToken]=token [FuzzEnvelope]=envelope [FuzzTLSRecords]=tls-records [FuzzPublishRequest]=publish-request
    [FuzzInflate]=inflate [FuzzSince]=since)
for product in "$@"; do
    [[ -n ${seeds[$product]:-} ]] || { echo "unknown target: $product" >&2; exit 2; }
done

FUZZ_TARGETS="$*" FUZZ_BUILD_ONLY=1 "$root/Fuzz/run.sh" 1 || exit 1
bin="$root/.build-fuzz/x86_64-unknown-linux-gnu/release"
[[ -d $bin ]] || bin="$root/.build-fuzz/release"
commit=$(git -C "$root" describe --always --dirty)
echo "record: $runs executions each of $*, build of $commit, in $dir"

declare -A pids started
for product in "$@"; do
    cp "$bin/$product" "$dir/$product"
    rm -rf "$dir/corpus-$product"
    mkdir -p "$dir/corpus-$product"
    cp "$root/Fuzz/seeds/${seeds[$product]}"/* "$dir/corpus-$product"/
    limit=()
    case $product in FuzzSince | FuzzTLSRecords) limit=(-max_len=1024) ;; esac
    started[$product]=$(date +%s)
    # SWIFT_BACKTRACE=enable=no: otherwise Swift's crash handler runs before ASan's report.
    ASAN_OPTIONS=malloc_context_size=0 SWIFT_BACKTRACE=enable=no "$dir/$product" -fork=1 -runs="$runs" "${limit[@]}" \
        -timeout=600 -rss_limit_mb=2048 -artifact_prefix="$dir/$product-" \
        "$dir/corpus-$product" >"$dir/$product.log" 2>&1 &
    pids[$product]=$!
    echo "  $product: pid ${pids[$product]}, log $dir/$product.log"
done

status=0
for product in "$@"; do
    wait "${pids[$product]}"
    rc=$?
    log="$dir/$product.log"
    seconds=$(($(date +%s) - started[$product]))
    # The parent's last progress line: "#N: cov: C ft: F corp: K exec/s: ...".
    last=$(grep -aE '^#[0-9]+: cov:' "$log" | tail -1)
    executed=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\) .*/\1/p' <<<"$last")
    if [[ $rc -eq 0 && ${executed:-0} -ge $runs ]]; then
        echo "$product: ok, $executed executions in $seconds s ($((executed / (seconds > 0 ? seconds : 1)))/s), coverage ${cov:-?} edges, corpus ${corp:-?} inputs"
    else
        status=1
        kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer): [a-zA-Z-]+|Fatal error: .*|Precondition failed: .*|deadly signal|timeout after [0-9]+ seconds|out-of-memory' "$log" || true)
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "$product: FAILED (exit $rc${kind:+, $kind}) after ${executed:-?} executions in $seconds s; input: ${artifact:-none written}"
    fi
done
exit $status

#!/usr/bin/env bash
# `make bench`: the release binary through ../shared/bench/compare.sh beside the Node and Python peers and
# the limit server, in one run (medians of REPS repetitions), then a dated section appended to
# BENCHMARKS.md with the machine, the median table and the ratios. BENCH_NOTE says what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
[ -x "$shared/bench/compare.sh" ] || { echo "bench: $shared/bench/compare.sh not found (set SHARED)" >&2; exit 1; }
out=${BENCH_OUT:-$root/bench-results.txt}
: > "$out"
rm -f "${out%.txt}"-tls-*.txt
export PHILOTE_CMD="$root/.build/release/philote"
export SERVERS=${SERVERS:-"philote node python limit"}
export TESTS=${TESTS:-"fanout1k fanout1kw64 lat1k fanout10k channels conns10k"}
export REPS=${REPS:-3}
export EXTRA_ENV=${EXTRA_ENV:-"WORKERS=1"}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$shared/bench/compare.sh" "$out" | tail -n 40
table=$(python3 "$shared/bench/summarize.py" "$out")
{
    echo
    echo "## $(date -u +%Y-%m-%d) $(git -C "$root" log -1 --format=%h) ${TLS:+TLS=$TLS }${COMPRESSION:+COMPRESSION=$COMPRESSION}"
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r), load before ${load_before}."
    echo "Run: servers [$SERVERS], tests [$TESTS], $REPS repetitions, philote with $EXTRA_ENV; server on CPU 0, wsload on CPU 1."
    echo "Changes: ${BENCH_NOTE:-$(git -C "$root" log -1 --format=%s)}"
    echo
    echo '```'
    echo "$table" | column -t
    echo '```'
} >> "$root/BENCHMARKS.md"
echo "bench: appended to BENCHMARKS.md (raw lines in $out)"

# Fan-out with history on (HISTORY_SIZE=1000) beside the same binary without it above (issue 15's bar: at least 0.9;
# BENCH_HISTORY=0 skips it; about a minute per repetition). `make bench-history` alternates the two for a closer
# comparison.
if [ "${BENCH_HISTORY:-1}" = 1 ] && [ "${TLS:-0}" != 1 ]; then
    SERVERS=philote TESTS="fanout1k fanout10k" EXTRA_ENV="$EXTRA_ENV HISTORY_SIZE=1000" \
        "$shared/bench/compare.sh" "${out%.txt}-history.txt" | tail -n 3
    history_table=$(python3 - "$out" "${out%.txt}-history.txt" <<'EOF_PY'
import collections, statistics, sys
def medians(path):
    rows = collections.defaultdict(list)
    for line in open(path):
        if "RESULT" not in line or line.startswith("#"):
            continue
        kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if kv.get("server") == "philote" and kv.get("tls", "0") == "0":
            rows[kv["test"]].append(float(kv["delivered_per_s"]))
    return {test: statistics.median(values) for test, values in rows.items()}
off, on = medians(sys.argv[1]), medians(sys.argv[2])
print("| test | history off delivered/s | HISTORY_SIZE=1000 delivered/s | ratio |")
print("|---|---|---|---|")
for test in sorted(on):
    if test in off:
        print(f"| {test} | {off[test]:.0f} | {on[test]:.0f} | {on[test] / off[test]:.3f} |")
EOF_PY
)
    {
        echo
        echo "### History on beside history off ($(git -C "$root" log -1 --format=%h), same run)"
        echo
        echo "$history_table"
    } >> "$root/BENCHMARKS.md"
    echo "bench: history section appended (raw lines in ${out%.txt}-history.txt)"
fi

# Fan-out over WORKERS=1,2,4,8 as far as this machine has two CPUs per worker (scripts/bench-scaling.sh;
# BENCH_SCALING=0 skips it; about 1.5 minutes per step and repetition).
if [ "${BENCH_SCALING:-1}" = 1 ] && [ "${TLS:-0}" != 1 ]; then
    REPS=$REPS OUT="${out%.txt}-scaling.txt" "$root/scripts/bench-scaling.sh" | tail -n 8
fi

# wss:// with each record layer (issue 12): fan-out and idle memory beside the plain figures above (BENCH_TLS=0
# skips it; about 4 minutes).
[ "${BENCH_TLS:-1}" = 1 ] || exit 0
[ "${TLS:-0}" = 1 ] && exit 0  # a TLS=1 run above is already all wss://
for layer in builtin openssl; do
    TLS=1 SERVERS=philote TESTS="fanout1k conns10k" EXTRA_ENV="$EXTRA_ENV TLS_RECORD_LAYER=$layer" \
        "$shared/bench/compare.sh" "${out%.txt}-tls-$layer.txt" | tail -n 5
done
tls_table=$(python3 "$root/scripts/bench_tls.py" "$out" "${out%.txt}-tls-builtin.txt" "${out%.txt}-tls-openssl.txt")
{
    echo
    echo "### wss:// beside ws:// ($(git -C "$root" log -1 --format=%h), same run)"
    echo
    echo "$tls_table"
} >> "$root/BENCHMARKS.md"
echo "bench: TLS section appended (raw lines in ${out%.txt}-tls-*.txt)"

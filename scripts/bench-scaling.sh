#!/usr/bin/env bash
# `make bench-scaling` (and the last part of `make bench`): fan-out delivered/s over WORKERS=1,2,... with the
# publishers spread over the loops (one per worker), the server on CPUs 0..W-1 and wsload on the next W CPUs,
# so that each step has as many free cores as it has loops. A step with fewer than 2W CPUs left shares cores
# with the load generator and is printed but marked `shared`: it says nothing about scaling (on a 2-core machine
# only W=1 is a real step; BENCHMARKS.md then has the model instead, see "Scaling across cores").
#
#   WORKERS_LIST="1 2 4 8"  (default: 1, 2, 4, ... up to 8 while 2W <= the CPUs this script may use)
#   TESTS="fanout1k fanout10k"  REPS=3  OUT=bench-scaling.txt
# Needs root (a private network namespace, as ../shared/bench/compare.sh), the release binary and wsload (built
# by compare.sh into $WSLOAD_BUILD, default /tmp/wsload-build). Appends a section to BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/wsload-env.sh"
philote=${PHILOTE_BIN:-$root/.build/release/philote}
[ -x "$philote" ] || { echo "bench-scaling: $philote not built (make release)" >&2; exit 1; }
cpus=$(nproc)
if [ -z "${WORKERS_LIST:-}" ]; then
    WORKERS_LIST=1
    for w in 2 4 8; do [ $((2 * w)) -le "$cpus" ] && WORKERS_LIST="$WORKERS_LIST $w"; done
fi
TESTS=${TESTS:-"fanout1k fanout10k"}
REPS=${REPS:-3}
out=${OUT:-$root/bench-scaling.txt}
: > "$out"
ulimit -n "$(ulimit -Hn)"
secret=benchsecret
port=19500

args_for() { # test publishers
    case $1 in
        fanout1k) echo "--mode fanout --subs 1000 --pubs $2 --window 16 --duration 5 --warmup 1 --drain 3" ;;
        fanout10k) echo "--mode fanout --subs 10000 --pubs $2 --window 16 --duration 5 --warmup 1 --drain 3" ;;
        *) echo "bench-scaling: unknown test $1" >&2; exit 2 ;;
    esac
}

for rep in $(seq "$REPS"); do
    for test in $TESTS; do
        for w in $WORKERS_LIST; do
            port=$((port + 1))
            server_cpus="0-$((w - 1))"
            if [ $((2 * w)) -le "$cpus" ]; then
                load_cpus="$w-$((2 * w - 1))" cores=own
            else
                load_cpus="0-$((cpus - 1))" cores=shared
            fi
            env SECRET=$secret PORT=$port HOST=127.0.0.1 WORKERS="$w" MAX_CONNECTIONS=20000 LOGLEVEL=error \
                taskset -c "$server_cpus" "$philote" >/dev/null 2>&1 &
            spid=$!
            for _ in $(seq 100); do
                (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                sleep 0.05
            done
            # shellcheck disable=SC2046
            line=$(timeout 60 taskset -c "$load_cpus" "$build/wsload" --port "$port" --secret "$secret" \
                --server-pid "$spid" --label philote --threads "$w" --src-ips 4 $(args_for "$test" "$w") 2>/dev/null |
                grep '^RESULT' || echo "RESULT error=no_result")
            kill -TERM "$spid" 2>/dev/null || true
            wait "$spid" 2>/dev/null || true
            echo "rep=$rep test=$test workers=$w cores=$cores $line" | tee -a "$out"
        done
    done
done

table=$(python3 - "$out" <<'EOF_PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
cores = {}
for line in open(sys.argv[1]):
    fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
    if "delivered_per_s" not in fields:
        continue
    key = (fields["test"], int(fields["workers"]))
    rows[key].append(float(fields["delivered_per_s"]))
    cores[key] = fields["cores"]
print("test workers cores delivered_per_s per_worker efficiency")
for test in sorted({t for t, _ in rows}):
    base = statistics.median(rows[(test, 1)]) if (test, 1) in rows else None
    for workers in sorted(w for t, w in rows if t == test):
        median = statistics.median(rows[(test, workers)])
        efficiency = f"{median / (workers * base):.2f}" if base else "-"
        print(f"{test} {workers} {cores[(test, workers)]} {median:.0f} {median / workers:.0f} {efficiency}")
EOF_PY
)
echo "$table" | column -t
{
    echo
    echo "## $(date -u +%Y-%m-%d) $(git -C "$root" log -1 --format=%h) scaling over WORKERS"
    echo
    echo "Machine: $cpus CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r)."
    echo "Run: WORKERS in [$WORKERS_LIST], tests [$TESTS], $REPS repetitions (medians); server on CPUs 0..W-1,"
    echo "wsload (W threads, W publishers) on the next W (\`shared\`: too few CPUs for that, not a scaling figure)."
    echo "Efficiency: delivered/s over W times the one-worker figure (issue 17's bar: at least 0.8 up to 8)."
    echo
    echo '```'
    echo "$table" | column -t
    echo '```'
} >> "$root/BENCHMARKS.md"
echo "bench-scaling: appended to BENCHMARKS.md (raw lines in $out)"

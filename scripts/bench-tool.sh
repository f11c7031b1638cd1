#!/usr/bin/env bash
# `make bench-tool`: `philote bench` beside ../shared/bench wsload on one workload (fanout1k: 1,000 subscribers, one
# channel, window 16, 5 s measured), alternating the two against one release server per mode, for plain ws://, wss://
# and permessage-deflate; medians of ROUNDS runs each, appended to BENCHMARKS.md. Issue 17's bar: the tool drives at
# least 0.8 of wsload's delivered rate, with p50 within 20 %. Server on CPU 0 (WORKERS=1), load tool on CPU 1 with
# one thread, as compare.sh does.
#
#   ROUNDS=5 MODES="plain tls deflate" scripts/bench-tool.sh
set -euo pipefail
source "$(dirname "$0")/wsload-env.sh"
philote=$root/.build/release/philote
[ -x "$philote" ] || { echo "bench-tool: $philote not built (make release)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-"plain tls deflate"}
out=${OUT:-$root/bench-tool.txt}
: > "$out"
ulimit -n "$(ulimit -Hn)"
secret=benchsecret
port=19700
cert=$build/tool-cert.pem key=$build/tool-key.pem
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout "$key" -out "$cert" >/dev/null 2>&1

for mode in $MODES; do
    server_env=() wsload_args=() tool_args=() scheme=ws
    case $mode in
        plain) ;;
        tls) server_env=("TLS_CERT_FILE=$cert" "TLS_KEY_FILE=$key") wsload_args=(--tls) tool_args=(--insecure) scheme=wss ;;
        deflate) server_env=(COMPRESSION=1) wsload_args=(--deflate) tool_args=(--deflate) ;;
        *) echo "bench-tool: unknown mode $mode" >&2; exit 2 ;;
    esac
    port=$((port + 1))
    env SECRET=$secret PORT=$port HOST=127.0.0.1 WORKERS=1 MAX_CONNECTIONS=20000 LOGLEVEL=error "${server_env[@]}" \
        taskset -c 0 "$philote" >/dev/null 2>&1 &
    spid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    for round in $(seq "$ROUNDS"); do
        json=$(taskset -c 1 "$philote" bench --url "$scheme://127.0.0.1:$port/" --secret $secret --workers 1 \
            --subscribers 1000 --rate max --window 16 --duration 5s --warmup 1s --drain 3s --json "${tool_args[@]}" \
            2>/dev/null || true)
        echo "$json" | python3 -c '
import json, sys
mode, round_number = sys.argv[1], sys.argv[2]
try:
    r = json.load(sys.stdin)
    rate, lost = r["delivered_per_second"], r["lost"]
    p50, p99 = r["latency_us"]["p50"], r["latency_us"]["p99"]
    print(f"mode={mode} round={round_number} tool=bench delivered_per_s={rate:.0f} p50_us={p50} p99_us={p99} lost={lost}")
except Exception as error:
    print(f"mode={mode} round={round_number} tool=bench error={type(error).__name__}")
' "$mode" "$round" | tee -a "$out"
        line=$(taskset -c 1 "$build/wsload" --port $port --secret $secret --threads 1 --mode fanout --subs 1000 \
            --pubs 1 --window 16 --duration 5 --warmup 1 --drain 3 "${wsload_args[@]}" 2>/dev/null | grep '^RESULT' ||
            echo "RESULT error=no_result")
        echo "mode=$mode round=$round tool=wsload ${line#RESULT }" | tee -a "$out"
    done
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
done

table=$(python3 - "$out" <<'EOF_PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    fields = {}
    for token in line.split():
        if "=" in token:
            name, value = token.split("=", 1)
            fields.setdefault(name, value)  # the first mode= (ours), not wsload's own mode=fanout
    if "delivered_per_s" not in fields:
        continue
    for name in ("delivered_per_s", "p50_us", "p99_us"):
        rows[(fields["mode"], fields["tool"])][name].append(float(fields[name]))
print("| mode | philote bench delivered/s | wsload delivered/s | ratio | bench p50 / p99 ms | wsload p50 / p99 ms | p50 ratio | runs |")
print("|---|---|---|---|---|---|---|---|")
for mode in ("plain", "tls", "deflate"):
    bench, wsload = rows.get((mode, "bench")), rows.get((mode, "wsload"))
    if not bench or not wsload:
        continue
    m = {tool: {k: statistics.median(v) for k, v in data.items()} for tool, data in (("b", bench), ("w", wsload))}
    print(f"| {mode} | {m['b']['delivered_per_s']:,.0f} | {m['w']['delivered_per_s']:,.0f} | "
          f"{m['b']['delivered_per_s'] / m['w']['delivered_per_s']:.2f} | "
          f"{m['b']['p50_us'] / 1000:.1f} / {m['b']['p99_us'] / 1000:.1f} | "
          f"{m['w']['p50_us'] / 1000:.1f} / {m['w']['p99_us'] / 1000:.1f} | "
          f"{m['b']['p50_us'] / m['w']['p50_us']:.2f} | {len(bench['delivered_per_s'])} + {len(wsload['delivered_per_s'])} |")
EOF_PY
)
echo "$table"
{
    echo
    echo "## $(date -u +%Y-%m-%d) $(git -C "$root" log -1 --format=%h) philote bench beside wsload (issue 17)"
    echo
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "fanout1k (1,000 subscribers, one channel, window 16, 5 s), the two tools alternating against one server per"
    echo "mode (CPU 0, WORKERS=1), each on CPU 1 with one thread; medians of $ROUNDS rounds (\`make bench-tool\`, raw lines in bench-tool.txt)."
    echo
    echo "$table"
} >> "$root/BENCHMARKS.md"

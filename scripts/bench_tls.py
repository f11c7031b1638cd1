#!/usr/bin/env python3
"""The TLS section of `make bench`: fan-out and idle memory over wss:// with each record layer beside plain ws://,
from compare.sh's raw lines (medians over repetitions). Prints a Markdown table.

    bench_tls.py PLAIN_FILE BUILTIN_FILE OPENSSL_FILE RATE_PLAIN RATE_BUILTIN RATE_OPENSSL

The first three are saturated runs (fanout1k, conns10k); the RATE files are fanout1k at a fixed publish rate,
where neither the server nor the load generator is saturated, so that server CPU per delivery compares the same
work (at saturation wsload's own TLS decryption on its one core is what limits wss:// throughput)."""
import statistics
import sys


def results(path, test):
    rows = []
    with open(path) as handle:
        for line in handle:
            if not line.startswith("rep=") or f" test={test} " not in line or " server=philote " not in line:
                continue
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if "error" in fields:
                continue
            rows.append(fields)
    return rows


def median(rows, key):
    values = [float(row[key]) for row in rows if key in row]
    return statistics.median(values) if values else float("nan")


def main(plain, builtin, openssl, rate_plain, rate_builtin, rate_openssl):
    base = median(results(plain, "fanout1k"), "delivered_per_s")
    base_cpu = median(results(rate_plain, "fanout1k"), "server_cpu_us_per_delivery")
    print("| ws / record layer | fanout1k deliveries/s | x plain | server µs/delivery at a fixed rate | x plain (CPU) "
          "| conns10k KB per idle connection |")
    print("|---|---|---|---|---|---|")
    print(f"| ws:// | {base:,.0f} | 1.00 | {base_cpu:.3f} | 1.00 | |")
    for name, saturated, fixed in (("wss:// builtin", builtin, rate_builtin), ("wss:// openssl", openssl, rate_openssl)):
        rate = median(results(saturated, "fanout1k"), "delivered_per_s")
        cpu = median(results(fixed, "fanout1k"), "server_cpu_us_per_delivery")
        memory = median(results(saturated, "conns10k"), "rss_per_conn_kb")
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f} | {cpu:.3f} | {base_cpu / cpu:.2f} | {memory:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    main(*sys.argv[1:])

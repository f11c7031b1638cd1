#!/usr/bin/env python3
"""The TLS section of `make bench`: fan-out and idle memory over wss:// with each record layer beside plain ws://,
from compare.sh's raw lines (medians over repetitions). Prints a Markdown table.

    bench_tls.py PLAIN_FILE BUILTIN_FILE OPENSSL_FILE

Over wss:// the load generator decrypts every record on its one core: the client CPU column says how close it
came to being what limits the figure, and the server's CPU per delivery compares the server's own cost."""
import statistics
import sys


def results(path, test):
    rows = []
    with open(path) as handle:
        for line in handle:
            if not line.startswith("rep=") or f" test={test} " not in line or " server=philote " not in line:
                continue
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if "error" not in fields:
                rows.append(fields)
    return rows


def median(rows, key):
    values = [float(row[key]) for row in rows if key in row]
    return statistics.median(values) if values else float("nan")


def main(plain, builtin, openssl):
    base_rows = results(plain, "fanout1k")
    base = median(base_rows, "delivered_per_s")
    print("| ws / record layer | fanout1k deliveries/s | x plain | server µs/delivery | server CPU | load generator CPU "
          "| conns10k KB per idle connection |")
    print("|---|---|---|---|---|---|---|")

    def row(name, rows, memory):
        rate = median(rows, "delivered_per_s")
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f} | {median(rows, 'server_cpu_us_per_delivery'):.3f} "
              f"| {median(rows, 'cpu_util'):.2f} | {median(rows, 'client_cpu_s') / median(rows, 'dur_s'):.2f} "
              f"| {memory} |")

    row("ws://", base_rows, f"{median(results(plain, 'conns10k'), 'rss_per_conn_kb'):.2f}")
    for name, path in (("wss:// builtin", builtin), ("wss:// openssl", openssl)):
        row(name, results(path, "fanout1k"), f"{median(results(path, 'conns10k'), 'rss_per_conn_kb'):.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

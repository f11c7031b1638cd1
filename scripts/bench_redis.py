#!/usr/bin/env python3
"""Cross-server fan-out through Redis beside single-server fan-out, in one run (`make bench-redis`).

single: 1,000 subscribers and 1 publisher on one server (no Redis), the fanout1k workload of compare.sh.
cross:  the same 1,000 subscribers on server B, the publisher on server A; A and B share one Redis.
        wsload itself is unmodified: an LD_PRELOAD shim (scripts/bench/redirect_connect.c) sends its first
        1,000 connections (the subscribers) to B and the rest (the publisher) to A.
cross-history: the same with HISTORY_SIZE=1000 on both servers: every publish goes through the append script
        (stream, position, publish in one step) and both servers deliver from what Redis publishes. Its
        redis_cpu_s beside cross's is the cost of history per publish on Redis.

Server B (the one that fans out) runs on CPU 0 alone; wsload, server A and redis-server share CPU 1. Each
case runs REPS times, alternating; the medians go to stdout and, with --append, to BENCHMARKS.md.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared"))
BUILD = Path(os.environ.get("WSLOAD_BUILD", "/tmp/wsload-build"))
SECRET = "benchsecret"
WORKLOAD = ["--mode", "fanout", "--subs", "1000", "--pubs", "1", "--window", "16", "--duration", "5",
            "--warmup", "1", "--drain", "3", "--connect-timeout", "30"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port, limit=20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} not ready")


def start_server(cpu, env):
    port = free_port()
    full = {"PATH": os.environ["PATH"], "SECRET": SECRET, "PORT": str(port), "HOST": "127.0.0.1", "WORKERS": "1",
            "LOGLEVEL": "error", "MAX_CONNECTIONS": "20000", **env}
    process = subprocess.Popen(["taskset", "-c", str(cpu), str(ROOT / ".build/release/philote")], env=full,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port)
    return process, port


def stop(process):
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wsload(port, server_pid, label, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    line = subprocess.run(["taskset", "-c", "1", str(BUILD / "wsload"), "--port", str(port), "--secret", SECRET,
                           "--server-pid", str(server_pid), "--label", label, *WORKLOAD],
                          env=env, capture_output=True, text=True, timeout=120).stdout
    result = next(row for row in line.splitlines() if row.startswith("RESULT"))
    return dict(field.split("=", 1) for field in result.split()[1:] if "=" in field)


def run_single():
    server, port = start_server(0, {})
    try:
        return wsload(port, server.pid, "single")
    finally:
        stop(server)


def run_cross(redis_url, redis_pid, shim, history=False):
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": f"bench{time.monotonic_ns()}:"}
    if history:
        env["HISTORY_SIZE"] = "1000"
    fanning, fan_port = start_server(0, env)
    publishing, pub_port = start_server(1, env)
    try:
        before = cpu_seconds(redis_pid)
        result = wsload(fan_port, fanning.pid, "cross-history" if history else "cross", {
            "LD_PRELOAD": str(shim), "REDIRECT_PORT": str(fan_port), "REDIRECT_AFTER": "1000",
            "REDIRECT_TO": str(pub_port)})
        result["redis_cpu_s"] = f"{cpu_seconds(redis_pid) - before:.2f}"
        return result
    finally:
        stop(fanning)
        stop(publishing)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    parser.add_argument("--append", action="store_true", help="append the medians to BENCHMARKS.md")
    options = parser.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    wsload_binary = BUILD / "wsload"
    if not wsload_binary.exists():
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(wsload_binary), str(SHARED / "bench/wsload.c"),
                        "-lssl", "-lcrypto", "-lz"], check=True)
    shim = BUILD / "redirect_connect.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(shim), str(ROOT / "scripts/bench/redirect_connect.c"),
                    "-ldl"], check=True)
    redis_port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    redis = subprocess.Popen(["taskset", "-c", "1", "redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no", "--dir", workdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    rows = {"single": [], "cross": [], "cross-history": []}
    load_before = open("/proc/loadavg").read().split()[:3]
    try:
        for rep in range(options.reps):
            rows["single"].append(run_single())
            rows["cross"].append(run_cross(f"redis://127.0.0.1:{redis_port}", redis.pid, shim))
            rows["cross-history"].append(
                run_cross(f"redis://127.0.0.1:{redis_port}", redis.pid, shim, history=True))
            print(f"rep {rep + 1}: single {rows['single'][-1]['delivered_per_s']}/s, "
                  f"cross {rows['cross'][-1]['delivered_per_s']}/s, "
                  f"cross-history {rows['cross-history'][-1]['delivered_per_s']}/s", file=sys.stderr)
    finally:
        stop(redis)
    columns = ["delivered_per_s", "pub_per_s", "p50_us", "p99_us", "lost", "server_cpu_us_per_delivery",
               "redis_cpu_s"]
    lines = ["case    n  " + "  ".join(columns) + "  ratio_to_single"]
    single_rate = statistics.median(float(row["delivered_per_s"]) for row in rows["single"])
    for case, results in rows.items():
        medians = []
        for column in columns:
            values = [float(row[column]) for row in results if column in row]
            median = statistics.median(values) if values else None
            medians.append("-" if median is None else f"{median:.0f}" if median >= 1000 else f"{median:.3g}")
        rate = statistics.median(float(row["delivered_per_s"]) for row in results)
        lines.append(f"{case}  {len(results)}  " + "  ".join(medians) + f"  {rate / single_rate:.3f}")
    table = subprocess.run(["column", "-t"], input="\n".join(lines) + "\n", capture_output=True, text=True).stdout
    print(table)
    if options.append:
        commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True,
                                text=True).stdout.strip()
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                     "?")
        with open(ROOT / "BENCHMARKS.md", "a") as handle:
            handle.write(f"\n## {time.strftime('%Y-%m-%d', time.gmtime())} {commit} cross-server fan-out through Redis\n\n"
                         f"Machine: {os.cpu_count()} CPUs ({model}), kernel {os.uname().release}, load before "
                         f"{' '.join(load_before)}.\n"
                         f"Run: `scripts/bench_redis.py`, fanout1k workload (1,000 subscribers, 1 publisher, window "
                         f"16), {options.reps} repetitions alternating; the fanning-out server on CPU 0, wsload, the "
                         f"publishing server and redis-server on CPU 1. redis_cpu_s: CPU seconds redis-server spent "
                         f"during one whole wsload run (connect, warm-up, 5 s measured, drain).\n\n"
                         f"```\n{table}```\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Recovery throughput (`make bench-recovery`): how fast history is replayed to reconnecting clients.

one:   one client reconnects with a position 100,000 messages back (HISTORY_SIZE=100000) and is replayed all of
       them; messages per second from its upgrade request to its last message.
herd:  1,000 clients reconnect at once (a deploy), each 1,000 messages back (HISTORY_SIZE=1000): 1,000,000
       messages; messages per second from the first upgrade request to the last client's last message.

The server runs on CPU 0 (WORKERS=1, as `make bench`), the clients on CPU 1: raw sockets that send the upgrade and
count newlines (every message the server sends ends with one, and no frame header here contains 0x0a), so the
client does as little as a client can. Each case runs REPS times (default 3); medians go to stdout and, with
--append, to BENCHMARKS.md.
"""
import argparse
import base64
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / ".build/release/philote"
SECRET = "benchsecret"
# 180 bytes of data: every positioned message is 250 to 270 bytes (a 2-byte extended length without 0x0a).
DATA = "x" * 180


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def token(env, *args):
    return subprocess.check_output([str(BINARY), "token", *args], env=env).decode().strip()


def start(history):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "SECRET": SECRET, "PORT": str(port), "HOST": "127.0.0.1", "WORKERS": "1",
           "LOGLEVEL": "error", "MAX_CONNECTIONS": "20000", "HISTORY_SIZE": str(history),
           "HISTORY_MAX_MEMORY": str(1 << 30)}
    server = subprocess.Popen(["taskset", "-c", "0", str(BINARY)], env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return server, port, env
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("server not ready")


def publish(port, api, count):
    """Publishes `count` messages over HTTP in batches; returns the channel's epoch."""
    body = json.dumps([{"channel": "bench", "data": DATA}] * 1000).encode()
    for _ in range(count // 1000):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/publish", data=body,
                                         headers={"Authorization": f"Bearer {api}"})
        urllib.request.urlopen(request).read()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/history?channel=bench&limit=1",
                                     headers={"Authorization": f"Bearer {api}"})
    answer = json.loads(urllib.request.urlopen(request).read())
    assert answer["offset"] == count, answer
    return answer["epoch"]


def replay(port, reader, epoch, clients, expected):
    """Connects `clients` raw sockets at once, each asking for everything after offset 0; returns the seconds
    until every one has its answer and `expected` messages."""
    since = urllib.parse.quote(f"{epoch}:0:bench")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /?auth={reader}&since={since} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.sendall(request)
        # [head seen, newlines counted, bytes held before the head ended]
        selector.register(sock, selectors.EVENT_READ, [False, 0, b""])
    # The answer line, then every message.
    remaining = clients
    while remaining:
        for key_, _ in selector.select(timeout=30):
            state = key_.data
            chunk = key_.fileobj.recv(1 << 20)
            if not chunk:
                raise RuntimeError("server closed a replaying client")
            if not state[0]:
                state[2] += chunk
                head_end = state[2].find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                assert state[2].startswith(b"HTTP/1.1 101"), state[2][:80]
                state[0] = True
                chunk = state[2][head_end + 4:]
            state[1] += chunk.count(b"\n")
            if state[1] == expected + 1:
                selector.unregister(key_.fileobj)
                key_.fileobj.close()
                remaining -= 1
    return time.monotonic() - started


def case(name, history, clients, reps):
    server, port, env = start(history)
    try:
        api = token(env, "--api")
        reader = token(env, "--read", "bench")
        epoch = publish(port, api, history)
        rates = []
        for _ in range(reps):
            seconds = replay(port, reader, epoch, clients, history)
            rates.append(clients * history / seconds)
        return {"case": name, "clients": clients, "messages_each": history, "rates": rates,
                "median": statistics.median(rates)}
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")))
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    results = [case("one", 100_000, 1, args.reps), case("herd", 1000, 1000, args.reps)]
    lines = ["| case | clients | messages each | replayed messages/s (median) | runs |", "|---|---|---|---|---|"]
    for result in results:
        runs = ", ".join(f"{rate:,.0f}" for rate in result["rates"])
        lines.append(f"| {result['case']} | {result['clients']} | {result['messages_each']:,} | "
                     f"{result['median']:,.0f} | {runs} |")
    table = "\n".join(lines)
    print(table)
    if args.append:
        commit = subprocess.check_output(["git", "-C", str(ROOT), "log", "-1", "--format=%h"]).decode().strip()
        with open(ROOT / "BENCHMARKS.md", "a") as out:
            out.write(f"\n### Recovery throughput ({time.strftime('%Y-%m-%d', time.gmtime())}, {commit})\n\n")
            out.write(f"Machine: {os.cpu_count()} CPUs, server WORKERS=1 on CPU 0, raw-socket clients on CPU 1.\n\n")
            out.write(table + "\n")


if __name__ == "__main__":
    sys.exit(main())

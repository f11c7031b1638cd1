"""`philote bench` end to end: against the real server (everything delivered, nothing lost, the JSON's
shape), against stub servers that delay or drop messages (the latency quantiles and `lost` must show it
exactly), and its failures (bad arguments: 2; no server or a refused token: 1, at once). Runs are a few
seconds each, with small workloads, so they hold on a loaded 2-core machine."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BINARY, free_port

SECRET = "bench-test-secret"
STUB = Path(__file__).with_name("bench_stub_server.py")


def bench(*args, env=None, timeout=40):
    full_env = {"PATH": os.environ.get("PATH", "")}
    full_env.update(env or {})
    return subprocess.run([str(BINARY), "bench", *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def bench_json(url, *args):
    result = bench("--url", url, "--secret", SECRET, "--json", "--workers", "2", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def stub(tmp_path):
    """stub(mode, *args) -> (url, count file): a stub server from bench_stub_server.py, stopped after the test."""
    processes = []

    def start(mode, *args):
        counts = tmp_path / f"faulted-{len(processes)}"
        process = subprocess.Popen([sys.executable, str(STUB), mode, *map(str, args), str(counts)],
                                   stdout=subprocess.PIPE, text=True)
        processes.append(process)
        port = int(process.stdout.readline())
        return f"ws://127.0.0.1:{port}/", counts

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_against_the_server_everything_arrives_once(start_server):
    server = start_server("serve", SECRET=SECRET)
    report, stderr = bench_json(f"ws://127.0.0.1:{server.port}/", "--subscribers", "50", "--publishers", "2",
                                "--channels", "2", "--rate", "400", "--duration", "3s", "--warmup", "500ms")
    assert report["connect"]["open"] == 52 and report["connect"]["failed"] == 0
    # 400/s for 3 s, each publish to the 25 subscribers of its channel.
    assert 900 <= report["published"] <= 1300
    assert report["expected"] == report["published"] * 25
    assert report["delivered"] == report["expected"]
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert report["close_codes"] == {} and report["protocol_errors"] == 0
    latency = report["latency_us"]
    assert latency["count"] == report["delivered"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]
    assert "run 1s:" in stderr and "connecting subscribers: 50/50 open" in stderr


def test_the_json_document_has_every_figure(start_server):
    server = start_server("serve", SECRET=SECRET)
    report, _ = bench_json(f"ws://127.0.0.1:{server.port}/", "--subscribers", "20", "--rate", "max",
                           "--window", "8", "--duration", "2s", "--warmup", "300ms")
    for key in ("url", "subscribers", "publishers", "channels", "rate", "window", "size", "workers", "connect",
                "measured_seconds", "interrupted", "published", "published_per_second", "backlog", "stalls",
                "delivered", "delivered_per_second", "expected", "lost", "duplicates", "latency_us",
                "close_codes", "protocol_errors", "other_messages"):
        assert key in report, key
    assert set(report["latency_us"]) == {"p50", "p90", "p99", "p99.9", "max", "mean", "count"}
    assert report["rate"] == "max" and report["window"] == 8 and report["interrupted"] is False
    assert report["delivered"] > 0 and report["lost"] == 0 and report["stalls"] == 0
    assert 1.9 <= report["measured_seconds"] <= 2.5


def test_the_table_is_for_people(start_server):
    server = start_server("serve", SECRET=SECRET)
    result = bench("--url", f"ws://127.0.0.1:{server.port}/", "--subscribers", "5", "--rate", "100",
                   "--duration", "1s", "--warmup", "0s", env={"SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    for label in ("connections", "delivered", "lost", "duplicates", "latency ms", "close codes"):
        assert label in result.stdout


def test_a_delay_on_every_hundredth_message_shows_in_p99_and_max(stub):
    url, _ = stub("delay", 100, 50)
    report, _ = bench_json(url, "--subscribers", "4", "--rate", "2000", "--duration", "4s", "--warmup", "500ms")
    latency = report["latency_us"]
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert latency["max"] >= 50_000
    assert latency["p99.9"] >= 50_000
    # Every 100th message and the ones the stall holds behind it: more than 1 % reach 50 ms.
    assert latency["p99"] >= 50_000, latency
    assert latency["p50"] < 50_000, latency


def test_dropped_messages_are_counted_exactly(stub):
    url, counts = stub("drop", 37)
    report, _ = bench_json(url, "--subscribers", "6", "--rate", "500", "--duration", "3s", "--warmup", "500ms")
    dropped = int(counts.read_text())
    assert dropped > 20
    assert report["lost"] == dropped * 6
    assert report["delivered"] == report["expected"] - report["lost"]
    assert report["duplicates"] == 0


@pytest.mark.parametrize("args, message", [
    (["--subscribers", "lots"], "--subscribers must be a whole number"),
    (["--rate", "0"], "--rate must be"),
    (["--duration", "forever"], "--duration must be a duration"),
    (["--channels", "3"], "--channels (3) must not exceed --publishers (1)"),
    (["--size", "5"], "--size must be between"),
    (["--url", "http://x/"], "invalid URL"),
    (["--bogus"], "unknown argument \"--bogus\""),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = bench("--secret", SECRET, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_no_token_is_a_usage_error():
    result = bench("--url", "ws://127.0.0.1:1/")
    assert result.returncode == 2 and "no token" in result.stderr


def test_an_unreachable_server_fails_at_once():
    start = time.monotonic()
    result = bench("--url", f"ws://127.0.0.1:{free_port()}/", "--secret", SECRET)
    assert result.returncode == 1
    assert time.monotonic() - start < 5
    assert result.stderr.startswith("philote bench: cannot connect to 127.0.0.1:") and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_refused_token_fails_at_once(start_server):
    server = start_server("serve", SECRET=SECRET)
    start = time.monotonic()
    result = bench("--url", f"ws://127.0.0.1:{server.port}/", "--secret", "not-the-secret")
    assert result.returncode == 1
    assert time.monotonic() - start < 5
    assert result.stderr.startswith("philote bench: authentication failed") and result.stderr.count("\n") == 1


def test_ctrl_c_prints_what_was_measured(start_server):
    server = start_server("serve", SECRET=SECRET)
    process = subprocess.Popen([str(BINARY), "bench", "--url", f"ws://127.0.0.1:{server.port}/", "--json",
                                "--subscribers", "10", "--rate", "200", "--duration", "60s", "--warmup", "0s"],
                               env={"PATH": os.environ.get("PATH", ""), "SECRET": SECRET},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    seen = ""
    while "run 1s" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    process.send_signal(2)
    stdout, _ = process.communicate(timeout=15)
    assert process.returncode == 130
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert 0.5 < report["measured_seconds"] < 10
    assert report["delivered"] > 0 and report["lost"] == 0

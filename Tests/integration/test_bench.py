"""`philote bench` end to end: against the real server (everything delivered, nothing lost, the JSON's
shape), against stub servers that delay or drop messages (the latency quantiles and `lost` must show it
exactly), and its failures (bad arguments: 2; no server or a refused token: 1, at once). Runs are a few
seconds each, with small workloads, so they hold on a loaded 2-core machine."""
import json
import os
import shutil
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


def openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr.decode(errors='replace')}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test root (ca.pem), a server certificate it signed for localhost and 127.0.0.1 (server.pem, server.key),
    and an unrelated root (other.pem) that must not verify it."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is not installed (apt-get install openssl)")
    directory = tmp_path_factory.mktemp("bench-pki")
    (directory / "ext.cnf").write_text("[server]\nbasicConstraints = CA:FALSE\n"
                                       "subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    for root in ("ca", "other"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                f"{root}.key", "-out", f"{root}.pem", "-days", "30", "-subj", f"/CN=Bench Test {root}", cwd=directory)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x1234",
            "-days", "30", "-extfile", "ext.cnf", "-extensions", "server", "-out", "server.pem", cwd=directory)
    return directory


@pytest.fixture
def tls_server(start_server, pki):
    return start_server("serve", SECRET=SECRET, TLS_CERT_FILE=str(pki / "server.pem"),
                        TLS_KEY_FILE=str(pki / "server.key"))


def test_wss_with_the_ca_everything_arrives_once(tls_server, pki):
    report, _ = bench_json(f"wss://127.0.0.1:{tls_server.port}/", "--ca", str(pki / "ca.pem"),
                           "--subscribers", "40", "--publishers", "2", "--channels", "2", "--rate", "300",
                           "--duration", "2s", "--warmup", "300ms")
    assert report["connect"]["open"] == 42 and report["connect"]["failed"] == 0
    assert report["published"] > 0 and report["delivered"] == report["expected"] == report["published"] * 20
    assert report["lost"] == 0 and report["duplicates"] == 0 and report["protocol_errors"] == 0


def test_wss_at_max_rate_by_name_delivers_everything(tls_server, pki):
    # By name (the certificate's DNS entry), with a window in flight: many records per read.
    report, _ = bench_json(f"wss://localhost:{tls_server.port}/", "--ca", str(pki / "ca.pem"),
                           "--subscribers", "30", "--rate", "max", "--duration", "2s", "--warmup", "300ms")
    assert report["connect"]["failed"] == 0 and report["delivered"] > 1000
    assert report["lost"] == 0 and report["duplicates"] == 0 and report["stalls"] == 0


def test_wss_insecure_skips_the_check(tls_server):
    report, _ = bench_json(f"wss://127.0.0.1:{tls_server.port}/", "--insecure", "--subscribers", "10",
                           "--rate", "200", "--duration", "1s", "--warmup", "200ms")
    assert report["connect"]["failed"] == 0
    assert report["delivered"] == report["expected"] > 0 and report["lost"] == 0


def test_wss_with_a_certificate_that_does_not_verify_fails_at_once(tls_server, pki):
    start = time.monotonic()
    result = bench("--url", f"wss://127.0.0.1:{tls_server.port}/", "--secret", SECRET, "--ca", str(pki / "other.pem"))
    assert result.returncode == 1
    assert time.monotonic() - start < 5
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("philote bench: TLS handshake with 127.0.0.1 failed: certificate:"), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("secure", [False, True])
def test_deflate_compresses_publishes_and_everything_arrives(start_server, pki, secure):
    tls = {"TLS_CERT_FILE": str(pki / "server.pem"), "TLS_KEY_FILE": str(pki / "server.key")} if secure else {}
    server = start_server("serve", SECRET=SECRET, COMPRESSION="1", **tls)
    url = f"{'wss' if secure else 'ws'}://127.0.0.1:{server.port}/"
    report, _ = bench_json(url, *(["--ca", str(pki / "ca.pem")] if secure else []), "--deflate",
                           "--subscribers", "20", "--rate", "max", "--size", "2000", "--duration", "2s",
                           "--warmup", "300ms")
    assert report["connect"]["failed"] == 0 and report["delivered"] > 500
    assert report["lost"] == 0 and report["duplicates"] == 0 and report["protocol_errors"] == 0
    assert report["close_codes"] == {} and report["other_messages"] == 0
    assert report["published_compressed"] == report["published"] > 0


def test_ca_and_insecure_together_are_a_usage_error():
    result = bench("--url", "wss://127.0.0.1:1/", "--secret", SECRET, "--ca", "x.pem", "--insecure")
    assert result.returncode == 2 and "--ca and --insecure" in result.stderr and result.stderr.count("\n") == 1


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


def test_more_channels_than_publishers_every_channel_is_published_to(start_server):
    """The issue's own example shape: 2 publisher connections carry 5 streams (one per channel), each numbered on
    its own, so each subscriber expects exactly its channel's messages."""
    server = start_server("serve", SECRET=SECRET)
    report, _ = bench_json(f"ws://127.0.0.1:{server.port}/", "--subscribers", "20", "--publishers", "2",
                           "--channels", "5", "--rate", "500", "--duration", "2s", "--warmup", "500ms")
    assert report["connect"]["open"] == 22 and report["connect"]["failed"] == 0
    # Each publish goes to the 4 subscribers of its channel; every channel is published to.
    assert report["expected"] == report["published"] * 4
    assert report["delivered"] == report["expected"] and report["lost"] == 0 and report["duplicates"] == 0
    assert report["other_messages"] == 0


def test_the_json_document_has_every_figure(start_server):
    server = start_server("serve", SECRET=SECRET)
    report, _ = bench_json(f"ws://127.0.0.1:{server.port}/", "--subscribers", "20", "--rate", "max",
                           "--window", "8", "--duration", "2s", "--warmup", "300ms")
    for key in ("url", "subscribers", "publishers", "channels", "rate", "window", "size", "workers", "connect",
                "measured_seconds", "interrupted", "published", "published_per_second", "backlog", "stalls",
                "published_compressed",
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
    # 200 messages/s and a 200 ms stall every 100th: each stall holds the next ~40 behind it (latencies 200 ms
    # down to 5 ms), so about 30 % of messages take 50 ms or more and 60 % are untouched, a margin that holds
    # on a loaded machine.
    url, _ = stub("delay", 100, 200)
    report, _ = bench_json(url, "--subscribers", "4", "--rate", "200", "--duration", "4s", "--warmup", "500ms")
    latency = report["latency_us"]
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert latency["max"] >= 200_000
    assert latency["p99.9"] >= 50_000
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
    (["--channels", "0"], "--channels must be at least 1"),
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

"""Operating the server: health and readiness probes, Prometheus metrics (checked by `promtool`), publishing
over HTTP, the SIGTERM drain sequence, JSON logs, `philote health`, and what can be checked of the
container image and the systemd unit without Docker or systemd running them. Every wait is bounded."""
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import BINARY, ROOT, SANITIZER_ENV, free_port, wait_listening
from pubsub_helpers import (CLOSE, close_politely, connect, event_loops, expect_silence, http_request, publish,
                            recv_delivery, recv_error, recv_text, refused)
from tokens import SECRET, distinctive, now, token
from wsraw import RawClient, upgrade_request

API = token(api=True)
API_HEADER = [("Authorization", "Bearer " + API)]
BASE_ENV = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": "0", "WORKERS": "2", **SANITIZER_ENV}


# --- helpers ----------------------------------------------------------------------------------------------


def raw_request(port, data, no_body=False):
    """Sends bytes as they are and reads one HTTP response: (status, headers, body)."""
    client = RawClient(port)
    try:
        client.send(data)
        return client.read_http_response(no_body=no_body)
    finally:
        client.close()


def post_json(port, path, value, headers=API_HEADER):
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    status, response_headers, response = http_request(port, "POST", path, headers, body)
    return status, response_headers, response


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or "")))
        samples[(name, pairs)] = float(value)
    return samples


def scrape(port, headers=API_HEADER, path="/metrics"):
    status, response_headers, body = http_request(port, "GET", path, headers)
    assert status == 200, (status, body)
    assert response_headers["content-type"].startswith("text/plain; version=0.0.4"), response_headers
    return body.decode()


def metric(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def wait_for_metric(port, name, at_least, limit=15.0, **labels):
    """Scrapes until the sample reaches `at_least` (bounded): for counters bumped after the client-visible
    event, e.g. a slow-consumer close."""
    deadline = time.monotonic() + limit
    while True:
        value = metric(parse_metrics(scrape(port)), name, **labels)
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.05)




# --- health and readiness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path, body", [("/livez", b"ok\n"), ("/readyz", b"ready\n"), ("/healthz", b"ready\n"),
                                        ("/readyz?verbose=1", b"ready\n")])
def test_health_endpoints_answer_200_without_a_token(start_server, path, body):
    server = start_server("serve", SECRET=SECRET)
    status, headers, answer = http_request(server.port, "GET", path)
    assert status == 200 and answer == body, (status, answer)
    assert headers["content-type"].startswith("text/plain")
    # HEAD, as some probes send it: the same status, no body.
    status, headers, answer = raw_request(
        server.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), no_body=True)
    assert status == 200 and headers["content-length"] == str(len(body))
    assert server.stop() == 0


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/metrics"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_and_metrics_refuse_other_methods(start_server, path, method):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    status, headers, body = http_request(server.port, method, path, API_HEADER)
    assert status == 405, (status, body)
    assert headers["allow"] == "GET, HEAD"
    assert server.stop() == 0


def test_health_is_not_an_upgrade_path(start_server):
    """A WebSocket upgrade on /readyz is a client connection like on any other path (PROTOCOL.md)."""
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    client = connect(server.port, token(read=["x"]), path="/readyz")
    close_politely(client)
    assert server.stop() == 0


# --- metrics: access ----------------------------------------------------------------------------------------


def test_metrics_require_an_api_token(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    port = server.port
    cases = [
        ([], 401, "missing token"),
        ([("Authorization", "Bearer " + distinctive("garbage"))], 401, "malformed"),
        ([("Authorization", "Bearer " + token(api=True, secret="other"))], 401, "signature"),
        ([("Authorization", "Bearer " + token(api=True, exp=now() - 10))], 401, "expired"),
        ([("Authorization", "Bearer " + token(read=["a"]))], 403, "API"),
    ]
    for headers, expected, reason in cases:
        status, response_headers, body = http_request(port, "GET", "/metrics", headers)
        assert status == expected, (headers, status, body)
        assert response_headers["content-type"] == "application/json"
        assert reason in json.loads(body)["error"], body
    # Header or query parameter, like the rest of the API.
    scrape(port)
    scrape(port, headers=[], path="/metrics?auth=" + quote(API, safe=""))
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_auth_failures_total", reason="missing") == 1
    assert metric(samples, "philote_auth_failures_total", reason="malformed") == 1
    assert metric(samples, "philote_auth_failures_total", reason="invalid_signature") == 1
    assert metric(samples, "philote_auth_failures_total", reason="expired") == 1
    assert metric(samples, "philote_auth_failures_total", reason="api_not_granted") == 1
    assert server.stop() == 0


def test_metrics_public_needs_no_token(start_server):
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true")
    text = scrape(server.port, headers=[])
    assert "philote_connections 0" in text.splitlines()
    # The API itself still wants its token.
    assert http_request(server.port, "GET", "/api/info")[0] == 401
    assert server.stop() == 0


# --- metrics: content ---------------------------------------------------------------------------------------


def test_process_open_fds_counts_the_descriptors_without_listing_them(start_server):
    """The figure comes from the size Linux gives /proc/PID/fd (6.2 on), not from listing it on an event loop."""
    if os.stat("/proc/self/fd").st_size == 0:
        pytest.skip("this kernel does not count descriptors in the size of /proc/PID/fd (before Linux 6.2)")
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true")
    baseline = server.fd_count()
    held = [RawClient(server.port) for _ in range(20)]
    try:
        # Settled: every held socket is accepted (polled: accepting is asynchronous to connect).
        deadline = time.monotonic() + 10
        while server.fd_count() < baseline + 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        listed = server.fd_count()
        reported = next(int(line.split()[1]) for line in scrape(server.port, headers=[]).splitlines()
                        if line.startswith("process_open_fds "))
        # The scrape's own socket is open while it is answered, and not when the directory was listed.
        assert reported == listed + 1, (reported, listed)
    finally:
        for client in held:
            client.close()
    assert server.stop() == 0


def test_promtool_accepts_the_metrics(start_server):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (scripts/install-deps.sh does)"
    server = start_server("serve", SECRET=SECRET, WORKERS="2")
    # Some traffic first, so that labelled and per-loop samples carry real values.
    subscriber = connect(server.port, token(read=["a"]), extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    publisher = connect(server.port, token(write=["a"]))
    publish(publisher, "a", "compressible " * 40)
    publish(publisher, "b", "denied")
    recv_error(publisher)
    refused(server.port, token(read=["a"], exp=now() - 5))
    text = scrape(server.port)
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr + "\n" + text)
    for client in (subscriber, publisher):
        close_politely(client)
    assert server.stop() == 0


def test_counters_match_the_traffic(start_server):
    """N messages published over WebSocket are N received, N delivered to the one reader, N publishes."""
    count = 137
    server = start_server("serve", SECRET=SECRET, WORKERS="2")
    port = server.port
    before = parse_metrics(scrape(port))
    assert metric(before, "philote_messages_received_total") == 0
    subscriber = connect(port, token(read=["news"]))
    publisher = connect(port, token(write=["news"]))
    for index in range(count):
        publish(publisher, "news", f"message {index}")
    for index in range(count):
        assert recv_delivery(subscriber)[2] == f"message {index}"
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_messages_received_total") == count
    assert metric(samples, "philote_messages_sent_total") == count
    assert metric(samples, "philote_publishes_total", source="websocket") == count
    assert metric(samples, "philote_publishes_total", source="http") == 0
    assert metric(samples, "philote_connections") == 2
    assert metric(samples, "philote_connections_total") == 2
    assert metric(samples, "philote_received_bytes_total") > count * 30
    assert metric(samples, "philote_sent_bytes_total") > count * 60
    # A denied publish is counted, and its error reply is a message sent.
    for _ in range(3):
        publish(publisher, "elsewhere", "no")
        recv_error(publisher)
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_publishes_denied_total", source="websocket") == 3
    assert metric(samples, "philote_messages_received_total") == count + 3
    assert metric(samples, "philote_messages_sent_total") == count + 3
    # Per-loop figures: one series per loop, and the loops did work.
    events = [metric(samples, "philote_loop_events_total", loop=str(index)) for index in range(2)]
    assert len(events) == 2 and sum(events) > 0
    close_politely(publisher)
    close_politely(subscriber)
    assert server.stop() == 0


def test_refusals_and_handshake_errors_are_counted(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", MAX_CONNECTIONS="1", CHECK_ORIGIN="true")
    port = server.port
    held = connect(port, token(read=["x"]))
    assert refused(port, token(read=["x"]))[0] == 503
    close_politely(held)
    refused(port, None)
    refused(port, token(read=["x"], exp=now() - 5))
    refused(port, token(read=["x"]), extra=[("Origin", "http://elsewhere.example")])
    raw_request(port, b"GARBAGE\r\n\r\n")
    raw_request(port, upgrade_request(method="POST"))
    raw_request(port, upgrade_request(version="8"))
    raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_connections_rejected_total", reason="max_connections") == 1
    assert metric(samples, "philote_connections_rejected_total", reason="unauthorized") == 2
    assert metric(samples, "philote_connections_rejected_total", reason="forbidden") == 1
    assert metric(samples, "philote_auth_failures_total", reason="missing") == 1
    assert metric(samples, "philote_auth_failures_total", reason="expired") == 1
    assert metric(samples, "philote_handshake_errors_total", reason="bad_request") == 1
    assert metric(samples, "philote_handshake_errors_total", reason="method_not_allowed") == 1
    assert metric(samples, "philote_handshake_errors_total", reason="upgrade_required") == 1
    assert metric(samples, "philote_handshake_errors_total", reason="head_too_large") == 1
    assert metric(samples, "philote_connections_total") == 1
    assert server.stop() == 0


def test_handshake_timeouts_are_counted(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", HANDSHAKE_TIMEOUT="200ms")
    silent = RawClient(server.port)
    silent.send(b"GET / HTTP/1.1\r\n")
    silent.sock.settimeout(5)
    silent.expect_eof()
    silent.close()
    assert wait_for_metric(server.port, "philote_handshake_errors_total", 1, reason="timeout") == 1
    assert server.stop() == 0


def test_slow_consumer_closes_are_counted(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", MAX_BACKPRESSURE="65536")
    stalled = connect(server.port, token(read=["flood"]))
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    publisher = connect(server.port, token(write=["flood"]))
    payload = "x" * 60000
    value = 0
    for _ in range(400):
        publish(publisher, "flood", payload)
        value = metric(parse_metrics(scrape(server.port)), "philote_slow_consumer_closes_total")
        if value:
            break
    assert value == 1
    close_politely(publisher)
    stalled.close()
    assert server.stop() == 0


def test_compression_is_measured(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    subscriber = connect(server.port, token(read=["z"]), extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    publisher = connect(server.port, token(write=["z"]))
    publish(publisher, "z", "repeat after me " * 100)
    fin, rsv, opcode, payload = subscriber.recv_frame()
    assert rsv == 4 and opcode == 1, "the delivery was not compressed"
    samples = parse_metrics(scrape(server.port))
    assert metric(samples, "philote_compression_input_bytes_total") > 1600
    assert 0 < metric(samples, "philote_compression_output_bytes_total") < 400
    assert metric(samples, "philote_compression_ratio") > 4
    close_politely(publisher)
    close_politely(subscriber)
    assert server.stop() == 0


# --- publish over HTTP ----------------------------------------------------------------------------------


def api_delivery(channel, data):
    return json.dumps({"issuer": "api", "channel": channel, "data": data}, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize("workers", ["1", "3"])
def test_publish_over_http_reaches_every_reader_as_issuer_api(start_server, workers):
    server = start_server("serve", SECRET=SECRET, WORKERS=workers)
    readers = [connect(server.port, token(read=["news"])) for _ in range(9)]
    other = connect(server.port, token(read=["sport"]))
    if workers == "3":
        loops, owners = event_loops(server, readers)
        assert len(set(owners)) >= 2, "the readers should be on several loops"
    status, headers, body = post_json(server.port, "/api/publish", {"channel": "news", "data": "<hello> & bye"})
    assert status == 202, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"messages": 1, "recipients": 9}
    for reader in readers:
        # Byte for byte: the issuer is the string "api", the data escaped as every delivery is.
        assert recv_text(reader) == b'{"issuer":"api","channel":"news","data":"\\u003chello\\u003e \\u0026 bye"}\n'
    expect_silence(other)
    # A list, in order, to every reader; recipients are summed over the messages.
    status, _, body = post_json(server.port, "/api/publish",
                                [{"channel": "news", "data": str(index)} for index in range(5)]
                                + [{"channel": "sport", "data": "goal"}, {"channel": "nobody", "data": "?"}])
    assert status == 202, body
    assert json.loads(body) == {"messages": 7, "recipients": 9 * 5 + 1}
    for reader in readers:
        assert [recv_text(reader) for _ in range(5)] == [api_delivery("news", str(index)) for index in range(5)]
    assert recv_text(other) == api_delivery("sport", "goal")
    samples = parse_metrics(scrape(server.port))
    assert metric(samples, "philote_publishes_total", source="http") == 8
    assert metric(samples, "philote_messages_sent_total") == 9 + 9 * 5 + 1
    for client in readers + [other]:
        close_politely(client)
    assert server.stop() == 0


def test_http_publishes_keep_their_order_with_websocket_deliveries(start_server):
    """Many HTTP publishes in a row reach a reader on another loop in the order they were answered."""
    server = start_server("serve", SECRET=SECRET, WORKERS="2")
    readers = [connect(server.port, token(read=["seq"])) for _ in range(4)]
    for index in range(40):
        status, _, body = post_json(server.port, "/api/publish", {"channel": "seq", "data": str(index)})
        assert status == 202 and json.loads(body)["recipients"] == 4, body
    for reader in readers:
        assert [json.loads(recv_text(reader))["data"] for _ in range(40)] == [str(index) for index in range(40)]
    for client in readers:
        close_politely(client)
    assert server.stop() == 0


def test_publish_token_in_query_and_without_readers(start_server):
    server = start_server("serve", SECRET=SECRET)
    status, _, body = post_json(server.port, "/api/publish?auth=" + quote(API, safe=""), {"channel": "void"},
                                headers=[])
    assert status == 202 and json.loads(body) == {"messages": 1, "recipients": 0}, body
    assert server.stop() == 0


@pytest.mark.parametrize("headers, status, reason", [
    ([], 401, "missing token"),
    ([("Authorization", "Bearer not-a-token")], 401, "malformed"),
    ([("Authorization", "Bearer " + token(api=True, secret="wrong"))], 401, "signature"),
    ([("Authorization", "Bearer " + token(write=["news"]))], 403, "API"),
])
def test_publish_needs_an_api_token(start_server, headers, status, reason):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    reader = connect(server.port, token(read=["news"]))
    got, _, body = post_json(server.port, "/api/publish", {"channel": "news", "data": "x"}, headers=headers)
    assert got == status and reason in json.loads(body)["error"], (got, body)
    expect_silence(reader)
    close_politely(reader)
    assert server.stop() == 0


def test_publish_checks_the_write_list_when_the_token_has_one(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="2")
    reader = connect(server.port, token(read=["allowed", "closed"]))
    limited = [("Authorization", "Bearer " + token(api=True, write=["allowed"]))]
    status, _, body = post_json(server.port, "/api/publish", {"channel": "allowed", "data": "1"}, headers=limited)
    assert status == 202, body
    assert recv_text(reader) == api_delivery("allowed", "1")
    # One forbidden message refuses the whole list: nothing of it is delivered.
    status, _, body = post_json(server.port, "/api/publish",
                                [{"channel": "allowed", "data": "2"}, {"channel": "closed", "data": "3"}],
                                headers=limited)
    assert status == 403 and json.loads(body) == {"error": "write not permitted", "channel": "closed"}, body
    expect_silence(reader)
    # An api token without a write list may publish anywhere.
    status, _, body = post_json(server.port, "/api/publish", {"channel": "closed", "data": "4"})
    assert status == 202, body
    assert recv_text(reader) == api_delivery("closed", "4")
    samples = parse_metrics(scrape(server.port))
    assert metric(samples, "philote_publishes_denied_total", source="http") == 1
    close_politely(reader)
    assert server.stop() == 0


@pytest.mark.parametrize("body, reason", [
    (b"", "invalid JSON"),
    (b"not json", "invalid JSON"),
    (b'{"channel": "a", "data": 5}', "data must be a string"),
    (b'{"channel": ["a"]}', "channel must be a string"),
    (b"[]", "no messages"),
    (b'[{"channel": "a"}, "b"]', "must be a JSON object"),
    (b"null", "object or an array"),
    (b'{"channel": "a"} {}', "invalid JSON"),
    (b'{"data": "\xff"}', "invalid JSON"),
])
def test_bad_publish_bodies_are_400_with_a_json_error(start_server, body, reason):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    reader = connect(server.port, token(read=["a", ""]))
    status, headers, answer = post_json(server.port, "/api/publish", body)
    assert status == 400, (status, answer)
    assert headers["content-type"] == "application/json"
    assert reason in json.loads(answer)["error"], answer
    expect_silence(reader)
    close_politely(reader)
    assert server.stop() == 0


def test_publish_method_length_and_size_errors(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", MAX_MESSAGE_SIZE="1024")
    port = server.port
    auth = "Authorization: Bearer " + API + "\r\n"
    # Only POST.
    status, headers, body = http_request(port, "GET", "/api/publish", API_HEADER)
    assert status == 405 and headers["allow"] == "POST" and "error" in json.loads(body)
    # A body needs a Content-Length: chunked bodies are not read.
    status, _, body = raw_request(port, f"POST /api/publish HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    assert status == 411 and "Content-Length" in json.loads(body)["error"], body
    status, _, body = raw_request(port, (f"POST /api/publish HTTP/1.1\r\nHost: x\r\n{auth}"
                                         "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode())
    assert status == 411, body
    # A malformed Content-Length is refused before any body is read.
    for value in ("abc", "-1", "5, 6"):
        status, _, body = raw_request(
            port, f"POST /api/publish HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {value}\r\n\r\n".encode())
        assert status == 400, (value, status, body)
    # Over 1 MiB (MAX_MESSAGE_SIZE is smaller): 413 from the head alone, no body sent.
    status, _, body = raw_request(
        port, f"POST /api/publish HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {(1 << 20) + 1}\r\n\r\n".encode())
    assert status == 413, (status, body)
    # One message over MAX_MESSAGE_SIZE in a small body: 413 with a JSON error.
    status, _, body = post_json(port, "/api/publish", {"channel": "a", "data": "y" * 2000})
    assert status == 413 and "MAX_MESSAGE_SIZE" in json.loads(body)["error"], body
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_handshake_errors_total", reason="body_too_large") == 1
    assert metric(samples, "philote_handshake_errors_total", reason="bad_request") == 3
    assert server.stop() == 0


def test_publish_body_in_pieces_and_just_under_the_cap(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", MAX_MESSAGE_SIZE="2000000")
    port = server.port
    reader = connect(port, token(read=["big"]))
    body = json.dumps({"channel": "big", "data": "z" * ((1 << 20) - 100)}).encode()
    client = RawClient(port)
    client.send(f"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    client.send_in_pieces(body[10:], [1000, 5, 70000], pause=0.01)
    status, _, answer = client.read_http_response()
    client.close()
    assert status == 202 and json.loads(answer) == {"messages": 1, "recipients": 1}, answer
    assert json.loads(recv_text(reader))["data"] == "z" * ((1 << 20) - 100)
    close_politely(reader)
    assert server.stop() == 0


def test_plain_requests_elsewhere_keep_their_answers(start_server):
    """Reading bodies changed nothing for requests the application does not serve."""
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    port = server.port
    assert http_request(port, "GET", "/")[0] == 426
    assert http_request(port, "POST", "/", body=b"{}")[0] == 405
    assert http_request(port, "GET", "/api/nothing", API_HEADER)[0] == 404
    assert http_request(port, "GET", "/api/info", API_HEADER)[0] == 200
    assert server.stop() == 0


# --- the drain sequence -----------------------------------------------------------------------------------


def test_sigterm_fails_readiness_first_then_1001_then_exit_0(start_server):
    """SIGTERM: /readyz answers 503 while a client is still connected (it holds the server's close frame
    unanswered); the client has close 1001; new clients get 503; once it answers, the server exits 0. One
    loop, so that every probe meets the loop that is still draining."""
    server = start_server("serve", SECRET=SECRET, WORKERS="1", DRAIN_TIMEOUT="20", CLOSE_TIMEOUT="30")
    port = server.port
    client = connect(port, token(read=["x"]))
    assert http_request(port, "GET", "/readyz")[0] == 200
    server.process.send_signal(signal.SIGTERM)
    # The close frame arrives; readiness has failed no later than that, and the client does not answer.
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1001, (opcode, payload)
    status, _, body = http_request(port, "GET", "/readyz")
    assert (status, body) == (503, b"draining\n")
    assert http_request(port, "GET", "/healthz")[0] == 503
    assert http_request(port, "GET", "/livez")[0] == 200, "the process is alive while it drains"
    samples = parse_metrics(scrape(port))
    assert metric(samples, "philote_ready") == 0
    assert metric(samples, "philote_connections") == 0, "a closing client holds no place"
    status, _, body = refused(port, token(read=["x"]))
    assert status == 503 and b"shutting down" in body
    status, _, body = post_json(port, "/api/publish", {"channel": "x", "data": "late"})
    assert status == 503 and json.loads(body) == {"error": "server shutting down"}, body
    assert server.process.poll() is None, "the server must wait for its client"
    # The client answers; the server closes TCP and exits 0 at once, well within DRAIN_TIMEOUT.
    started = time.monotonic()
    client.send_frame(CLOSE, payload[:2])
    client.sock.settimeout(5)
    client.expect_eof()
    client.close()
    assert server.process.wait(timeout=10) == 0, server.log_text()
    assert time.monotonic() - started < 3
    samples_log = server.log_text()
    assert "shutting down" in samples_log and "stopped" in samples_log


def test_readiness_polls_see_503_during_the_drain_of_a_silent_client(start_server):
    """The same from a prober's side: poll /readyz until 503 while the client holds its close unanswered."""
    server = start_server("serve", SECRET=SECRET, WORKERS="1", DRAIN_TIMEOUT="2", CLOSE_TIMEOUT="30")
    client = connect(server.port, token(read=["x"]))
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while http_request(server.port, "GET", "/readyz")[0] != 503:
        assert time.monotonic() < deadline, "/readyz never failed"
    assert server.process.poll() is None
    client.expect_close(1001, reply=False)
    assert server.process.wait(timeout=10) == 0
    client.close()


# --- philote health -------------------------------------------------------------------------------------


def run_health(port, *args, **env):
    return subprocess.run([str(BINARY), "health", *args],
                          env={"PATH": os.environ.get("PATH", ""), "PORT": str(port), **env},
                          capture_output=True, text=True, timeout=20)


def test_health_command(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", DRAIN_TIMEOUT="20", CLOSE_TIMEOUT="30")
    assert run_health(server.port).returncode == 0
    assert run_health(server.port, HOST="0.0.0.0").returncode == 0
    assert run_health(server.port, "--path", "/livez").returncode == 0
    client = connect(server.port, token(read=["x"]))
    server.process.send_signal(signal.SIGTERM)
    client.recv_frame()
    draining = run_health(server.port)
    assert draining.returncode == 1 and "503" in draining.stderr, draining.stderr
    assert run_health(server.port, "--path", "/livez").returncode == 0
    client.close()
    assert server.process.wait(timeout=25) == 0
    gone = run_health(server.port, "--timeout", "2")
    assert gone.returncode == 1 and "refused" in gone.stderr, gone.stderr


def test_health_command_reaches_a_wildcard_host_over_whichever_loopback_works(start_server):
    """HOST=:: (or unset) tries 127.0.0.1, then ::1: in a container without IPv6 only the first exists, and a server
    on :: answers on both. 0.0.0.0 means 127.0.0.1 only; a specific address is asked as it is."""
    both = start_server("serve", SECRET=SECRET, WORKERS="1", HOST="::")
    line = next(line for line in both.log_text().splitlines() if 'msg="philote started"' in line)
    assert f"address=ws://[::]:{both.port} " in line, line
    for host in ("::", "[::]", "", "0.0.0.0", "127.0.0.1", "::1"):
        done = run_health(both.port, "--path", "/livez", HOST=host)
        assert done.returncode == 0, (host, done.stderr)
    assert run_health(both.port).returncode == 0
    # Only IPv4 answers (what a container without IPv6 looks like from inside): found first, ::1 never needed.
    ipv4 = start_server("serve", SECRET=SECRET, WORKERS="1", HOST="127.0.0.1")
    assert run_health(ipv4.port, HOST="::").returncode == 0
    # Only IPv6 answers: HOST=:: falls back to ::1; HOST=0.0.0.0 does not look there.
    ipv6 = start_server("serve", SECRET=SECRET, WORKERS="1", HOST="::1")
    assert f"address=ws://[::1]:{ipv6.port} " in ipv6.log_text()
    assert run_health(ipv6.port, HOST="::").returncode == 0
    refused_v4 = run_health(ipv6.port, HOST="0.0.0.0")
    assert refused_v4.returncode == 1 and f"127.0.0.1:{ipv6.port}: connection refused" in refused_v4.stderr
    assert "[::1]" not in refused_v4.stderr, refused_v4.stderr
    for server in (both, ipv4, ipv6):
        server.process.send_signal(signal.SIGTERM)
    for server in (both, ipv4, ipv6):
        assert server.process.wait(timeout=15) == 0
    # Nobody listening: both loopbacks tried, each reason given.
    gone = run_health(both.port, HOST="::")
    assert gone.returncode == 1, gone.stderr
    assert f"127.0.0.1:{both.port}: connection refused" in gone.stderr, gone.stderr
    assert f"[::1]:{both.port}: connection refused" in gone.stderr, gone.stderr


def test_health_command_speaks_tls_when_the_server_does(start_server, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=30)
    tls = {"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)}
    server = start_server("serve", SECRET=SECRET, WORKERS="1", **tls)
    done = run_health(server.port, **tls)
    assert done.returncode == 0, done.stderr
    plain = run_health(server.port)
    assert plain.returncode == 1 and plain.stderr.startswith("philote health: "), plain.stderr
    assert server.stop() == 0


# --- JSON logs ----------------------------------------------------------------------------------------------


def test_json_logs_are_one_object_per_line():
    secret = distinctive("jsonsecret")
    port = free_port()
    env = {**BASE_ENV, "PORT": str(port), "SECRET": secret, "LOG_FORMAT": "json", "LOGLEVEL": "debug"}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([str(BINARY)], env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_listening(port, process)
            secret_token = token(read=["c"], write=["c"], secret=secret)
            client = connect(port, secret_token)
            publish(client, "c", "payload-" + distinctive("p"))
            refused(port, token(read=["c"], secret="wrong"))
            http_request(port, "GET", "/nowhere\"quoted")
            close_politely(client)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        text = log.read().decode()
    lines = text.splitlines()
    assert len(lines) >= 5, text
    records = [json.loads(line) for line in lines]
    for record in records:
        assert isinstance(record, dict)
        assert list(record)[:3] == ["time", "level", "msg"], record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
        assert all(isinstance(value, str) for value in record.values()), record
    started = next(record for record in records if record["msg"] == "philote started")
    assert started["level"] == "info" and started["address"] == f"ws://127.0.0.1:{port}"
    messages = {record["msg"] for record in records}
    assert {"connection opened", "handshake refused", "shutting down", "stopped"} <= messages, messages
    assert secret not in text and secret_token not in text and "payload-" not in text


@pytest.mark.parametrize("name, value", [("LOG_FORMAT", "xml"), ("LOG_FORMAT", ""), ("METRICS_PUBLIC", "maybe")])
def test_bad_operations_settings_exit_2(name, value):
    done = subprocess.run([str(BINARY)], env={**BASE_ENV, "SECRET": SECRET, name: value}, capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 2, done.stderr
    assert name in done.stderr
    assert ("text" in done.stderr and "json" in done.stderr) if name == "LOG_FORMAT" else "true" in done.stderr


def test_api_info_shows_the_new_settings(start_server):
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="1")
    status, _, body = http_request(server.port, "GET", "/api/info", API_HEADER)
    config = json.loads(body)["config"]
    assert config["log_format"] == "text" and config["metrics_public"] is True
    assert server.stop() == 0


def test_api_info_shows_compression_tls_and_redis_settings_but_no_redis_password(start_server):
    # Port 1 never answers: the server starts and keeps retrying Redis, which is all this needs.
    server = start_server("serve", SECRET=SECRET, COMPRESSION="false", COMPRESSION_MIN_SIZE="64",
                          MAX_PENDING_HANDSHAKES="77", REDIS_URL="redis://user:hunter2secret@127.0.0.1:1",
                          REDIS_PREFIX="app1:", REDIS_TIMEOUT="2")
    status, _, body = http_request(server.port, "GET", "/api/info", API_HEADER)
    assert status == 200, body
    assert b"hunter2secret" not in body
    config = json.loads(body)["config"]
    assert config["compression"] is False and config["compression_min_size"] == 64
    assert config["max_pending_handshakes"] == 77
    assert config["tls"] is False and config["tls_record_layer"] is None
    assert config["redis_instances"] == 1 and config["redis_prefix"] == "app1:"
    assert config["redis_max_pending"] == 8388608 and config["redis_timeout_ms"] == 2000
    assert server.stop() == 0


# --- the container image and the systemd unit ----------------------------------------------------------------


DOCKERFILE = ROOT / "Dockerfile"


def runtime_packages():
    match = re.search(r'^ARG RUNTIME_PACKAGES="([^"]*)"', DOCKERFILE.read_text(), re.M)
    assert match, "the runtime stage lists its packages in ARG RUNTIME_PACKAGES"
    return set(match.group(1).split())


def debian_package_of(path):
    """The Debian package that ships `path` (dpkg -S), trying the merged-/usr spellings too."""
    candidates = [path, os.path.realpath(path)]
    candidates += ["/usr" + p for p in list(candidates) if p.startswith("/lib")]
    for candidate in candidates:
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":")[0].strip()
    raise AssertionError(f"no Debian package ships {path}")


def test_runtime_image_has_every_library_the_binary_links():
    """`ldd` of the built binary, mapped to Debian packages: each must be installed by the runtime stage (or be
    glibc, in every Debian image). The Swift runtime libraries are linked statically there
    (--static-swift-stdlib), so those from the toolchain are left out."""
    text = DOCKERFILE.read_text()
    assert "--static-swift-stdlib" in text
    binary = ROOT / ".build" / "release" / "philote"
    if not binary.exists():
        binary = BINARY
    listed = runtime_packages()
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    needed = {}
    for line in output.splitlines():
        match = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if not match:
            continue
        path = match.groups()[-1]
        if "/lib/swift/" in path or "/usr/lib/swift" in path:
            continue
        needed[path] = debian_package_of(path)
    assert needed, output
    missing = {path: package for path, package in needed.items() if package not in listed | {"libc6"}}
    assert not missing, f"the runtime stage lacks {missing} (it has {sorted(listed)})"
    assert {"libssl3", "zlib1g"} <= set(needed.values())


def test_runtime_packages_exist_in_the_debian_release_of_both_stages():
    text = DOCKERFILE.read_text()
    release = re.search(r"^ARG SWIFT_IMAGE=swift:[\d.]+-(\w+)$", text, re.M).group(1)
    assert re.search(rf"^ARG RUNTIME_IMAGE=debian:{release}-slim$", text, re.M), "build and runtime differ"
    with open("/etc/os-release") as handle:
        host = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    if host.get("VERSION_CODENAME") != release:
        pytest.skip(f"this host is not Debian {release}: its package names may differ")
    for package in runtime_packages():
        done = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout, f"{package} is not a {release} package"


def dockerfile_instructions():
    """The Dockerfile's instructions, each on one line (continuation lines joined), comments left out."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    instructions = "\n".join(dockerfile_instructions())
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2, stages
    assert not re.search(r"^# *syntax *=", text, re.M | re.I), "no parser directive: the default frontend builds it"
    assert re.search(r"^USER 10001:10001$", text, re.M), "numeric non-root user and group"
    # The group is made with gid 10001 (not taken from the system range), then the user joins it.
    assert re.search(r"groupadd --gid 10001 philote", instructions), instructions
    assert re.search(r"useradd --uid 10001 --gid 10001 ", instructions), instructions
    assert "--system" not in instructions
    build_stage = instructions.split("\nFROM ")[1]
    assert re.search(r"strip (--strip-all )?/out/philote", build_stage), "the binary is stripped in the build stage"
    assert re.search(r"^EXPOSE 6380$", text, re.M)
    # Liveness: a Redis outage fails /readyz, and must not mark every container unhealthy.
    assert re.search(r'^HEALTHCHECK .*CMD \["/usr/local/bin/philote", "health", "--path", "/livez"\]$', instructions,
                     re.M), instructions
    assert not re.search(r"^ENV .*SECRET", text, re.M), "no secret baked into the image"
    assert not re.search(r"^(COPY|ADD) .*\.(env|pem|key)\b", text, re.M), "configuration comes from the environment"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^docker:", makefile, re.M) and "docker build" in makefile
    assert re.search(r"^docker-test:\n\tscripts/docker-test.sh$", makefile, re.M)
    assert re.search(r"^\.PHONY:.* docker-test\b", makefile, re.M)


def test_docker_test_skips_cleanly_without_an_engine(tmp_path):
    """scripts/docker-test.sh where `docker info` fails (an engine that is not running, or no docker command at
    all): one clear line and exit 0. It is shellcheck-clean, since no engine here ever runs it through."""
    failing, absent = tmp_path / "failing", tmp_path / "absent"
    for directory in (failing, absent):
        directory.mkdir()
        (directory / "dirname").symlink_to(shutil.which("dirname"))
    (failing / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (failing / "docker").chmod(0o755)
    for directory in (failing, absent):
        done = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "docker-test.sh")], env={"PATH": str(directory)},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "docker-test: skipped: no Docker engine (docker info failed)\n", done.stdout
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    checked = subprocess.run(["shellcheck", str(ROOT / "scripts" / "docker-test.sh")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout


def test_systemd_unit():
    unit = (ROOT / "deploy" / "philote.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["User"] not in ("", "root")
    assert int(settings["LimitNOFILE"]) >= 65536
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["Restart"] == "on-failure"
    assert settings["ExecStart"].startswith("/usr/local/bin/philote")
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    with tempfile.TemporaryDirectory() as directory:
        # Point ExecStart at the built binary so that verify can check it exists.
        copy = Path(directory) / "philote.service"
        copy.write_text(unit.replace("/usr/local/bin/philote", str(BINARY)))
        done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        problems = [line for line in (done.stdout + done.stderr).splitlines()
                    if "philote.service" in line or "Unknown" in line]
        assert done.returncode == 0 and not problems, done.stdout + done.stderr


# --- logging never stalls the loops ----------------------------------------------------------------------------


def test_a_log_output_that_stops_reading_never_stalls_the_server():
    """stderr is a pipe nobody reads (a stalled log collector): once it is full, the server keeps serving, drops
    the lines it cannot keep, and says how many once the output moves again."""
    port = free_port()
    env = {**BASE_ENV, "PORT": str(port), "SECRET": SECRET, "LOGLEVEL": "debug", "WORKERS": "2"}
    process = subprocess.Popen([str(BINARY), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        fcntl.fcntl(process.stderr.fileno(), 1031, 4096)  # F_SETPIPE_SZ: a small pipe fills sooner
        wait_listening(port, process)
        # Each request logs two debug lines of about 130 bytes: 9,000 of them are more than the 4 KiB pipe and
        # the server's 1 MiB of queued lines together. A loop blocked on a log write would leave one of these
        # unanswered and time the client out.
        for _ in range(9000):
            status, _, _ = http_request(port, "GET", "/api/info")
            assert status == 401
        assert http_request(port, "GET", "/livez")[0] == 200
        process.send_signal(signal.SIGTERM)
        _, output = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    text = output.decode(errors="replace")
    assert "log lines dropped" in text, text[-2000:]
    assert text.splitlines()[-1].endswith('msg=stopped'), text[-500:]

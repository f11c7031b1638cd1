"""What a client costs before it has shown a valid token: a publish body is not read without one, and the sockets
that have not finished their HTTP phase are bounded by MAX_PENDING_HANDSHAKES, so that 10,000 strangers holding
connections open keep the server's memory within a documented bound (README: "Limits")."""
import asyncio
import socket
import ssl
import subprocess
import time

import pytest

from conftest import memory_bound
from pubsub_helpers import http_request
from tokens import SECRET, token
from wsraw import Closed, RawClient, upgrade_request

CONNECTIONS = 10_000
CONNECT_CONCURRENCY = 500
# The bounds the README documents for 10,000 unauthenticated connections with the default MAX_PENDING_HANDSHAKES
# (1024): each pending socket holds at most its request head (MAX_HEADER_SIZE, 8 KiB) and a connection object
# (measured: under 1 MiB for the publishes, about 8 MiB for the heads); over TLS an OpenSSL handshake waiting for
# a 16 KiB record, about 45 KB each (measured: 46 MiB).
RSS_BOUND_MIB = {"publish-body": 32, "partial-head": 32, "tls-partial-hello": 64}
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def publish_head(length, authorization=None):
    lines = ["POST /api/publish HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}",
             "Content-Type: application/json"]
    if authorization:
        lines.append(f"Authorization: Bearer {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(client, timeout=5.0):
    client.sock.settimeout(timeout)
    status, _, body = client.read_http_response()
    return status, body


@pytest.mark.parametrize("credential, expected", [(None, 401), ("not.a.token", 401), ("valid-no-api", 403)])
def test_a_publish_without_a_valid_token_is_answered_before_its_body(start_server, credential, expected):
    """The head announces 1 MiB and no byte of it is sent: the answer comes from the head alone."""
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    if credential == "valid-no-api":
        credential = token(write=["news"])
    client = RawClient(server.port)
    try:
        client.send(publish_head(1 << 20, credential))
        status, body = status_of(client)
        assert status == expected, body
    finally:
        client.close()


def test_an_authorized_publish_body_is_read(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1")
    body = b'{"channel":"news","data":"hello"}'
    status, _, answer = http_request(server.port, "POST", "/api/publish",
                                     headers=[("Authorization", f"Bearer {token(api=True)}")],
                                     body=body)
    assert status == 202, answer
    assert b'"messages":1' in answer


def metric(port, name):
    status, _, body = http_request(port, "GET", "/metrics")
    assert status == 200, body
    for line in body.decode().splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_sockets_over_max_pending_handshakes_get_503(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="1", MAX_PENDING_HANDSHAKES="4", METRICS_PUBLIC="true",
                          CLOSE_TIMEOUT="1")
    silent = [RawClient(server.port) for _ in range(4)]
    try:
        # The four silent sockets hold every place (the server accepts them in order): the next is refused at
        # accept with its reason. Polled: the server may not have accepted all four yet when the fifth arrives.
        deadline = time.monotonic() + 10
        while True:
            extra = RawClient(server.port)
            try:
                extra.send(upgrade_request("/"))
                status, body = status_of(extra)
            finally:
                extra.close()
            if status == 503 or time.monotonic() > deadline:
                break
        assert status == 503, body
        assert b"too many pending handshakes" in body
    finally:
        for client in silent:
            client.close()
    # Once they are gone, their places are free again: a scrape (itself a pending socket) is answered.
    deadline = time.monotonic() + 10
    while True:
        try:
            refused = metric(server.port, 'philote_connections_rejected_total{reason="pending_handshakes"}')
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert refused >= 1



async def hold_connection(port, source, request, held, outcomes, gate):
    """Opens one connection, sends `request`, and keeps it open (not reading) until the test ends."""
    async with gate:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            await asyncio.get_running_loop().sock_sendall(sock, request)
            outcomes["sent"] += 1
        except OSError:
            outcomes["refused"] += 1  # reset by a refusal at accept: a bounded outcome too
        held.append(sock)


async def open_many(port, source, request):
    held, outcomes = [], {"sent": 0, "refused": 0}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    await asyncio.gather(*(hold_connection(port, source, request, held, outcomes, gate)
                           for _ in range(CONNECTIONS)))
    return held, outcomes


# A TLS record header announcing a 16 KiB ClientHello, and the start of it: the handshake waits for the rest.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + b"\x00" * 32


@memory_bound
@pytest.mark.parametrize("kind", ["publish-body", "partial-head", "tls-partial-hello"])
def test_ten_thousand_unauthenticated_connections_keep_rss_bounded(raised_fd_limit, start_server, tmp_path, kind):
    """10,000 connections at once that never show a token: a publish announcing 1 MiB with 16 KiB of it sent, a
    request head that never ends (7 KiB of it), or, over wss://, a ClientHello that never ends. Before the limits
    each publish reserved its whole body, and every socket was held however many there were."""
    env = {}
    if kind == "tls-partial-hello":
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=localhost", "-days", "1", "-keyout", str(tmp_path / "key.pem"),
                        "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
        env = {"TLS_CERT_FILE": str(tmp_path / "cert.pem"), "TLS_KEY_FILE": str(tmp_path / "key.pem")}
    server = start_server("serve", SECRET=SECRET, WORKERS="2", LOGLEVEL="info", **env)
    if kind == "publish-body":
        request = publish_head(1 << 20) + b"x" * (16 << 10)
    elif kind == "partial-head":
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * (7 << 10)
    else:
        request = PARTIAL_CLIENT_HELLO
    baseline = server.rss_kib()
    source = {"publish-body": "127.0.3.1", "partial-head": "127.0.3.2", "tls-partial-hello": "127.0.3.3"}[kind]
    held, outcomes = asyncio.run(open_many(server.port, source, request))
    try:
        assert outcomes["sent"] + outcomes["refused"] == CONNECTIONS
        growth_mib = (server.peak_rss_kib() - baseline) / 1024
        assert growth_mib < RSS_BOUND_MIB[kind], f"RSS grew {growth_mib:.1f} MiB ({outcomes})"
    finally:
        for sock in held:
            sock.close()
    # Once the strangers are gone (or timed out), their places are free: a probe is answered again.
    deadline = time.monotonic() + 30
    status, body = None, b""
    while status != 200 and time.monotonic() < deadline:
        try:
            status, body = probe(server.port, tls=kind.startswith("tls"))
        except (OSError, Closed) as error:
            body = repr(error).encode()
        time.sleep(0.1)
    assert status == 200, body


def probe(port, tls):
    """GET /livez, over TLS (no certificate check: a throwaway certificate) when the server speaks wss://."""
    if not tls:
        status, _, body = http_request(port, "GET", "/livez")
        return status, body
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as connection:
            connection.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body

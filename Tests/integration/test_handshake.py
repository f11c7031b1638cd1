"""The opening handshake (RFC 6455 section 4.2.1) over a raw socket: one test per rule, each asserting the
exact HTTP status and that the server then closes the TCP connection."""
import base64
import select
import socket
import time

import pytest

from wsraw import GOOD_KEY, RawClient, encode_frame, upgrade_request

GOOD_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3, for GOOD_KEY


def rejected(port, request, status, no_body=False):
    """Sends request, asserts the response status and a closed connection; returns the response headers."""
    client = RawClient(port)
    try:
        client.send(request)
        got, headers, body = client.read_http_response(no_body=no_body)
        assert got == status, f"status {got}, expected {status} (body {body!r})"
        rest = client.expect_eof()
        if no_body:
            assert client.buffer + rest == b"", "a response to HEAD carried a body"
        return headers
    finally:
        client.close()


def assert_echoes(client, payload=b"still here"):
    client.send_frame(0x1, payload)
    assert client.recv_message() == (0x1, payload)


def accepted(port, request):
    """Sends request, asserts a 101 with the right accept value and a working connection."""
    client = RawClient(port)
    client.send(request)
    status, headers, _ = client.read_http_response()
    assert status == 101, status
    assert headers["sec-websocket-accept"] == GOOD_ACCEPT
    assert_echoes(client)
    return client


def request_lines(*lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def good_lines(path="/"):
    return [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
            f"Sec-WebSocket-Key: {GOOD_KEY}", "Sec-WebSocket-Version: 13"]


# Valid upgrades


@pytest.mark.parametrize("path", ["/", "/a/b?c=d", "/some/deep/path?x=1&y=%20"])
def test_valid_upgrade_returns_101_with_rfc_accept_value(echo_server, path):
    client = RawClient(echo_server.port)
    client.send(upgrade_request(path))
    status, headers, _ = client.read_http_response()
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert "upgrade" in [token.strip().lower() for token in headers["connection"].split(",")]
    assert headers["sec-websocket-accept"] == GOOD_ACCEPT
    assert_echoes(client)
    client.close()


def test_connection_header_comma_list_is_accepted(echo_server):
    accepted(echo_server.port, upgrade_request(omit=("Connection",), extra=[("Connection", "keep-alive, Upgrade")]))


def test_header_names_and_values_are_case_insensitive(echo_server):
    request = request_lines(
        "GET / HTTP/1.1", "host: 127.0.0.1", "upgrade: WebSocket", "connection: UPGRADE",
        f"sec-websocket-key: {GOOD_KEY}", "SEC-WEBSOCKET-VERSION: 13")
    accepted(echo_server.port, request)


def test_split_head_one_byte_at_a_time_upgrades(echo_server):
    client = RawClient(echo_server.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in upgrade_request("/split"):
        client.send(bytes([byte]))
    status, headers, _ = client.read_http_response()
    assert status == 101
    assert headers["sec-websocket-accept"] == GOOD_ACCEPT
    assert_echoes(client)


def test_split_head_in_a_few_chunks_upgrades(echo_server):
    request = upgrade_request("/chunks")
    # Cut inside the request line, inside a header name, and between the two CRLFs of the terminator.
    cut = len(request) - 2
    client = RawClient(echo_server.port)
    client.send_in_pieces(request, [5, 30, cut - 35, 1])
    status, headers, _ = client.read_http_response()
    assert status == 101
    assert headers["sec-websocket-accept"] == GOOD_ACCEPT
    assert_echoes(client)


def test_pipelined_first_frame_is_not_lost(echo_server):
    client = RawClient(echo_server.port)
    client.send(upgrade_request() + encode_frame(0x1, b"first") + encode_frame(0x2, b"\x00second"))
    status, headers, _ = client.read_http_response()
    assert status == 101
    assert headers["sec-websocket-accept"] == GOOD_ACCEPT
    assert client.recv_message() == (0x1, b"first")
    assert client.recv_message() == (0x2, b"\x00second")
    client.send_frame(0x8, b"\x03\xe8")
    assert client.recv_frame() == (True, 0, 0x8, b"\x03\xe8")
    client.expect_eof()


def test_head_of_10_kib_accepted_with_raised_max_header_size(start_server):
    server = start_server("echo", MAX_HEADER_SIZE="16384")
    request = upgrade_request(extra=[("X-Padding", "p" * 10 * 1024)])
    assert len(request) > 10 * 1024
    accepted(server.port, request).close()
    assert server.stop() == 0


# Rejections


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "OPTIONS"])
def test_method_not_get_is_405_with_allow(echo_server, method):
    headers = rejected(echo_server.port, upgrade_request(method=method), 405, no_body=method == "HEAD")
    assert headers["allow"] == "GET"


def test_http_1_0_is_400(echo_server):
    rejected(echo_server.port, upgrade_request(http="HTTP/1.0"), 400)


def test_missing_host_is_400(echo_server):
    rejected(echo_server.port, upgrade_request(omit=("Host",)), 400)


def test_missing_upgrade_is_426(echo_server):
    rejected(echo_server.port, upgrade_request(omit=("Upgrade",)), 426)


@pytest.mark.parametrize("value", ["h2c", "websocket2", "web socket", ""])
def test_upgrade_not_websocket_is_426(echo_server, value):
    rejected(echo_server.port, upgrade_request(omit=("Upgrade",), extra=[("Upgrade", value)]), 426)


@pytest.mark.parametrize("value", ["keep-alive", "close", "Upgrades", ""])
def test_connection_without_upgrade_token_is_400(echo_server, value):
    rejected(echo_server.port, upgrade_request(omit=("Connection",), extra=[("Connection", value)]), 400)


def test_missing_connection_is_400(echo_server):
    rejected(echo_server.port, upgrade_request(omit=("Connection",)), 400)


def test_missing_version_is_426_with_supported_version(echo_server):
    headers = rejected(echo_server.port, upgrade_request(omit=("Sec-WebSocket-Version",)), 426)
    assert headers["sec-websocket-version"] == "13"


@pytest.mark.parametrize("version", ["8", "12", "14", "abc"])
def test_wrong_version_is_426_with_supported_version(echo_server, version):
    headers = rejected(echo_server.port, upgrade_request(version=version), 426)
    assert headers["sec-websocket-version"] == "13"


def test_missing_key_is_400(echo_server):
    rejected(echo_server.port, upgrade_request(omit=("Sec-WebSocket-Key",)), 400)


@pytest.mark.parametrize("key", [
    "not base64 at all!!",
    "dGhlIHNhbXBsZSBub25jZQ",  # right bytes, padding missing
    base64.b64encode(b"x" * 15).decode(),
    base64.b64encode(b"x" * 17).decode(),
    "",
], ids=["not-base64", "unpadded", "15-bytes", "17-bytes", "empty"])
def test_bad_key_is_400(echo_server, key):
    rejected(echo_server.port, upgrade_request(key=key), 400)


@pytest.mark.parametrize("request_line", [
    "GET /",
    "GET / HTTP/1.1 extra",
    "GET  / HTTP/1.1",
    "GET / FTP/1.1",
    "GET / HTTP/x.y",
    "/ HTTP/1.1",
    "",
], ids=["no-version", "extra-token", "double-space", "not-http", "bad-version-digits", "no-method", "empty"])
def test_malformed_request_line_is_400(echo_server, request_line):
    rejected(echo_server.port, request_lines(request_line, *good_lines()[1:]), 400)


def test_header_line_without_colon_is_400(echo_server):
    rejected(echo_server.port, request_lines(*good_lines(), "NoColonHere"), 400)


def test_whitespace_before_colon_is_400(echo_server):
    # RFC 7230 section 3.2.4: a server MUST reject whitespace between the field name and the colon with 400.
    rejected(echo_server.port, request_lines(*good_lines(), "X-Spaced : value"), 400)


def test_obs_fold_is_400(echo_server):
    rejected(echo_server.port, request_lines(*good_lines(), "X-Folded: first", "  second"), 400)


def test_bare_lf_inside_a_header_line_is_400(echo_server):
    lines = good_lines()
    lines[1] = "Host: 127.0.0.1\nX-Sneaky: yes"
    rejected(echo_server.port, request_lines(*lines), 400)


def test_bare_cr_inside_a_header_line_is_400(echo_server):
    rejected(echo_server.port, request_lines(*good_lines(), "X-Sneaky: a\rb"), 400)


def test_bare_lf_line_endings_are_400(echo_server):
    # The head ends in LF LF and never contains CRLFCRLF: the server must still answer (not wait for a timeout).
    rejected(echo_server.port, ("\n".join(good_lines()) + "\n\n").encode(), 400)


def test_head_over_8_kib_is_431(echo_server):
    request = upgrade_request(extra=[("X-Padding", "p" * 9 * 1024)])
    rejected(echo_server.port, request, 431)


def test_endless_head_without_terminator_is_431(echo_server):
    # Only the first 8 KiB + 1 byte is sent: the server must answer without waiting for more.
    client = RawClient(echo_server.port)
    client.send(b"GET / HTTP/1.1\r\nX-Padding: " + b"p" * 8192)
    status, _, _ = client.read_http_response()
    assert status == 431
    client.expect_eof()


# Slow and silent clients (the echo_server fixture sets HANDSHAKE_TIMEOUT=1)


def assert_dropped_within(client, limit):
    """The server closes the connection (optionally after a response) within `limit` seconds of now."""
    start = time.monotonic()
    client.sock.settimeout(limit)
    client.expect_eof()  # a socket.timeout here means the server never closed
    return time.monotonic() - start


def test_slowloris_partial_head_is_dropped(echo_server):
    client = RawClient(echo_server.port)
    client.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
    assert_dropped_within(client, 4.0)


def test_silent_client_is_dropped(echo_server):
    client = RawClient(echo_server.port)
    assert_dropped_within(client, 4.0)


def test_slowloris_trickling_bytes_is_dropped_by_total_handshake_time(echo_server):
    """Sending one byte every 0.1 s keeps the connection active, but the whole head must arrive in time."""
    client = RawClient(echo_server.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = upgrade_request()
    start = time.monotonic()
    closed = False
    for byte in request[:-4]:  # never completes: at 0.1 s per byte it would take ~15 s
        if time.monotonic() - start > 4.0:
            break
        try:
            client.send(bytes([byte]))
        except OSError:
            closed = True
            break
        # Wait for the server's verdict up to 0.1 s (this paces the trickle; it guesses no timing).
        readable, _, _ = select.select([client.sock], [], [], 0.1)
        if readable:
            try:
                data = client.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                closed = True
                break
            client.buffer += data  # maybe a response before the close; the next read must reach EOF
            client.expect_eof()
            closed = True
            break
    assert closed, "a client trickling a head byte by byte was not dropped within 4 s (HANDSHAKE_TIMEOUT=1)"


def test_server_keeps_serving_while_bad_clients_linger(echo_server):
    port = echo_server.port
    lingering = [RawClient(port) for _ in range(20)]
    for index, client in enumerate(lingering):
        if index % 2:
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    # Bad requests interleaved with good clients: every good one still upgrades and echoes at once.
    for request, status in [(upgrade_request(method="POST"), 405), (upgrade_request(version="8"), 426),
                            (b"garbage\r\n\r\n", 400), (upgrade_request(extra=[("X", "y" * 9000)]), 431)]:
        rejected(port, request, status)
        good = RawClient(port, timeout=2.0)
        good.handshake()
        assert_echoes(good, b"good after %d" % status)
        good.close()
    # The lingering ones are all dropped by the handshake timeout; the server then still serves.
    for client in lingering:
        assert_dropped_within(client, 4.0)
        client.close()
    good = RawClient(port)
    good.handshake()
    assert_echoes(good)


def test_max_connections_refuses_with_503_before_the_upgrade(start_server):
    """MAX_CONNECTIONS counts open WebSocket connections on every loop; one more gets 503, and a place
    freed by a close is given to the next client."""
    server = start_server("echo", MAX_CONNECTIONS="3", WORKERS="2")
    clients = []
    for _ in range(3):
        client = RawClient(server.port)
        client.handshake()
        clients.append(client)
    refused = RawClient(server.port)
    refused.send(upgrade_request())
    status, _, body = refused.read_http_response()
    assert status == 503 and b"too many connections" in body
    refused.expect_eof()
    clients[0].send_frame(0x8, b"\x03\xe8")
    clients[0].expect_close(1000, reply=False)
    # The place is released when the server processes the close; retry until it is (bounded).
    deadline = time.monotonic() + 5
    while True:
        again = RawClient(server.port)
        again.send(upgrade_request())
        status, _, _ = again.read_http_response()
        if status == 101 or time.monotonic() > deadline:
            break
        again.close()
    assert status == 101
    again.send_frame(0x1, b"ok")
    assert again.recv_frame()[3] == b"ok"

"""permessage-deflate (RFC 7692) end to end: the negotiation matrix through real handshakes, compressed
sending and receiving over raw sockets (checked with Python's zlib, independent of the server's), the bad
inputs (compression bomb, corrupt data, RSV bits), echo mode, and interoperability in both directions with
Python `websockets`, Node `ws`, headless Chromium and `philote client`.

Evidence that compressed frames crossed the wire comes from two sides: the client's own view (RSV1 seen on
frames it received, compressed frames it sent) and the server's closing log line per connection
(`msg="connection closed" ... deflate=on compressed_in=N compressed_out=M`, debug level), matched to a
client by the request path it connected to. Every wait is bounded by a deadline."""
import asyncio
import json
import os
import random
import re
import selectors
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

from browser_helpers import chromium_exchange
from conftest import BINARY, memory_bound, node_env
from pubsub_helpers import DELIVERY, UUID4, close_politely, message_bytes, publish
from tokens import SECRET, token
from wsraw import RawClient, encode_frame, upgrade_request

HERE = Path(__file__).resolve().parent
NODE_SCRIPT = HERE / "node_deflate_client.js"

TEXT, BINARY_OP, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 4, 2, 1  # wsraw's `rsv` argument: bits 6, 5, 4 of the first byte
TAIL = b"\x00\x00\xff\xff"
PLAIN = "permessage-deflate; server_no_context_takeover"
SENTENCE = "the quick brown fox jumps over the lazy dog, again and again; "

OPENED = re.compile(r'msg="connection opened" conn=(\d+) path=(\S+)')
CLOSED = re.compile(r'msg="connection closed" conn=(\d+) ms=\d+ deflate=(on|off) compressed_in=(\d+) '
                    r'compressed_out=(\d+)')


# --- compression on the Python side (zlib, not the server's code) ------------------------------------------


def inflate(payload, wbits=15):
    """One message of a no-context-takeover stream (RFC 7692 section 7.2.2). With a window under 15 bits the
    output is taken in small steps: zlib checks a back-reference only against its window plus the output of
    the current call, so this makes a reference beyond 2**wbits bytes fail (`invalid distance too far back`)
    instead of silently reading from a large output buffer."""
    inflater = zlib.decompressobj(-wbits)
    if wbits == 15:
        return inflater.decompress(payload + TAIL)
    data, parts = payload + TAIL, []
    while True:
        part = inflater.decompress(data, 16)
        parts.append(part)
        data = inflater.unconsumed_tail
        if not data and not part:
            return b"".join(parts)


def deflate(data, compressor=None):
    """One compressed message (section 7.2.1): sync flush, final 00 00 ff ff removed. Pass the same
    compressor for several messages to keep the context between them."""
    compressor = compressor or zlib.compressobj(wbits=-15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def compressible(length, prefix=""):
    text = prefix + SENTENCE * (length // len(SENTENCE) + 1)
    return text[:length]


# --- raw connections ---------------------------------------------------------------------------------------


def open_raw(port, path="/", offers=(), tok=None, expect=101):
    """A raw client after its upgrade: (client, [(header name, value)] of the response, in order). The token
    goes in the Authorization header; `offers` are sent as separate Sec-WebSocket-Extensions headers."""
    extra = [("Sec-WebSocket-Extensions", offer) for offer in offers]
    if tok is not None:
        extra.append(("Authorization", "Bearer " + tok))
    client = RawClient(port)
    client.send(upgrade_request(path, host=f"127.0.0.1:{port}", extra=extra))
    while b"\r\n\r\n" not in client.buffer:
        client._fill()
    head, client.buffer = client.buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    assert status == expect, lines
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    return client, headers


def extension_headers(headers):
    return [value for name, value in headers if name.lower() == "sec-websocket-extensions"]


def recv_message(client):
    """(RSV bits of the first frame, opcode, payload) of the next data message, reassembled. Pings are
    answered and pongs skipped; RSV bits on a continuation frame or a close fail the test."""
    opcode, first_rsv, parts = None, None, []
    while True:
        fin, rsv, frame_opcode, payload = client.recv_frame()
        if frame_opcode == PING:
            client.send_frame(PONG, payload)
            continue
        if frame_opcode == PONG:
            continue
        assert frame_opcode != CLOSE, f"unexpected close {payload!r}"
        if opcode is None:
            assert frame_opcode in (TEXT, BINARY_OP), frame_opcode
            opcode, first_rsv = frame_opcode, rsv
        else:
            assert frame_opcode == CONTINUATION and rsv == 0, (frame_opcode, rsv)
        parts.append(payload)
        if fin:
            return first_rsv, opcode, b"".join(parts)


def recv_compressed(client, wbits=15):
    """The next message, which must be compressed (RSV1 only): (opcode, compressed payload, inflated)."""
    rsv, opcode, payload = recv_message(client)
    assert rsv == RSV1, f"expected RSV1 (compressed), got RSV bits {rsv}"
    return opcode, payload, inflate(payload, wbits)


def recv_plain(client):
    rsv, opcode, payload = recv_message(client)
    assert rsv == 0, f"expected an uncompressed message, got RSV bits {rsv}"
    return opcode, payload


def assert_delivery(payload, channel, data):
    """`payload` is exactly the server's message for (channel, data); returns the issuer."""
    match = DELIVERY.fullmatch(payload)
    assert match and UUID4.fullmatch(match["issuer"]), payload[:200]
    message = json.loads(payload)
    assert (message.get("channel", ""), message.get("data", "")) == (channel, data), payload[:200]
    expected = (b'{"issuer":"' + match["issuer"] + b'","channel":"' + channel.encode() + b'","data":"'
                + data.encode() + b'"}\n')
    assert payload == expected  # plain ASCII data: nothing to escape
    return match["issuer"].decode()


def expect_close(client, code):
    """Reads until the server's close frame (data frames before it are skipped); asserts the code."""
    while True:
        fin, rsv, opcode, payload = client.recv_frame()
        if opcode == CLOSE:
            break
    got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    assert got == code, f"close code {got}, expected {code} (reason {payload[2:]!r})"
    assert rsv == 0, "RSV bits on the server's close frame"
    try:
        client.send_frame(CLOSE, payload[:2])
    except OSError:
        pass
    client.expect_eof()
    client.close()
    return payload[2:].decode()


# --- the server's view ---------------------------------------------------------------------------------------


def closed_connections(server):
    """[(path, deflate, compressed_in, compressed_out)] from the closing log lines so far."""
    text = server.log_text()
    paths = dict(OPENED.findall(text))
    return [(paths.get(conn), deflate_state, int(count_in), int(count_out))
            for conn, deflate_state, count_in, count_out in CLOSED.findall(text)]


def wait_closed(server, path, count=1, timeout=10.0):
    """The closing log lines of the `count` connections made to `path`, waiting for them up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [entry for entry in closed_connections(server) if entry[0] == path]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no closing line for {path} within {timeout} s:\n{server.log_text()[-3000:]}")
        time.sleep(0.02)



@pytest.fixture
def echo(start_server):
    def start(**env):
        env.setdefault("LOGLEVEL", "debug")
        env.setdefault("CLOSE_TIMEOUT", "2")
        return start_server("echo", **env)
    return start


@pytest.fixture
def pubsub(start_server):
    def start(**env):
        env.setdefault("LOGLEVEL", "debug")
        env.setdefault("CLOSE_TIMEOUT", "2")
        return start_server("serve", SECRET=SECRET, **env)
    return start


# =========================================================================================================
# Negotiation
# =========================================================================================================

NEGOTIATION = [
    # (offers, one per header) -> the exact response value, or None: no extension
    (["permessage-deflate"], PLAIN),
    (["permessage-deflate; client_no_context_takeover"], PLAIN + "; client_no_context_takeover"),
    (["permessage-deflate; server_no_context_takeover"], PLAIN),
    (["permessage-deflate; server_max_window_bits=10"], PLAIN + "; server_max_window_bits=10"),
    (['permessage-deflate; server_max_window_bits="12"'], PLAIN + "; server_max_window_bits=12"),
    (["permessage-deflate; client_max_window_bits"], PLAIN),
    (["permessage-deflate; client_max_window_bits=9"], PLAIN),
    (["permessage-deflate; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits"],
     PLAIN + "; client_no_context_takeover; server_max_window_bits=15"),
    # A declined first offer, then an acceptable one (same header, or the next header).
    (["permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover"],
     PLAIN + "; client_no_context_takeover"),
    (["permessage-deflate; x-unknown-parameter, permessage-deflate; client_max_window_bits"], PLAIN),
    (["permessage-deflate; client_no_context_takeover; client_no_context_takeover",
      "permessage-deflate; server_max_window_bits=11"], PLAIN + "; server_max_window_bits=11"),
    (["x-webkit-deflate-frame, permessage-deflate"], PLAIN),
    # Nothing acceptable: the connection proceeds without the extension.
    (["permessage-deflate; server_max_window_bits=8"], None),
    (["permessage-deflate; server_max_window_bits=16"], None),
    (["permessage-deflate; server_max_window_bits"], None),
    (["permessage-deflate; server_max_window_bits=010"], None),
    (["permessage-deflate; client_max_window_bits=7"], None),
    (["permessage-deflate; client_no_context_takeover=1"], None),
    (["permessage-deflate; server_max_window_bits=8, permessage-deflate; mystery"], None),
    (["x-webkit-deflate-frame"], None),
]


@pytest.mark.parametrize("offers,expected", NEGOTIATION, ids=[" | ".join(o) for o, _ in NEGOTIATION])
def test_negotiation_matrix(echo, offers, expected):
    server = echo()
    client, headers = open_raw(server.port, "/matrix", offers)
    assert extension_headers(headers) == ([expected] if expected else [])
    # The connection works, compressed or not as agreed: a 1000-byte echo.
    text = compressible(1000).encode()
    client.send_frame(TEXT, text)
    if expected:
        assert recv_compressed(client)[2] == text
    else:
        assert recv_plain(client) == (TEXT, text)
    close_politely(client)
    assert wait_closed(server, "/matrix")[0][1:] == (("on", 0, 1) if expected else ("off", 0, 0))


@pytest.mark.parametrize("setting,enabled", [("0", False), ("false", False), ("f", False),
                                             ("1", True), ("true", True), ("t", True)])
def test_compression_setting(echo, setting, enabled):
    server = echo(COMPRESSION=setting)
    client, headers = open_raw(server.port, "/", ["permessage-deflate; client_max_window_bits"])
    assert extension_headers(headers) == ([PLAIN] if enabled else [])
    text = compressible(1000).encode()
    client.send_frame(TEXT, text)
    if enabled:
        assert recv_compressed(client)[2] == text
    else:
        assert recv_plain(client) == (TEXT, text)
    close_politely(client)


@pytest.mark.parametrize("setting", ["COMPRESSION=yes", "COMPRESSION=", "COMPRESSION_MIN_SIZE=-1",
                                     "COMPRESSION_MIN_SIZE=1KB"])
def test_invalid_compression_settings_are_refused(setting):
    name, value = setting.split("=", 1)
    env = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "HOST": "127.0.0.1", "SECRET": SECRET, name: value}
    result = subprocess.run([str(BINARY), "serve"], env=env, capture_output=True, text=True, timeout=10)
    assert result.returncode != 0, result.stderr
    assert f"invalid configuration: {name}:" in result.stderr, result.stderr


def test_server_max_window_bits_is_honoured(echo):
    """Data repeating at a distance of 1400 bytes: with a 10-bit window the server may not refer back that far
    (inflating with a 1 KiB window raises on such a reference); with 15 bits it does, so it is smaller. The
    block is random over a four-letter alphabet, so both forms still compress (incompressible messages are
    sent plain)."""
    server = echo()
    block = bytes(random.choice(b"acgt") for _ in range(1400))
    data = block + block
    small, headers = open_raw(server.port, "/w10", ["permessage-deflate; server_max_window_bits=10"])
    assert extension_headers(headers) == [PLAIN + "; server_max_window_bits=10"]
    large, _ = open_raw(server.port, "/w15", ["permessage-deflate"])
    small.send_frame(BINARY_OP, data)
    large.send_frame(BINARY_OP, data)
    opcode, payload10, inflated = recv_compressed(small, wbits=10)
    assert (opcode, inflated) == (BINARY_OP, data)
    opcode, payload15, inflated = recv_compressed(large)
    assert (opcode, inflated) == (BINARY_OP, data)
    assert len(payload15) < len(payload10) - 200, (len(payload15), len(payload10))
    with pytest.raises(zlib.error, match="too far back"):
        inflate(payload15, wbits=10)  # the check has teeth: the 15-bit answer needs more than 1 KiB
    close_politely(small)
    close_politely(large)


# =========================================================================================================
# Sending (pub/sub)
# =========================================================================================================


def test_publish_to_a_compressing_subscriber(pubsub):
    server = pubsub()
    subscriber, headers = open_raw(server.port, "/sub", ["permessage-deflate"], token(read=["c"]))
    assert extension_headers(headers) == [PLAIN]
    publisher, headers = open_raw(server.port, "/pub", [], token(write=["c"]))
    assert extension_headers(headers) == []
    data = compressible(1000)
    publish(publisher, "c", data)
    opcode, payload, message = recv_compressed(subscriber)
    assert opcode == TEXT
    assert_delivery(message, "c", data)
    assert len(payload) < len(message) // 3
    close_politely(subscriber)
    close_politely(publisher)
    assert wait_closed(server, "/sub")[0][1:] == ("on", 0, 1)
    assert wait_closed(server, "/pub")[0][1:] == ("off", 0, 0)


@pytest.mark.parametrize("min_size,short,long", [(None, 53, 54), ("1100", 1025, 1026), ("0", None, 1)])
def test_compression_min_size(pubsub, min_size, short, long):
    """The server's message is 74 bytes plus the data here; one byte under COMPRESSION_MIN_SIZE goes out
    uncompressed (RSV1 clear), exactly the minimum compressed."""
    server = pubsub(**({"COMPRESSION_MIN_SIZE": min_size} if min_size else {}))
    limit = int(min_size or 128)
    subscriber, _ = open_raw(server.port, "/sub", ["permessage-deflate"], token(read=["c"]))
    publisher, _ = open_raw(server.port, "/pub", [], token(write=["c"]))
    if short is not None:
        data = compressible(short)
        publish(publisher, "c", data)
        opcode, payload = recv_plain(subscriber)
        assert len(payload) == 74 + short == limit - 1
        assert_delivery(payload, "c", data)
    data = compressible(long)
    publish(publisher, "c", data)
    opcode, _, message = recv_compressed(subscriber)
    assert len(message) == 74 + long
    if short is not None:
        assert len(message) == limit
    assert_delivery(message, "c", data)
    close_politely(subscriber)
    close_politely(publisher)


def test_one_publish_reaches_each_subscriber_in_its_form(pubsub):
    """Compressing subscribers with 15- and 10-bit windows and a plain one, on one channel, one publish."""
    server = pubsub()
    read = token(read=["c"])
    sub15, _ = open_raw(server.port, "/sub15", ["permessage-deflate; client_max_window_bits"], read)
    sub10, headers = open_raw(server.port, "/sub10", ["permessage-deflate; server_max_window_bits=10"], read)
    assert extension_headers(headers) == [PLAIN + "; server_max_window_bits=10"]
    plain, _ = open_raw(server.port, "/plain", [], read)
    publisher, _ = open_raw(server.port, "/pub", ["permessage-deflate"], token(write=["c"]))
    block = os.urandom(700).hex()  # 1400 characters, repeated: a back-reference 15 bits allow and 10 do not
    data = block + block
    publish(publisher, "c", data)
    _, payload15, message15 = recv_compressed(sub15)
    _, payload10, message10 = recv_compressed(sub10, wbits=10)
    _, message = recv_plain(plain)
    issuer = assert_delivery(message, "c", data)
    assert message15 == message10 == message
    # Two variants: the 15-bit one refers back 1400 bytes, which a 10-bit window cannot follow.
    assert len(payload15) < len(payload10) - 500, (len(payload15), len(payload10))
    with pytest.raises(zlib.error, match="too far back"):
        inflate(payload15, wbits=10)
    # Twice more: the shared frames are the same bytes every time (compressed once per window size).
    publish(publisher, "c", data)
    assert recv_compressed(sub15)[1] == payload15
    assert recv_compressed(sub10, wbits=10)[1] == payload10
    assert recv_plain(plain)[1] == message
    assert issuer in message.decode()
    for client in (sub15, sub10, plain, publisher):
        close_politely(client)
    assert wait_closed(server, "/sub15")[0][1:] == ("on", 0, 2)
    assert wait_closed(server, "/sub10")[0][1:] == ("on", 0, 2)
    assert wait_closed(server, "/plain")[0][1:] == ("off", 0, 0)


def test_every_window_size_gets_a_variant_within_its_window(pubsub):
    """Subscribers limiting the server's window to 9..15 bits, one plain publisher: each receives a frame it
    can inflate with its own window (checked strictly), and larger windows compress long repeats better."""
    server = pubsub()
    read = token(read=["c"])
    subscribers = {}
    for bits in range(9, 16):
        client, headers = open_raw(server.port, f"/w{bits}", [f"permessage-deflate; server_max_window_bits={bits}"],
                                   read)
        assert extension_headers(headers) == [PLAIN + f"; server_max_window_bits={bits}"]
        subscribers[bits] = client
    publisher, _ = open_raw(server.port, "/pub", [], token(write=["c"]))
    for distance in (600, 2100, 8300):
        block = os.urandom(distance // 2).hex()
        publish(publisher, "c", block + block)
        sizes = {}
        for bits, client in subscribers.items():
            _, payload, _ = recv_compressed(client)
            assert_delivery(inflate(payload, bits), "c", block + block)
            sizes[bits] = len(payload)
        # The first window that holds the repeat (zlib reaches back 2**bits - 262 bytes) halves the size.
        reaching = min(bits for bits in sizes if (1 << bits) - 262 >= distance + 100)
        assert sizes[reaching] < sizes[reaching - 1] * 0.7, (distance, sizes)
    for client in [*subscribers.values(), publisher]:
        close_politely(client)
    for bits in range(9, 16):
        assert wait_closed(server, f"/w{bits}")[0][1:] == ("on", 0, 3)


# =========================================================================================================
# Receiving
# =========================================================================================================


def test_compressed_publish_is_delivered(pubsub):
    server = pubsub()
    subscriber, _ = open_raw(server.port, "/sub", [], token(read=["c"]))
    publisher, _ = open_raw(server.port, "/pub", ["permessage-deflate; client_no_context_takeover"],
                            token(write=["c"]))
    data = compressible(2000)
    publisher.send_frame(TEXT, deflate(message_bytes("c", data)), rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", data)
    # Uncompressed messages stay allowed on the same connection (RSV1 is per message).
    publish(publisher, "c", "plain")
    assert_delivery(recv_plain(subscriber)[1], "c", "plain")
    # A new compressor per message, as client_no_context_takeover promises.
    publisher.send_frame(TEXT, deflate(message_bytes("c", "tiny")), rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", "tiny")
    close_politely(subscriber)
    close_politely(publisher)
    assert wait_closed(server, "/pub")[0][1:] == ("on", 2, 0)


def test_client_context_takeover_across_messages(pubsub):
    server = pubsub()
    subscriber, _ = open_raw(server.port, "/sub", [], token(read=["c"]))
    publisher, headers = open_raw(server.port, "/pub", ["permessage-deflate"], token(write=["c"]))
    assert extension_headers(headers) == [PLAIN]
    compressor = zlib.compressobj(wbits=-15)
    data = compressible(3000, "first ")
    first = deflate(message_bytes("c", data), compressor)
    again = deflate(message_bytes("c", data), compressor)
    # The second message is a back-reference to the first: it decodes only with the first one's window.
    assert len(again) < 40 < len(first)
    publisher.send_frame(TEXT, first, rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", data)
    publish(publisher, "c", "uncompressed in between")  # does not touch the compression context
    assert_delivery(recv_plain(subscriber)[1], "c", "uncompressed in between")
    publisher.send_frame(TEXT, again, rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", data)
    close_politely(subscriber)
    close_politely(publisher)
    assert wait_closed(server, "/pub")[0][1:] == ("on", 2, 0)


def test_fragmented_compressed_message(pubsub):
    """RSV1 on the first frame only; a ping between the fragments."""
    server = pubsub()
    subscriber, _ = open_raw(server.port, "/sub", ["permessage-deflate"], token(read=["c"]))
    publisher, _ = open_raw(server.port, "/pub", ["permessage-deflate"], token(write=["c"]))
    data = compressible(5000)
    compressed = deflate(message_bytes("c", data))
    third = len(compressed) // 3
    publisher.send_frame(TEXT, compressed[:third], fin=False, rsv=RSV1)
    publisher.send_frame(CONTINUATION, compressed[third:2 * third], fin=False)
    publisher.send_frame(PING, b"between")
    publisher.send_frame(CONTINUATION, compressed[2 * third:], fin=True)
    fin, rsv, opcode, payload = publisher.recv_frame()
    assert (fin, rsv, opcode, payload) == (True, 0, PONG, b"between")
    _, _, message = recv_compressed(subscriber)
    assert_delivery(message, "c", data)
    close_politely(subscriber)
    close_politely(publisher)
    assert wait_closed(server, "/pub")[0][1:] == ("on", 1, 0)


def test_compressed_frame_split_across_reads(echo):
    server = echo()
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    text = compressible(4000).encode()
    frame = encode_frame(TEXT, deflate(text), rsv=RSV1)
    client.send_in_pieces(frame, [1, 1, 3, 7, 50], pause=0.01)
    assert recv_compressed(client)[:3:2] == (TEXT, text)
    close_politely(client)


# =========================================================================================================
# Bad input
# =========================================================================================================


@memory_bound
def test_compression_bomb_is_refused_without_memory_growth(pubsub):
    server = pubsub()
    subscriber, _ = open_raw(server.port, "/sub", [], token(read=["c"]))
    attacker, _ = open_raw(server.port, "/bomb", ["permessage-deflate"], token(write=["c"]))
    # Warm up the same paths (a compressed message inflated and delivered) before measuring.
    attacker.send_frame(TEXT, deflate(message_bytes("c", compressible(20000))), rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", compressible(20000))

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(50)) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(bomb) < 65536  # within MAX_MESSAGE_SIZE as sent: only its inflated size is too big
    before = server.peak_rss_kib()
    attacker.send_frame(BINARY_OP, bomb, rsv=RSV1)
    expect_close(attacker, 1009)
    grown = server.peak_rss_kib() - before
    assert grown < 4096, f"peak RSS grew by {grown} KiB for a 50 MB bomb"
    # Nothing reached the subscriber, and the server carries on.
    publisher, _ = open_raw(server.port, "/pub", ["permessage-deflate"], token(write=["c"]))
    publisher.send_frame(TEXT, deflate(message_bytes("c", "after the bomb")), rsv=RSV1)
    assert_delivery(recv_plain(subscriber)[1], "c", "after the bomb")
    close_politely(subscriber)
    close_politely(publisher)
    assert 'msg="protocol error"' in server.log_text() and "code=1009" in server.log_text()


def test_inflated_size_limit_is_exact(echo):
    server = echo(MAX_MESSAGE_SIZE="4096")
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    client.send_frame(BINARY_OP, deflate(b"a" * 4096), rsv=RSV1)
    assert recv_compressed(client)[2] == b"a" * 4096
    client.send_frame(BINARY_OP, deflate(b"a" * 4097), rsv=RSV1)
    expect_close(client, 1009)


def test_fragmented_bomb_gets_1009(echo):
    """The inflated size counts across fragments: 10 fragments, each small, 50 MB in all."""
    server = echo()
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\0" * (1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(50)) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    pieces = [bomb[i:i + len(bomb) // 10 + 1] for i in range(0, len(bomb), len(bomb) // 10 + 1)]
    for index, piece in enumerate(pieces):
        client.send_frame(BINARY_OP if index == 0 else CONTINUATION, piece, fin=index == len(pieces) - 1,
                          rsv=RSV1 if index == 0 else 0)
    expect_close(client, 1009)


CORRUPT = {
    "reserved block type": b"\xff\xff\xff\xff",
    "stored block length mismatch": b"\x00\x05\x00\x00\x00hello",
    "distance too far back": deflate(b"hello world " * 10,
                                     zlib.compressobj(wbits=-15, zdict=b"hello world " * 10)),
    "garbage after a valid start": deflate(b"x" * 500)[:5] + b"\xff" * 16,
}


@pytest.mark.parametrize("payload", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_deflate_data_gets_1007(echo, payload):
    server = echo()
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    client.send_frame(BINARY_OP, payload, rsv=RSV1)
    expect_close(client, 1007)
    assert "code=1007" in server.log_text()


def test_invalid_utf8_after_inflating_gets_1007(echo):
    server = echo()
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    client.send_frame(TEXT, deflate(b"valid, then \xc3\x28 not"), rsv=RSV1)
    expect_close(client, 1007)


RSV_CASES = {
    "RSV1 on a ping": [(PING, b"p", True, RSV1)],
    "RSV1 on a pong": [(PONG, b"p", True, RSV1)],
    "RSV1 on a close": [(CLOSE, struct.pack("!H", 1000), True, RSV1)],
    "RSV1 on a continuation": [(TEXT, b"PLACEHOLDER", False, RSV1), (CONTINUATION, b"", True, RSV1)],
    "RSV1 on a continuation of an uncompressed message": [(TEXT, b"abc", False, 0), (CONTINUATION, b"d", True, RSV1)],
    "RSV2 on a data frame": [(TEXT, b"abc", True, RSV2)],
    "RSV3 on a data frame": [(TEXT, b"abc", True, RSV3)],
    "RSV1 and RSV2": [(TEXT, b"abc", True, RSV1 | RSV2)],
}


@pytest.mark.parametrize("frames", RSV_CASES.values(), ids=RSV_CASES.keys())
def test_reserved_bits_with_deflate_get_1002(echo, frames):
    server = echo()
    client, headers = open_raw(server.port, "/", ["permessage-deflate"])
    assert extension_headers(headers) == [PLAIN]
    compressed = deflate(b"a fragment of a compressed message")
    for opcode, payload, fin, rsv in frames:
        client.send_frame(opcode, compressed if payload == b"PLACEHOLDER" else payload, fin=fin, rsv=rsv)
    expect_close(client, 1002)


@pytest.mark.parametrize("how", ["not offered", "offer declined", "COMPRESSION=0"])
def test_rsv1_without_negotiation_gets_1002(echo, how):
    server = echo(**({"COMPRESSION": "0"} if how == "COMPRESSION=0" else {}))
    offers = {"not offered": [], "offer declined": ["permessage-deflate; server_max_window_bits=8"],
              "COMPRESSION=0": ["permessage-deflate"]}[how]
    client, headers = open_raw(server.port, "/", offers)
    assert extension_headers(headers) == []
    client.send_frame(TEXT, deflate(b"compressed though nobody agreed"), rsv=RSV1)
    expect_close(client, 1002)


# =========================================================================================================
# Echo mode
# =========================================================================================================


def test_echo_with_compression(echo):
    server = echo()
    client, headers = open_raw(server.port, "/echo", ["permessage-deflate; client_max_window_bits"])
    assert extension_headers(headers) == [PLAIN]
    compressor = zlib.compressobj(wbits=-15)  # context kept across messages: none was promised away
    text = compressible(2000).encode()
    client.send_frame(TEXT, deflate(text, compressor), rsv=RSV1)
    assert recv_compressed(client)[:3:2] == (TEXT, text)
    client.send_frame(TEXT, deflate(text, compressor), rsv=RSV1)
    assert recv_compressed(client)[:3:2] == (TEXT, text)
    noise = os.urandom(500)  # over COMPRESSION_MIN_SIZE but incompressible: answered plain
    client.send_frame(BINARY_OP, noise)
    assert recv_plain(client) == (BINARY_OP, noise)
    client.send_frame(TEXT, deflate(b"hi", compressor), rsv=RSV1)  # answered plain (under the minimum)
    assert recv_plain(client) == (TEXT, b"hi")
    client.send_frame(TEXT, b"x" * 127)
    assert recv_plain(client) == (TEXT, b"x" * 127)
    client.send_frame(TEXT, b"x" * 128)
    assert recv_compressed(client)[:3:2] == (TEXT, b"x" * 128)
    close_politely(client)
    assert wait_closed(server, "/echo")[0][1:] == ("on", 3, 3)


def finished(data):
    """A whole deflate stream ending in a final (BFINAL) block, which a message may use (section 7.2.3.4)."""
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)


RFC_EXAMPLES = {
    # RFC 7692 section 7.2.3 and neighbours: frames as (opcode, payload, fin, rsv) -> the messages they carry
    "7.2.3.1 one frame": ([(TEXT, bytes.fromhex("f248cdc9c90700"), True, RSV1)], [b"Hello"]),
    "7.2.3.1 two fragments": ([(TEXT, bytes.fromhex("f248cd"), False, RSV1),
                               (CONTINUATION, bytes.fromhex("c9c90700"), True, 0)], [b"Hello"]),
    "7.2.3.2 context takeover": ([(TEXT, bytes.fromhex("f248cdc9c90700"), True, RSV1),
                                  (TEXT, bytes.fromhex("f200110000"), True, RSV1)], [b"Hello", b"Hello"]),
    "7.2.3.3 stored block": ([(TEXT, bytes.fromhex("000500faff48656c6c6f00"), True, RSV1)], [b"Hello"]),
    "7.2.3.4 BFINAL block": ([(TEXT, bytes.fromhex("f348cdc9c9070000"), True, RSV1)], [b"Hello"]),
    "7.2.3.5 two blocks": ([(TEXT, bytes.fromhex("f24805000000ffffcac9c90700"), True, RSV1)], [b"Hello"]),
    "7.2.3.6 empty message": ([(TEXT, b"\x00", True, RSV1)], [b""]),
    "final blocks between messages": ([(TEXT, finished(b"done"), True, RSV1), (TEXT, b"next", True, 0),
                                       (TEXT, finished(b"again"), True, RSV1)], [b"done", b"next", b"again"]),
}


@pytest.mark.parametrize("frames,messages", RFC_EXAMPLES.values(), ids=RFC_EXAMPLES.keys())
def test_rfc_examples_through_echo(echo, frames, messages):
    server = echo()
    client, _ = open_raw(server.port, "/", ["permessage-deflate"])
    for opcode, payload, fin, rsv in frames:
        client.send_frame(opcode, payload, fin=fin, rsv=rsv)
    for message in messages:  # all short: echoed uncompressed
        assert recv_plain(client) == (TEXT, message)
    close_politely(client)


# =========================================================================================================
# Interoperability
# =========================================================================================================


def assert_compressed_both_ways(server, paths):
    for path in paths:
        (_, state, count_in, count_out), = wait_closed(server, path)
        assert state == "on" and count_in > 0 and count_out > 0, (path, state, count_in, count_out)


def test_python_websockets_both_directions(pubsub, monkeypatch):
    from websockets.asyncio.client import connect as ws_connect
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    wire = {}  # id(extension instance) -> {"in": [rsv1 of received data frames], "out": [rsv1 sent]}
    original_decode, original_encode = PerMessageDeflate.decode, PerMessageDeflate.encode

    def decode(self, frame, *, max_size=None):
        if frame.opcode.value in (TEXT, BINARY_OP):
            wire.setdefault(id(self), {"in": [], "out": []})["in"].append(frame.rsv1)
        return original_decode(self, frame, max_size=max_size)

    def encode(self, frame):
        encoded = original_encode(self, frame)
        if encoded.opcode.value in (TEXT, BINARY_OP):
            wire.setdefault(id(self), {"in": [], "out": []})["out"].append(encoded.rsv1)
        return encoded

    monkeypatch.setattr(PerMessageDeflate, "decode", decode)
    monkeypatch.setattr(PerMessageDeflate, "encode", encode)

    server = pubsub()
    both = token(read=["py"], write=["py"])
    data_a, data_b = compressible(1500, "from a: "), compressible(2500, "from b: ")

    async def scenario():
        async with ws_connect(f"ws://127.0.0.1:{server.port}/py-a?auth={quote(both, safe='')}") as a, \
                ws_connect(f"ws://127.0.0.1:{server.port}/py-b",
                           additional_headers={"Authorization": "Bearer " + both}) as b:
            for ws in (a, b):
                assert ws.response.headers.get_all("Sec-WebSocket-Extensions") == [PLAIN]
                assert [type(e) for e in ws.protocol.extensions] == [PerMessageDeflate]
            await a.send(json.dumps({"channel": "py", "data": data_a}))
            got_b = await asyncio.wait_for(b.recv(decode=False), 10)
            await b.send(json.dumps({"channel": "py", "data": data_b}))
            got_a = await asyncio.wait_for(a.recv(decode=False), 10)
            return got_a, got_b, [wire.get(id(ws.protocol.extensions[0])) for ws in (a, b)]

    got_a, got_b, (wire_a, wire_b) = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert_delivery(got_b, "py", data_a)
    assert_delivery(got_a, "py", data_b)
    # Client side: each sent one compressed message and received one (RSV1 set on the wire).
    assert wire_a == {"in": [True], "out": [True]}, wire_a
    assert wire_b == {"in": [True], "out": [True]}, wire_b
    assert_compressed_both_ways(server, ["/py-a", "/py-b"])



def test_node_ws_both_directions(pubsub, node):
    server = pubsub()
    both = token(read=["node"], write=["node"])
    # Both at least ws's default threshold (1024 bytes), so ws would compress them under any parameters.
    data_a, data_b = compressible(1500, "node a: "), compressible(3000, "node b: ")
    run = subprocess.run(
        [node, str(NODE_SCRIPT), f"ws://127.0.0.1:{server.port}/node-a?auth={quote(both, safe='')}",
         f"ws://127.0.0.1:{server.port}/node-b", "Bearer " + both, "node", data_a, data_b],
        env=node_env(), capture_output=True, text=True, timeout=30)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no summary (exit {run.returncode}): {run.stdout!r} {run.stderr!r}"
    summary = json.loads(lines[-1])
    assert run.returncode == 0 and summary["ok"], (summary, run.stderr[-2000:])
    for name in ("a", "b"):
        side = summary[name]
        assert side["extensions"] == PLAIN, side
        assert side["sentCompressed"] == 1 and side["sentPlain"] == 0, side
        assert side["receivedCompressed"] == 1, side
        assert side["closeCode"] == 1000, side
    assert_compressed_both_ways(server, ["/node-a", "/node-b"])


def test_chromium_both_directions(pubsub):
    server = pubsub()
    both = token(read=["browser"], write=["browser"])
    result = chromium_exchange(server.port, both, "browser")
    outcome = result.split()
    assert outcome[0] == "ok", result
    squeezed = PLAIN.replace(" ", "")
    assert outcome[1:] == [f"ext_a={squeezed}", f"ext_b={squeezed}"], result
    # The server's view: both of the browser's connections negotiated deflate and compressed both ways.
    assert_compressed_both_ways(server, ["/browser-a", "/browser-b"])
    refused = [line for line in server.log_text().splitlines() if "handshake refused" in line]
    assert refused == []  # the page's `Origin: null` is fine with CHECK_ORIGIN off


def test_philote_client_listener_inflates(pubsub):
    server = pubsub()
    env = {"PATH": os.environ.get("PATH", ""), "SECRET": SECRET}
    listener = subprocess.Popen(
        [str(BINARY), "client", "--listen", "--verbose", "--channel", "c", "--token", token(read=["c"]),
         "--url", f"ws://127.0.0.1:{server.port}/cli-listen"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # --verbose says "connected" once the upgrade (and the negotiation) is done.
        line = read_line_with_deadline(listener.stderr, 10)
        assert line.startswith(b"philote client: connected to "), line
        data = compressible(3000, "for the listener: ")
        sent = subprocess.run(
            [str(BINARY), "client", "--channel", "c", "--url", f"ws://127.0.0.1:{server.port}/cli-pub"],
            input=(data + "\n").encode(), capture_output=True, env=env, timeout=15)
        assert sent.returncode == 0, sent.stderr
        printed = read_line_with_deadline(listener.stdout, 10)
        assert_delivery(printed, "c", data)  # printed exactly as the server sent it, newline included
        listener.send_signal(signal.SIGINT)
        assert listener.wait(10) == 0
        assert listener.stdout.read() == b""
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    (_, state, count_in, count_out), = wait_closed(server, "/cli-listen")
    assert (state, count_out) == ("on", 1), (state, count_in, count_out)
    assert wait_closed(server, "/cli-pub")[0][1] == "on"


def read_line_with_deadline(stream, timeout):
    """One line from a child's pipe, or fail after `timeout` s (select on the pipe; no blocking forever)."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        fd = stream.fileno()
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no complete line within {timeout} s: {data!r}"
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 1)
            if not chunk:
                break
            data += chunk
    finally:
        selector.close()
    return data

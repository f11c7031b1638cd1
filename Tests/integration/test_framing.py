"""Framing, fragmentation, UTF-8, close and ping/pong rules of RFC 6455 sections 5 to 7 over a raw socket:
one test per rule, each asserting the exact close code the server sends."""
import os
import select
import socket
import struct
import time

import pytest

from wsraw import Closed, RawClient, encode_frame

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def connect(port, timeout=5.0):
    client = RawClient(port, timeout=timeout)
    client.handshake()
    return client


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def send_quietly(client, data):
    """Sends bytes the server may legitimately stop reading (it may close as soon as it sees the error)."""
    try:
        client.send(data)
    except OSError:
        pass


def assert_echoes(client, payload=b"still working", opcode=TEXT):
    client.send_frame(opcode, payload)
    assert client.recv_message() == (opcode, payload)


@pytest.fixture
def small_server(start_server):
    """An echo server with MAX_MESSAGE_SIZE=1000."""
    server = start_server("echo", MAX_MESSAGE_SIZE="1000", CLOSE_TIMEOUT="1", LOGLEVEL="debug")
    yield server
    assert server.stop() == 0, server.log_text()


# Section 5.1 / 5.2: masking, RSV bits, opcodes, lengths


def test_unmasked_client_frame_is_1002(echo_server):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"hello", mask=False)
    client.expect_close(1002)


def test_unmasked_control_frame_is_1002(echo_server):
    client = connect(echo_server.port)
    client.send_frame(PING, b"hello", mask=False)
    client.expect_close(1002)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["RSV1", "RSV2", "RSV3"])
def test_rsv_bit_set_is_1002(echo_server, rsv):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"hello", rsv=rsv)
    client.expect_close(1002)


def test_rsv_bit_on_control_frame_is_1002(echo_server):
    client = connect(echo_server.port)
    client.send_frame(PING, b"hello", rsv=4)
    client.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_is_1002(echo_server, opcode):
    client = connect(echo_server.port)
    client.send_frame(opcode, b"payload")
    client.expect_close(1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE], ids=["ping", "pong", "close"])
def test_control_frame_with_126_byte_payload_is_1002(echo_server, opcode):
    client = connect(echo_server.port)
    payload = close_payload(1000, b"r" * 124) if opcode == CLOSE else b"p" * 126
    assert len(payload) == 126
    send_quietly(client, encode_frame(opcode, payload))
    client.expect_close(1002)


@pytest.mark.parametrize("opcode", [PING, PONG, CLOSE], ids=["ping", "pong", "close"])
def test_fragmented_control_frame_is_1002(echo_server, opcode):
    client = connect(echo_server.port)
    payload = close_payload(1000) if opcode == CLOSE else b"frag"
    client.send_frame(opcode, payload, fin=False)
    client.expect_close(1002)


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_a_started_message_is_1002(echo_server, fin):
    client = connect(echo_server.port)
    client.send_frame(CONT, b"orphan", fin=fin)
    client.expect_close(1002)


def test_continuation_after_a_completed_message_is_1002(echo_server):
    client = connect(echo_server.port)
    assert_echoes(client, b"complete")
    client.send_frame(CONT, b"orphan")
    client.expect_close(1002)


@pytest.mark.parametrize("first,second", [(TEXT, TEXT), (TEXT, BINARY), (BINARY, TEXT), (BINARY, BINARY)])
def test_new_data_frame_inside_a_fragmented_message_is_1002(echo_server, first, second):
    client = connect(echo_server.port)
    client.send_frame(first, b"part one", fin=False)
    client.send_frame(second, b"intruder")
    client.expect_close(1002)


def test_64_bit_length_with_top_bit_set_is_1002(echo_server):
    client = connect(echo_server.port)
    header = struct.pack("!BBQ", 0x80 | BINARY, 0x80 | 127, (1 << 63) | 5) + os.urandom(4)
    send_quietly(client, header + b"hello")
    client.expect_close(1002)


# Section 8.1: UTF-8


@pytest.mark.parametrize("payload", [
    b"\xff",
    b"abc\xfe",
    b"\xc0\x80",  # overlong NUL
    b"\xe0\x80\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # UTF-16 surrogate U+D800
    b"\xed\xbf\xbf",  # surrogate U+DFFF
    b"\xf4\x90\x80\x80",  # U+110000, above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\x80",  # lone continuation byte
    b"caf\xc3",  # truncated at the end of the only frame
    b"\xe2\x82",
], ids=["ff", "fe-after-ascii", "overlong-c0-80", "overlong-e0", "surrogate-d800", "surrogate-dfff",
        "above-10ffff", "f5", "lone-continuation", "truncated-2", "truncated-3"])
def test_invalid_utf8_in_text_frame_is_1007(echo_server, payload):
    client = connect(echo_server.port)
    client.send_frame(TEXT, payload)
    client.expect_close(1007)


def test_binary_frame_with_invalid_utf8_is_echoed(echo_server):
    client = connect(echo_server.port)
    assert_echoes(client, b"\xff\xc0\x80\xed\xa0\x80", opcode=BINARY)


@pytest.mark.parametrize("parts", [
    [b"ab\xed", b"\xa0\x80cd"],  # surrogate split 1|2
    [b"\xf4", b"\x90\x80\x80"],  # above U+10FFFF split 1|3
    [b"ok", b"\xc0", b"\x80"],  # overlong across three frames
    [b"\xe2\x82", b"\x28"],  # a continuation byte expected, ASCII found
], ids=["surrogate-1-2", "above-max-1-3", "overlong-three-frames", "bad-continuation"])
def test_invalid_utf8_split_across_fragments_is_1007(echo_server, parts):
    client = connect(echo_server.port)
    data = b"".join(
        encode_frame(TEXT if index == 0 else CONT, part, fin=index == len(parts) - 1)
        for index, part in enumerate(parts))
    send_quietly(client, data)
    client.expect_close(1007)


@pytest.mark.parametrize("tail", [b"\xf0\x9f\x98", b"\xe2", b"\xc3"])
def test_truncated_sequence_at_end_of_final_fragment_is_1007(echo_server, tail):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"hello ", fin=False)
    client.send_frame(CONT, b"world " + tail)
    client.expect_close(1007)


def test_truncated_sequence_completed_by_empty_final_fragment_is_1007(echo_server):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"\xf0\x9f", fin=False)
    client.send_frame(CONT, b"")
    client.expect_close(1007)


def test_invalid_utf8_fails_fast_before_the_message_ends(echo_server):
    """The first fragment carries an invalid byte; the rest of the message is never sent."""
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"ok so far \xff", fin=False)
    client.expect_close(1007)


def test_invalid_utf8_in_a_later_fragment_fails_fast(echo_server):
    client = connect(echo_server.port)
    client.send_frame(TEXT, "κόσμε ".encode(), fin=False)
    client.send_frame(CONT, b"\xed\xa0\x80", fin=False)
    client.expect_close(1007)


@pytest.mark.parametrize("split", [1, 2, 3], ids=["1|3", "2|2", "3|1"])
def test_valid_4_byte_char_split_across_fragments_echoes(echo_server, split):
    client = connect(echo_server.port)
    char = "😀".encode()
    assert len(char) == 4
    client.send_frame(TEXT, b"a" + char[:split], fin=False)
    client.send_frame(CONT, char[split:] + b"z")
    assert client.recv_message() == (TEXT, b"a" + char + b"z")


def test_valid_multibyte_text_byte_per_fragment_echoes(echo_server):
    client = connect(echo_server.port)
    text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 😀 \U0010ffff".encode()
    frames = [encode_frame(TEXT if i == 0 else CONT, text[i:i + 1], fin=i == len(text) - 1) for i in range(len(text))]
    client.send(b"".join(frames))
    assert client.recv_message() == (TEXT, text)


def test_empty_fragments_assemble(echo_server):
    client = connect(echo_server.port)
    client.send(encode_frame(TEXT, b"", fin=False) + encode_frame(CONT, b"abc", fin=False) + encode_frame(CONT, b""))
    assert client.recv_message() == (TEXT, b"abc")
    assert_echoes(client, b"", opcode=BINARY)


# MAX_MESSAGE_SIZE


def test_single_frame_declaring_too_large_length_is_1009(small_server):
    client = connect(small_server.port)
    header = struct.pack("!BBH", 0x80 | BINARY, 0x80 | 126, 1001) + os.urandom(4)
    client.send(header)  # the payload is never sent: the header alone is enough
    client.expect_close(1009)


def test_single_frame_declaring_huge_64_bit_length_is_1009(small_server):
    client = connect(small_server.port)
    header = struct.pack("!BBQ", 0x80 | TEXT, 0x80 | 127, 1 << 40) + os.urandom(4)
    client.send(header)
    client.expect_close(1009)


def test_fragments_exceeding_max_message_size_are_1009(small_server):
    client = connect(small_server.port)
    client.send_frame(BINARY, b"x" * 600, fin=False)
    send_quietly(client, encode_frame(CONT, b"y" * 401))
    client.expect_close(1009)


def test_many_small_fragments_exceeding_max_message_size_are_1009(small_server):
    client = connect(small_server.port)
    frames = encode_frame(TEXT, b"a" * 100, fin=False) + b"".join(encode_frame(CONT, b"b" * 100, fin=False)
                                                                  for _ in range(20))
    send_quietly(client, frames)
    client.expect_close(1009)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_exactly_max_message_size_is_accepted(small_server, opcode):
    client = connect(small_server.port)
    payload = b"m" * 1000
    assert_echoes(client, payload, opcode=opcode)
    client.send_frame(opcode, payload[:400], fin=False)
    client.send_frame(CONT, payload[400:700], fin=False)
    client.send_frame(CONT, payload[700:])
    assert client.recv_message() == (opcode, payload)


def test_control_frames_do_not_count_toward_message_size(small_server):
    client = connect(small_server.port)
    client.send_frame(TEXT, b"a" * 950, fin=False)
    client.send_frame(PING, b"p" * 125)
    client.send_frame(CONT, b"b" * 50)
    assert client.recv_frame() == (True, 0, PONG, b"p" * 125)
    assert client.recv_message() == (TEXT, b"a" * 950 + b"b" * 50)


# Section 5.5.1 / 7.4: close frames


def test_close_with_1_byte_payload_is_1002(echo_server):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, b"\x03")
    client.expect_close(1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_close_with_invalid_code_is_1002(echo_server, code):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, close_payload(code))
    client.expect_close(1002)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_close_with_valid_code_is_echoed_then_tcp_closed(echo_server, code):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, close_payload(code, b"bye"))
    fin, rsv, opcode, payload = client.recv_frame()
    assert (fin, rsv, opcode) == (True, 0, CLOSE)
    assert struct.unpack("!H", payload[:2])[0] == code
    payload[2:].decode()  # any reason must be UTF-8
    client.expect_eof()


def test_close_with_valid_utf8_reason_is_echoed(echo_server):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, close_payload(1000, "adiós 😀".encode()))
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == CLOSE and payload[:2] == b"\x03\xe8"
    client.expect_eof()


def test_empty_close_is_answered_with_a_close_then_tcp_closed(echo_server):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, b"")
    fin, rsv, opcode, payload = client.recv_frame()
    assert (fin, rsv, opcode) == (True, 0, CLOSE)
    assert payload in (b"", b"\x03\xe8"), payload  # empty, or 1000 (RFC 6455 section 7.4.1)
    client.expect_eof()


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xed\xa0\x80", b"\xc0\x80", b"trunc\xe2\x82"])
def test_close_with_invalid_utf8_reason_is_1007(echo_server, reason):
    client = connect(echo_server.port)
    client.send_frame(CLOSE, close_payload(1000, reason))
    client.expect_close(1007)


def test_close_during_fragmented_message_is_answered(echo_server):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"never finished", fin=False)
    client.send_frame(CLOSE, close_payload(1000))
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == CLOSE and payload[:2] == b"\x03\xe8"
    client.expect_eof()


def test_frames_after_close_are_not_answered(echo_server):
    client = connect(echo_server.port)
    client.send(encode_frame(CLOSE, close_payload(1000)) + encode_frame(TEXT, b"too late")
                + encode_frame(PING, b"too late"))
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == CLOSE and payload[:2] == b"\x03\xe8"
    client.expect_eof()
    assert client.buffer == b""


def test_server_closes_tcp_within_close_timeout_when_client_never_replies(echo_server):
    """echo_server has CLOSE_TIMEOUT=1: after its close frame, the server waits at most about that long."""
    client = connect(echo_server.port, timeout=4.0)
    client.send_frame(TEXT, b"unmasked", mask=False)
    start = time.monotonic()
    client.expect_close(1002, reply=False)  # a socket.timeout (4 s) here means TCP was never closed
    assert time.monotonic() - start < 3.0


# Section 5.5.2 / 5.5.3: ping and pong


@pytest.mark.parametrize("payload", [b"", b"ping!", bytes(range(125))], ids=["empty", "short", "125-bytes"])
def test_ping_is_answered_with_pong_carrying_the_same_payload(echo_server, payload):
    client = connect(echo_server.port)
    client.send_frame(PING, payload)
    assert client.recv_frame() == (True, 0, PONG, payload)
    assert_echoes(client)


def test_ping_between_fragments_is_answered_and_message_assembles(echo_server):
    client = connect(echo_server.port)
    client.send_frame(TEXT, b"Hel", fin=False)
    client.send_frame(PING, b"in the middle")
    client.send_frame(CONT, b"lo, ", fin=False)
    client.send_frame(PONG, b"unsolicited in the middle")
    client.send_frame(CONT, b"world")
    assert client.recv_frame() == (True, 0, PONG, b"in the middle")
    assert client.recv_message() == (TEXT, b"Hello, world")


def test_unsolicited_pong_is_ignored(echo_server):
    client = connect(echo_server.port)
    client.send_frame(PONG, b"nobody asked")
    client.send_frame(PONG, b"")
    client.send_frame(TEXT, b"after pongs")
    assert client.recv_frame() == (True, 0, TEXT, b"after pongs")


def test_many_pings_each_answered_in_order(echo_server):
    client = connect(echo_server.port)
    client.send(b"".join(encode_frame(PING, b"%d" % i) for i in range(50)))
    for i in range(50):
        assert client.recv_frame() == (True, 0, PONG, b"%d" % i)


# Idle pings (PING_INTERVAL / PONG_TIMEOUT)


@pytest.fixture
def pinging_server(start_server):
    server = start_server("echo", PING_INTERVAL="0.3", PONG_TIMEOUT="0.5", CLOSE_TIMEOUT="1", LOGLEVEL="debug")
    yield server
    assert server.stop() == 0, server.log_text()


def test_idle_client_answering_pings_stays_connected(pinging_server):
    client = connect(pinging_server.port)
    pings = 0
    deadline = time.monotonic() + 1.5
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([client.sock], [], [], remaining)
        if not readable and not client.buffer:
            continue
        fin, rsv, opcode, payload = client.recv_frame()
        assert opcode == PING, f"unexpected frame {opcode} {payload!r} from the server"
        client.send_frame(PONG, payload)
        pings += 1
    assert pings >= 2, f"only {pings} pings in 1.5 s with PING_INTERVAL=0.3"
    assert_echoes(client, b"still connected")


def test_idle_client_ignoring_pings_is_dropped(pinging_server):
    client = connect(pinging_server.port, timeout=4.0)
    start = time.monotonic()
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == PING
    try:
        while True:
            fin, rsv, opcode, payload = client.recv_frame()
            if opcode == CLOSE:
                assert struct.unpack("!H", payload[:2])[0] == 1001, payload
                client.expect_eof()
                break
            assert opcode == PING, f"unexpected frame {opcode}"
    except (Closed, ConnectionResetError):
        pass  # dropped without a close frame, which is allowed too
    # PING_INTERVAL + PONG_TIMEOUT + CLOSE_TIMEOUT = 1.8 s at most, with slack.
    assert time.monotonic() - start < 3.5


def test_active_client_sees_no_ping_needed_to_stay_open(pinging_server):
    """Traffic from the client counts as liveness: a client that keeps sending messages is never dropped
    even if it ignores pings."""
    client = connect(pinging_server.port)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        client.send_frame(TEXT, b"busy")
        assert client.recv_message(answer_pings=False) == (TEXT, b"busy")
        select.select([client.sock], [], [], 0.1)  # pace the loop; nothing depends on it


# Partial and chunked delivery


def test_frame_header_split_across_sends_echoes(echo_server):
    client = connect(echo_server.port)
    payload = b"h" * 300  # 16-bit extended length: a 2 + 2 + 4 byte header
    frame = encode_frame(TEXT, payload)
    client.send_in_pieces(frame, [1, 1, 1, 1, 1, 2, 1, 5])
    assert client.recv_message() == (TEXT, payload)


def test_64_bit_length_header_split_across_sends_echoes(start_server):
    server = start_server("echo", MAX_MESSAGE_SIZE="262144")
    client = connect(server.port)
    payload = os.urandom(70000)  # 64-bit extended length: a 2 + 8 + 4 byte header
    frame = encode_frame(BINARY, payload)
    client.send_in_pieces(frame, [1, 3, 4, 3, 2, 1])
    assert client.recv_message() == (BINARY, payload)
    client.send_frame(CLOSE, close_payload(1000))
    assert client.recv_frame()[2] == CLOSE
    client.expect_eof()
    assert server.stop() == 0


def test_large_frame_sent_in_small_chunks_echoes(start_server):
    server = start_server("echo", MAX_MESSAGE_SIZE="262144")
    client = connect(server.port, timeout=10.0)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = os.urandom(200 * 1024)
    frame = encode_frame(BINARY, payload)
    for offset in range(0, len(frame), 997):
        client.send(frame[offset:offset + 997])
    assert client.recv_message() == (BINARY, payload)
    text = ("é" * 100 * 1024).encode()  # 200 KiB of 2-byte chars, chunks split them
    frame = encode_frame(TEXT, text)
    for offset in range(0, len(frame), 1001):
        client.send(frame[offset:offset + 1001])
    assert client.recv_message() == (TEXT, text)
    client.send_frame(CLOSE, close_payload(1000))
    assert client.recv_frame()[2] == CLOSE
    client.expect_eof()
    assert server.stop() == 0


def test_several_frames_in_one_send_all_echo(echo_server):
    client = connect(echo_server.port)
    messages = [(TEXT, b"one"), (BINARY, b"\x00\x01"), (TEXT, b""), (TEXT, "ü".encode() * 200)]
    client.send(b"".join(encode_frame(opcode, payload) for opcode, payload in messages))
    for message in messages:
        assert client.recv_message() == message


def test_server_still_serves_after_protocol_errors(echo_server):
    for bad, code in [(encode_frame(TEXT, b"x", mask=False), 1002), (encode_frame(3, b""), 1002),
                      (encode_frame(TEXT, b"\xff"), 1007), (encode_frame(CLOSE, b"\x03"), 1002),
                      (struct.pack("!BBQ", 0x82, 0xFF, 1 << 63), 1002)]:
        client = connect(echo_server.port)
        send_quietly(client, bad)
        client.expect_close(code)
        client.close()
    assert_echoes(connect(echo_server.port))

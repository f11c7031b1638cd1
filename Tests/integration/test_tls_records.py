"""The TLS record layer after the handshake, driven by a client that misbehaves (tls_misbehaving.py, on tlslite-ng).

Every test runs against both record layers the server has (`TLS_RECORD_LAYER`): `builtin`, where OpenSSL hands
over the traffic keys after the handshake and the server seals and opens records itself, and `openssl`, where
OpenSSL keeps the connection (SSL_read/SSL_write). OpenSSL is the oracle: each misbehaviour must get the same
alert from both, and the alerts asserted here are the ones the openssl layer sends. Where OpenSSL has no limit
and the built-in layer has one, the limit is tested on the built-in layer alone (said where it happens).

Covered: every suite with messages several records long both ways and close_notify; the client's TLS 1.2
Finished in fragments or after an empty record; replayed records; max_fragment_length (s_client -maxfraglen and
tlslite-ng); KeyUpdate in fragments, with and without update_requested; malformed alerts and misplaced handshake
fragments; a fatal alert that must reach a client that keeps sending; the caps on record size, empty records,
warnings, renegotiation attempts and KeyUpdates; and the key exchange groups.
"""
import re
import subprocess
import threading
import time

import pytest

from test_tls import install, pki  # noqa: F401  (pki is a fixture)
from tls_misbehaving import (
    ALERT, APPLICATION_DATA, BAD_RECORD_MAC, CLIENT_HELLO, DECODE_ERROR, FATAL, HANDSHAKE, HANDSHAKE_FAILURE,
    ILLEGAL_PARAMETER, NO_RENEGOTIATION, PROTOCOL_VERSION, RECORD_OVERFLOW, UNEXPECTED_MESSAGE, USER_CANCELED,
    WARNING, CLOSE_NOTIFY,
    HandshakeRefused, MisbehavingClient, alert_name, handshake_message, key_update,
)
from tls_misbehaving import SUITES as CLIENT_SUITES
from wsraw import Closed, encode_frame, upgrade_request

LAYERS = ["builtin", "openssl"]
TIMEOUT = 5.0
MAX_PLAINTEXT = 1 << 14

# The suites the server allows (README: TLS 1.3's three; for TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305).
# The test PKI's default certificate (pki.a) has an RSA key, which the ECDHE-RSA suites use; the ECDHE-ECDSA ones
# run on certificate B (EC P-256).
SUITES = [
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305"),
]
VERSIONS = ["TLSv1.2", "TLSv1.3"]


@pytest.fixture(params=LAYERS)
def layer(request):
    return request.param


@pytest.fixture
def start_echo(start_server, pki, tmp_path, layer):
    """start_echo(pair=None) -> an echo server (every WebSocket message back to its sender) on wss:// with the
    test PKI's certificate A (RSA) or `pair`, with this test's record layer; each must exit 0 on SIGTERM after
    the test."""
    started = []

    def start(pair=None):
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir()
        certificate, key = install(directory, *(pair or pki.a))
        server = start_server("echo", TLS_CERT_FILE=str(certificate), TLS_KEY_FILE=str(key), TLS_RECORD_LAYER=layer)
        started.append(server)
        # The layer asked for is the one serving (the built-in layer falls back to OpenSSL's when its hand-over
        # check fails at start-up, which would make the built-in tests test OpenSSL).
        started_line = next(line for line in server.log_text().splitlines() if 'msg="philote started"' in line)
        assert f"tls_records={layer}" in started_line, started_line
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.log_text()[-3000:]


@pytest.fixture
def echo(start_echo):
    return start_echo()


@pytest.fixture
def connect():
    """connect(server, version, **options) -> a MisbehavingClient after the TLS handshake; all closed afterwards."""
    clients = []

    def make(server, version="TLSv1.3", upgrade=True, **options):
        options.setdefault("timeout", TIMEOUT)
        client = MisbehavingClient(server.port, version, **options)
        clients.append(client)
        if upgrade:
            client.ws_upgrade()
        return client

    yield make
    for client in clients:
        client.close()


def frame_of_size(size, fill=b"q"):
    """A masked binary WebSocket frame of exactly `size` bytes (header included): (frame, payload)."""
    payload_length = size - 6 if size - 6 <= 125 else size - 8
    assert 126 <= payload_length <= 0xFFFF or 0 <= payload_length <= 125, size
    payload = (fill * payload_length)[:payload_length]
    frame = encode_frame(0x2, payload)
    assert len(frame) == size
    return frame, payload


def round_trip(client, payload=b"ping after the misbehaviour", opcode=0x2):
    client.send_frame(opcode, payload)
    assert client.recv_message() == (opcode, payload)


def still_serves(server, version="TLSv1.3"):
    """A fresh, well-behaved client is served: the misbehaviour hurt no one else."""
    client = MisbehavingClient(server.port, version, timeout=TIMEOUT)
    try:
        client.ws_upgrade()
        round_trip(client, b"another client")
    finally:
        client.close()


def expect_fatal(client, description):
    """The server's answer is the fatal alert `description`, then the end of the TCP stream."""
    got = client.outcome(timeout=TIMEOUT)
    assert got == "alert:" + alert_name(description), f"expected fatal {alert_name(description)}, got {got}"
    assert client.expect_end(timeout=TIMEOUT) in ("eof", "reset")


def expect_alive(client, payload=b"still here"):
    try:
        round_trip(client, payload)
    except Closed:
        raise AssertionError(f"the connection ended: {client.last_event!r}") from None


# --- 1. the normal paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version,suite", SUITES)
def test_every_suite_carries_messages_several_records_long_and_close_notify(start_echo, pki, connect, version, suite):
    """WebSocket upgrade; 40,000-byte messages both ways (three records each way) and small ones; then the
    client's close_notify is answered with the server's close_notify and the end of the stream."""
    server = start_echo(pki.b if "ECDSA" in suite else pki.a)
    client = connect(server, version, cipher=suite)
    assert client.suite == CLIENT_SUITES[suite][2], client.suite_name
    assert client.version == ((3, 4) if version == "TLSv1.3" else (3, 3))
    big = bytes(range(256)) * 156 + b"tail" * 16  # 40,000 bytes
    assert len(big) == 40000
    for opcode, payload in ((0x2, big), (0x1, b"small text"), (0x2, big[::-1]), (0x1, b"x" * 125)):
        start = len(client.records_received)
        client.send_frame(opcode, payload)
        assert client.recv_message() == (opcode, payload)
        data_records = [r for r in client.records_received[start:] if r[0] == APPLICATION_DATA]
        assert all(length <= MAX_PLAINTEXT for _, length, _ in data_records), data_records
        if len(payload) == 40000:
            assert len(data_records) >= 3, data_records
    client.send_close_notify()
    assert client.outcome() == "warning:close_notify"
    assert client.expect_end() == "eof"


# --- 2. TLS 1.2 handshake records in pieces; replays ----------------------------------------------------------

FINISHED_CUTS = {
    "split over two records": lambda message: [message[:6], message[6:]],
    "header and body in two records": lambda message: [message[:4], message[4:]],
    "one byte per record": lambda message: [message[i:i + 1] for i in range(len(message))],
    "empty record between ChangeCipherSpec and Finished": lambda message: [b"", message],
    "empty records around a split Finished": lambda message: [b"", message[:3], b"", message[3:]],
}


@pytest.mark.parametrize("cut", sorted(FINISHED_CUTS))
def test_tls12_client_finished_in_pieces_then_the_connection_works(echo, connect, cut):
    """The server counts every record under the new keys, however the Finished came: the next records open."""
    client = connect(echo, "TLSv1.2", finished_fragments=FINISHED_CUTS[cut])
    round_trip(client, b"after a Finished " + cut.encode())
    round_trip(client, b"y" * 20000)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("which", ["the Finished record", "an earlier application data record"])
def test_a_replayed_client_record_is_refused_with_bad_record_mac(echo, connect, version, which):
    client = connect(echo, version, upgrade=False)
    if which == "the Finished record":
        # TLS 1.2: the handshake record under the new keys; TLS 1.3: the (only) record under the handshake keys.
        replay = client.handshake_record(HANDSHAKE if version == "TLSv1.2" else APPLICATION_DATA)
        client.ws_upgrade()
    else:
        replay = client.seal(APPLICATION_DATA, upgrade_request("/", host=f"localhost:{echo.port}"))
        client.send_raw(replay)
        status, _, _ = client.read_http_response()
        assert status == 101
    round_trip(client)
    client.send_raw(replay)
    expect_fatal(client, BAD_RECORD_MAC)
    still_serves(echo, version)


# --- 3. max_fragment_length (RFC 6066) --------------------------------------------------------------------------


def s_client_exchange(server, pki, flag, payload, msgfile):
    """`openssl s_client -maxfraglen 512` upgrades and sends a masked binary frame with `payload` (echoed); returns
    (exit status, its output, whether the echo arrived, the plaintext length of every record the server sent).
    The record headers come from -msg, written to `msgfile` so that stdout holds only the data."""
    process = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost", "-CAfile",
         str(pki.ca), flag, "-maxfraglen", "512", "-msg", "-msgfile", str(msgfile), "-nocommands"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = bytearray()
    reader = threading.Thread(target=lambda: [output.extend(chunk) for chunk in
                                              iter(lambda: process.stdout.read1(65536), b"")], daemon=True)
    reader.start()

    def wait_for(pattern, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and process.poll() is None:
            if re.search(pattern, bytes(output)):
                return True
            time.sleep(0.02)
        return bool(re.search(pattern, bytes(output)))

    try:
        assert wait_for(rb"Verify return code: 0", 10), bytes(output[-2000:]).decode("latin-1")
        process.stdin.write(upgrade_request("/", host=f"localhost:{server.port}"))
        process.stdin.flush()
        assert wait_for(rb"HTTP/1.1 101", 10), bytes(output[-2000:]).decode("latin-1")
        process.stdin.write(encode_frame(0x2, payload))
        process.stdin.flush()
        received = wait_for(re.escape(payload), 10)
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)
    text = bytes(output).decode("latin-1")
    messages = msgfile.read_text(errors="replace")
    cipher = re.search(r"Cipher is (\S+)", text).group(1)
    tls13 = flag == "-tls1_3"
    overhead = 16 + (1 if tls13 else 0) + (8 if not tls13 and "GCM" in cipher else 0)
    headers = re.findall(r"^<<< [^\n]*RecordHeader \[length 0005\]\n\s+([0-9a-f ]+)$", messages, re.M)
    lengths = [int("".join(header.split()[3:5]), 16) - overhead for header in headers]
    return process.returncode, text + messages, received, lengths


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
def test_s_client_maxfraglen_512_receives_a_message_of_several_kb(echo, pki, tmp_path, flag):
    """s_client negotiates max_fragment_length 512 and aborts with record_overflow on any longer record: the
    echo of a 6,000-byte message must reach it in records of at most 512 bytes of plaintext."""
    payload = bytes(b"0123456789abcdef"[i % 16] for i in range(6000))
    status, output, received, lengths = s_client_exchange(echo, pki, flag, payload, tmp_path / "msg.txt")
    assert "record_overflow" not in output and "data length too long" not in output, output[-1500:]
    assert received, "the echo did not reach s_client: " + output[-1500:]
    assert status == 0, output[-1500:]
    assert len(lengths) >= 12 and max(lengths) <= 512, lengths


@pytest.mark.parametrize("version", VERSIONS)
def test_max_fragment_length_512_bounds_every_record_the_server_sends(echo, connect, version):
    client = connect(echo, version, max_fragment_length=512)
    assert client.server_extension(1) is not None, "the server did not accept max_fragment_length"
    payload = b"m" * 5000
    start = len(client.records_received)
    client.send(encode_frame(0x2, payload), record_size=512)
    assert client.recv_message() == (0x2, payload)
    lengths = [length + padding for _, length, padding in client.records_received[start:]]
    assert len(lengths) >= 10 and max(lengths) <= 512, lengths


@pytest.mark.parametrize("version", VERSIONS)
def test_a_client_record_over_the_negotiated_max_fragment_length_is_record_overflow(echo, connect, version):
    client = connect(echo, version, max_fragment_length=512)
    frame, payload = frame_of_size(512)  # the limit
    client.send_record(APPLICATION_DATA, frame)
    assert client.recv_message() == (0x2, payload)
    client.send_record(APPLICATION_DATA, frame_of_size(513)[0])
    expect_fatal(client, RECORD_OVERFLOW)
    still_serves(echo, version)


# --- 4. TLS 1.3 KeyUpdate in pieces -----------------------------------------------------------------------------

KEY_UPDATE_CUTS = {"after its type": [1], "inside its length": [2], "after its header": [4],
                   "three records": [1, 4]}


@pytest.mark.parametrize("requested", [False, True], ids=["update_not_requested", "update_requested"])
@pytest.mark.parametrize("cut", sorted(KEY_UPDATE_CUTS))
def test_tls13_key_update_split_across_records_is_accepted(echo, connect, cut, requested):
    client = connect(echo, "TLSv1.3")
    round_trip(client, b"before")
    client.send_key_update(requested, fragments=KEY_UPDATE_CUTS[cut])
    round_trip(client, b"after the key update " * 100)
    # update_requested: the server updated its own keys (its KeyUpdate, then the echo under the new keys).
    assert client.key_updates_received == (1 if requested else 0)
    client.send_key_update(requested)
    round_trip(client, b"after a second one")
    assert client.key_updates_received == (2 if requested else 0)


# --- 5. alerts for malformed records ---------------------------------------------------------------------------


def test_tls13_empty_alert_record_is_unexpected_message(echo, connect):
    """Inner content type alert, no content (RFC 8446 section 5.4: only application data may be empty)."""
    client = connect(echo, "TLSv1.3")
    client.send_record(ALERT, b"")
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo)


@pytest.mark.parametrize("rest", [key_update(False)[:2], key_update(False), b"\x17"],
                         ids=["part of another KeyUpdate", "another KeyUpdate", "one more byte"])
def test_tls13_key_update_not_at_the_end_of_its_record_is_unexpected_message(echo, connect, rest):
    """A KeyUpdate changes the keys, so it must end its record (RFC 8446 section 5.1)."""
    client = connect(echo, "TLSv1.3")
    client.send_record(HANDSHAKE, key_update(False) + rest)
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo)


def test_tls13_key_update_fragment_then_application_data_is_unexpected_message(echo, connect):
    """Handshake messages may not be interleaved with other record types (RFC 8446 section 5.1)."""
    client = connect(echo, "TLSv1.3")
    message = key_update(False)
    client.send_raw(client.seal(HANDSHAKE, message[:2]) + client.seal(APPLICATION_DATA, encode_frame(0x1, b"hi")) +
                    client.seal(HANDSHAKE, message[2:]))
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo)


# What the openssl record layer sends for these (found by running it); the built-in layer must send the same.
ODD_RECORDS = {
    # Two warning alerts in one TLS 1.2 record.
    "two alerts in one TLS 1.2 record": ("TLSv1.2", lambda c: c.seal(ALERT, bytes([1, 112, 1, 112]))),
    # Three bytes of alert.
    "an alert and a half in one TLS 1.2 record": ("TLSv1.2", lambda c: c.seal(ALERT, bytes([1, 112, 1]))),
    # One byte of alert.
    "half an alert in a TLS 1.2 record": ("TLSv1.2", lambda c: c.seal(ALERT, bytes([1]))),
    # Two alerts in one TLS 1.3 record.
    "two alerts in one TLS 1.3 record": ("TLSv1.3", lambda c: c.seal(ALERT, bytes([1, 0, 1, 0]))),
    # A TLS 1.3 record whose legacy record version is 0x0301 (RFC 8446 section 5.1: 0x0303 after the
    # ClientHello), with an additional data that matches it.
    "TLS 1.3 record with legacy version 0x0301":
        ("TLSv1.3", lambda c: c.seal(APPLICATION_DATA, encode_frame(0x1, b"hi"), record_version=b"\x03\x01")),
    "TLS 1.2 record with version 0x0301":
        ("TLSv1.2", lambda c: c.seal(APPLICATION_DATA, encode_frame(0x1, b"hi"), record_version=b"\x03\x01")),
    # A TLS 1.3 record under the outer type handshake.
    "TLS 1.3 record with outer type handshake":
        ("TLSv1.3", lambda c: c.seal(APPLICATION_DATA, encode_frame(0x1, b"hi"), outer_type=HANDSHAKE)),
    # A TLS 1.3 inner plaintext that is only zeros: no content type.
    "TLS 1.3 record without a content type": ("TLSv1.3", lambda c: c.seal_inner(bytes(20))),
    # A TLS 1.3 inner content type that does not exist.
    "TLS 1.3 record of content type 99": ("TLSv1.3", lambda c: c.seal(99, b"hello")),
    # A ChangeCipherSpec after the handshake.
    "TLS 1.2 ChangeCipherSpec after the handshake": ("TLSv1.2", lambda c: c.seal(20, b"\x01")),
    # A KeyUpdate with an undefined request_update value.
    "TLS 1.3 KeyUpdate with request_update 2": ("TLSv1.3", lambda c: c.seal(HANDSHAKE, handshake_message(24, b"\x02"))),
    # A KeyUpdate with a body of two bytes.
    "TLS 1.3 KeyUpdate two bytes long": ("TLSv1.3", lambda c: c.seal(HANDSHAKE, handshake_message(24, b"\x00\x00"))),
    # A KeyUpdate with no body.
    "TLS 1.3 KeyUpdate with an empty body": ("TLSv1.3", lambda c: c.seal(HANDSHAKE, handshake_message(24, b""))),
    # Empty records of other types than application data.
    "empty TLS 1.3 handshake record": ("TLSv1.3", lambda c: c.seal(HANDSHAKE, b"")),
    "empty TLS 1.2 alert record": ("TLSv1.2", lambda c: c.seal(ALERT, b"")),
    # A handshake message other than KeyUpdate after a TLS 1.3 handshake.
    "TLS 1.3 ClientHello after the handshake":
        ("TLSv1.3", lambda c: c.seal(HANDSHAKE, handshake_message(CLIENT_HELLO, bytes(40)))),
    # A TLS 1.2 handshake message other than ClientHello after the handshake (a Finished).
    "TLS 1.2 Finished after the handshake": ("TLSv1.2", lambda c: c.seal(HANDSHAKE, handshake_message(20, bytes(12)))),
}
ODD_RECORD_ALERTS = {  # what the openssl layer (OpenSSL 3.0) sends
    "two alerts in one TLS 1.2 record": UNEXPECTED_MESSAGE,
    "an alert and a half in one TLS 1.2 record": UNEXPECTED_MESSAGE,
    "half an alert in a TLS 1.2 record": UNEXPECTED_MESSAGE,
    "two alerts in one TLS 1.3 record": UNEXPECTED_MESSAGE,
    "TLS 1.3 record with legacy version 0x0301": DECODE_ERROR,
    "TLS 1.2 record with version 0x0301": PROTOCOL_VERSION,
    "TLS 1.3 record with outer type handshake": UNEXPECTED_MESSAGE,
    "TLS 1.3 record without a content type": UNEXPECTED_MESSAGE,
    "TLS 1.3 record of content type 99": UNEXPECTED_MESSAGE,
    "TLS 1.2 ChangeCipherSpec after the handshake": UNEXPECTED_MESSAGE,
    "TLS 1.3 KeyUpdate with request_update 2": ILLEGAL_PARAMETER,
    "TLS 1.3 KeyUpdate two bytes long": ILLEGAL_PARAMETER,  # longer than a KeyUpdate can be: OpenSSL's size check
    "TLS 1.3 KeyUpdate with an empty body": DECODE_ERROR,
    "empty TLS 1.3 handshake record": UNEXPECTED_MESSAGE,
    "empty TLS 1.2 alert record": UNEXPECTED_MESSAGE,
    "TLS 1.3 ClientHello after the handshake": UNEXPECTED_MESSAGE,
    "TLS 1.2 Finished after the handshake": UNEXPECTED_MESSAGE,
}


@pytest.mark.parametrize("kind", sorted(ODD_RECORDS))
def test_odd_records_get_the_alert_openssl_sends(echo, connect, layer, kind):
    version, make = ODD_RECORDS[kind]
    client = connect(echo, version)
    client.send_raw(make(client))
    expect_fatal(client, ODD_RECORD_ALERTS[kind])
    still_serves(echo, version)


# --- 6. the fatal alert reaches a client that keeps sending ----------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fatal_alert_reaches_a_client_that_keeps_sending(echo, connect, version):
    """A corrupted record, then 1 MB more without waiting: the client must read bad_record_mac and then a clean
    end of stream. A server that closed the socket right after writing the alert, with the client's bytes unread,
    would reset the connection (the kernel answers unread data with RST): the client's sends would fail with
    EPIPE/ECONNRESET and its read end with a reset. Several rounds, since the bytes race the close."""
    for attempt in range(5):
        client = connect(echo, version)
        round_trip(client)
        record = bytearray(client.seal(APPLICATION_DATA, encode_frame(0x2, b"z" * 200)))
        record[-3] ^= 0x40  # inside the tag
        client.send_raw(bytes(record))
        sent, error = client.flood(1 << 20)
        level, description = client.expect_alert()
        assert (level, description) == (FATAL, BAD_RECORD_MAC), (attempt, level, alert_name(description))
        end = client.expect_end()
        assert error is None and end == "eof", \
            f"round {attempt}: the connection was reset ({sent} bytes sent, send error {error!r}, end {end})"
        client.close()
    still_serves(echo, version)


# --- 7. caps ---------------------------------------------------------------------------------------------------


def test_tls13_content_over_2_14_is_record_overflow(echo, connect):
    client = connect(echo, "TLSv1.3")
    client.send_raw(client.seal(APPLICATION_DATA, frame_of_size(MAX_PLAINTEXT + 1)[0]))
    expect_fatal(client, RECORD_OVERFLOW)
    still_serves(echo)


@pytest.mark.parametrize("layer", ["builtin"])
@pytest.mark.parametrize("content,padding",
                         [(MAX_PLAINTEXT, 1), (100, MAX_PLAINTEXT - 100 + 1), (0, MAX_PLAINTEXT + 1)],
                         ids=["full content and one byte of padding", "padding beyond the limit",
                              "only padding beyond the limit"])
def test_tls13_inner_plaintext_over_2_14_plus_1_is_record_overflow(echo, connect, content, padding):
    """TLSInnerPlaintext (content, type, zero padding) may be 2^14 + 1 bytes at most (RFC 8446 section 5.4).
    Built-in layer only: OpenSSL 3.0 checks the content alone, after removing the padding, so the openssl layer
    accepts these records (a record of 2^14 + 1 bytes of content it refuses too: the test above)."""
    client = connect(echo, "TLSv1.3")
    body = frame_of_size(content)[0] if content else b""
    client.send_raw(client.seal(APPLICATION_DATA, body, padding=padding))
    expect_fatal(client, RECORD_OVERFLOW)
    still_serves(echo)


@pytest.mark.parametrize("content", [MAX_PLAINTEXT, 100, 0])
def test_tls13_inner_plaintext_of_exactly_2_14_plus_1_is_accepted(echo, connect, content):
    client = connect(echo, "TLSv1.3")
    body, payload = frame_of_size(content) if content else (b"", b"")
    client.send_raw(client.seal(APPLICATION_DATA, body, padding=MAX_PLAINTEXT - content))
    if content:
        assert client.recv_message() == (0x2, payload)
    expect_alive(client)


def test_tls12_plaintext_over_2_14_is_record_overflow(echo, connect):
    client = connect(echo, "TLSv1.2")
    client.send_raw(client.seal(APPLICATION_DATA, frame_of_size(MAX_PLAINTEXT + 1)[0]))
    expect_fatal(client, RECORD_OVERFLOW)
    still_serves(echo, "TLSv1.2")


EMPTY_RECORDS = {
    "TLS 1.2 application data": ("TLSv1.2", [APPLICATION_DATA]),
    "TLS 1.2 handshake": ("TLSv1.2", [HANDSHAKE]),
    "TLS 1.2 handshake and application data": ("TLSv1.2", [HANDSHAKE, APPLICATION_DATA]),
    "TLS 1.3 application data": ("TLSv1.3", [APPLICATION_DATA]),
}


@pytest.mark.parametrize("kind", sorted(EMPTY_RECORDS))
def test_32_empty_records_in_a_row_are_accepted_the_33rd_is_unexpected_message(echo, connect, kind):
    version, types = EMPTY_RECORDS[kind]
    client = connect(echo, version)

    def empty(count):
        return b"".join(client.seal(types[number % len(types)], b"") for number in range(count))

    for _ in range(3):  # the count starts again after a record with content
        client.send_raw(empty(32))
        expect_alive(client)
    client.send_raw(empty(33))
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo, version)


def warnings(client, count, description):
    return b"".join(client.seal(ALERT, bytes([WARNING, description])) for _ in range(count))


# TLS 1.2: any warning but close_notify (unrecognized_name here); TLS 1.3 has one warning, user_canceled.
@pytest.mark.parametrize("version,description", [("TLSv1.2", 112), ("TLSv1.2", USER_CANCELED),
                                                 ("TLSv1.3", USER_CANCELED)])
def test_four_warning_alerts_in_a_row_are_accepted_the_fifth_is_unexpected_message(echo, connect, version,
                                                                                   description):
    client = connect(echo, version)
    for _ in range(3):  # the count starts again after a record that is not an alert
        client.send_raw(warnings(client, 4, description))
        expect_alive(client)
    client.send_raw(warnings(client, 5, description))
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo, version)


# What the server does with an alert from the client (the openssl layer's answers): its own alert(s) and the end of
# the stream, or nothing (the connection goes on: "alive").
CLIENT_ALERTS = {
    "TLS 1.2 fatal handshake_failure": ("TLSv1.2", [(FATAL, HANDSHAKE_FAILURE)], ["eof"]),
    "TLS 1.2 fatal close_notify": ("TLSv1.2", [(FATAL, CLOSE_NOTIFY)], ["eof"]),
    "TLS 1.2 user_canceled then close_notify": ("TLSv1.2", [(WARNING, USER_CANCELED), (WARNING, CLOSE_NOTIFY)],
                                                ["warning:close_notify", "eof"]),
    "TLS 1.2 warnings then close_notify": ("TLSv1.2", [(WARNING, 112)] * 3 + [(WARNING, CLOSE_NOTIFY)],
                                           ["warning:close_notify", "eof"]),
    "TLS 1.2 warning no_renegotiation": ("TLSv1.2", [(WARNING, NO_RENEGOTIATION)], ["alert:handshake_failure", "eof"]),
    "TLS 1.2 warning of an unknown description": ("TLSv1.2", [(WARNING, 200)], ["alive"]),
    "TLS 1.2 alert of level 3": ("TLSv1.2", [(3, 112)], ["alert:illegal_parameter", "eof"]),
    "TLS 1.3 warning unrecognized_name": ("TLSv1.3", [(WARNING, 112)], ["eof"]),
    "TLS 1.3 fatal handshake_failure": ("TLSv1.3", [(FATAL, HANDSHAKE_FAILURE)], ["eof"]),
    "TLS 1.3 fatal close_notify": ("TLSv1.3", [(FATAL, CLOSE_NOTIFY)], ["warning:close_notify", "eof"]),
    "TLS 1.3 user_canceled then close_notify": ("TLSv1.3", [(WARNING, USER_CANCELED), (WARNING, CLOSE_NOTIFY)],
                                                ["warning:close_notify", "eof"]),
}


@pytest.mark.parametrize("kind", sorted(CLIENT_ALERTS))
def test_alerts_from_the_client_are_answered_as_openssl_answers_them(echo, connect, kind):
    version, alerts, expected = CLIENT_ALERTS[kind]
    client = connect(echo, version)
    client.send_raw(b"".join(client.seal(ALERT, bytes(alert)) for alert in alerts))
    if expected == ["alive"]:
        expect_alive(client)
        return
    got = []
    while not got or got[-1] not in ("eof", "reset"):
        event = client.next_event()
        if event.kind == "alert":
            got.append(("alert:" if event.level == FATAL else "warning:") + alert_name(event.description))
        elif event.kind in ("eof", "reset"):
            got.append(event.kind)
    assert got == expected
    still_serves(echo, version)


def renegotiation(client):
    """The ClientHello of this client's own handshake, again, under the traffic keys."""
    hello = client.handshake_records[0][2]
    assert hello[0] == CLIENT_HELLO
    return client.seal(HANDSHAKE, hello)


def expect_warnings(client, count, description):
    for number in range(count):
        event = client.next_event()
        assert (event.kind, event.level, event.description) == ("alert", WARNING, description), (number, event)


RENEGOTIATIONS_IN_A_ROW = 5  # the built-in layer's cap (OpenSSL has none)


def test_tls12_renegotiation_attempts_each_get_a_no_renegotiation_warning(echo, connect):
    client = connect(echo, "TLSv1.2")
    for _ in range(3):  # one at a time, then as many in a row as the built-in layer allows
        client.send_raw(renegotiation(client))
        expect_warnings(client, 1, NO_RENEGOTIATION)
        expect_alive(client)
    client.send_raw(b"".join(renegotiation(client) for _ in range(RENEGOTIATIONS_IN_A_ROW)))
    expect_warnings(client, RENEGOTIATIONS_IN_A_ROW, NO_RENEGOTIATION)
    expect_alive(client)
    still_serves(echo, "TLSv1.2")


@pytest.mark.parametrize("layer", ["builtin"])
def test_tls12_renegotiation_flood_is_capped_by_the_builtin_layer(echo, connect):
    """Built-in layer only: OpenSSL sets no bound on renegotiation attempts (the test below), so the cap is the
    built-in layer's: 5 in a row each get no_renegotiation, the 6th unexpected_message."""
    client = connect(echo, "TLSv1.2")
    for _ in range(2):  # the count starts again after application data
        client.send_raw(b"".join(renegotiation(client) for _ in range(RENEGOTIATIONS_IN_A_ROW)))
        expect_warnings(client, RENEGOTIATIONS_IN_A_ROW, NO_RENEGOTIATION)
        expect_alive(client)
    client.send_raw(b"".join(renegotiation(client) for _ in range(RENEGOTIATIONS_IN_A_ROW + 1)))
    expect_warnings(client, RENEGOTIATIONS_IN_A_ROW, NO_RENEGOTIATION)
    expect_fatal(client, UNEXPECTED_MESSAGE)
    still_serves(echo, "TLSv1.2")


@pytest.mark.parametrize("layer", ["openssl"])
def test_tls12_renegotiation_flood_is_not_bounded_by_openssl(echo, connect):
    """The other side of the test above: the openssl layer warns each of 40 attempts in a row and goes on."""
    client = connect(echo, "TLSv1.2")
    client.send_raw(b"".join(renegotiation(client) for _ in range(40)))
    expect_warnings(client, 40, NO_RENEGOTIATION)
    expect_alive(client)


KEY_UPDATES_IN_A_ROW = 32


@pytest.mark.parametrize("layer", ["builtin"])
def test_tls13_32_key_updates_in_a_row_are_accepted_the_33rd_is_illegal_parameter(echo, connect):
    """Built-in layer only: OpenSSL 3.0 sets no bound on KeyUpdates in a row (the test below; 1,000 in a row pass),
    so the cap and its alert are the built-in layer's (README: illegal_parameter, after OpenSSL's
    SSL_R_TOO_MANY_KEY_UPDATES). The count starts again after application data."""
    client = connect(echo, "TLSv1.3")
    for _ in range(3):
        for _ in range(KEY_UPDATES_IN_A_ROW):
            client.send_key_update(False)
        expect_alive(client)
    for _ in range(KEY_UPDATES_IN_A_ROW + 1):
        client.send_key_update(False)
    expect_fatal(client, ILLEGAL_PARAMETER)
    still_serves(echo)


@pytest.mark.parametrize("layer", ["openssl"])
def test_tls13_key_updates_in_a_row_are_not_bounded_by_openssl(echo, connect):
    """The other side of the test above: the openssl layer takes 100 KeyUpdates in a row, half of them asking
    for an update back, and answers each of those."""
    client = connect(echo, "TLSv1.3")
    for number in range(100):
        client.send_key_update(requested=number % 2 == 1)
    expect_alive(client)
    assert client.key_updates_received == 50


# --- 8. key exchange groups --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("groups", [["ffdhe2048"], ["ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"]],
                         ids=["ffdhe2048", "all ffdhe"])
def test_a_client_offering_only_ffdhe_groups_is_refused(echo, connect, version, groups):
    with pytest.raises(HandshakeRefused) as refused:
        connect(echo, version, groups=groups)
    assert refused.value.alert == HANDSHAKE_FAILURE, refused.value
    still_serves(echo, version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("group", ["X25519", "P-256", "P-384"])
def test_a_client_offering_one_ec_group_is_served(echo, connect, version, group):
    client = connect(echo, version, groups=[group])
    assert client.negotiated_group() == group
    round_trip(client, b"over " + group.encode())

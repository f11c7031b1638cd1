"""Native TLS (wss://) against the real binary. A certificate authority and server certificates are made at test
time with the `openssl` CLI; then: Python `websockets`, Node `ws` and headless Chromium over wss:// (pub/sub, and
echo with messages up to 1 MiB); `openssl s_client` for the protocol, cipher, ALPN, renegotiation and resumption
policy; certificate reload (SIGHUP, the files' modification time, a bad new pair); start-up errors; bad input on
the TLS port (cleartext, garbage, stalled handshakes, truncated and corrupted records) with the descriptor count
back to its baseline afterwards; and a testssl.sh scan (Debian's `testssl.sh` package)."""
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.asyncio.client import connect as ws_connect

from browser_helpers import chromium_exchange
from conftest import BINARY, SANITIZER_ENV, node_env
from pubsub_helpers import DELIVERY, TEXT, UUID4, Reader, close_politely, frame, message_bytes, recv_delivery
from tokens import SECRET, token
from wsraw import Closed, RawClient, upgrade_request

HERE = Path(__file__).resolve().parent
NODE_SCRIPT = HERE / "node_tls_client.js"

RELOADED = 'msg="TLS certificate reloaded"'
REFUSED = 'msg="TLS reload refused, keeping the current certificate"'
TLS_FAILED = 'msg="TLS handshake failed"'
HANDSHAKE_TIMEOUT = 'msg="handshake timeout"'
MIB = 1 << 20


def run(command, timeout=60, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def wait_for(predicate, limit, what):
    """Polls `predicate` until it returns something true; fails after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what}")
        time.sleep(0.05)


# --- a certificate authority and certificates, made with the openssl CLI ------------------------------------

EXTENSIONS = """
[server]
subjectAltName = DNS:localhost, IP:127.0.0.1
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth

[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
"""

# A minimal `openssl ca` configuration: the only way OpenSSL 3.0's CLI sets explicit validity dates.
CA_CONFIG = """
[ca]
default_ca = test_ca

[test_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none

[anything]
commonName = supplied
""" + EXTENSIONS


def openssl(*args, cwd, stdin=None):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, input=stdin, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr.decode(errors='replace')}"
    return done.stdout


def random_serial():
    """64 bits with the top nibble in 4..7: 16 hex digits, no leading zero byte, positive in DER."""
    return secrets.randbits(63) | (1 << 62)


class PKI:
    """Files in `directory`: ca.pem (root, CA:TRUE); a.pem/a.key (RSA 2048) and b.pem/b.key (EC P-256), both for
    DNS:localhost and IP:127.0.0.1 with different serials; chain.pem/c.key (leaf signed by an intermediate, leaf
    first then the intermediate); expired.pem and future.pem (a.key's certificate, dated 2020 and 2099); other.key
    (matches nothing)."""

    def __init__(self, directory):
        self.dir = directory
        (directory / "ext.cnf").write_text(EXTENSIONS)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", "/CN=Philote Test Root CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=directory)
        self.ca = directory / "ca.pem"
        serials = set()
        while len(serials) < 4:
            serials.add(random_serial())
        serial_a, serial_b, serial_int, serial_c = serials
        self.a = self.leaf("a", "rsa", serial_a)
        self.b = self.leaf("b", "ec", serial_b)
        self.serial_a, self.serial_b = f"{serial_a:X}", f"{serial_b:X}"
        # An intermediate CA and a leaf under it: the server must send the whole chain from TLS_CERT_FILE.
        self.key("int", "ec")
        openssl("req", "-new", "-key", "int.key", "-subj", "/CN=Philote Test Intermediate CA", "-out", "int.csr",
                cwd=directory)
        openssl("x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                hex(serial_int), "-days", "3650", "-extfile", "ext.cnf", "-extensions", "intermediate",
                "-out", "int.pem", cwd=directory)
        leaf_c, key_c = self.leaf("c", "ec", serial_c, issuer="int")
        (directory / "chain.pem").write_bytes(leaf_c.read_bytes() + (directory / "int.pem").read_bytes())
        self.chain = (directory / "chain.pem", key_c)
        self.serial_c = f"{serial_c:X}"
        # Certificates with explicit dates (for a.key), through `openssl ca`.
        database = directory / "cadb"
        database.mkdir()
        (database / "index.txt").write_text("")
        (database / "serial").write_text("0E0E\n")
        (directory / "ca.cnf").write_text(CA_CONFIG.format(dir=database))
        self.expired = self.dated("expired", "20200101000000Z", "20200102000000Z")
        self.future = self.dated("future", "20990101000000Z", "20991231000000Z")
        self.other_key = self.key("other", "ec")

    def key(self, name, kind):
        algorithm = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa" else \
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        openssl("genpkey", *algorithm, "-out", f"{name}.key", cwd=self.dir)
        return self.dir / f"{name}.key"

    def leaf(self, name, kind, serial, issuer="ca"):
        key = self.key(name, kind)
        openssl("req", "-new", "-key", key.name, "-subj", "/CN=localhost", "-out", f"{name}.csr", cwd=self.dir)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
                "-set_serial", hex(serial), "-days", "365", "-extfile", "ext.cnf", "-extensions", "server",
                "-out", f"{name}.pem", cwd=self.dir)
        return self.dir / f"{name}.pem", key

    def dated(self, name, start, end):
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "a.csr",
                "-out", f"{name}.pem", "-startdate", start, "-enddate", end, "-extensions", "server", "-notext",
                cwd=self.dir)
        return self.dir / f"{name}.pem"

    def spki_sha256_base64(self, certificate):
        """What Chromium's --ignore-certificate-errors-spki-list wants: base64(SHA-256(SubjectPublicKeyInfo))."""
        public = openssl("x509", "-in", str(certificate), "-noout", "-pubkey", cwd=self.dir)
        der = openssl("pkey", "-pubin", "-outform", "DER", cwd=self.dir, stdin=public)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is not installed (apt-get install openssl)")
    return PKI(tmp_path_factory.mktemp("pki"))


PAD_TO = 8192


def install(directory, certificate, key, pad=False, keep_stamp=False):
    """Puts the pair at directory/server.pem and server.key by rename, as an ACME client would. `pad` prefixes
    each file with comment lines (text before -----BEGIN is ignored by PEM readers) up to a fixed size;
    `keep_stamp` (with files installed padded before) also gives the new files the old ones' modification time,
    so that only SIGHUP, not the modification-time check, can make the server notice the change."""
    paths = []
    for source, name in ((certificate, "server.pem"), (key, "server.key")):
        target = directory / name
        data = Path(source).read_bytes()
        if pad:
            filler = PAD_TO - len(data)
            assert filler > 2, "PEM file larger than the padding size"
            data = (b"#" * (filler - 1) + b"\n") + data
        temporary = directory / (name + ".new")
        temporary.write_bytes(data)
        if keep_stamp:
            old = target.stat()
            assert old.st_size == len(data)
            os.utime(temporary, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(temporary, target)
        paths.append(target)
    return tuple(paths)


@pytest.fixture(params=["builtin", "openssl"])
def record_layer(request):
    """Every test of a TLS server runs with both record layers: the built-in one and OpenSSL's (the operator's way
    back, TLS_RECORD_LAYER=openssl)."""
    return request.param


@pytest.fixture
def tls_server(start_server, pki, tmp_path, record_layer):
    """tls_server(mode="serve", pair=None, pad=False, **env): a server on a pair installed in this test's tmp dir
    (default: certificate A); .cert_path / .key_path / .dir are where the files live."""
    count = [0]

    def start(mode="serve", pair=None, pad=False, **env):
        count[0] += 1
        env.setdefault("TLS_RECORD_LAYER", record_layer)
        directory = tmp_path / f"server{count[0]}"
        directory.mkdir()
        certificate, key = pair or pki.a
        cert_path, key_path = install(directory, certificate, key, pad=pad)
        if mode == "serve":
            env.setdefault("SECRET", SECRET)
        server = start_server(mode, TLS_CERT_FILE=str(cert_path), TLS_KEY_FILE=str(key_path), **env)
        server.cert_path, server.key_path, server.dir = cert_path, key_path, directory
        return server

    return start


# --- clients ----------------------------------------------------------------------------------------------


def client_context(pki, alpn=None):
    """Verifies the chain with the test CA and the host name (localhost), as a real client does."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def peer(server, pki, alpn=None, context=None):
    """A fresh TLS connection's view: serial of the server's certificate, protocol, cipher, ALPN."""
    context = context or client_context(pki, alpn)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return {"serial": tls.getpeercert()["serialNumber"], "version": tls.version(),
                    "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol(), "der": tls.getpeercert(True)}


# The Python `websockets` clients use its asyncio API on one event loop in a background thread, driven from the
# tests through PyClient. Not the sync API: its background reader thread calls SSL_read while the caller's thread
# calls SSL_write on the same ssl object, which OpenSSL does not allow; with TLS 1.3 (the session tickets arrive
# just as the request goes out) that loses the upgrade request now and then, whatever the server does.
_LOOP = []


def on_loop(coroutine, timeout=60):
    if not _LOOP:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="websockets-loop", daemon=True).start()
        _LOOP.append(loop)
    return asyncio.run_coroutine_threadsafe(coroutine, _LOOP[0]).result(timeout)


class PyClient:
    """A `websockets` asyncio client, used synchronously: send, recv(timeout), close, and what TLS negotiated."""

    def __init__(self, url, **options):
        async def connect():
            return await ws_connect(url, **options)

        self.ws = on_loop(connect())

    def send(self, message):
        on_loop(self.ws.send(message))

    def recv(self, timeout=10):
        return on_loop(asyncio.wait_for(self.ws.recv(), timeout), timeout + 5)

    def close(self):
        on_loop(self.ws.close())

    def _tls(self, what):
        async def read():
            return what(self.ws.transport.get_extra_info("ssl_object"))

        return on_loop(read())

    def serial(self):
        return self._tls(lambda tls: tls.getpeercert()["serialNumber"])

    def version(self):
        return self._tls(lambda tls: tls.version())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wss(server, pki, tok=None, how="query", path="/", **kwargs):
    """A Python `websockets` client over wss://localhost, verifying the chain with the test CA."""
    url = f"wss://localhost:{server.port}{path}"
    headers = None
    if tok is not None and how == "query":
        url += "?auth=" + quote(tok, safe="")
    elif tok is not None:
        headers = {"Authorization": "Bearer " + tok}
    options = dict(ssl=client_context(pki), additional_headers=headers, compression=None, proxy=None,
                   open_timeout=10, close_timeout=5, ping_interval=None, max_size=None)
    options.update(kwargs)
    return PyClient(url, **options)


def assert_delivery(payload, channel, data, issuer=None):
    raw = payload.encode() if isinstance(payload, str) else payload
    match = DELIVERY.fullmatch(raw)
    assert match and UUID4.fullmatch(match["issuer"]), raw[:200]
    message = json.loads(raw)
    assert (message.get("channel", ""), message.get("data", "")) == (channel, data), raw[:200]
    if issuer is not None:
        assert message["issuer"] == issuer
    return message["issuer"]


def send_publish(ws, channel, data):
    ws.send(json.dumps({"channel": channel, "data": data}))


def round_trip(server, pki, channel="health"):
    """Two fresh wss:// clients publish to each other: the server still serves TLS clients end to end."""
    tok = token(read=[channel], write=[channel])
    with wss(server, pki, tok) as one, wss(server, pki, tok, how="header") as two:
        send_publish(one, channel, "ping over tls")
        assert_delivery(two.recv(timeout=10), channel, "ping over tls")
        send_publish(two, channel, "pong over tls")
        assert_delivery(one.recv(timeout=10), channel, "pong over tls")


class TLSRawClient(RawClient):
    """wsraw's RawClient through TLS over ssl.MemoryBIO: the same WebSocket helpers work on it, and the test sees
    and controls every TLS record that goes out (to truncate or corrupt one)."""

    def __init__(self, port, context, hostname="localhost", timeout=5.0, handshake=True):
        super().__init__(port, timeout=timeout)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)
        self.close_notify_received = False
        if handshake:
            self.tls_handshake()

    def client_hello(self):
        """The first flight (the ClientHello record), produced but not sent."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def tls_handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_tls()
                self._receive()
        self._flush_tls()

    def _flush_tls(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _receive(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def encrypt(self, data):
        """The TLS records for `data`, not sent."""
        self.tls.write(data)
        return self.outgoing.read()

    def send(self, data):
        self.sock.sendall(self.encrypt(data))

    def send_close_notify(self):
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush_tls()

    def _fill(self):
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._receive()
                continue
            except ssl.SSLZeroReturnError:
                self.close_notify_received = True
                raise Closed()
            except ssl.SSLError:  # SSLEOFError: the TCP stream ended without close_notify
                raise Closed()
            if not chunk:  # what SSLObject.read returns for close_notify
                self.close_notify_received = True
                raise Closed()
            self.buffer += chunk
            return

    def expect_eof(self):
        """Reads until the server ends the TLS stream (close_notify or EOF); returns the plaintext left over."""
        try:
            while True:
                self._fill()
        except Closed:
            rest, self.buffer = self.buffer, b""
            return rest


def closed_within(sock, limit):
    """Reads raw bytes until the server closes the TCP connection: (seconds taken, bytes received). Fails if the
    connection is still open after `limit` seconds."""
    start = time.monotonic()
    received = b""
    while True:
        remaining = start + limit - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"connection still open after {limit} s (received {received[:60]!r})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except ConnectionResetError:
            return time.monotonic() - start, received
        if not chunk:
            return time.monotonic() - start, received
        received += chunk


def log_count(server, needle):
    return server.log_text().count(needle)


def wait_for_fd_baseline(server, baseline, limit=10.0):
    counts = []

    def back():
        counts.append(server.fd_count())
        return counts[-1] <= baseline

    try:
        wait_for(back, limit, "the descriptor count to return to its baseline")
    except AssertionError:
        held = os.listdir(f"/proc/{server.pid}/fd")
        raise AssertionError(f"descriptors: baseline {baseline}, now {counts[-1]}: {held}")


def assert_healthy(server, pki, baseline):
    """After bad input: no descriptor left behind, the process alive, and a good client served end to end."""
    wait_for_fd_baseline(server, baseline)
    assert server.process.poll() is None, server.log_text()[-2000:]
    round_trip(server, pki)
    wait_for_fd_baseline(server, baseline)


# --- start-up -----------------------------------------------------------------------------------------------


def test_startup_line_says_wss_only_and_who_protects_the_records(tls_server, record_layer):
    server = tls_server()
    line = next(line for line in server.log_text().splitlines() if 'msg="philote started"' in line)
    assert f"address=wss://127.0.0.1:{server.port}" in line, line
    assert 'tls="on (wss:// only)"' in line, line
    # The hand-over self-test passed with this OpenSSL: the built-in layer is kept, with no warning.
    assert f"tls_records={record_layer}" in line, line
    assert "hand-over check failed" not in server.log_text()
    assert server.stop() == 0, server.log_text()


def test_api_info_says_which_record_layer_serves(tls_server, pki, record_layer):
    server = tls_server()
    request = (f"GET /api/info HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token(api=True)}\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:200]
    config = json.loads(body)["config"]
    assert config["tls"] is True and config["tls_record_layer"] == record_layer
    assert server.stop() == 0, server.log_text()


def test_messages_sent_counts_only_records_written(tls_server, pki, record_layer):
    """Over wss:// too, philote_messages_sent_total counts a message once its records are written: a subscriber
    that never reads fills its socket, its records wait in the session, and it is closed 1008 with its backlog
    dropped. The count is then the readers' messages plus exactly those the slow one read before its close."""
    count, size, batch = 640, 8000, 64  # 5 MB: more than the kernel holds for a 4 KiB window plus 1 MiB queued
    server = tls_server(METRICS_PUBLIC="true", CLOSE_TIMEOUT="600", WORKERS="1")
    channel = "firehose"

    def tls_client(claims, receive_buffer=None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.settimeout(30)
        raw.connect(("127.0.0.1", server.port))
        client = RawClient.__new__(RawClient)
        client.sock, client.buffer = client_context(pki).wrap_socket(raw, server_hostname="localhost"), b""
        client.send(upgrade_request("/", host="localhost", extra=[("Authorization", "Bearer " + token(**claims))]))
        assert client.read_http_response()[0] == 101
        return client

    slow = tls_client({"read": [channel]}, receive_buffer=4096)
    readers = [Reader(tls_client({"read": [channel]})) for _ in range(2)]
    publisher = tls_client({"write": [channel]})
    filler = "f" * size
    for start in range(0, count, batch):
        publisher.send(b"".join(frame(TEXT, message_bytes(channel, f"{i:06d}{filler}"))
                                for i in range(start, start + batch)))
        for reader in readers:
            while len(reader.payloads) < start + batch:
                reader.feed()
    seen, code = 0, None
    while code is None:
        _, _, opcode, payload = slow.recv_frame()
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0]
        else:
            seen += 1
    assert code == 1008
    assert seen < count
    for client in [reader.client for reader in readers] + [publisher, slow]:
        client.close()
    context = client_context(pki)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as connection:
            connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    sent = next(float(line.split()[1]) for line in answer.decode().splitlines()
                if line.startswith("philote_messages_sent_total "))
    assert sent == 2 * count + seen, (sent, seen)
    assert server.stop() == 0, server.log_text()


def test_plain_server_says_no_record_layer(start_server):
    server = start_server("serve", SECRET=SECRET, TLS_RECORD_LAYER="openssl")
    line = next(line for line in server.log_text().splitlines() if 'msg="philote started"' in line)
    assert "tls_records=none" in line, line
    assert server.stop() == 0


BASE_ENV = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "HOST": "127.0.0.1", "WORKERS": "2", "SECRET": SECRET,
            **SANITIZER_ENV}


def start_failure(**env):
    """Runs `philote serve` expecting it to refuse to start: (exit status, stderr)."""
    done = run([str(BINARY), "serve"], timeout=20, env={**BASE_ENV, **{k: str(v) for k, v in env.items()}},
               stdin=subprocess.DEVNULL)
    assert "philote started" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@pytest.mark.parametrize("value", ["OpenSSL", "kernel", "builtin "])
def test_unknown_record_layer_exits_2_naming_the_variable(pki, value):
    status, stderr = start_failure(TLS_CERT_FILE=pki.a[0], TLS_KEY_FILE=pki.a[1], TLS_RECORD_LAYER=value)
    assert status == 2, stderr
    assert "TLS_RECORD_LAYER" in stderr and "builtin or openssl" in stderr, stderr


def test_only_the_certificate_set_exits_2_naming_the_key_variable(pki):
    status, stderr = start_failure(TLS_CERT_FILE=pki.a[0])
    assert status == 2, stderr
    assert "TLS_KEY_FILE" in stderr, stderr


def test_only_the_key_set_exits_2_naming_the_certificate_variable(pki):
    status, stderr = start_failure(TLS_KEY_FILE=pki.a[1])
    assert status == 2, stderr
    assert "TLS_CERT_FILE" in stderr, stderr


@pytest.mark.parametrize("which", ["certificate", "key"])
@pytest.mark.parametrize("problem", ["missing", "directory", "not PEM", "empty"])
def test_unusable_file_exits_2_naming_it(pki, tmp_path, which, problem):
    bad = tmp_path / f"bad-{which}.pem"
    if problem == "directory":
        bad.mkdir()
    elif problem == "not PEM":
        bad.write_bytes(os.urandom(600))
    elif problem == "empty":
        bad.write_bytes(b"")
    certificate, key = pki.a
    if which == "certificate":
        certificate = bad
    else:
        key = bad
    status, stderr = start_failure(TLS_CERT_FILE=certificate, TLS_KEY_FILE=key)
    assert status == 2, stderr
    variable = "TLS_CERT_FILE" if which == "certificate" else "TLS_KEY_FILE"
    assert f"{variable}={bad}" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "system lib" not in stderr, stderr
    if problem == "missing":
        assert "no such file" in stderr and "mounted" in stderr, stderr
    elif problem == "directory":
        assert "is a directory" in stderr, stderr


def open_directory(tmp_path):
    """A directory every user can enter (pytest's own tmp_path sits under a 0700 directory of root's)."""
    directory = Path(tempfile.mkdtemp(prefix="philote-tls-"))
    directory.chmod(0o755)
    return directory


def loads_the_pair(certificate, key, **options):
    """Whether `philote serve` gets past loading the pair: the port it is given is taken, so a server that loaded
    its files stops at the next step, the listen, with exit 1 (never left running)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run([str(BINARY), "serve"], timeout=20, stdin=subprocess.DEVNULL,
                   env={**BASE_ENV, "PORT": str(port), "TLS_CERT_FILE": str(certificate), "TLS_KEY_FILE": str(key)},
                   **options)
    if done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr:
        return True
    assert done.returncode == 2, done.stderr
    return False


def as_nobody():
    """subprocess options that run the server as nobody (uid/gid 65534), as a container's user would be."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the server as another user")
    return {"user": 65534, "group": 65534, "extra_groups": []}


def test_key_readable_only_by_root_says_so_naming_the_file_and_the_remedy(pki, tmp_path):
    directory = open_directory(tmp_path)
    try:
        certificate, key = directory / "cert.pem", directory / "key.pem"
        shutil.copyfile(pki.a[0], certificate)
        shutil.copyfile(pki.a[1], key)
        certificate.chmod(0o644)
        key.chmod(0o600)
        done = run([str(BINARY), "serve"], timeout=20, stdin=subprocess.DEVNULL,
                   env={**BASE_ENV, "TLS_CERT_FILE": str(certificate), "TLS_KEY_FILE": str(key)}, **as_nobody())
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"TLS_KEY_FILE={key}" in done.stderr, done.stderr
        assert "permission denied for uid 65534 gid 65534" in done.stderr, done.stderr
        assert "owner 0:0, mode 0600" in done.stderr, done.stderr
        assert f"chgrp 65534 {key} && chmod 640 {key}" in done.stderr, done.stderr
        assert "system lib" not in done.stderr, done.stderr
        # The remedy it gives works.
        os.chown(key, 0, 65534)
        key.chmod(0o640)
        assert loads_the_pair(certificate, key, **as_nobody())
    finally:
        shutil.rmtree(directory)


def certbot_tree(root, pki):
    """What certbot keeps: archive/<name>/ holds the numbered files, live/<name>/ relative links into it."""
    archive, live = root / "archive" / "example.org", root / "live" / "example.org"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    shutil.copyfile(pki.a[0], archive / "fullchain1.pem")
    shutil.copyfile(pki.a[1], archive / "privkey1.pem")
    (live / "fullchain.pem").symlink_to("../../archive/example.org/fullchain1.pem")
    (live / "privkey.pem").symlink_to("../../archive/example.org/privkey1.pem")
    return live / "fullchain.pem", live / "privkey.pem"


def test_certbot_live_links_without_the_archive_say_to_mount_the_whole_directory(pki, tmp_path):
    """Mounting only live/ into a container leaves its links dangling: the message says so and what to mount."""
    certificate, key = certbot_tree(tmp_path / "letsencrypt", pki)
    assert loads_the_pair(certificate, key), "the whole tree is fine"
    shutil.rmtree(tmp_path / "letsencrypt" / "archive")
    status, stderr = start_failure(TLS_CERT_FILE=certificate, TLS_KEY_FILE=key)
    assert status == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert f"TLS_CERT_FILE={certificate}" in stderr, stderr
    assert "dangling symbolic link to ../../archive/example.org/fullchain1.pem" in stderr, stderr
    assert "mount the whole directory" in stderr and "/etc/letsencrypt" in stderr, stderr


def test_mismatched_key_exits_2_naming_the_pair(pki):
    status, stderr = start_failure(TLS_CERT_FILE=pki.a[0], TLS_KEY_FILE=pki.other_key)
    assert status == 2, stderr
    assert str(pki.other_key) in stderr or str(pki.a[0]) in stderr, stderr
    assert re.search(r"mismatch|does not match", stderr), stderr


def test_key_of_another_certificate_exits_2(pki):
    status, stderr = start_failure(TLS_CERT_FILE=pki.a[0], TLS_KEY_FILE=pki.b[1])
    assert status == 2, stderr
    assert re.search(r"mismatch|does not match", stderr), stderr


def test_expired_certificate_exits_2_saying_expired(pki):
    status, stderr = start_failure(TLS_CERT_FILE=pki.expired, TLS_KEY_FILE=pki.a[1])
    assert status == 2, stderr
    assert "expired" in stderr and str(pki.expired) in stderr, stderr


def test_not_yet_valid_certificate_exits_2(pki):
    status, stderr = start_failure(TLS_CERT_FILE=pki.future, TLS_KEY_FILE=pki.a[1])
    assert status == 2, stderr
    assert "not valid yet" in stderr and str(pki.future) in stderr, stderr


# --- Python websockets ----------------------------------------------------------------------------------------


def test_python_websockets_pubsub_over_wss_verifying_the_chain(tls_server, pki):
    server = tls_server()
    channel = "tls-room"
    tok = token(read=[channel], write=[channel])
    with wss(server, pki, tok, how="header") as by_header, wss(server, pki, tok, how="query") as by_query:
        for ws in (by_header, by_query):
            assert ws.version() in ("TLSv1.2", "TLSv1.3")
            assert ws.serial() == pki.serial_a
        send_publish(by_header, channel, "from header <&> über wss")
        issuer = assert_delivery(by_query.recv(timeout=10), channel, "from header <&> über wss")
        by_query.send(json.dumps({"channel": channel, "data": "binary frame from query"}).encode())
        assert_delivery(by_header.recv(timeout=10), channel, "binary frame from query")
        send_publish(by_header, channel, "again")
        assert_delivery(by_query.recv(timeout=10), channel, "again", issuer=issuer)
    # An invalid token is still refused over TLS, with the HTTP status.
    with pytest.raises(Exception) as refused:
        with wss(server, pki, "not-a-token"):
            pass
    assert "401" in str(refused.value), refused.value
    assert server.stop() == 0, server.log_text()


def test_fan_out_over_tls(tls_server, pki):
    """Many TLS subscribers on one channel each receive every message, in order, byte for byte."""
    server = tls_server()
    channel = "tls-fanout"
    tok = token(read=[channel], write=[channel])
    count, size = 200, 1500
    subscribers = [wss(server, pki, tok) for _ in range(20)]
    try:
        with wss(server, pki, tok) as publisher:
            for number in range(count):
                send_publish(publisher, channel, f"{number:05d}" + "m" * size)
            for subscriber in subscribers:
                for number in range(count):
                    assert_delivery(subscriber.recv(timeout=10), channel, f"{number:05d}" + "m" * size)
    finally:
        for subscriber in subscribers:
            subscriber.close()


def test_client_without_the_ca_or_with_the_wrong_name_is_refused_by_the_client(tls_server, pki):
    """Sanity check of the test set-up: the chain really is verified (no trust in the test CA → failure)."""
    server = tls_server()
    with pytest.raises(ssl.SSLCertVerificationError):
        peer(server, pki, context=ssl.create_default_context())  # the system's trust store only
    context = client_context(pki)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="not-localhost.example")
    # By IP address (IP:127.0.0.1 in the SAN).
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.getpeercert()["serialNumber"] == pki.serial_a


def test_full_chain_file_sends_the_intermediate(tls_server, pki):
    """TLS_CERT_FILE holds the leaf then its intermediate; a client that trusts only the root verifies it."""
    server = tls_server(pair=pki.chain)
    info = peer(server, pki)
    assert info["serial"] == pki.serial_c
    round_trip(server, pki)


def test_echo_over_tls_up_to_1_mib(tls_server, pki):
    server = tls_server("echo", MAX_MESSAGE_SIZE=str(MIB))
    sizes = [0, 1, 125, 126, 65535, 65536, 16383, 16384, 16385, 100_000, MIB - 1, MIB]
    with wss(server, pki) as ws:
        for size in sizes:
            text = ("x" * size)
            ws.send(text)
            assert ws.recv(timeout=20) == text, size
            data = os.urandom(size)
            ws.send(data)
            assert ws.recv(timeout=20) == data, size
        # Pipelined: several large messages in flight at once, answers in order (partial TLS writes resume).
        burst = [os.urandom(MIB - number * 7919) for number in range(6)]
        for data in burst:
            ws.send(data)
        for data in burst:
            assert ws.recv(timeout=30) == data
    # One byte over the limit: close 1009, over TLS too.
    with wss(server, pki) as ws:
        ws.send(b"y" * (MIB + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, closed.value
    assert server.stop() == 0, server.log_text()


def test_echo_backpressure_over_tls(tls_server, pki):
    """16 MiB through echo while the client reads slower than it writes: the server stops reading above
    MAX_BACKPRESSURE and resumes (partial TLS writes, read interest toggled); every answer arrives intact, in
    order."""
    server = tls_server("echo", MAX_MESSAGE_SIZE=str(MIB))
    messages = [os.urandom(256 * 1024) for _ in range(8)]
    count = 64
    errors = []
    with wss(server, pki) as ws:
        def send_all():
            try:
                for number in range(count):
                    ws.send(messages[number % len(messages)])
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        for number in range(count):
            assert ws.recv(timeout=30) == messages[number % len(messages)], number
        sender.join(30)
        assert not sender.is_alive() and not errors, errors
    assert server.stop() == 0, server.log_text()


def test_sighup_without_tls_is_harmless(start_server):
    server = start_server("echo")
    os.kill(server.pid, signal.SIGHUP)
    client = RawClient(server.port)
    client.handshake(host=f"127.0.0.1:{server.port}")
    client.send_frame(0x1, b"still here", mask=True)
    assert client.recv_message() == (0x1, b"still here")
    client.close()
    assert RELOADED not in server.log_text() and REFUSED not in server.log_text()
    assert server.stop() == 0, server.log_text()


def test_server_initiated_close_ends_with_close_notify(tls_server, pki):
    """The WebSocket close handshake, then the server ends the TLS stream with close_notify (not a bare FIN)."""
    server = tls_server("echo")
    baseline = server.fd_count()
    client = TLSRawClient(server.port, client_context(pki))
    client.handshake(host=f"localhost:{server.port}")
    client.send_frame(0x1, b"hello")
    assert client.recv_message() == (0x1, b"hello")
    client.send_frame(0x8, b"\x03\xe8")
    fin, rsv, opcode, payload = client.recv_frame()
    assert opcode == 0x8 and payload[:2] == b"\x03\xe8"
    client.expect_eof()
    assert client.close_notify_received, "the server closed the TLS stream without close_notify"
    client.close()
    wait_for_fd_baseline(server, baseline)
    assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("phase", ["before the HTTP request", "open WebSocket"])
def test_client_close_notify_is_answered_with_close_notify(tls_server, pki, version, phase):
    """The client ends the TLS stream first: the server lets go at once and, as RFC 5246 7.2.1 and RFC 8446 6.1
    require before closing its write side, sends close_notify of its own."""
    server = tls_server("echo")
    baseline = server.fd_count()
    context = client_context(pki)
    context.maximum_version = getattr(ssl.TLSVersion, version)
    client = TLSRawClient(server.port, context)
    if phase == "open WebSocket":
        client.handshake(host=f"localhost:{server.port}")
    client.send_close_notify()
    start = time.monotonic()
    client.expect_eof()
    assert time.monotonic() - start < 5
    client.close()
    wait_for_fd_baseline(server, baseline)
    assert client.close_notify_received, "the server answered close_notify with a bare TCP close"


def test_http_api_over_https(tls_server, pki):
    """Plain HTTP requests (the API) are answered over TLS too, on the same port."""
    import http.client
    server = tls_server()
    connection = http.client.HTTPSConnection("localhost", server.port, context=client_context(pki), timeout=10)
    try:
        connection.request("GET", "/api/info", headers={"Authorization": "Bearer " + token(api=True)})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, body
        assert response.getheader("Content-Type", "").startswith("application/json")
        info = json.loads(body)
        assert SECRET not in body.decode()
        assert isinstance(info, dict) and info, info
    finally:
        connection.close()
    connection = http.client.HTTPSConnection("localhost", server.port, context=client_context(pki), timeout=10)
    try:
        connection.request("GET", "/api/info")
        response = connection.getresponse()
        response.read()
        assert response.status == 401
    finally:
        connection.close()
    assert server.stop() == 0, server.log_text()


def test_sigterm_drains_tls_clients_with_1001(tls_server, pki):
    server = tls_server(DRAIN_TIMEOUT="5")
    channel = "drain"
    tok = token(read=[channel], write=[channel])
    clients = [wss(server, pki, tok) for _ in range(5)]
    server.process.send_signal(signal.SIGTERM)
    for client in clients:
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert server.process.wait(10) == 0, server.log_text()


# --- Node ws ----------------------------------------------------------------------------------------------------




def run_node(node, server, ca, channel="node-tls", data_a="from node a", data_b="from node b " + "z" * 40000,
             **tls):
    tok = token(read=[channel], write=[channel])
    url = f"wss://localhost:{server.port}/node?auth={quote(tok, safe='')}"
    done = run([node, str(NODE_SCRIPT), url, url, str(ca), channel, data_a, data_b], env={**node_env(), **tls},
               timeout=40)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output from node: {done.stderr}"
    return done.returncode, json.loads(lines[-1])


def test_node_ws_over_wss_with_the_test_ca(tls_server, pki, node):
    server = tls_server()
    status, summary = run_node(node, server, pki.ca)
    assert status == 0 and summary["ok"], summary
    for name in ("a", "b"):
        state = summary[name]
        assert state["authorized"] is True, state
        assert state["version"] == "TLSv1.3", state
        assert state["alpn"] == "http/1.1", state
        assert state["serial"].upper() == pki.serial_a, state
        assert state["closeCode"] == 1000, state
    assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("version,cipher", [
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"),
])
def test_node_ws_over_every_suite_the_record_layer_seals(tls_server, pki, node, version, cipher):
    # After the handshake the server seals and opens records itself: each suite carries messages both ways,
    # one of them several records long (40,000 bytes), and the close handshake.
    server = tls_server()
    status, summary = run_node(node, server, pki.ca, data_a="x" * 20000, TLS_VERSION=version, TLS_CIPHERS=cipher)
    assert status == 0 and summary["ok"], summary
    for name in ("a", "b"):
        assert (summary[name]["version"], summary[name]["cipher"]) == (version, cipher), summary[name]
        assert summary[name]["closeCode"] == 1000, summary[name]
    assert server.stop() == 0, server.log_text()


def test_node_ws_without_the_ca_fails_verification(tls_server, pki, node):
    server = tls_server()
    status, summary = run_node(node, server, "-")
    assert status != 0 and not summary["ok"], summary
    refused = r"UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED"
    assert re.search(refused, summary["error"]), summary


# --- headless Chromium --------------------------------------------------------------------------------------


def run_chromium(server, extra_flags):
    tok = token(read=["browser-tls"], write=["browser-tls"])
    return chromium_exchange(server.port, tok, "browser-tls", scheme="wss", host="localhost", flags=extra_flags)


def test_chromium_over_wss_trusting_the_server_key(tls_server, pki):
    """The browser trusts exactly this server's public key (not every certificate error), then publishes and
    receives over wss://localhost."""
    server = tls_server()
    spki = pki.spki_sha256_base64(pki.a[0])
    outcome = run_chromium(server, [f"--ignore-certificate-errors-spki-list={spki}"])
    assert outcome.split()[0] == "ok", outcome
    assert server.stop() == 0, server.log_text()


def test_chromium_refuses_the_untrusted_certificate(tls_server, pki):
    """Without the SPKI exception the browser refuses the test CA's certificate: the page sees an error event
    (proof that the positive test above depends on the certificate the server presents)."""
    server = tls_server()
    other = pki.spki_sha256_base64(pki.b[0])
    outcome = run_chromium(server, [f"--ignore-certificate-errors-spki-list={other}"])
    assert outcome.startswith("fail") and "error event" in outcome, outcome


# --- openssl s_client: protocol and cipher policy, ALPN, renegotiation, resumption -----------------------------


def s_client(server, pki, *args, stdin="", timeout=15):
    """`openssl s_client` against the server (verifying with the test CA): (exit status, stdout + stderr)."""
    done = run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost",
                "-CAfile", str(pki.ca), *args], input=stdin, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def negotiated(output):
    """(version, cipher) from s_client's 'New, TLSv1.3, Cipher is ...' line; ('(NONE)', '(NONE)') if none."""
    match = re.search(r"^(?:New|Reused), (\S+), Cipher is (\S+)", output, re.M)
    assert match, output[-2000:]
    return match.group(1), match.group(2)


@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_s_client_tls_1_2_and_1_3_accepted(tls_server, pki, flag, version):
    server = tls_server()
    status, output = s_client(server, pki, flag, "-verify_return_error")
    assert status == 0, output[-2000:]
    got_version, cipher = negotiated(output)
    assert got_version == version, output[-2000:]
    assert "Verify return code: 0 (ok)" in output
    assert re.search(r"Compression: NONE", output) or version == "TLSv1.3", output[-2000:]
    if version == "TLSv1.2":
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    else:
        assert cipher in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_s_client_tls_1_0_and_1_1_refused(tls_server, pki, flag):
    server = tls_server()
    # SECLEVEL=0 so that the client offers the old protocol at all: the refusal must come from the server.
    status, output = s_client(server, pki, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert status != 0, output[-2000:]
    assert negotiated(output) == ("(NONE)", "(NONE)"), output[-2000:]
    assert "alert protocol version" in output, output[-2000:]
    round_trip(server, pki)


WEAK_TLS12 = [
    "AES128-SHA",                    # RSA key transport, CBC
    "AES256-GCM-SHA384",             # RSA key transport (no forward secrecy), even with GCM
    "ECDHE-RSA-AES128-SHA",          # forward secrecy but CBC
    "ECDHE-RSA-AES256-SHA384",       # CBC with SHA-384
    "DHE-RSA-AES128-GCM-SHA256",     # finite-field DHE: not in the policy
    "ECDHE-RSA-CAMELLIA128-SHA256",  # CBC, not AES-GCM or ChaCha20
    "ECDHE-RSA-NULL-SHA",            # no encryption
    "AECDH-AES128-SHA",              # anonymous: no authentication
    "ADH-AES256-GCM-SHA384",         # anonymous, even with an AEAD
]


@pytest.mark.parametrize("cipher", WEAK_TLS12)
def test_s_client_tls_1_2_weak_ciphers_refused(tls_server, pki, cipher):
    server = tls_server()
    status, output = s_client(server, pki, "-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")
    assert "no cipher match" not in output, f"the local openssl cannot offer {cipher}"
    assert status != 0, output[-2000:]
    assert negotiated(output) == ("(NONE)", "(NONE)"), output[-2000:]
    assert "alert handshake failure" in output, output[-2000:]


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305"])
def test_s_client_tls_1_2_strong_ciphers_accepted(tls_server, pki, cipher):
    server = tls_server()
    status, output = s_client(server, pki, "-tls1_2", "-cipher", cipher)
    assert status == 0, output[-2000:]
    assert negotiated(output) == ("TLSv1.2", cipher)


def test_s_client_server_preference_wins(tls_server, pki):
    """The client lists AES-128 first; the server's order picks AES-256, in TLS 1.2 and 1.3."""
    server = tls_server()
    status, output = s_client(server, pki, "-tls1_2", "-cipher",
                              "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    assert status == 0, output[-2000:]
    assert negotiated(output) == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")
    status, output = s_client(server, pki, "-tls1_3", "-ciphersuites",
                              "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")
    assert status == 0, output[-2000:]
    assert negotiated(output) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")


@pytest.mark.parametrize("offer,expected", [("http/1.1", "http/1.1"), ("h2,http/1.1", "http/1.1"), (None, None)])
def test_s_client_alpn_http_1_1(tls_server, pki, offer, expected):
    server = tls_server()
    status, output = s_client(server, pki, *(["-alpn", offer] if offer else []))
    assert status == 0, output[-2000:]
    assert negotiated(output)[0] == "TLSv1.3"
    if expected:
        assert f"ALPN protocol: {expected}" in output, output[-2000:]
    else:
        assert "No ALPN negotiated" in output, output[-2000:]


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
def test_s_client_alpn_without_http_1_1_refused(tls_server, pki, flag):
    server = tls_server()
    status, output = s_client(server, pki, flag, "-alpn", "h2")
    assert status != 0, output[-2000:]
    assert negotiated(output) == ("(NONE)", "(NONE)"), output[-2000:]
    assert "no application protocol" in output, output[-2000:]


def test_python_alpn_http_1_1_and_h2_only(tls_server, pki):
    server = tls_server()
    assert peer(server, pki, alpn=["h2", "http/1.1"])["alpn"] == "http/1.1"
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        peer(server, pki, alpn=["h2"])


def test_s_client_renegotiation_refused(tls_server, pki):
    """A TLS 1.2 client asks to renegotiate ('R' on s_client's input): the server says no_renegotiation."""
    server = tls_server()
    process = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-connect", f"127.0.0.1:{server.port}",
                                "-servername", "localhost", "-CAfile", str(pki.ca)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(b"Verify return code" in line for line in lines), 10, "the handshake")
        process.stdin.write(b"R\n")
        process.stdin.flush()
        wait_for(lambda: any(b"no renegotiation" in line for line in lines), 10,
                 "the server's no_renegotiation answer: " + repr(lines[-5:]))
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert any(b"RENEGOTIATING" in line for line in lines)
    round_trip(server, pki)


def test_s_client_tls_1_3_key_update_then_upgrade(tls_server, pki):
    """A TLS 1.3 client sends KeyUpdate(update_requested) before its request: the server updates its own keys
    (a write caused by a read), then answers the upgrade with 101 under the new keys."""
    server = tls_server()
    process = subprocess.Popen(["openssl", "s_client", "-tls1_3", "-crlf", "-msg", "-connect",
                                f"127.0.0.1:{server.port}", "-servername", "localhost", "-CAfile", str(pki.ca)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()

    def seen(pattern, after=0):
        return any(re.search(pattern, line) for line in lines[after:])

    try:
        wait_for(lambda: seen(rb"Verify return code"), 10, "the TLS handshake")
        process.stdin.write(b"K\n")
        process.stdin.flush()
        wait_for(lambda: seen(rb"^>>> .*KeyUpdate"), 10, "our KeyUpdate to go out")
        ours = next(index for index, line in enumerate(lines) if re.search(rb"^>>> .*KeyUpdate", line))
        mark = len(lines)
        tok = token(read=["ku"], write=["ku"])
        request = upgrade_request("/?auth=" + quote(tok, safe=""), host=f"localhost:{server.port}")
        process.stdin.write(request.replace(b"\r\n", b"\n"))
        process.stdin.flush()
        wait_for(lambda: seen(rb"^HTTP/1.1 101", mark), 10, "the 101 after the key update: " + repr(lines[-8:]))
        assert seen(rb"^<<< .*KeyUpdate", ours), "the server did not update its keys"
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    round_trip(server, pki)


def test_s_client_session_resumption_with_tickets_tls_1_2(tls_server, pki, tmp_path):
    server = tls_server()
    session = tmp_path / "session.pem"
    status, output = s_client(server, pki, "-tls1_2", "-sess_out", str(session))
    assert status == 0, output[-2000:]
    assert output.count("New, TLSv1.2") == 1
    assert "TLS session ticket:" in output, "no session ticket issued"
    # Several resumptions, so that both event loops (WORKERS=2) are likely to take one: the ticket keys are
    # the server's, not a loop's.
    for _ in range(4):
        status, output = s_client(server, pki, "-tls1_2", "-sess_in", str(session))
        assert status == 0, output[-2000:]
        assert re.search(r"^Reused, TLSv1.2, Cipher is ECDHE-", output, re.M), output[-2000:]


def test_s_client_session_resumption_with_tickets_tls_1_3(tls_server, pki, tmp_path):
    """TLS 1.3 tickets come after the handshake: keep the first client open until it has stored one."""
    server = tls_server()
    session = tmp_path / "session13.pem"
    process = subprocess.Popen(["openssl", "s_client", "-tls1_3", "-connect", f"127.0.0.1:{server.port}",
                                "-servername", "localhost", "-CAfile", str(pki.ca), "-sess_out", str(session)],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: session.exists() and session.stat().st_size > 0, 10, "a TLS 1.3 session ticket")
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    status, output = s_client(server, pki, "-tls1_3", "-sess_in", str(session))
    assert status == 0, output[-2000:]
    assert re.search(r"^Reused, TLSv1.3, ", output, re.M), output[-2000:]


def test_s_client_session_id_resumption_without_tickets(tls_server, pki, tmp_path):
    """A TLS 1.2 client that takes no ticket (-no_ticket) resumes through the server's session cache
    (SSL_SESS_CACHE_SERVER). s_client ends each connection with close_notify; OpenSSL keeps a session in the cache
    only if the server's side was shut down properly too (SSL_shutdown before SSL_free)."""
    server = tls_server()
    session = tmp_path / "session-id.pem"
    status, output = s_client(server, pki, "-tls1_2", "-no_ticket", "-sess_out", str(session))
    assert status == 0, output[-2000:]
    assert "TLS session ticket:" not in output
    status, output = s_client(server, pki, "-tls1_2", "-no_ticket", "-sess_in", str(session))
    assert status == 0, output[-2000:]
    assert re.search(r"^Reused, TLSv1.2, ", output, re.M), "session ID not resumed: " + negotiated(output)[0]


def test_python_session_resumption(tls_server, pki):
    server = tls_server()
    context = client_context(pki)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as first:
            saved = first.session
            assert not first.session_reused
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=saved) as second:
            assert second.session_reused


# --- reload --------------------------------------------------------------------------------------------------


def reload_lines(server):
    return [line for line in server.log_text().splitlines() if RELOADED in line or REFUSED in line]


def test_sighup_reload_new_connections_see_b_old_ones_keep_delivering(tls_server, pki):
    server = tls_server(pad=True)
    channel = "reload"
    tok = token(read=[channel], write=[channel])
    old_subscriber = wss(server, pki, tok)
    old_publisher = wss(server, pki, tok)
    try:
        assert old_subscriber.serial() == pki.serial_a
        send_publish(old_publisher, channel, "before reload")
        assert_delivery(old_subscriber.recv(timeout=10), channel, "before reload")
        # Same size and modification time as before: only the signal can make the server notice.
        install(server.dir, *pki.b, pad=True, keep_stamp=True)
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: f"{RELOADED} serial={pki.serial_b}" in server.log_text(), 10, "the reload log line")
        assert "files=unchanged" in first_line_with(server, RELOADED)
        assert peer(server, pki)["serial"] == pki.serial_b
        # Established connections carry on with the pair they started with.
        send_publish(old_publisher, channel, "after reload, old to old")
        assert_delivery(old_subscriber.recv(timeout=10), channel, "after reload, old to old")
        with wss(server, pki, tok) as new:
            assert new.serial() == pki.serial_b
            send_publish(new, channel, "new to old")
            assert_delivery(old_subscriber.recv(timeout=10), channel, "new to old")
            assert_delivery(old_publisher.recv(timeout=10), channel, "new to old")
            send_publish(old_subscriber, channel, "old to new")
            assert_delivery(new.recv(timeout=10), channel, "old to new")
        assert old_subscriber.serial() == pki.serial_a
    finally:
        old_subscriber.close()
        old_publisher.close()
    assert [line for line in reload_lines(server) if REFUSED in line] == []
    assert server.stop() == 0, server.log_text()


def test_serial_seen_through_openssl_x509_matches(tls_server, pki):
    """The serial a client sees, read with the openssl CLI from the DER certificate, is B's after a reload."""
    server = tls_server()
    install(server.dir, *pki.b)
    os.kill(server.pid, signal.SIGHUP)
    wait_for(lambda: RELOADED in server.log_text(), 10, "the reload log line")
    der = peer(server, pki)["der"]
    text = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                          capture_output=True, timeout=20).stdout.decode()
    assert text.strip() == f"serial={pki.serial_b}"


def test_renewal_without_signal_is_picked_up_from_the_files_modification_time(tls_server, pki):
    """An ACME client writes the certificate, then the key: the half-renewed pair (B's certificate, A's key) is
    refused with a log line while A keeps serving; the complete pair is picked up without any signal."""
    server = tls_server()
    channel = "renewal"
    tok = token(read=[channel], write=[channel])
    with wss(server, pki, tok) as old:
        install(server.dir, pki.b[0], pki.a[1])
        wait_for(lambda: REFUSED in server.log_text(), 15, "the refused half-renewed pair")
        assert peer(server, pki)["serial"] == pki.serial_a
        install(server.dir, *pki.b)
        wait_for(lambda: f"{RELOADED} serial={pki.serial_b}" in server.log_text(), 15,
                 "the reload after the files changed")
        assert peer(server, pki)["serial"] == pki.serial_b
        with wss(server, pki, tok) as new:
            send_publish(new, channel, "renewed")
            assert_delivery(old.recv(timeout=10), channel, "renewed")
    assert server.stop() == 0, server.log_text()


def test_bad_pair_on_sighup_is_refused_and_the_old_certificate_keeps_serving(tls_server, pki):
    server = tls_server(pad=True)
    channel = "bad-reload"
    tok = token(read=[channel], write=[channel])
    with wss(server, pki, tok) as established:
        install(server.dir, pki.b[0], pki.other_key, pad=True, keep_stamp=True)
        os.kill(server.pid, signal.SIGHUP)
        line = wait_for(lambda: next((l for l in server.log_text().splitlines() if REFUSED in l), None), 10,
                        "the refused reload")
        assert "level=error" in line, line
        assert str(server.key_path) in line or str(server.cert_path) in line, line
        assert RELOADED not in server.log_text()
        assert peer(server, pki)["serial"] == pki.serial_a
        round_trip(server, pki)
        with wss(server, pki, tok) as fresh:
            send_publish(fresh, channel, "still serving A")
            assert_delivery(established.recv(timeout=10), channel, "still serving A")
        # A certificate file that is not PEM at all (a half-written file): refused too.
        (server.dir / "server.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB")
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: log_count(server, REFUSED) >= 2, 10, "the second refused reload")
        assert peer(server, pki)["serial"] == pki.serial_a
        # A good pair afterwards is taken.
        install(server.dir, *pki.b)
        os.kill(server.pid, signal.SIGHUP)
        wait_for(lambda: f"{RELOADED} serial={pki.serial_b}" in server.log_text(), 10, "the good reload")
        assert peer(server, pki)["serial"] == pki.serial_b
    assert server.process.poll() is None
    assert server.stop() == 0, server.log_text()


STILL_REFUSED = 'msg="TLS reload still refused"'


def replace_file(path, data):
    """Replaces a file by rename, as an ACME client does, so that a check never sees it half written."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def first_line_with(server, needle):
    return next((line for line in server.log_text().splitlines() if needle in line), None)


def test_a_bad_renewed_pair_is_logged_once_per_distinct_failure(tls_server, pki):
    """The periodic check retries a bad pair every TLS_RELOAD_INTERVAL and logs the refusal at the error level once,
    again only when the reason changes or after a success. A debug line at each retry shows the periods passing."""
    server = tls_server(TLS_RELOAD_INTERVAL="100ms", LOGLEVEL="debug")

    def refusals_after_more_periods(periods=5):
        start = log_count(server, STILL_REFUSED)
        wait_for(lambda: log_count(server, STILL_REFUSED) >= start + periods, 15, f"{periods} more reload periods")
        return log_count(server, REFUSED)

    # A renewal gone wrong: B's certificate beside A's key.
    replace_file(server.cert_path, pki.b[0].read_bytes())
    wait_for(lambda: log_count(server, REFUSED) >= 1, 15, "the refused pair")
    assert refusals_after_more_periods() == 1, reload_lines(server)
    line = first_line_with(server, REFUSED)
    assert "level=error" in line and "does not match" in line and 'trigger="files changed"' in line, line
    assert f"serial={pki.serial_a}" in line and "files=changed" in line, line
    assert peer(server, pki)["serial"] == pki.serial_a
    # Another failure: a certificate file that is not PEM. Logged, once.
    replace_file(server.cert_path, b"-----BEGIN CERTIFICATE-----\nMIIB")
    wait_for(lambda: log_count(server, REFUSED) >= 2, 15, "the second, different refusal")
    assert refusals_after_more_periods() == 2, reload_lines(server)
    # B's key, then B's certificate: every state on the way is the refusal already logged, or the good pair.
    replace_file(server.key_path, pki.b[1].read_bytes())
    replace_file(server.cert_path, pki.b[0].read_bytes())
    line = wait_for(lambda: first_line_with(server, RELOADED), 15, "the reload of the good pair")
    assert f"{RELOADED} serial={pki.serial_b} previous_serial={pki.serial_a}" in line, line
    assert 'trigger="files changed"' in line and "files=changed" in line, line
    assert log_count(server, REFUSED) == 2, reload_lines(server)
    assert peer(server, pki)["serial"] == pki.serial_b
    # After a success, the first failure again is news again.
    replace_file(server.key_path, pki.a[1].read_bytes())
    wait_for(lambda: log_count(server, REFUSED) >= 3, 15, "the refusal after a success")
    assert refusals_after_more_periods() == 3, reload_lines(server)
    assert server.stop() == 0, server.log_text()


def test_sighup_with_unchanged_files_says_they_had_not_changed(tls_server, pki):
    server = tls_server()
    os.kill(server.pid, signal.SIGHUP)
    line = wait_for(lambda: first_line_with(server, RELOADED), 10, "the reload log line")
    assert f"serial={pki.serial_a} previous_serial={pki.serial_a}" in line, line
    assert "trigger=SIGHUP" in line and "files=unchanged" in line, line
    assert server.stop() == 0, server.log_text()


def test_reload_refusal_names_the_file_and_the_reason(tls_server, pki):
    """A renewal that leaves the key a dangling link (a certbot live/ directory without its archive/): the refusal
    names the variable, the file and the link, not OpenSSL's "system lib"."""
    server = tls_server(TLS_RELOAD_INTERVAL="100ms")
    link = server.key_path.with_name("key.link")
    link.symlink_to("../archive/privkey2.pem")
    os.replace(link, server.key_path)
    line = wait_for(lambda: first_line_with(server, REFUSED), 15, "the refused reload")
    assert f"TLS_KEY_FILE={server.key_path}" in line, line
    assert "dangling symbolic link to ../archive/privkey2.pem" in line and "system lib" not in line, line
    assert peer(server, pki)["serial"] == pki.serial_a
    assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("value", ["0", "-1", "soon", ""])
def test_bad_reload_interval_exits_2_naming_the_variable(pki, value):
    status, stderr = start_failure(TLS_CERT_FILE=pki.a[0], TLS_KEY_FILE=pki.a[1], TLS_RELOAD_INTERVAL=value)
    assert status == 2, stderr
    assert "TLS_RELOAD_INTERVAL" in stderr and "duration" in stderr, stderr


def test_expired_replacement_is_refused(tls_server, pki):
    server = tls_server()
    install(server.dir, pki.expired, pki.a[1])
    os.kill(server.pid, signal.SIGHUP)
    line = wait_for(lambda: next((l for l in server.log_text().splitlines() if REFUSED in l), None), 10,
                    "the refused reload")
    assert "expired" in line, line
    assert peer(server, pki)["serial"] == pki.serial_a


# --- bad input on the TLS port --------------------------------------------------------------------------------


@pytest.fixture
def guarded(tls_server):
    """A pub/sub TLS server with HANDSHAKE_TIMEOUT=1 and debug logs (to tell a handshake failure from a
    timeout), and its descriptor count before any connection."""
    server = tls_server(HANDSHAKE_TIMEOUT="1", LOGLEVEL="debug")
    return server, server.fd_count()


def raw_socket(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_cleartext_websocket_upgrade_on_the_tls_port_is_closed_promptly(guarded, pki):
    server, baseline = guarded
    for _ in range(3):
        sock = raw_socket(server)
        sock.sendall(upgrade_request("/", host=f"127.0.0.1:{server.port}"))
        elapsed, received = closed_within(sock, 5)
        sock.close()
        assert not received.startswith(b"HTTP/"), received
    # Closed because the handshake failed, not by the handshake timer.
    wait_for(lambda: log_count(server, TLS_FAILED) >= 3, 5, "three TLS handshake failures in the log")
    assert log_count(server, HANDSHAKE_TIMEOUT) == 0, server.log_text()[-2000:]
    # A ws:// client library gets no WebSocket either.
    with pytest.raises(Exception):
        with PyClient(f"ws://127.0.0.1:{server.port}/", proxy=None, open_timeout=5):
            pass
    assert_healthy(server, pki, baseline)


GARBAGE = {
    "random bytes": lambda: b"\x00" + os.urandom(2047),
    "handshake record of junk": lambda: b"\x16\x03\x01\x00\x40" + os.urandom(64),
    "oversized record": lambda: b"\x16\x03\x03\xff\xff" + os.urandom(1024),
    "application data before a handshake": lambda: b"\x17\x03\x03\x00\x20" + os.urandom(32),
    "SSLv2 hello": lambda: bytes.fromhex("802b0103010012000000100700c0030080010080060040040080020080") + os.urandom(16),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_on_the_tls_port_is_closed_promptly(guarded, pki, kind):
    server, baseline = guarded
    sock = raw_socket(server)
    sock.sendall(GARBAGE[kind]())
    closed_within(sock, 5)
    sock.close()
    wait_for(lambda: log_count(server, TLS_FAILED) >= 1, 5, "the TLS handshake failure in the log")
    assert log_count(server, HANDSHAKE_TIMEOUT) == 0, server.log_text()[-2000:]
    assert_healthy(server, pki, baseline)


def test_stalled_handshakes_are_dropped_within_handshake_timeout(guarded, pki):
    """Each stall starts at once; each must be closed by the 1 s handshake timer (plus scheduling slack)."""
    server, baseline = guarded
    context = client_context(pki)
    probe = TLSRawClient(server.port, context, handshake=False)
    hello = probe.client_hello()  # a real ClientHello's bytes
    probe.close()
    assert hello[:1] == b"\x16" and len(hello) > 100
    stalls = {}

    def stall(name, sock):
        stalls[name] = (sock, time.monotonic())

    stall("silent", raw_socket(server))
    sock = raw_socket(server)
    sock.sendall(b"\x16\x03\x01")
    stall("three bytes of a record header", sock)
    sock = raw_socket(server)
    sock.sendall(hello[:20])
    stall("first 20 bytes of a ClientHello", sock)
    sock = raw_socket(server)
    sock.sendall(hello[:-1])
    stall("ClientHello less its last byte", sock)
    # A whole ClientHello, then never the client's Finished.
    client = TLSRawClient(server.port, context, handshake=False)
    client.sock.sendall(client.client_hello())
    stall("ClientHello then silence", client.sock)
    # TLS done, then no HTTP request (slowloris over TLS).
    client = TLSRawClient(server.port, context)
    stall("TLS handshake then silence", client.sock)
    # TLS done, then half of the record carrying the HTTP request.
    client = TLSRawClient(server.port, context)
    record = client.encrypt(upgrade_request("/", host=f"localhost:{server.port}"))
    client.sock.sendall(record[:len(record) // 2])
    stall("half a record of the HTTP request", client.sock)
    # TLS done, part of the HTTP request head (complete records).
    client = TLSRawClient(server.port, context)
    client.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
    stall("partial request head", client.sock)

    failures = []
    for name, (sock, started) in stalls.items():
        try:
            closed_within(sock, max(0.1, started + 4.0 - time.monotonic()))
        except AssertionError as error:
            failures.append(f"{name}: {error}")
        sock.close()
    assert not failures, failures
    wait_for(lambda: log_count(server, HANDSHAKE_TIMEOUT) >= len(stalls), 5,
             f"{len(stalls)} handshake timeouts in the log")
    assert_healthy(server, pki, baseline)


def open_websocket(server, pki, channel="bad-input"):
    client = TLSRawClient(server.port, client_context(pki))
    tok = token(read=[channel], write=[channel])
    client.handshake(path="/?auth=" + quote(tok, safe=""), host=f"localhost:{server.port}")
    return client


def test_truncated_record_then_eof_is_closed(guarded, pki):
    server, baseline = guarded
    client = open_websocket(server, pki)
    record = client.encrypt(b"\x81\x85\x00\x00\x00\x00hello")
    client.sock.sendall(record[:len(record) // 2])
    client.sock.shutdown(socket.SHUT_WR)
    closed_within(client.sock, 5)
    client.close()
    assert_healthy(server, pki, baseline)


def test_truncated_record_in_a_live_connection_does_not_disturb_others(guarded, pki):
    """Half a record from one client: the server waits for the rest of it on that connection only; others are
    served meanwhile; when the rest arrives the message goes through."""
    server, baseline = guarded
    channel = "bad-input"
    stuck = open_websocket(server, pki, channel)
    listener = open_websocket(server, pki, channel)
    record = stuck.encrypt(frame(0x1, message_bytes(channel, "x")))
    stuck.sock.sendall(record[:7])
    round_trip(server, pki)
    stuck.sock.sendall(record[7:])
    issuer, got_channel, data = recv_delivery(listener)
    assert (got_channel, data) == (channel, "x")
    close_politely(stuck)
    close_politely(listener)
    assert_healthy(server, pki, baseline)


def test_corrupted_record_is_closed(guarded, pki):
    server, baseline = guarded
    client = open_websocket(server, pki)
    record = bytearray(client.encrypt(b"\x81\x85\x00\x00\x00\x00hello"))
    record[-3] ^= 0x40  # inside the ciphertext / tag
    client.sock.sendall(bytes(record))
    closed_within(client.sock, 5)
    client.close()
    assert_healthy(server, pki, baseline)


AFTER_HANDSHAKE = {
    "change cipher spec": b"\x14\x03\x03\x00\x01\x01",
    "wrong record version": b"\x17\x03\x01\x00\x20" + bytes(32),
    "record longer than TLS allows": b"\x17\x03\x03\x48\x01" + bytes(64),
    "record shorter than its tag": b"\x17\x03\x03\x00\x05" + bytes(5),
    "empty record": b"\x17\x03\x03\x00\x00",
    "unknown content type": b"\x63\x03\x03\x00\x20" + bytes(32),
    "cleartext HTTP": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


@pytest.mark.parametrize("kind", sorted(AFTER_HANDSHAKE))
def test_bad_records_after_the_handshake_are_closed(guarded, pki, kind):
    # Past the handshake the server parses records itself (OpenSSL is gone): each of these ends the connection
    # at once, and nothing else is disturbed.
    server, baseline = guarded
    client = open_websocket(server, pki)
    client.sock.sendall(AFTER_HANDSHAKE[kind])
    closed_within(client.sock, 5)
    client.close()
    assert_healthy(server, pki, baseline)


def test_bad_input_storm_leaves_nothing_behind_and_a_subscriber_keeps_receiving(guarded, pki):
    """Dozens of each kind of bad input at once while a TLS subscriber receives: every bad connection is closed,
    the subscriber misses nothing, and the descriptor count comes back to where it started."""
    server, baseline = guarded
    channel = "storm"
    tok = token(read=[channel], write=[channel])
    context = client_context(pki)
    probe = TLSRawClient(server.port, context, handshake=False)
    hello = probe.client_hello()
    probe.close()
    with wss(server, pki, tok) as subscriber, wss(server, pki, tok) as publisher:
        bad = []
        for number in range(30):
            for payload in (upgrade_request("/"), GARBAGE["random bytes"](), hello[:20], b"", hello):
                sock = raw_socket(server)
                if payload:
                    sock.sendall(payload)
                bad.append(sock)
            send_publish(publisher, channel, f"during storm {number}")
        for number in range(30):
            assert_delivery(subscriber.recv(timeout=10), channel, f"during storm {number}")
        failures = []
        for sock in bad:
            try:
                closed_within(sock, 6)
            except AssertionError as error:
                failures.append(str(error))
            sock.close()
        assert not failures, failures[:5]
        send_publish(publisher, channel, "after storm")
        assert_delivery(subscriber.recv(timeout=10), channel, "after storm")
    assert_healthy(server, pki, baseline)
    assert server.stop() == 0, server.log_text()[-2000:]


# --- testssl.sh --------------------------------------------------------------------------------------------


# Findings about the test certificate or plain-HTTP niceties, not about the TLS policy: a private test CA
# has no CRL/OCSP or CAA record, and a WebSocket endpoint answers "/" with 426 and sends no HSTS header.
TESTSSL_ALLOWED = {
    "cert_revocation",   # HIGH "Neither CRL nor OCSP URI provided": the test CA publishes neither
    "DNS_CAArecord",     # LOW: no CAA record for localhost
    "HSTS",              # LOW "not offered": an HTTP header for web pages, not part of the TLS policy
    "HTTP_status_code",  # WARN "426 Upgrade Required @ '/'": testssl.sh asks for a page; this is a WebSocket endpoint
}
BAD_SEVERITIES = {"LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL"}


def test_testssl_finds_no_weak_protocol_cipher_or_vulnerability(tls_server, pki, tmp_path):
    """testssl.sh (about a minute here) against the running server: every protocol, cipher and vulnerability
    finding is OK/INFO. Its summary goes to the test's output (-s shows it)."""
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.fail("testssl.sh is not installed (apt-get install testssl.sh)")
    server = tls_server()
    baseline = server.fd_count()
    report = tmp_path / "testssl.json"
    started = time.monotonic()
    done = run([testssl, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", str(pki.ca),
                "--ip", "127.0.0.1", "--jsonfile", str(report), f"localhost:{server.port}"], timeout=600)
    elapsed = time.monotonic() - started
    findings = json.loads(report.read_text())
    by_id = {finding["id"]: finding for finding in findings}
    print(f"testssl.sh took {elapsed:.0f} s")
    for finding in findings:
        if finding["severity"] not in ("DEBUG",):
            print(f"  {finding['id']:<32} {finding['severity']:<8} {finding['finding'][:90]}")
    assert "scanProblem" not in by_id, by_id.get("scanProblem")
    for name in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[name]["finding"] == "not offered", by_id[name]
    for name in ("TLS1_2", "TLS1_3"):
        assert by_id[name]["finding"].startswith("offered"), by_id[name]
    # testssl.sh checks resumption with `s_client </dev/null -sess_out`, which under load often exits before a
    # TLS 1.3 ticket (sent after the handshake) arrives; then the -sess_in run has no session file and the check
    # reports a "connect problem" (openssl's own s_server gives the same). Resumption is tested above instead.
    flaky = [f for f in findings if f["id"].startswith("sessionresumption_") and f["severity"] == "WARN"
             and "connect problem" in f["finding"]]
    problems = [f for f in findings if f["severity"] in BAD_SEVERITIES and f["id"] not in TESTSSL_ALLOWED
                and f not in flaky]
    assert not problems, json.dumps(problems, indent=1)
    # Every cipher the server accepts is an AEAD with (EC)DHE, and the vulnerability checks all ran.
    accepted = [f["finding"] for f in findings if re.fullmatch(r"cipher_x[0-9a-f]+", f["id"])]
    assert accepted, "no per-cipher findings"
    for cipher in accepted:
        assert re.search(r"\bECDH\b", cipher) and re.search(r"AESGCM|ChaCha20", cipher), cipher
    for vulnerability in ("heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego",
                          "CRIME_TLS", "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM",
                          "BEAST", "LUCKY13", "RC4"):
        assert vulnerability in by_id, f"testssl.sh did not report {vulnerability}"
        assert by_id[vulnerability]["severity"] in ("OK", "INFO"), by_id[vulnerability]
    assert server.process.poll() is None
    wait_for_fd_baseline(server, baseline)
    round_trip(server, pki)
    assert server.stop() == 0, server.log_text()[-2000:]

"""`philote token` and `philote client`, end to end: real processes, real sockets, a real server (or, for
the rules a real server never breaks, a scripted fake one). Every wait is bounded; output is polled with a
deadline, never awaited with a guessed sleep."""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from conftest import BINARY

SECRET = "cli-test-secret"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PREFIX = "philote client: "


# MARK: helpers


def run(*args, env=None, input=b"", timeout=15):
    """Runs the binary to completion with a clean environment (plus `env`)."""
    full_env = {"PATH": os.environ.get("PATH", "")}
    full_env.update(env or {})
    return subprocess.run(
        [str(BINARY), *args], env=full_env, input=input, capture_output=True, timeout=timeout
    )


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_token(token, secret=SECRET):
    """Checks the HMAC signature with Python's own hmac and returns (header, claims)."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), digest).digest()
    assert hmac.compare_digest(expected, b64url_decode(signature_b64)), "bad signature"
    return header, json.loads(b64url_decode(payload_b64))


def mint(claims, secret=SECRET):
    """A token minted in Python, independent of `philote token`."""
    signing_input = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def free_port():
    """A port with nothing listening: bound by the kernel's choice, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def single_error_line(result_stderr):
    lines = result_stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(PREFIX), lines
    return lines[0][len(PREFIX):]


class Client:
    """A running `philote client`. Threads collect its stdout and stderr lines as they come, so a test can
    wait for a line with a deadline; its stdin is a pipe the test closes to end the input."""

    def __init__(self, port, channel, *extra, env=None, url=None, stdin=subprocess.PIPE):
        full_env = {"PATH": os.environ.get("PATH", "")}
        full_env.update(env if env is not None else {"SECRET": SECRET})
        args = ["client", "--url", url or f"ws://127.0.0.1:{port}/", "--channel", channel, *extra]
        self.process = subprocess.Popen(
            [str(BINARY), *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env
        )
        self.stdout = []
        self.stderr = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._collect, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, lines):
        for line in iter(stream.readline, b""):
            lines.append(line.decode().rstrip("\n"))
        stream.close()

    def wait_for(self, lines, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(line) for line in list(lines)):
                return
            if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.01)
        raise AssertionError(f"timed out; stdout={self.stdout} stderr={self.stderr}")

    def wait_connected(self, timeout=10.0):
        self.wait_for(self.stderr, lambda line: line.startswith(PREFIX + "connected to "), timeout)

    def wait_stdout_lines(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.stdout) < count and time.monotonic() < deadline:
            if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.01)
        assert len(self.stdout) >= count, f"stdout={self.stdout} stderr={self.stderr}"
        return self.stdout[:count]

    def finish(self, timeout=10.0):
        """Ends the input (if it is a pipe) and returns the exit status."""
        if self.process.stdin:
            self.process.stdin.close()
        status = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return status

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def clients():
    """clients(port, channel, *extra, **kw) -> Client; any still running after the test is killed."""
    started = []

    def start(*args, **kwargs):
        client = Client(*args, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def pubsub(start_server):
    return start_server("serve", SECRET=SECRET)


def publish(port, channel, text, *extra, env=None):
    """Runs a publishing client to completion with `text` on stdin."""
    return run(
        "client", "--url", f"ws://127.0.0.1:{port}/", "--channel", channel, *extra,
        env=env if env is not None else {"SECRET": SECRET}, input=text.encode(),
    )


# MARK: philote token


def test_token_claims_and_signature():
    before = int(time.time())
    result = run("token", "--read", "a,b", "--write", "c", "--api", "--ttl", "1h", env={"SECRET": SECRET})
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    token = result.stdout.decode()
    assert token.endswith("\n") and token.count("\n") == 1
    header, claims = decode_token(token.strip())
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["read"] == ["a", "b"]
    assert claims["write"] == ["c"]
    assert claims["api"] is True
    assert before + 3600 <= claims["exp"] <= after + 3600


def test_token_defaults_have_no_expiry_and_no_api():
    result = run("token", "--read", "x", "--read", "y,z", env={"SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    _, claims = decode_token(result.stdout.decode().strip())
    assert claims == {"read": ["x", "y", "z"], "write": []}


@pytest.mark.parametrize("ttl,seconds", [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800),
                                         ("1h30m", 5400), ("90", 90)])
def test_token_ttl_units(ttl, seconds):
    before = int(time.time())
    result = run("token", "--ttl", ttl, env={"SECRET": SECRET})
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    _, claims = decode_token(result.stdout.decode().strip())
    assert before + seconds <= claims["exp"] <= after + seconds


@pytest.mark.parametrize("ttl", ["0s", "1x", "h", "-5", "1.5h", ""])
def test_token_bad_ttl_is_refused(ttl):
    result = run("token", "--ttl", ttl, env={"SECRET": SECRET})
    assert result.returncode != 0
    assert result.stdout == b""
    assert b"--ttl" in result.stderr


def test_token_other_algorithm():
    result = run("token", "--write", "w", "--algorithm", "hs512", env={"SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    header, claims = decode_token(result.stdout.decode().strip())
    assert header["alg"] == "HS512"
    assert claims["write"] == ["w"]


@pytest.mark.parametrize("env", [{}, {"SECRET": ""}])
def test_token_without_secret_exits_2_with_one_line(env):
    result = run("token", "--read", "a", env=env)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "SECRET is not set" in lines[0], lines


def test_help_for_both_commands():
    for command in ("token", "client"):
        result = run(command, "--help")
        assert result.returncode == 0
        assert b"USAGE: philote " + command.encode() in result.stdout


# MARK: philote client, end to end


def test_client_pipe_into_client_delivers_every_line(pubsub, clients):
    subscriber = clients(pubsub.port, "c", "--verbose")
    subscriber.wait_connected()
    lines = ["first", 'second "quoted" <&> \\ é', "", "last without newline"]
    # CRLF and a missing final newline behave as with Go's bufio.Scanner (the original jane client).
    publisher = publish(pubsub.port, "c", "first\r\n" + lines[1] + "\n\n" + lines[3])
    assert publisher.returncode == 0, publisher.stderr
    assert publisher.stderr == b""
    assert publisher.stdout == b"", "the sender never receives its own messages"

    received = subscriber.wait_stdout_lines(4)
    messages = [json.loads(line) for line in received]
    assert [m.get("data", "") for m in messages] == lines
    assert all(m["channel"] == "c" for m in messages)
    issuers = {m["issuer"] for m in messages}
    assert len(issuers) == 1 and uuid.UUID(issuers.pop()).version == 4
    # Printed exactly as the server sent them: its key order and escapes, one message per line.
    assert received[0].startswith('{"issuer":"') and received[0].endswith('","channel":"c","data":"first"}')
    assert r'\"quoted\" \u003c\u0026\u003e \\ é' in received[1]

    assert subscriber.finish() == 0
    assert subscriber.stdout == received
    assert [line for line in subscriber.stderr if not line.startswith(PREFIX + "connected to ")] == []


def test_client_with_given_tokens_and_no_secret(pubsub, clients):
    def token(*args):
        result = run("token", *args, env={"SECRET": SECRET})
        assert result.returncode == 0
        return result.stdout.decode().strip()

    subscriber = clients(pubsub.port, "news", "--verbose", "--token", token("--read", "news"), env={})
    subscriber.wait_connected()
    publisher = publish(pubsub.port, "news", "one\ntwo\nthree\n", "--token", token("--write", "news"), env={})
    assert publisher.returncode == 0, publisher.stderr
    received = subscriber.wait_stdout_lines(3)
    assert [json.loads(line)["data"] for line in received] == ["one", "two", "three"]
    assert subscriber.finish() == 0


def test_client_many_lines_arrive_in_order(pubsub, clients):
    subscriber = clients(pubsub.port, "bulk", "--verbose")
    subscriber.wait_connected()
    count = 3000
    publisher = publish(pubsub.port, "bulk", "".join(f"line {i} {'x' * 200}\n" for i in range(count)))
    assert publisher.returncode == 0, publisher.stderr
    received = subscriber.wait_stdout_lines(count, timeout=30)
    assert [json.loads(line)["data"].split()[1] for line in received] == [str(i) for i in range(count)]
    assert subscriber.finish() == 0


def test_client_prints_error_replies(pubsub):
    read_only = mint({"read": ["c"]})
    result = publish(pubsub.port, "c", "hello\n", "--token", read_only, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ['{"error":"write not permitted","channel":"c"}']


def test_client_listen_ends_cleanly_on_sigint(pubsub, clients):
    listener = clients(pubsub.port, "c", "--listen", "--verbose", stdin=subprocess.DEVNULL)
    listener.wait_connected()
    listener.process.send_signal(signal.SIGINT)
    assert listener.finish() == 0
    assert listener.stderr == [PREFIX + f"connected to ws://127.0.0.1:{pubsub.port}/"]


def test_client_url_from_environment(pubsub):
    result = run("client", "--channel", "c", input=b"x\n",
                 env={"SECRET": SECRET, "PHILOTE_URL": f"ws://127.0.0.1:{pubsub.port}/"})
    assert result.returncode == 0, result.stderr


def test_client_token_in_url_query(pubsub):
    token = mint({"write": ["c"]})
    result = run("client", "--url", f"ws://127.0.0.1:{pubsub.port}/?auth={token}", "--channel", "c",
                 input=b"x\n", env={})
    assert result.returncode == 0, result.stderr


# MARK: philote client, error lines


@pytest.mark.parametrize("token,reason", [
    ("garbage", "authentication failed: malformed token"),
    (mint({"read": ["c"]}, secret="another-secret"), "authentication failed: invalid token signature"),
    (mint({"read": ["c"], "exp": 1000}), "authentication failed: token expired"),
])
def test_client_refused_token(pubsub, token, reason):
    result = publish(pubsub.port, "c", "x\n", "--token", token, env={})
    assert result.returncode == 1
    assert single_error_line(result.stderr).startswith(reason)
    assert result.stdout == b""


def test_client_connection_refused():
    port = free_port()
    result = publish(port, "c", "x\n")
    assert result.returncode == 1
    assert single_error_line(result.stderr) == f"cannot connect to 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "ws://", "ws://127.0.0.1:99999/", "ws://host:port/",
                                 "127.0.0.1:6380", "ws://h/#fragment", "ws://user@h/"])
def test_client_invalid_url(url):
    result = run("client", "--url", url, "--channel", "c", env={"SECRET": SECRET})
    assert result.returncode == 2
    assert single_error_line(result.stderr).startswith("invalid URL: ")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A test CA and a server certificate for localhost / 127.0.0.1, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Philote Test CA", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return folder


def test_client_over_wss(start_server, certificates):
    server = start_server("echo", TLS_CERT_FILE=str(certificates / "server.pem"),
                          TLS_KEY_FILE=str(certificates / "server.key"))
    for host in ("localhost", "127.0.0.1"):
        result = run("client", "--url", f"wss://{host}:{server.port}/", "--channel", "c",
                     "--ca", str(certificates / "ca.pem"), env={"SECRET": SECRET}, input=b"over tls\n")
        assert result.returncode == 0, result.stderr
        # The echo server sends the publish back: proof that it crossed TLS both ways.
        assert json.loads(result.stdout.splitlines()[0]) == {"channel": "c", "data": "over tls"}
    # Without the CA the chain is not trusted; --insecure skips the check.
    refused = run("client", "--url", f"wss://127.0.0.1:{server.port}/", "--channel", "c", env={"SECRET": SECRET},
                  input=b"x\n")
    assert refused.returncode == 1
    assert single_error_line(refused.stderr) == (
        "TLS handshake with 127.0.0.1 failed: certificate: unable to get local issuer certificate")
    insecure = run("client", "--url", f"wss://127.0.0.1:{server.port}/", "--channel", "c", "--insecure",
                   env={"SECRET": SECRET}, input=b"x\n")
    assert insecure.returncode == 0, insecure.stderr


def test_client_wss_to_a_plain_server(start_server):
    server = start_server("echo")
    result = run("client", "--url", f"wss://127.0.0.1:{server.port}/", "--channel", "c", "--insecure",
                 env={"SECRET": SECRET}, input=b"x\n")
    assert result.returncode == 1
    assert single_error_line(result.stderr).startswith("TLS handshake with 127.0.0.1 failed")


def test_client_without_token_or_secret(pubsub):
    result = publish(pubsub.port, "c", "x\n", env={})
    assert result.returncode == 2
    line = single_error_line(result.stderr)
    assert line.startswith("no token") and "--token" in line and "SECRET" in line


def test_client_other_http_status(start_server, clients):
    server = start_server("serve", SECRET=SECRET, MAX_CONNECTIONS="1")
    holder = clients(server.port, "c", "--verbose")
    holder.wait_connected()
    result = publish(server.port, "c", "x\n")
    assert result.returncode == 1
    assert single_error_line(result.stderr) == "handshake failed: HTTP 503: too many connections"
    assert holder.finish() == 0


def test_client_reports_the_servers_close_code(pubsub, clients):
    # Valid at connect, expires two seconds later: the server closes with 4001 while connected.
    token = mint({"read": ["c"], "exp": int(time.time()) + 2})
    listener = clients(pubsub.port, "c", "--listen", "--token", token, env={}, stdin=subprocess.DEVNULL)
    assert listener.finish(timeout=10) == 1
    assert listener.stderr == [PREFIX + "connection closed by server: 4001 token expired"]


def test_client_oversized_line_is_reported(pubsub):
    result = publish(pubsub.port, "c", "y" * 100_000 + "\n")
    assert result.returncode == 1
    assert single_error_line(result.stderr) == "connection closed by server: 1009 message too big"


def test_client_reports_server_shutdown(pubsub, clients):
    listener = clients(pubsub.port, "c", "--verbose")
    listener.wait_connected()
    assert pubsub.stop() == 0
    assert listener.process.wait(10) == 1
    listener.wait_for(listener.stderr, lambda line: line.startswith(PREFIX + "connection closed by server: 1001"))


# MARK: against a scripted server (what a correct server never does)


class FakeServer:
    """Accepts one connection and runs `script(sock, request_head)` on it in a thread."""

    def __init__(self, script):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.error = None
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script):
        try:
            sock, _ = self.listener.accept()
            sock.settimeout(10)
            with sock:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(4096)
                    assert chunk, "client closed during the request"
                    head += chunk
                script(sock, head.decode())
        except Exception as error:  # reported by join()
            self.error = error

    def join(self):
        self.thread.join(10)
        self.listener.close()
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


def accept_value(head):
    key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
               if line.lower().startswith("sec-websocket-key:"))
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def switching(accept):
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()


def read_client_frame(sock):
    """One client frame: (opcode, unmasked payload); asserts the client masked it."""
    def exact(count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "client closed"
            data += chunk
        return data

    first, second = exact(2)
    assert second & 0x80, "client frame not masked"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exact(8))[0]
    key = exact(4)
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(exact(length)))
    return first & 0x0F, payload


def test_client_answers_pings_and_echoes_the_close():
    seen = {}

    def script(sock, head):
        assert "\r\nAuthorization: Bearer " in head
        sock.sendall(switching(accept_value(head)))
        sock.sendall(b"\x89\x05hello")  # ping "hello"
        seen["pong"] = read_client_frame(sock)
        sock.sendall(b'\x81\x0d{"data":"x"}\n')  # a text message, with the server's trailing newline
        sock.sendall(b"\x88\x05\x03\xe8bye")  # close 1000 "bye"
        seen["close"] = read_client_frame(sock)

    server = FakeServer(script)
    result = run("client", "--url", f"ws://127.0.0.1:{server.port}/", "--channel", "c", "--listen",
                 env={"SECRET": SECRET})
    server.join()
    assert seen["pong"] == (0xA, b"hello")
    assert seen["close"] == (0x8, b"\x03\xe8")
    assert result.stdout == b'{"data":"x"}\n'
    assert result.returncode == 1
    assert single_error_line(result.stderr) == "connection closed by server: 1000 bye"


def test_client_refuses_a_wrong_accept_value():
    server = FakeServer(lambda sock, head: sock.sendall(switching("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")))
    result = run("client", "--url", f"ws://127.0.0.1:{server.port}/", "--channel", "c", env={"SECRET": SECRET})
    server.join()
    assert result.returncode == 1
    assert single_error_line(result.stderr) == "handshake failed: wrong Sec-WebSocket-Accept in the 101 response"


def test_client_reports_a_protocol_error():
    closes = []

    def script(sock, head):
        sock.sendall(switching(accept_value(head)))
        sock.sendall(b"\x81\x82abcd" + b"xy")  # a masked server frame: forbidden (RFC 6455 section 5.1)
        closes.append(read_client_frame(sock))

    server = FakeServer(script)
    result = run("client", "--url", f"ws://127.0.0.1:{server.port}/", "--channel", "c", "--listen",
                 env={"SECRET": SECRET})
    server.join()
    assert closes == [(0x8, b"\x03\xea" + b"server frame masked")]
    assert result.returncode == 1
    assert single_error_line(result.stderr) == "protocol error from the server: server frame masked"


def test_client_times_out_when_the_close_is_not_answered():
    def script(sock, head):
        sock.sendall(switching(accept_value(head)))
        assert read_client_frame(sock) == (0x1, b'{"channel":"c","data":"x"}')
        assert read_client_frame(sock) == (0x8, b"\x03\xe8")
        # Never answer; wait for the client to give up and close the TCP connection.
        sock.settimeout(15)
        assert sock.recv(1) == b""

    server = FakeServer(script)
    started = time.monotonic()
    result = run("client", "--url", f"ws://127.0.0.1:{server.port}/", "--channel", "c", input=b"x\n",
                 env={"SECRET": SECRET})
    elapsed = time.monotonic() - started
    server.join()
    assert result.returncode == 1
    assert "did not answer the close within 5 s" in single_error_line(result.stderr)
    assert 4.5 < elapsed < 12

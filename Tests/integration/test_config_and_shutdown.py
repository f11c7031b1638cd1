"""Start-up configuration (PROTOCOL.md "Configuration"), graceful shutdown on SIGTERM/SIGINT, what /api/info
reveals, and what the log never contains."""
import json
import os
import signal
import socket
import struct
import subprocess
import time
from urllib.parse import quote

import pytest

from conftest import BINARY, SANITIZER_ENV, free_port, wait_listening
from pubsub_helpers import (CLOSE, Closed, attempt, close_politely, connect, event_loops, http_request, publish,
                            recv_delivery, recv_error, send_raw)
from tokens import SECRET, distinctive, now, token
from wsraw import RawClient

BASE_ENV = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": "0", "WORKERS": "2", **SANITIZER_ENV}


def run_binary(env, args=(), timeout=10):
    """Runs the server expecting it to exit by itself (a configuration error): (status, stderr)."""
    try:
        done = subprocess.run([str(BINARY), *args], env={**BASE_ENV, **env}, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server kept running with {env}; it should have refused to start")
    return done.returncode, done.stdout + done.stderr




# --- SECRET ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("serve",)])
@pytest.mark.parametrize("secret", [None, ""])
def test_no_secret_exits_2_saying_how_to_set_one(args, secret):
    env = {} if secret is None else {"SECRET": secret}
    status, output = run_binary(env, args)
    assert status == 2, output
    assert "SECRET" in output
    # It says how to set one: an example assignment or command, not just "missing".
    assert "SECRET=" in output or "export SECRET" in output or "openssl rand" in output, output


# --- malformed values -----------------------------------------------------------------------------------


BAD_VALUES = [
    ("PORT", "abc"), ("PORT", "70000"), ("PORT", "-1"), ("PORT", "80 80"),
    ("HOST", "not-an-address"), ("HOST", "999.1.1.1"),
    ("WORKERS", "0"), ("WORKERS", "many"), ("WORKERS", "-2"),
    ("LOGLEVEL", "verbose"), ("LOGLEVEL", "trace"),
    ("MAX_CONNECTIONS", "lots"), ("MAX_CONNECTIONS", "-5"), ("MAX_CONNECTIONS", "1.5"),
    ("READ_BUFFER_SIZE", "big"), ("READ_BUFFER_SIZE", "-1"),
    ("WRITE_BUFFER_SIZE", "big"), ("WRITE_BUFFER_SIZE", "-1"),
    ("CHECK_ORIGIN", "maybe"), ("CHECK_ORIGIN", "yes please"),
    ("MAX_MESSAGE_SIZE", "huge"), ("MAX_MESSAGE_SIZE", "-10"),
    ("DRAIN_TIMEOUT", "soon"), ("DRAIN_TIMEOUT", "-1"),
    ("PING_INTERVAL", "often"), ("PING_INTERVAL", "-5"),
    ("PONG_TIMEOUT", "x"), ("HANDSHAKE_TIMEOUT", "x"), ("CLOSE_TIMEOUT", "x"),
    ("MAX_HEADER_SIZE", "x"), ("MAX_BACKPRESSURE", "x"),
]


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_malformed_value_exits_2_naming_the_variable(name, value):
    secret = distinctive("secret")
    status, output = run_binary({"SECRET": secret, name: value})
    assert status == 2, output
    assert name in output, output
    assert secret not in output
    assert "Traceback" not in output and "Fatal error" not in output
    # ... and what it accepts.
    if name == "LOGLEVEL":
        for level in ("debug", "info", "warning", "error", "fatal", "panic"):
            assert level in output, output
    elif name == "CHECK_ORIGIN":
        assert "true" in output and "false" in output, output
    elif name.endswith("TIMEOUT") or name == "PING_INTERVAL":
        assert "duration" in output or "second" in output, output
    elif name == "HOST":
        assert "address" in output, output
    else:
        assert "integer" in output or "number" in output, output


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "fatal", "panic"])
def test_every_loglevel_is_accepted(level):
    port = free_port()
    log = open(os.devnull, "w")
    process = subprocess.Popen([str(BINARY)], env={**BASE_ENV, "SECRET": SECRET, "PORT": str(port),
                                                   "LOGLEVEL": level}, stdout=log, stderr=subprocess.PIPE)
    try:
        wait_listening(port, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0
        text = stderr.decode()
        if level in ("warning", "error", "fatal", "panic"):
            assert "level=info" not in text and "level=debug" not in text, text
        else:
            assert "philote started" in text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("name, value", [("CHECK_ORIGIN", "1"), ("CHECK_ORIGIN", "false"), ("CHECK_ORIGIN", "True"),
                                         ("READ_BUFFER_SIZE", "4096"), ("WRITE_BUFFER_SIZE", "4096"),
                                         ("MAX_CONNECTIONS", "10"), ("DRAIN_TIMEOUT", "500ms")])
def test_well_formed_values_are_accepted(start_server, name, value):
    server = start_server("serve", SECRET=SECRET, **{name: value})
    assert server.stop() == 0


def test_defaults_are_reported_by_api_info(start_server):
    server = start_server("serve", SECRET=SECRET)
    status, headers, body = http_request(server.port, "GET", "/api/info",
                                         [("Authorization", "Bearer " + token(api=True))])
    assert status == 200, body
    config = {key.replace("_", "").lower(): value for key, value in json.loads(body)["config"].items()}
    assert config["maxconnections"] == 255
    assert config["readbuffersize"] == 1024
    assert config["writebuffersize"] == 1024
    assert config["checkorigin"] is False
    assert config["maxmessagesize"] == 65536
    assert config["loglevel"] == "info"
    assert server.stop() == 0


def test_default_port_is_6380():
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 6380))
    except OSError:
        pytest.skip("port 6380 is in use on this machine")
    env = {key: value for key, value in BASE_ENV.items() if key != "PORT"}
    process = subprocess.Popen([str(BINARY)], env={**env, "SECRET": SECRET}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        wait_listening(6380, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0
        assert "address=ws://127.0.0.1:6380" in stderr.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_startup_line_names_version_address_and_workers(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="3")
    line = next(line for line in server.log_text().splitlines() if 'msg="philote started"' in line)
    assert line.startswith("time=") and "level=info" in line
    assert "version=" in line and f"address=ws://127.0.0.1:{server.port}" in line and "workers=3" in line
    assert server.stop() == 0


# --- shutdown ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_sends_1001_to_every_client_and_exits_0(start_server, signum):
    server = start_server("serve", SECRET=SECRET, WORKERS="2", DRAIN_TIMEOUT="10")
    tok = token(read=["news"], write=["news"])
    clients = [connect(server.port, tok) for _ in range(8)]
    loops, owners = event_loops(server, clients)
    assert len(loops) == 2 and set(owners) == loops, "the clients should be on both loops"
    publish(clients[0], "news", "before shutdown")
    recv_delivery(clients[1])
    started = time.monotonic()
    server.process.send_signal(signum)
    for client in clients:
        client.expect_close(1001)  # answers the close, then sees the server close TCP
        client.close()  # as a real client does once the server has closed
    status = server.process.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert status == 0, server.log_text()
    # Within DRAIN_TIMEOUT (10 s) for sure; with every client answering at once, promptly.
    assert elapsed < 3, f"took {elapsed:.1f} s although every client answered and closed"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_shutdown_with_clients_that_never_answer_exits_within_drain_timeout(start_server):
    server = start_server("serve", SECRET=SECRET, WORKERS="2", DRAIN_TIMEOUT="1", CLOSE_TIMEOUT="30")
    clients = [connect(server.port, token(read=["x"])) for _ in range(6)]
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for client in clients:
        fin, rsv, opcode, payload = client.recv_frame()  # and never answer
        assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1001, (opcode, payload)
    # Stopped accepting: no new client gets in while the old ones drain.
    try:
        status, _, _, late = attempt(server.port, token(read=["x"]), timeout=2)
        late.close()
        assert status != 101, "a new client was accepted during shutdown"
    except (OSError, Closed):
        pass
    status = server.process.wait(timeout=5)
    elapsed = time.monotonic() - started
    assert status == 0, server.log_text()
    assert elapsed < 1 + 1.0, f"exit took {elapsed:.2f} s with DRAIN_TIMEOUT=1"
    for client in clients:
        client.sock.settimeout(2)
        client.expect_eof()
        client.close()


def test_shutdown_with_no_clients_exits_0(start_server):
    server = start_server("serve", SECRET=SECRET)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 2


# --- /api/info never shows the secret ---------------------------------------------------------------------


def test_api_info_never_contains_the_secret(start_server):
    secret = distinctive("supersecret")
    server = start_server("serve", SECRET=secret, LOGLEVEL="debug")
    api_token = token(api=True, secret=secret)
    status, headers, body = http_request(server.port, "GET", "/api/info", [("Authorization", "Bearer " + api_token)])
    assert status == 200
    text = body.decode()
    assert secret not in text and secret[-16:] not in text
    assert api_token not in text
    info = json.loads(text)
    assert not any("secret" in key.lower() for key in info["config"]), info["config"]
    assert server.stop() == 0


# --- logs never contain a token, the secret or a payload ------------------------------------------------------


def test_logs_never_contain_token_secret_or_payload(start_server):
    secret = distinctive("logsecret")
    server = start_server("serve", SECRET=secret, LOGLEVEL="debug", MAX_MESSAGE_SIZE="4096", CLOSE_TIMEOUT="1")
    channel = distinctive("chan")
    header_token = token(read=[channel], write=[channel], api=True, secret=secret, sub=distinctive("subject"))
    query_token = token(read=[channel], write=[channel], secret=secret, sub=distinctive("subject"))
    expired_token = token(read=[channel], exp=now() - 5, secret=secret)
    forged_token = token(read=[channel], secret="not-" + secret)
    garbage_token = distinctive("garbagetoken")
    payloads = [distinctive(kind) for kind in ("published", "forbidden", "badjson", "oversized", "binary", "badutf8",
                                               "violation")]
    hidden = [secret, header_token, query_token, expired_token, forged_token, garbage_token] + payloads
    for tok in (header_token, query_token, expired_token, forged_token):
        hidden += [part for part in tok.split(".")[1:]]  # payload and signature segments

    subscriber = connect(server.port, header_token)
    publisher = connect(server.port, query_token, how="query")
    publish(publisher, channel, payloads[0])
    assert recv_delivery(subscriber)[2] == payloads[0]
    publish(publisher, "elsewhere", payloads[1])
    recv_error(publisher)
    send_raw(publisher, "{" + payloads[2])
    recv_error(publisher)
    send_raw(publisher, json.dumps({"channel": channel, "data": payloads[4]}), opcode=0x2)
    assert recv_delivery(subscriber)[2] == payloads[4]
    send_raw(subscriber, json.dumps({"channel": channel, "data": payloads[3] + "x" * 5000}))
    subscriber.expect_close(1009)
    subscriber.close()
    for tok, how in ((expired_token, "bearer"), (forged_token, "query"), (garbage_token, "bearer"),
                     (garbage_token, "query")):
        status, _, _, client = attempt(server.port, tok, how)
        client.close()
        assert status == 401
    # Upgrades refused for other reasons than the token, with a token attached.
    for request in (
        f"GET /?auth={quote(query_token, safe='')} HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {header_token}\r\nUpgrade: h2c\r\n"
        "Connection: Upgrade\r\n\r\n",
        f"POST /?auth={quote(query_token, safe='')} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nContent-Length: 0\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {header_token}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: bad\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ):
        client = RawClient(server.port)
        client.send(request.encode())
        assert client.read_http_response()[0] >= 400
        client.close()
    # Protocol errors on connections whose messages carry a payload.
    for bad_frame in (
        (0x1, b'{"channel":"' + channel.encode() + b'","data":"' + payloads[5].encode() + b'\xff"}', {}),
        (0x1, json.dumps({"channel": channel, "data": payloads[6]}).encode(), {"mask": False}),
        (0x3, json.dumps({"channel": channel, "data": payloads[6]}).encode(), {}),
    ):
        victim = connect(server.port, query_token)
        opcode, payload, options = bad_frame
        victim.send_frame(opcode, payload, **options)
        victim.expect_close(1007 if b"\xff" in payload else 1002)
        victim.close()
    http_request(server.port, "GET", "/api/info?auth=" + quote(header_token, safe=""))
    http_request(server.port, "GET", "/api/info", [("Authorization", "Bearer " + header_token)])
    http_request(server.port, "GET", "/api/info", [("Authorization", "Bearer " + garbage_token)])
    close_politely(publisher)
    assert server.stop() == 0
    log = server.log_text()
    assert "level=debug" in log and "connection opened" in log, "debug logging did not happen: " + log[-2000:]
    for line in log.splitlines():
        assert line.startswith("time=") and " level=" in line and " msg=" in line, line
    leaks = [value for value in hidden if value in log]
    assert not leaks, "the log contains " + ", ".join(repr(v[:40]) for v in leaks) + ":\n" + "\n".join(
        line for line in log.splitlines() if any(v in line for v in leaks))

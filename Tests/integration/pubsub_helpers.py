"""Pub/sub helpers over wsraw's RawClient: connect with a token, publish, read deliveries, and find out which
event loop of the server holds a connection (from /proc: socket inodes registered in each loop's epoll)."""
import json
import os
import re
import selectors
import socket
import struct
import threading
import time
from urllib.parse import quote

from wsraw import Closed, RawClient, upgrade_request

UUID4 = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
DELIVERY = re.compile(rb'\{"issuer":"(?P<issuer>[^"]*)"(?:,"channel":"(?P<channel>(?:[^"\\]|\\.)*)")?'
                      rb'(?:,"data":"(?P<data>(?:[^"\\]|\\.)*)")?\}\n')
TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8
ZERO_MASK = b"\0\0\0\0"


# --- connecting ---------------------------------------------------------------------------------------


def attempt(port, token=None, how="bearer", path="/", extra=(), authorization=None, host=None, timeout=5.0):
    """Sends an upgrade request and reads the answer: (status, headers, body, client). The client stays open
    (the caller closes it); with 101 it is a live WebSocket. how: bearer | raw | query (token placement);
    `authorization` sets the header value verbatim instead."""
    headers = list(extra)
    if authorization is not None:
        headers.append(("Authorization", authorization))
    elif token is not None and how == "bearer":
        headers.append(("Authorization", "Bearer " + token))
    elif token is not None and how == "raw":
        headers.append(("Authorization", token))
    elif token is not None and how == "query":
        path += ("&" if "?" in path else "?") + "auth=" + quote(token, safe="")
    client = RawClient(port, timeout=timeout)
    client.send(upgrade_request(path, host=host or f"127.0.0.1:{port}", extra=headers))
    status, response_headers, body = client.read_http_response()
    return status, response_headers, body, client


def connect(port, token, how="bearer", path="/", **kwargs):
    status, headers, body, client = attempt(port, token, how, path, **kwargs)
    if status != 101:
        client.close()
        raise AssertionError(f"expected 101, got {status}: {body!r}")
    return client


def refused(port, token=None, how="bearer", path="/", **kwargs):
    """(status, headers, body) of an upgrade attempt that must not succeed."""
    status, headers, body, client = attempt(port, token, how, path, **kwargs)
    client.close()
    assert status != 101, "the upgrade was accepted"
    return status, headers, body


def http_request(port, method, path, headers=(), body=b"", host=None):
    """A plain (non-upgrade) HTTP/1.1 request: (status, headers, body)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    client = RawClient(port)
    try:
        client.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return client.read_http_response()
    finally:
        client.close()


# --- messages -----------------------------------------------------------------------------------------


def frame(opcode, payload):
    """A client frame with an all-zero mask key (valid, and cheap to build for thousands of messages)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + ZERO_MASK + payload


def message_bytes(channel, data):
    return json.dumps({"channel": channel, "data": data}).encode()


def send_raw(client, payload, opcode=TEXT):
    if isinstance(payload, str):
        payload = payload.encode()
    client.send_frame(opcode, payload)


def publish(client, channel, data, opcode=TEXT):
    send_raw(client, message_bytes(channel, data), opcode)


def recv_text(client):
    """The next data message, which must be a text frame."""
    opcode, payload = client.recv_message()
    assert opcode == TEXT, f"server sent opcode {opcode}"
    return payload


def recv_delivery(client):
    """The next message as a delivery: checks the exact shape and returns (issuer, channel, data) decoded."""
    payload = recv_text(client)
    match = DELIVERY.fullmatch(payload)
    assert match, f"not a delivery in the server's exact form: {payload!r}"
    assert UUID4.fullmatch(match["issuer"]), f"issuer is not a lowercase UUIDv4: {payload!r}"
    decoded = json.loads(payload)
    return decoded["issuer"], decoded.get("channel", ""), decoded.get("data", "")


def recv_error(client):
    """The next message as an error reply: `{"error":...}` (+ `"channel"`) and exactly one trailing newline."""
    payload = recv_text(client)
    assert payload.endswith(b"}\n") and not payload.endswith(b"\n\n"), payload
    reply = json.loads(payload)
    assert isinstance(reply.get("error"), str) and reply["error"], payload
    assert set(reply) <= {"error", "channel"}, payload
    return reply, payload


def expect_silence(client, timeout=0.3):
    """No data message arrives within `timeout` (pings are answered). A bounded read, not a sleep: callers
    follow it with a positive control showing that messages do flow on this connection."""
    client.sock.settimeout(timeout)
    try:
        opcode, payload = client.recv_message()
    except (socket.timeout, TimeoutError):
        return
    finally:
        client.sock.settimeout(5.0)
    raise AssertionError(f"unexpected message: {payload!r}")


def close_politely(client):
    try:
        client.send_frame(CLOSE, struct.pack("!H", 1000))
    except OSError:
        pass
    client.close()


# --- many messages at once ------------------------------------------------------------------------------


class Reader:
    """Parses server frames from one socket incrementally (fast enough for ~100k messages in Python)."""

    def __init__(self, client):
        self.client = client
        self.buffer = bytearray(client.buffer)
        self.position = 0
        self.payloads = []

    def feed(self):
        chunk = self.client.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError(f"server closed a subscriber after {len(self.payloads)} messages")
        self.buffer += chunk
        buffer, position, end = self.buffer, self.position, len(self.buffer)
        while end - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                if end - position < 4:
                    break
                length, header = struct.unpack_from("!H", buffer, position + 2)[0], 4
            elif length == 127:
                if end - position < 10:
                    break
                length, header = struct.unpack_from("!Q", buffer, position + 2)[0], 10
            if end - position < header + length:
                break
            opcode = first & 0x0F
            payload = bytes(buffer[position + header:position + header + length])
            position += header + length
            if opcode == 0x9:  # a ping: answer it
                self.client.send_frame(0xA, payload)
                continue
            assert opcode != CLOSE, f"subscriber closed: {payload!r} after {len(self.payloads)} messages"
            assert first & 0x80 and opcode == TEXT, f"unexpected frame {first:#x}"
            self.payloads.append(payload)
        if position > (1 << 20):
            del buffer[:position]
            position = 0
        self.position = position


def read_all(subscribers, expected, senders, deadline=60.0):
    """Reads from every subscriber until each has `expected` messages, while `senders` (threads) publish."""
    readers = [Reader(client) for client in subscribers]
    selector = selectors.DefaultSelector()
    for reader in readers:
        reader.client.sock.setblocking(False)
        selector.register(reader.client.sock, selectors.EVENT_READ, reader)
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + deadline
    waiting = {id(reader) for reader in readers}
    while waiting:
        events = selector.select(timeout=5)
        assert events, "no progress for 5 s; received " + str([len(r.payloads) for r in readers])
        for key, _ in events:
            reader = key.data
            try:
                reader.feed()
            except BlockingIOError:
                continue
            if len(reader.payloads) >= expected:
                waiting.discard(id(reader))
        assert time.monotonic() < deadline, "too slow: " + str([len(r.payloads) for r in readers])
    for sender in senders:
        sender.join(10)
        assert not sender.is_alive()
        assert sender.error is None, sender.error
    selector.close()
    for reader in readers:
        reader.client.sock.setblocking(True)
        reader.client.sock.settimeout(5)
    return [reader.payloads for reader in readers]


class Sender(threading.Thread):
    """Sends each client's bytes in small slices, taking the clients in turn, so that the server sees the
    publishers' messages arrive interleaved in time."""

    def __init__(self, streams, slice_size=64 * 1024):
        super().__init__(daemon=True)
        self.streams, self.slice_size, self.error = streams, slice_size, None

    def run(self):
        try:
            longest = max(len(data) for _, data in self.streams)
            for start in range(0, longest, self.slice_size):
                for client, data in self.streams:
                    if start < len(data):
                        client.send(data[start:start + self.slice_size])
        except Exception as error:  # noqa: BLE001 - reported by read_all
            self.error = error


# --- which event loop holds a connection --------------------------------------------------------------


def _tcp_sockets(pid):
    """(local port, remote port, state, inode) of every TCP socket in the server's network namespace."""
    rows = []
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as handle:
                lines = handle.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            rows.append((local_port, remote_port, fields[3], int(fields[9])))
    return rows


def _epoll_members(pid):
    """{epoll fd: inodes of the files registered in it}."""
    members = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                text = handle.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        members[int(fd)] = {int(m, 16) for m in re.findall(r"^tfd:.*?ino:([0-9a-f]+)", text, re.M)}
    return members


def event_loops(server, clients):
    """(the server's loops, the loop of each client): a loop is an epoll instance holding one of the
    listening sockets (one SO_REUSEPORT listener per loop); a client belongs to the loop whose epoll holds
    the server side of its TCP connection."""
    rows = _tcp_sockets(server.pid)
    members = _epoll_members(server.pid)
    listeners = {inode for local, _, state, inode in rows if state == "0A" and local == server.port}
    loops = {fd for fd, inodes in members.items() if inodes & listeners}
    server_side = {remote: inode for local, remote, state, inode in rows if local == server.port and state == "01"}
    owners = []
    for client in clients:
        inode = server_side.get(client.sock.getsockname()[1])
        found = [fd for fd in loops if inode in members[fd]]
        owners.append(found[0] if found else None)
    return loops, owners



#!/usr/bin/env python3
"""Soak test (`make soak`, issue 13): three servers sharing one Redis under churn, misbehaving clients and Redis
restarts, then exact delivery accounting and a leak check.

Set-up: one redis-server on a free loopback port; servers A and B serve ws://, server C wss:// (a throwaway
self-signed certificate), all three with the same REDIS_URL, so a publish on any of them reaches readers on all.

A run is a warm-up phase, a baseline (descriptors and RSS of every server with no client left), then the main
phase of SOAK_MINUTES, then the same measurement again. Each phase has:

- publishers: long-lived, one channel each, numbered messages at a modest rate; the data carries
  "<publisher>:<sequence>:" and a filler derived from both (with characters the server must escape), so every
  delivery is checked byte for byte;
- long-lived readers: on every server, together reading every channel (which also keeps every server
  subscribed to every channel on Redis for the whole phase);
- churn: SOAK_CONCURRENCY workers that each open one connection after another, to a random server, raw or through
  the websockets library, with or without permessage-deflate, token in the header or in ?auth=, from one of
  several loopback source addresses: short-lived readers (checked like the long-lived ones), abrupt disconnects
  (FIN or RST without a close frame, in the middle of a frame, of the upgrade request, of a compressed frame,
  after sending a close), tokens that expire while connected (close 4001), refused tokens (HTTP 401), short
  publishers that send compressed messages, and slow consumers that never read (close 1008);
- in the main phase, Redis killed (SIGKILL) and restarted on its port twice.

The delivery rule checked at the end, per well-behaved reader R and publisher P of a channel R reads, with
"join" = P's next sequence number when R's upgrade completed and "stop" = P's last sequence number when R began
to leave (every publish is numbered before it is handed to the socket, so a number at or above "join" was
written after R was registered, and R reads until it has everything up to "stop"):
every sequence number in [join, stop] arrives exactly once, in order, unless P is on another server and the
number falls in that server's gap for P during a Redis restart (defined in `Outage`), in which case it must not
arrive at all (at most once, and all or nothing within one server).

Exit status 0 when every assertion held, 1 otherwise; the summary is printed either way.
"""
import argparse
import array
import asyncio
import base64
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "integration"))
# conftest reads the binary's path when imported: the release build unless the caller names another.
os.environ.setdefault("PHILOTE_BIN", str(ROOT / ".build" / "release" / "philote"))

import conftest  # noqa: E402  (ServerProcess: starts the binary, finds its port, stops it by PID)
import redis_helpers  # noqa: E402  (Redis: a redis-server on loopback, killed and restarted by PID)
import tokens  # noqa: E402

import websockets  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

CHANNELS = ["soak-0", "soak-1", "soak-2", "soak-3"]
PUBLISHERS_PER_CHANNEL = 2          # on two different servers, so every channel has same- and cross-server traffic
PUBLISH_RATE = 5.0                  # messages per second per publisher
LONG_READERS_PER_SERVER = 4         # reader j reads channels j and j+1: every channel twice on every server
MAX_BACKPRESSURE = 256 * 1024       # a quarter of the default: less flood per slow consumer (the kernel's
                                    # loopback socket buffers still take a few MiB before the server's queue fills)
OUTAGE_SECONDS = 3.0                # how long Redis stays down while publishing goes on
SOURCE_ADDRESSES = [f"127.0.{a}.{b}" for a in (1, 2) for b in range(1, 33)]  # 64 x 28k ephemeral ports
IP_BIND_ADDRESS_NO_PORT = 24        # linux/in.h: choose the port at connect(), per 4-tuple, not at bind()
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Bounds on every wait. Generous: the machine is shared, and a bound that fires means a real stall.
CONNECT_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 30.0             # for a message already handed to the publisher's socket to reach a reader
REDIS_RECOVERY_TIMEOUT = 40.0       # reconnect backoff doubles to 5 s; /readyz 200 and NUMSUB well within this
# How much more resident memory than at the post-warm-up baseline a server may hold once every client is gone.
# Measured (2-core AMD EPYC, 200 concurrent churn clients): from the baseline to the end of the main phase the three
# servers moved by -0.3 to +0.7 MiB in 2-minute runs (about 13,000 connections each) and by -0.2 to +0.5 MiB in a
# 10-minute run (55,000). What the warm-up grew (allocator arenas, the loops' tables at their peak, TLS contexts) is
# in the baseline; what is left is allocator noise. 4 MiB is several times that noise and still small enough to
# catch a leak of 80 bytes per connection over a 10-minute run.
RSS_MARGIN_KIB = 4 * 1024
QUIET_TIMEOUT = 60.0                # for every client socket to be gone from the servers at the end of a phase

# Filler of every message: letters, and what the server must escape (< > & U+2028 U+2029) or pass through as
# UTF-8 (é, €, 😀), plus JSON's own escapes (" \ and a control character).
ALPHABET = string.ascii_letters + string.digits + '<>&"\\/\t\u2028\u2029é€😀 '
ALPHABET_LONG = ALPHABET * (800 // len(ALPHABET) + 2)


def payload(pid, seq):
    """The data of publisher pid's message seq: its identity, then a filler of 0..799 characters (messages
    over COMPRESSION_MIN_SIZE get compressed for deflate readers, shorter ones not)."""
    size = (seq * 7919 + pid * 104729) % 800
    start = (seq + pid) % len(ALPHABET)
    return f"{pid}:{seq}:" + ALPHABET_LONG[start:start + size]


class SoakFailure(Exception):
    """An assertion of the soak failed; the run goes on where it can and exits 1."""


class Closed(Exception):
    """The server closed the WebSocket (code None: the TCP connection ended without a close frame)."""

    def __init__(self, code, reason=""):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class Refused(Exception):
    """The upgrade was answered with an HTTP status other than 101."""

    def __init__(self, status, body=b""):
        super().__init__(f"HTTP {status} {body[:200]!r}")
        self.status, self.body = status, body


async def bounded(awaitable, timeout, what):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise SoakFailure(f"timed out after {timeout:g} s: {what}") from None


# --- connections --------------------------------------------------------------------------------------


async def open_socket(soak, node, rcvbuf=None):
    """A TCP connection to the node from a random loopback source address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        if rcvbuf:
            # Before connecting, so the window the kernel advertises stays small (a slow consumer's backlog
            # must pile up in the server, not in our socket buffer).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((random.choice(SOURCE_ADDRESSES), 0))
        await bounded(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", node.port)), CONNECT_TIMEOUT,
                      f"TCP connect to {node.name}")
    except BaseException:
        sock.close()
        raise
    soak.stats["connections"] += 1
    soak.stats[f"connections_{node.name}"] += 1
    return sock


def mask(data, key):
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def client_frame(opcode, data=b"", fin=True, rsv1=False, length=None):
    """A masked client frame; `length` announces another length than the payload's (for truncated frames)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(data) if length is None else length
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    key = os.urandom(4)
    return head + key + mask(data, key)


class RawConnection:
    """A small asyncio WebSocket client over a raw stream, for what the library will not do (stop reading,
    drop the connection mid-frame) and as a second, independent client implementation."""

    kind = "raw"

    def __init__(self, reader, writer, node):
        self.reader, self.writer, self.node = reader, writer, node
        self.deflate = False
        self.keep_context = False
        self.inflater = None
        self.close_received = None

    @classmethod
    async def open(cls, soak, node, token, deflate=False, in_query=False, rcvbuf=None, limit=1 << 16):
        sock = await open_socket(soak, node, rcvbuf)
        try:
            reader, writer = await bounded(
                asyncio.open_connection(sock=sock, ssl=node.client_ssl, limit=limit,
                                        server_hostname="127.0.0.1" if node.client_ssl else None),
                CONNECT_TIMEOUT, f"TLS handshake with {node.name}")
        except BaseException:
            sock.close()
            raise
        self = cls(reader, writer, node)
        try:
            await self._upgrade(token, deflate, in_query)
        except BaseException:
            self.abort()
            raise
        return self

    def _request(self, token, deflate, in_query, key):
        path = "/"
        headers = [f"Host: 127.0.0.1:{self.node.port}", "Upgrade: websocket", "Connection: Upgrade",
                   f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if in_query:
            path = "/?auth=" + token
        else:
            headers.append(f"Authorization: Bearer {token}")
        if deflate:
            headers.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        return (f"GET {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode()

    async def _upgrade(self, token, deflate, in_query):
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(self._request(token, deflate, in_query, key))
        head = await bounded(self.reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT, f"101 from {self.node.name}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if status != 101:
            length = int(headers.get("content-length", "0"))
            body = await bounded(self.reader.readexactly(length), CONNECT_TIMEOUT, "HTTP error body")
            raise Refused(status, body)
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise SoakFailure(f"bad Sec-WebSocket-Accept from {self.node.name}")
        extensions = headers.get("sec-websocket-extensions", "")
        if extensions:
            params = [p.strip() for p in extensions.split(";")]
            if not deflate or params[0] != "permessage-deflate":
                raise SoakFailure(f"{self.node.name} answered an extension it was not offered: {extensions}")
            self.deflate = True
            # The server always answers server_no_context_takeover (README, "Compression"); without it the
            # inflate context would carry over from message to message.
            self.keep_context = "server_no_context_takeover" not in params
            self.inflater = zlib.decompressobj(-15)
        elif deflate:
            raise SoakFailure(f"{self.node.name} declined permessage-deflate with COMPRESSION on")

    def send_frame(self, opcode, data=b"", **kwargs):
        self.writer.write(client_frame(opcode, data, **kwargs))

    async def send_text(self, text):
        self.send_frame(0x1, text.encode())
        await bounded(self.writer.drain(), DELIVERY_TIMEOUT, f"send to {self.node.name}")

    async def recv_frame(self):
        try:
            first, second = await self.reader.readexactly(2)
            if second & 0x80:
                raise SoakFailure(f"{self.node.name} sent a masked frame")
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            data = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as error:
            raise Closed(None, f"connection ended without a close frame ({type(error).__name__})") from None
        return bool(first & 0x80), (first >> 4) & 7, first & 0x0F, data

    async def recv_text(self):
        """The next text message; pings answered, pongs skipped; a close frame raises Closed."""
        opcode, parts, compressed = None, [], False
        while True:
            fin, rsv, frame_opcode, data = await self.recv_frame()
            if frame_opcode == 0x9:
                self.send_frame(0xA, data)
                continue
            if frame_opcode == 0xA:
                continue
            if frame_opcode == 0x8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                self.close_received = code
                raise Closed(code, data[2:].decode(errors="replace"))
            if opcode is None:
                if frame_opcode not in (0x1, 0x2):
                    raise SoakFailure(f"{self.node.name}: message starts with opcode {frame_opcode}")
                opcode, compressed = frame_opcode, bool(rsv & 4)
                if rsv & 3 or (compressed and not self.deflate):
                    raise SoakFailure(f"{self.node.name}: frame with RSV bits {rsv}")
            elif frame_opcode != 0x0 or rsv:
                raise SoakFailure(f"{self.node.name}: bad continuation (opcode {frame_opcode}, rsv {rsv})")
            parts.append(data)
            if fin:
                break
        data = b"".join(parts)
        if compressed:
            inflater = self.inflater if self.keep_context else zlib.decompressobj(-15)
            data = inflater.decompress(data + b"\x00\x00\xff\xff")
        if opcode != 0x1:
            raise SoakFailure(f"{self.node.name} sent a binary message")
        return data.decode()

    async def close_code_after_draining(self, timeout):
        """Skips every frame up to the server's close frame; returns its code (None: no close frame)."""
        async def run():
            while True:
                _, _, opcode, data = await self.recv_frame()
                if opcode == 0x8:
                    return (struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None), data[2:].decode()
        try:
            return await bounded(run(), timeout, f"close frame from {self.node.name}")
        except Closed as closed:
            return closed.code, closed.reason

    async def close(self, code=1000):
        """A clean close: our close frame, the server's answer, then its end of the TCP connection. Returns
        the code the server answered with."""
        try:
            self.send_frame(0x8, struct.pack("!H", code))
            answered, _ = await self.close_code_after_draining(DELIVERY_TIMEOUT)
            await bounded(self._eof(), DELIVERY_TIMEOUT, f"{self.node.name} ending TCP after the close")
            return answered
        finally:
            self.abort()

    async def close_beside(self, receiving):
        """A clean close while the task `receiving` reads (it sees the server's close frame and ends); returns
        the code the server answered with."""
        try:
            self.send_frame(0x8, struct.pack("!H", 1000))
            await bounded(asyncio.gather(receiving, return_exceptions=True), DELIVERY_TIMEOUT,
                          f"{self.node.name} answering a close")
            await bounded(self._eof(), DELIVERY_TIMEOUT, f"{self.node.name} ending TCP after the close")
            return self.close_received
        finally:
            self.abort()

    async def _eof(self):
        try:
            while await self.reader.read(65536):
                pass
        except (ConnectionError, ssl.SSLError):
            pass

    def abort(self, reset=False):
        transport = self.writer.transport
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


class LibConnection:
    """The websockets library as a client (it answers pings itself and compresses what it sends when
    permessage-deflate is negotiated, so the server's inflate path is exercised too)."""

    kind = "lib"

    def __init__(self, ws, node):
        self.ws, self.node = ws, node

    @classmethod
    async def open(cls, soak, node, token, deflate=False, in_query=False):
        sock = await open_socket(soak, node)
        scheme = "wss" if node.client_ssl else "ws"
        uri = f"{scheme}://127.0.0.1:{node.port}/" + (f"?auth={token}" if in_query else "")
        headers = {} if in_query else {"Authorization": f"Bearer {token}"}
        try:
            ws = await ws_connect(uri, sock=sock, ssl=node.client_ssl, additional_headers=headers,
                                  compression="deflate" if deflate else None, open_timeout=CONNECT_TIMEOUT,
                                  close_timeout=DELIVERY_TIMEOUT, max_size=1 << 20, ping_interval=20,
                                  ping_timeout=20)
        except websockets.exceptions.InvalidStatus as error:
            sock.close()
            raise Refused(error.response.status_code, error.response.body or b"") from None
        except BaseException:
            sock.close()
            raise
        if deflate and not ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate"):
            await ws.close()
            raise SoakFailure(f"{node.name} declined permessage-deflate offered by the websockets library")
        return cls(ws, node)

    async def send_text(self, text):
        await bounded(self.ws.send(text), DELIVERY_TIMEOUT, f"send to {self.node.name}")

    async def recv_text(self):
        try:
            message = await self.ws.recv()
        except websockets.exceptions.ConnectionClosed as closed:
            if closed.rcvd is None:
                raise Closed(None, "connection ended without a close frame") from None
            raise Closed(closed.rcvd.code, closed.rcvd.reason) from None
        if not isinstance(message, str):
            raise SoakFailure(f"{self.node.name} sent a binary message")
        return message

    async def close(self, code=1000):
        await self.ws.close(code)
        return self.ws.close_code

    async def close_beside(self, receiving):
        await self.ws.close()  # the library lets recv() in the other task end with ConnectionClosedOK
        await bounded(asyncio.gather(receiving, return_exceptions=True), DELIVERY_TIMEOUT, "the receiving task")
        return self.ws.close_code

    def abort(self, reset=False):
        self.ws.transport.abort()


async def open_connection(soak, node, token, lib=None, deflate=None, in_query=None):
    """A connection of a random flavour (or the one asked for)."""
    lib = random.random() < 0.5 if lib is None else lib
    deflate = random.random() < 0.5 if deflate is None else deflate
    in_query = random.random() < 0.3 if in_query is None else in_query
    cls = LibConnection if lib else RawConnection
    connection = await cls.open(soak, node, token, deflate=deflate, in_query=in_query)
    flavour = f"{'tls' if node.client_ssl else 'plain'}_{cls.kind}_{'deflate' if deflate else 'identity'}"
    soak.stats[f"flavour_{flavour}"] += 1
    return connection


# --- servers and Redis --------------------------------------------------------------------------------


class Node:
    """One philote server process."""

    def __init__(self, name, process, client_ssl):
        self.name, self.process, self.client_ssl = name, process, client_ssl
        self.port, self.pid = process.port, process.pid
        self.slow_lock = None  # an asyncio.Lock, made inside the event loop

    def alive(self):
        return self.process.process.poll() is None

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        return self.process.rss_kib()

    def peak_rss_kib(self):
        return self.process.peak_rss_kib()

    def client_sockets(self):
        """The server's sockets that are neither listeners nor its Redis links: connections from clients,
        including those lingering after a close (CLOSE_TIMEOUT). From /proc, so that asking costs no socket."""
        inodes = set()
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as handle:
                    next(handle)
                    for line in handle:
                        fields = line.split()
                        local_port = int(fields[1].rsplit(":", 1)[1], 16)
                        if fields[9] in inodes and fields[3] != "0A" and local_port == self.port:
                            count += 1
            except FileNotFoundError:
                pass
        return count


async def http_get(node, path):
    """(status, body) of a plain GET on the node's port (over TLS for C)."""
    async def run():
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", node.port, ssl=node.client_ssl, server_hostname="127.0.0.1" if node.client_ssl else None)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\nConnection: close\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            return int(lines[0].split()[1]), await reader.readexactly(length)
        finally:
            writer.transport.abort()
    return await bounded(run(), CONNECT_TIMEOUT, f"GET {path} on {node.name}")


async def metrics(node):
    status, body = await http_get(node, "/metrics")
    if status != 200:
        raise SoakFailure(f"/metrics on {node.name} answered {status}")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


# --- clients with a role ------------------------------------------------------------------------------


class Publisher:
    """Publishes numbered messages to one channel at PUBLISH_RATE until told to stop."""

    def __init__(self, soak, pid, node, channel):
        self.soak, self.pid, self.node, self.channel = soak, pid, node, channel
        self.next_seq = 0
        self.connection = None

    @property
    def last_seq(self):
        return self.next_seq - 1

    async def connect(self):
        flavours = [(False, False), (False, True), (True, True), (True, False)]
        lib, deflate = flavours[self.pid % len(flavours)]
        self.connection = await open_connection(self.soak, self.node, tokens.token(write=[self.channel]),
                                                lib=lib, deflate=deflate, in_query=False)
        self.listener = asyncio.create_task(self.listen())

    async def listen(self):
        """A publisher reads nothing but pings (answered by recv_text); anything else is a failure."""
        try:
            while True:
                text = await self.connection.recv_text()
                self.soak.fail(f"publisher {self.pid} on {self.node.name} was sent {text[:200]!r}")
        except Closed as closed:
            if not self.stopping:
                self.soak.fail(f"publisher {self.pid} on {self.node.name} closed: {closed}")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.soak.fail(f"publisher {self.pid} on {self.node.name}: {error!r}")

    stopping = False

    async def run(self, stop):
        interval = 1.0 / PUBLISH_RATE
        due = time.monotonic()
        ensure_ascii = self.pid % 2 == 0  # half of them send \u escapes, half raw UTF-8
        while not stop.is_set():
            seq = self.next_seq
            # Numbered before it goes to the socket: a reader that joins after this line (at its 101) does not
            # count seq as required; a reader that leaves after it waits for seq.
            self.next_seq = seq + 1
            message = json.dumps({"channel": self.channel, "data": payload(self.pid, seq)}, ensure_ascii=ensure_ascii)
            await self.connection.send_text(message)
            self.soak.stats["published"] += 1
            due += interval
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)  # pacing the rate, not waiting for an event
                except asyncio.TimeoutError:
                    pass
            else:
                due = time.monotonic()

    async def close(self):
        self.stopping = True
        code = await self.connection.close_beside(self.listener)
        if code != 1000:
            self.soak.fail(f"publisher {self.pid} on {self.node.name}: close answered with {code}")


class Reader:
    """A well-behaved reader: reads everything on its channels; its deliveries are accounted for exactly."""

    def __init__(self, soak, phase, node, channels, long_lived):
        self.soak, self.phase, self.node, self.channels = soak, phase, node, channels
        self.long_lived = long_lived
        self.publishers = [p for p in phase.publishers if p.channel in channels]
        self.got = {p.pid: array.array("q") for p in self.publishers}
        self.join = self.stop = None
        self.task = None
        self.ended = None  # why the receive loop ended, if it did

    async def start(self, **flavour):
        token = tokens.token(read=self.channels, exp=time.time() + 86400)  # a far exp: its timer must go away too
        self.connection = await open_connection(self.soak, self.node, token, **flavour)
        # Nothing awaited between the 101 and this snapshot: a sequence number at or above it is sent later.
        self.join = {p.pid: p.next_seq for p in self.publishers}
        self.arrival = asyncio.Event()
        self.task = asyncio.create_task(self.receive())

    async def receive(self):
        try:
            while True:
                text = await self.connection.recv_text()
                self.soak.check_delivery(self, text)
                self.arrival.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Closed included: the reader's finish tells a close it asked for from others
            self.ended = error
        self.arrival.set()

    def highest(self, pid):
        got = self.got[pid]
        return got[-1] if got else -1

    async def finish(self):
        """Leaves cleanly: waits until it has every message up to the publishers' current numbers, then
        closes with 1000. Not while a Redis outage is being handled (see Phase.steady)."""
        await self.phase.steady()
        self.stop = {p.pid: p.last_seq for p in self.publishers}
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            if self.ended is not None:
                raise SoakFailure(f"reader on {self.node.name} ({self.channels}) ended early: {self.ended!r}")
            short = {pid: seq for pid, seq in self.stop.items() if self.highest(pid) < seq and seq >= self.join[pid]}
            if not short:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SoakFailure(f"reader on {self.node.name} ({self.channels}) still waits for {short} "
                                  f"(has {[self.highest(pid) for pid in short]}) after {DELIVERY_TIMEOUT:g} s")
            self.arrival.clear()
            try:
                await asyncio.wait_for(self.arrival.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        code = await self.connection.close_beside(self.task)
        if code != 1000:
            raise SoakFailure(f"reader on {self.node.name}: close answered with {code}")


class Outage:
    """One Redis restart, as the publishers' numbers saw it.

    fence[pid]: P's last number when the restart began; Redis was killed only once every other server had
      delivered it, so it and everything before it had gone through Redis to every server.
    ready[pid]: P's next number once every server answered /readyz 200 and Redis listed every server as
      subscribed to every channel (PUBSUB NUMSUB): from there on, nothing may be missed anywhere.
    In between, for P and another server Y, some of P's messages were lost on their way through Redis: those
    that Redis had not yet forwarded to Y when it was killed, then those published while X (P's server) or Y was
    disconnected or not yet subscribed again. Redis forwards in order over one connection per server, so what Y
    misses is one run of consecutive numbers: the gap, from the lowest to the highest number in (fence, ready)
    that no long-lived reader on Y received. Every number outside the gap is required on Y like any other, and a
    number inside it must reach no reader on Y at all (one reader getting what another on the same server did
    not, or a second gap, is a failure).
    """

    def __init__(self, number):
        self.number = number
        self.fence = self.ready = None
        self.times = {}


class Phase:
    """Publishers, long-lived readers and churn for a given time; then everything closes and is accounted."""

    def __init__(self, soak, name, seconds, restarts):
        self.soak, self.name, self.seconds, self.restarts = soak, name, seconds, restarts
        self.publishers = []
        self.long_readers = []
        self.finished_readers = []
        self.outages = []
        self.steady_event = asyncio.Event()
        self.steady_event.set()
        self.stop_publishing = asyncio.Event()

    async def steady(self):
        await bounded(self.steady_event.wait(), 3 * REDIS_RECOVERY_TIMEOUT + 60, "the end of a Redis outage")

    async def run(self):
        soak = self.soak
        nodes = soak.nodes
        pid_base = soak.next_pid
        for index in range(len(CHANNELS) * PUBLISHERS_PER_CHANNEL):
            channel = CHANNELS[index % len(CHANNELS)]
            node = nodes[(index + index // len(CHANNELS)) % len(nodes)]
            self.publishers.append(Publisher(soak, pid_base + index, node, channel))
        soak.next_pid += len(self.publishers)
        for node in nodes:
            for j in range(LONG_READERS_PER_SERVER):
                reader = Reader(soak, self, node, [CHANNELS[j % len(CHANNELS)], CHANNELS[(j + 1) % len(CHANNELS)]],
                                long_lived=True)
                await reader.start(lib=j % 2 == 1, deflate=j // 2 == 0, in_query=False)
                self.long_readers.append(reader)
        # Before the first publish, Redis must have every server subscribed to every channel: then every
        # cross-server message from number 0 on is required.
        await self.wait_subscribed()
        for publisher in self.publishers:
            await publisher.connect()
        publishing = [asyncio.create_task(p.run(self.stop_publishing)) for p in self.publishers]
        started = time.monotonic()
        self.end = started + self.seconds
        workers = [asyncio.create_task(soak.churn_worker(self)) for _ in range(soak.concurrency)]
        restarter = asyncio.create_task(self.restart_redis_at(started)) if self.restarts else None
        progress = asyncio.create_task(soak.report_progress(self))
        try:
            # Each worker stops at self.end after its current item, every item being bounded.
            await bounded(asyncio.gather(*workers), self.seconds + 3 * REDIS_RECOVERY_TIMEOUT + 300,
                          f"churn workers of the {self.name} phase")
            if restarter:
                await bounded(restarter, 3 * REDIS_RECOVERY_TIMEOUT + 120, "the Redis restarts")
        finally:
            progress.cancel()
        await self.steady()
        self.stop_publishing.set()
        await bounded(asyncio.gather(*publishing), DELIVERY_TIMEOUT, "publishers stopping")
        for task in publishing:
            task.result()
        for reader in self.long_readers:
            await reader.finish()
        for publisher in self.publishers:
            await publisher.close()
        self.finished_readers.extend(self.long_readers)

    async def wait_subscribed(self):
        redis = self.soak.redis
        prefix = self.soak.prefix

        async def run():
            while True:
                counts = [await asyncio.to_thread(redis.subscribers, prefix + c) for c in CHANNELS]
                if all(count == len(self.soak.nodes) for count in counts):
                    return
                await asyncio.sleep(0.05)  # polling Redis, bounded by the caller
        await bounded(run(), REDIS_RECOVERY_TIMEOUT, "every server subscribed to every channel on Redis")

    def highest_on(self, node, pid):
        return max((r.highest(pid) for r in self.long_readers if r.node is node and pid in r.got), default=-1)

    async def wait_cross_server(self, numbers, what):
        """Until every server other than P's has delivered P's message numbers[P] (or a later one) to a
        long-lived reader."""
        async def run():
            while True:
                short = [(p.pid, n.name) for p in self.publishers for n in self.soak.nodes
                         if n is not p.node and numbers[p.pid] >= 0 and self.highest_on(n, p.pid) < numbers[p.pid]]
                if not short:
                    return
                for reader in self.long_readers:
                    if reader.ended is not None:
                        raise SoakFailure(f"long-lived reader on {reader.node.name} ended: {reader.ended!r}")
                await asyncio.sleep(0.02)  # polling readers' progress, bounded by the caller
        await bounded(run(), REDIS_RECOVERY_TIMEOUT, what)

    async def restart_redis_at(self, started):
        soak = self.soak
        for number, fraction in enumerate(self.restarts, 1):
            await asyncio.sleep(max(0.0, started + fraction * self.seconds - time.monotonic()))  # schedule
            outage = Outage(number)
            self.steady_event.clear()
            outage.fence = {p.pid: p.last_seq for p in self.publishers}
            await self.wait_cross_server(outage.fence, f"cross-server delivery before Redis restart {number}")
            reconnects = {n.name: (await metrics(n))["philote_broker_reconnects_total"] for n in soak.nodes}
            outage.times["kill"] = time.monotonic()
            await asyncio.to_thread(soak.redis.kill)
            soak.stats["redis_restarts"] += 1
            await soak.wait_readyz(503, "servers noticing Redis gone")
            outage.times["noticed"] = time.monotonic()
            await asyncio.sleep(OUTAGE_SECONDS)  # Redis stays down this long while publishing goes on
            await asyncio.to_thread(soak.redis.start)
            outage.times["restarted"] = time.monotonic()
            await soak.wait_readyz(200, f"servers ready again after Redis restart {number}")
            await self.wait_subscribed()
            outage.times["ready"] = time.monotonic()
            outage.ready = {p.pid: p.next_seq for p in self.publishers}
            await self.wait_cross_server(outage.ready, f"cross-server delivery after Redis restart {number}")
            outage.times["delivering"] = time.monotonic()
            for node in soak.nodes:
                now = (await metrics(node))["philote_broker_reconnects_total"]
                if now <= reconnects[node.name]:
                    soak.fail(f"{node.name}: philote_broker_reconnects_total did not grow across Redis restart {number}")
            self.outages.append(outage)
            soak.outage_log.append(
                f"restart {number} ({self.name}): down {outage.times['restarted'] - outage.times['kill']:.1f} s, "
                f"all /readyz 503 after {outage.times['noticed'] - outage.times['kill']:.2f} s, 200 and "
                f"resubscribed {outage.times['ready'] - outage.times['restarted']:.2f} s after the restart, "
                f"cross-server delivery {outage.times['delivering'] - outage.times['ready']:.2f} s later")
            self.steady_event.set()

    def account(self):
        """The exact delivery check of every well-behaved reader of the phase (see the module's docstring)."""
        soak = self.soak
        windows = {}  # (pid, node name) -> [(lowest, highest) number of an outage gap, inclusive]
        for outage in self.outages:
            for p in self.publishers:
                for node in soak.nodes:
                    if node is p.node:
                        continue
                    received = set()
                    for r in self.long_readers:
                        if r.node is node and p.pid in r.got:
                            received.update(r.got[p.pid])
                    lost = [s for s in range(outage.fence[p.pid] + 1, outage.ready[p.pid]) if s not in received]
                    if not lost:
                        continue
                    # Everything from lost[0] to lost[-1] is the gap; a number inside it that some reader on the
                    # node did receive is reported by the stray check below.
                    windows.setdefault((p.pid, node.name), []).append((lost[0], lost[-1]))
                    soak.stats["exempt_cross_server"] += lost[-1] - lost[0] + 1
        for reader in self.finished_readers:
            for p in reader.publishers:
                got = reader.got[p.pid]
                low, high = reader.join[p.pid], reader.stop[p.pid]
                cross = p.node is not reader.node
                own_windows = windows.get((p.pid, reader.node.name), []) if cross else []

                def exempt(seq):
                    return any(lowest <= seq <= highest for lowest, highest in own_windows)
                present = set(got)
                missing = [s for s in range(low, high + 1) if s not in present and not exempt(s)]
                stray = [s for s in got if exempt(s)]
                required = sum(1 for s in range(low, high + 1) if not exempt(s))
                soak.stats["required_deliveries"] += required
                soak.stats["required_cross_server" if cross else "required_same_server"] += required
                if missing:
                    soak.stats["missing_deliveries"] += len(missing)
                    soak.fail(f"{self.name}: reader on {reader.node.name} ({reader.connection.kind}, channels "
                              f"{reader.channels}, {'long-lived' if reader.long_lived else 'churned'}) missed "
                              f"{len(missing)} of publisher {p.pid} ({p.node.name}, {p.channel})'s messages "
                              f"{low}..{high}: {missing[:20]}", kind="missing deliveries")
                if stray:
                    soak.fail(f"{self.name}: reader on {reader.node.name} got publisher {p.pid}'s messages {stray[:20]} "
                              f"inside the server's outage gap {own_windows}: not all or nothing within one server",
                              kind="delivered inside an outage gap")


class Soak:
    def __init__(self, args):
        self.minutes = args.minutes
        self.concurrency = args.concurrency
        self.warmup_seconds = args.warmup
        self.stats = Counter()
        self.failures = {}  # kind -> (count, first examples)
        self.failure_count = 0
        self.nodes = []
        self.redis = None
        self.prefix = f"soak{os.getpid()}:"
        self.next_pid = 0
        self.issuers = {}
        self.outage_log = []
        self.flood_number = 0
        self.measurements = {}

    def fail(self, message, kind=None):
        """Records a failed assertion; the first few of each kind are printed (a systematic failure would
        otherwise repeat thousands of times)."""
        self.failure_count += 1
        kind = kind or message
        count, examples = self.failures.get(kind, (0, []))
        if len(examples) < 3:
            examples.append(message)
            print(f"FAIL: {message}", flush=True)
        self.failures[kind] = (count + 1, examples)

    # --- message checks ---

    def check_delivery(self, reader, text):
        """Every delivery: the exact wire form, a channel the reader reads, the publisher's exact data, the
        publisher's one issuer id, and numbers strictly increasing per publisher (order, no duplicate)."""
        self.stats["delivered"] += 1
        if not text.endswith("}\n"):
            self.fail(f"delivery without its newline: {text[:120]!r}")
            return
        message = json.loads(text)
        if list(message) != ["issuer", "channel", "data"]:
            self.fail(f"delivery with keys {list(message)}: {text[:200]!r}")
            return
        channel, data = message["channel"], message["data"]
        if channel not in reader.channels:
            self.fail(f"reader of {reader.channels} on {reader.node.name} got a message for {channel!r}")
            return
        try:
            pid_text, seq_text, _ = data.split(":", 2)
            pid, seq = int(pid_text), int(seq_text)
        except ValueError:
            self.fail(f"reader on {reader.node.name} got data {data[:80]!r} that no publisher sent "
                      f"(a truncated message delivered?)")
            return
        if pid not in reader.got:
            self.fail(f"reader on {reader.node.name} got publisher {pid}'s message on {channel}, not its channel")
            return
        if data != payload(pid, seq):
            self.fail(f"publisher {pid}'s message {seq} arrived altered on {reader.node.name}: {data[:120]!r}")
            return
        if self.issuers.setdefault(pid, message["issuer"]) != message["issuer"]:
            self.fail(f"publisher {pid}'s messages carry two issuers: {self.issuers[pid]}, {message['issuer']}")
        got = reader.got[pid]
        if got and seq <= got[-1]:
            self.stats["order_violations"] += 1
            self.fail(f"reader on {reader.node.name} got publisher {pid}'s message {seq} after {got[-1]} "
                      f"({'duplicate' if seq in got else 'out of order'})")
            return
        got.append(seq)

    def check_other_delivery(self, node, text):
        """A delivery to a client that is not accounted for (an expiring token's reader): its form only."""
        message = json.loads(text)
        data = message.get("data", "")
        pid_text, seq_text, _ = data.split(":", 2)
        if data != payload(int(pid_text), int(seq_text)):
            self.fail(f"message altered on {node.name}: {data[:120]!r}")

    # --- servers ---

    async def wait_readyz(self, status, what):
        async def run():
            while True:
                answers = [(await http_get(node, "/readyz"))[0] for node in self.nodes]
                if all(answer == status for answer in answers):
                    return
                await asyncio.sleep(0.05)  # polling the probe, bounded by the caller
        await bounded(run(), REDIS_RECOVERY_TIMEOUT, what)

    def check_alive(self):
        for node in self.nodes:
            if not node.alive():
                raise SoakFailure(f"server {node.name} exited with {node.process.process.returncode}: "
                                  + node.process.log_text()[-3000:])

    async def quiet(self, label):
        """Waits until no client is connected to any server (metrics, then /proc: no socket but the listeners
        and the Redis links), then takes each server's descriptors and memory."""
        async def run():
            while True:
                counts = [(await metrics(node))["philote_connections"] for node in self.nodes]
                if all(count == 0 for count in counts):
                    break
                await asyncio.sleep(0.1)  # polling, bounded by the caller
            while any(node.client_sockets() for node in self.nodes):
                await asyncio.sleep(0.1)  # lingering closes (CLOSE_TIMEOUT) and our own scrapes
        await bounded(run(), QUIET_TIMEOUT, f"every client gone from every server ({label})")
        figures = {node.name: {"fds": node.fd_count(), "rss_kib": node.rss_kib(), "peak_rss_kib": node.peak_rss_kib()}
                   for node in self.nodes}
        self.measurements[label] = figures
        return figures

    # --- churn ---

    async def churn_worker(self, phase):
        kinds = [("reader", 50), ("abrupt", 18), ("expiry", 8), ("refused", 6), ("short_publisher", 10),
                 ("slow_consumer", 8)]
        names = [k for k, _ in kinds]
        weights = [w for _, w in kinds]
        while time.monotonic() < phase.end:
            kind = random.choices(names, weights)[0]
            node = random.choice(self.nodes)
            if kind == "slow_consumer" and node.slow_lock.locked():
                kind = "reader"  # one slow consumer per server at a time (see slow_consumer)
            try:
                await getattr(self, "churn_" + kind)(phase, node)
                self.stats[f"churn_{kind}"] += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                detail = error if isinstance(error, SoakFailure) else repr(error)
                self.fail(f"{kind} on {node.name}: {detail}",
                          kind=f"{kind}: " + re.sub(r"[0-9.]+", "N", str(detail))[:120])
                if not isinstance(error, (SoakFailure, Closed, Refused)):
                    traceback.print_exc()

    async def churn_reader(self, phase, node):
        channels = random.sample(CHANNELS, random.choice((1, 1, 2)))
        reader = Reader(self, phase, node, channels, long_lived=False)
        await reader.start()
        try:
            await asyncio.sleep(random.uniform(1.0, 6.0))  # how long this reader stays: pacing, not a wait
            await reader.finish()
        except BaseException:
            reader.task.cancel()
            reader.connection.abort()
            raise
        phase.finished_readers.append(reader)

    async def churn_abrupt(self, phase, node):
        """Goes away without a close handshake, in one of several ways; the server must only clean up."""
        how = random.choice(["fin", "reset", "mid_frame", "mid_fragments", "mid_compressed", "mid_upgrade",
                             "after_close_frame", "lib_abort"])
        self.stats[f"abrupt_{how}"] += 1
        channel = random.choice(CHANNELS)
        token = tokens.token(read=[channel], write=[channel])
        if how == "mid_upgrade":
            sock = await open_socket(self, node)
            reader, writer = await bounded(asyncio.open_connection(
                sock=sock, ssl=node.client_ssl, server_hostname="127.0.0.1" if node.client_ssl else None),
                CONNECT_TIMEOUT, "TLS handshake")
            request = RawConnection(reader, writer, node)._request(token, False, False, "dGhlIHNhbXBsZSBub25jZQ==")
            writer.write(request[:random.randrange(1, len(request) - 1)])
            await bounded(writer.drain(), DELIVERY_TIMEOUT, "send")
            writer.transport.abort()
            return
        if how == "lib_abort":
            connection = await LibConnection.open(self, node, token, deflate=random.random() < 0.5)
            await bounded(connection.recv_text(), DELIVERY_TIMEOUT, "a first delivery")
            connection.abort()
            return
        connection = await RawConnection.open(self, node, token, deflate=how == "mid_compressed" or random.random() < 0.5)
        try:
            if how in ("fin", "reset"):
                for _ in range(random.randrange(0, 4)):
                    self.check_other_delivery(node, await bounded(connection.recv_text(), DELIVERY_TIMEOUT, "delivery"))
            elif how == "mid_frame":
                # A publish whose data no reader may ever see: the frame never completes.
                body = json.dumps({"channel": channel, "data": "truncated-" + "z" * 300}).encode()
                frame = client_frame(0x1, body)
                connection.writer.write(frame[:random.randrange(1, len(frame) - 1)])
            elif how == "mid_fragments":
                body = json.dumps({"channel": channel, "data": "fragmented-" + "y" * 300}).encode()
                connection.send_frame(0x1, body[:100], fin=False)
                connection.send_frame(0x0, body[100:200], fin=False)
            elif how == "mid_compressed":
                compressor = zlib.compressobj(wbits=-15)
                body = json.dumps({"channel": channel, "data": "compressed-" + os.urandom(200).hex()}).encode()
                deflated = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
                frame = client_frame(0x1, deflated[:-4], rsv1=True)
                connection.writer.write(frame[:random.randrange(1, len(frame) - 1)])
            elif how == "after_close_frame":
                connection.send_frame(0x8, struct.pack("!H", 1000))
            await bounded(connection.writer.drain(), DELIVERY_TIMEOUT, "send")
        finally:
            connection.abort(reset=how == "reset" or (how != "fin" and random.random() < 0.3))

    async def churn_expiry(self, phase, node):
        """A reader whose token expires while connected: close 4001 "token expired", not before exp."""
        # Half the tokens carry a fraction of a second in exp (RFC 7519's NumericDate allows it, and so does
        # PROTOCOL.md), half whole seconds, as most JWT libraries write it.
        exp = time.time() + random.uniform(2.0, 4.0)
        fractional = random.random() < 0.5
        if not fractional:
            exp = float(math.ceil(exp))
        channel = random.choice(CHANNELS)
        try:
            connection = await open_connection(self, node, tokens.token(read=[channel], exp=exp))
        except Refused as refused:
            # Under load a TLS handshake can take longer than the token's life: refused once exp has passed is
            # right. Refused before exp is the defect this item looks for.
            if refused.status == 401 and b"token expired" in refused.body and time.time() >= exp:
                self.stats["expired_before_upgrade"] += 1
                return
            raise
        try:
            async def read_until_closed():
                while True:
                    self.check_other_delivery(node, await connection.recv_text())
            try:
                await bounded(read_until_closed(), exp - time.time() + DELIVERY_TIMEOUT, "close 4001 at exp")
            except Closed as closed:
                now = time.time()
                if closed.code != 4001 or closed.reason != "token expired":
                    raise SoakFailure(f"expiring token closed with {closed.code} {closed.reason!r}, not 4001") from None
                if now < exp:
                    self.fail(f"close 4001 came {exp - now:.4f} s before the token's exp {exp:.3f} "
                              f"({'fractional' if fractional else 'whole seconds'})",
                              kind=f"4001 before exp ({'fractional' if fractional else 'whole-second'} exp)")
                self.stats["expired_4001"] += 1
                if isinstance(connection, RawConnection):
                    # Answer the close, then the server ends TCP.
                    connection.send_frame(0x8, struct.pack("!H", 4001))
                    await bounded(connection._eof(), DELIVERY_TIMEOUT, "TCP end after 4001")
        finally:
            connection.abort()

    async def churn_refused(self, phase, node):
        """Tokens the server must refuse with 401 before the upgrade."""
        how = random.choice(["expired", "forged", "alg_none"])
        claims = {"read": [random.choice(CHANNELS)]}
        if how == "expired":
            token = tokens.token(read=claims["read"], exp=time.time() - 5)
        elif how == "forged":
            token = tokens.flipped_signature(claims)
        else:
            token = tokens.alg_none(claims)
        try:
            connection = await open_connection(self, node, token)
        except Refused as refused:
            if refused.status != 401:
                raise SoakFailure(f"{how} token answered with {refused.status}, not 401") from None
            self.stats["refused_401"] += 1
            return
        connection.abort()
        raise SoakFailure(f"{how} token was accepted")

    async def churn_short_publisher(self, phase, node):
        """Publishes a few messages (compressed when deflate is negotiated) to a channel only it uses, then
        leaves cleanly."""
        channel = f"junk-{random.randrange(1000)}"
        connection = await open_connection(self, node, tokens.token(write=[channel]))
        for _ in range(random.randrange(1, 6)):
            await connection.send_text(json.dumps({"channel": channel, "data": "j" * random.randrange(0, 2000)}))
        code = await connection.close()
        if code != 1000:
            raise SoakFailure(f"short publisher's close answered with {code}")

    async def churn_slow_consumer(self, phase, node):
        """A reader that never reads while its channel floods: closed with 1008 once its backlog passes
        MAX_BACKPRESSURE. One at a time per server, so that the server's slow-consumer counter growing is this
        one being closed; the flood is published on the same server, so a Redis outage does not stall it."""
        async with node.slow_lock:
            self.flood_number += 1
            flood = f"flood-{self.flood_number}"
            before = (await metrics(node))["philote_slow_consumer_closes_total"]
            # A small StreamReader limit stops asyncio reading the socket, whose receive buffer is tiny.
            slow = await RawConnection.open(self, node, tokens.token(read=[flood, random.choice(CHANNELS)]),
                                            deflate=random.random() < 0.5, rcvbuf=4096, limit=2048)
            flooder = await RawConnection.open(self, node, tokens.token(write=[flood]), deflate=False)
            flooder_listener = asyncio.create_task(self._drain_quietly(flooder))
            try:
                sent = 0
                deadline = time.monotonic() + DELIVERY_TIMEOUT
                while True:
                    for _ in range(8):
                        await flooder.send_text(json.dumps({"channel": flood, "data": os.urandom(4096).hex()}))
                        sent += 8192
                    if (await metrics(node))["philote_slow_consumer_closes_total"] > before:
                        break
                    if time.monotonic() > deadline or sent > 64 * MAX_BACKPRESSURE:
                        raise SoakFailure(f"a consumer that never reads was not closed after {sent >> 10} KiB of flood")
                code, reason = await slow.close_code_after_draining(DELIVERY_TIMEOUT)
                if code != 1008:
                    raise SoakFailure(f"slow consumer closed with {code} {reason!r}, not 1008")
                self.stats["slow_consumer_1008"] += 1
                self.stats["flood_bytes"] += sent
                closed = await flooder.close_beside(flooder_listener)
                if closed != 1000:
                    raise SoakFailure(f"flooder's close answered with {closed}")
            finally:
                flooder_listener.cancel()
                slow.abort()
                flooder.abort()

    async def _drain_quietly(self, connection):
        try:
            while True:
                await connection.recv_text()
        except (Closed, asyncio.CancelledError):
            pass

    async def report_progress(self, phase):
        started = time.monotonic()
        while True:
            await asyncio.sleep(30)  # a progress line every 30 s
            self.check_alive()
            print(f"[{phase.name} {time.monotonic() - started:5.0f} s] connections {self.stats['connections']}, "
                  f"published {self.stats['published']}, delivered {self.stats['delivered']}, "
                  f"slow consumers closed {self.stats['slow_consumer_1008']}, expired {self.stats['expired_4001']}, "
                  f"Redis restarts {self.stats['redis_restarts']}, failures {self.failure_count}", flush=True)

    # --- the run ---

    async def run(self):
        for node in self.nodes:
            node.slow_lock = asyncio.Lock()
        await self.wait_readyz(200, "servers ready at start")
        self.measurements["start"] = {n.name: {"fds": n.fd_count(), "rss_kib": n.rss_kib(),
                                               "peak_rss_kib": n.peak_rss_kib()} for n in self.nodes}
        print(f"warm-up: {self.warmup_seconds:g} s", flush=True)
        warmup = Phase(self, "warm-up", self.warmup_seconds, restarts=[])
        await warmup.run()
        warmup.account()
        self.check_alive()
        baseline = await self.quiet("baseline")
        print(f"baseline after warm-up: {baseline}", flush=True)
        seconds = self.minutes * 60
        print(f"main phase: {seconds:g} s, {self.concurrency} concurrent churn clients, Redis restarts at 1/3 "
              f"and 2/3", flush=True)
        main = Phase(self, "main", seconds, restarts=[1 / 3, 2 / 3])
        await main.run()
        self.check_alive()
        main.account()
        end = await self.quiet("end")
        self.check_leaks(baseline, end)
        self.final_metrics = {node.name: await metrics(node) for node in self.nodes}
        for node in self.nodes:
            m = self.final_metrics[node.name]
            for name in ('philote_handoff_dropped_total', 'philote_broker_dropped_messages_total{reason="queue_full"}',
                         'philote_broker_malformed_total'):
                if m.get(name, 0) != 0:
                    self.fail(f"{node.name}: {name} = {m[name]:g}")
        closes = sum(m["philote_slow_consumer_closes_total"] for m in self.final_metrics.values())
        if closes != self.stats["slow_consumer_1008"]:
            self.fail(f"servers closed {closes:g} slow consumers, the soak made {self.stats['slow_consumer_1008']}")

    def check_leaks(self, baseline, end):
        for node in self.nodes:
            before, after = baseline[node.name], end[node.name]
            if after["fds"] != before["fds"]:
                self.fail(f"{node.name}: {after['fds']} descriptors open at the end, {before['fds']} at the baseline")
            if after["rss_kib"] > before["rss_kib"] + RSS_MARGIN_KIB:
                self.fail(f"{node.name}: RSS {after['rss_kib']} KiB at the end, {before['rss_kib']} KiB at the "
                          f"baseline (margin {RSS_MARGIN_KIB} KiB)")


class Counter(dict):
    def __missing__(self, key):
        return 0


def print_summary(soak, started_at, wall):
    s = soak.stats
    print("\n=== soak summary ===")
    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started_at))}, main phase "
          f"{soak.minutes:g} min, warm-up {soak.warmup_seconds:g} s, wall {wall / 60:.1f} min, churn concurrency "
          f"{soak.concurrency}")
    per_server = ", ".join(f"{n.name} {s['connections_' + n.name]}" for n in soak.nodes)
    print(f"connections made (both phases): {s['connections']} ({per_server})")
    flavours = sorted((k[len('flavour_'):], v) for k, v in s.items() if k.startswith("flavour_"))
    print("  by flavour: " + ", ".join(f"{k} {v}" for k, v in flavours))
    churn = sorted((k[len('churn_'):], v) for k, v in s.items() if k.startswith("churn_"))
    print("  churn items: " + ", ".join(f"{k} {v}" for k, v in churn))
    abrupt = sorted((k[len('abrupt_'):], v) for k, v in s.items() if k.startswith("abrupt_"))
    print("  abrupt disconnects: " + ", ".join(f"{k} {v}" for k, v in abrupt))
    print(f"messages published (numbered, both phases): {s['published']}; deliveries to accounted readers: "
          f"{s['delivered']}")
    print(f"required deliveries checked: {s['required_deliveries']} (same server {s['required_same_server']}, "
          f"cross-server {s['required_cross_server']}); missing {s['missing_deliveries']}; out of order or "
          f"duplicate {s['order_violations']}; cross-server messages lost in Redis outage gaps (allowed, counted "
          f"once per receiving server): {s['exempt_cross_server']}")
    print(f"slow consumers closed 1008: {s['slow_consumer_1008']} "
          f"(flood {(s['flood_bytes']) >> 20} MiB); tokens expired 4001: {s['expired_4001']} (and "
          f"{s['expired_before_upgrade']} expired before their upgrade reached the server); refused 401: "
          f"{s['refused_401']}; Redis restarts: {s['redis_restarts']}")
    for line in soak.outage_log:
        print("  " + line)
    for node in soak.nodes:
        figures = [f"{label} fds {m[node.name]['fds']} rss {m[node.name]['rss_kib'] / 1024:.1f} MiB"
                   for label, m in soak.measurements.items() if node.name in m]
        peak = soak.measurements.get("end", soak.measurements.get("baseline", {})).get(node.name, {}).get("peak_rss_kib")
        print(f"server {node.name} ({'wss' if node.client_ssl else 'ws'}): " + "; ".join(figures)
              + (f"; peak rss {peak / 1024:.1f} MiB" if peak else "") + f" (RSS margin {RSS_MARGIN_KIB >> 10} MiB)"
              + f"; exit status {soak.exit_codes.get(node.name, 'not stopped')}")
        m = getattr(soak, "final_metrics", {}).get(node.name)
        if m:
            shown = [("connections_total", "philote_connections_total"),
                     ("slow_consumer_closes", "philote_slow_consumer_closes_total"),
                     ("auth_failures{expired}", 'philote_auth_failures_total{reason="expired"}'),
                     ("broker_published", "philote_broker_published_total"),
                     ("broker_received", "philote_broker_received_total"),
                     ("broker_dropped{disconnected}", 'philote_broker_dropped_messages_total{reason="disconnected"}'),
                     ("broker_reconnects", "philote_broker_reconnects_total"),
                     ("tls_handshakes{ok}", 'philote_tls_handshakes_total{result="ok"}')]
            print("  metrics: " + ", ".join(f"{label} {m.get(name, 0):g}" for label, name in shown))
    print(f"failures: {soak.failure_count}")
    for kind, (count, examples) in soak.failures.items():
        print(f"  - {count} x {kind}" if count > 1 or examples[0] != kind else f"  - {kind}")
        for example in examples if examples[0] != kind else []:
            print(f"      e.g. {example}")
    print("result: " + ("PASS" if soak.failure_count == 0 else "FAIL"), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("SOAK_CONCURRENCY", "200")))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("SOAK_WARMUP_SECONDS", "30")))
    args = parser.parse_args()
    if not Path(conftest.BINARY).exists():
        sys.exit(f"{conftest.BINARY} is missing: build it with `swift build -c release --product philote`")

    # SIGTERM (a CI job cancelled) ends the run through the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    soak = Soak(args)
    soak.exit_codes = {}
    started_at, started = time.time(), time.monotonic()
    directory = tempfile.mkdtemp(prefix="philote-soak-")
    kept_logs = None
    try:
        cert, key = make_certificate(directory)
        client_ssl = ssl.create_default_context(cafile=cert)
        soak.redis = redis_helpers.Redis()
        common = {"SECRET": tokens.SECRET, "REDIS_URL": soak.redis.url, "REDIS_PREFIX": soak.prefix,
                  "METRICS_PUBLIC": "true", "MAX_CONNECTIONS": "4000", "MAX_BACKPRESSURE": str(MAX_BACKPRESSURE),
                  # A slow consumer gets its close frame only once it reads again, after the soak has seen the
                  # server's counter move (under load that took over 2 s once); 10 s leaves room for that.
                  "CLOSE_TIMEOUT": "10",
                  # Pings every 10 s of silence, so that long-lived readers answer many of them.
                  "PING_INTERVAL": "10", "PONG_TIMEOUT": "10"}
        for name, tls in (("A", False), ("B", False), ("C", True)):
            env = dict(common, **({"TLS_CERT_FILE": cert, "TLS_KEY_FILE": key} if tls else {}))
            soak.nodes.append(Node(name, conftest.ServerProcess(["serve"], env), client_ssl if tls else None))
        print(f"redis {soak.redis.url} pid {soak.redis.process.pid}; servers "
              + ", ".join(f"{n.name} pid {n.pid} {'wss' if n.client_ssl else 'ws'}://127.0.0.1:{n.port}/"
                          for n in soak.nodes), flush=True)
        try:
            asyncio.run(soak.run())
        except SoakFailure as failure:
            soak.fail(str(failure))
        # Every server must drain and exit 0 on SIGTERM.
        for node in soak.nodes:
            try:
                soak.exit_codes[node.name] = node.process.stop(timeout=30)
            except subprocess.TimeoutExpired:
                soak.exit_codes[node.name] = "killed after 30 s"
            if soak.exit_codes[node.name] != 0:
                soak.fail(f"{node.name} exited with {soak.exit_codes[node.name]} on SIGTERM")
    except KeyboardInterrupt:
        soak.fail("interrupted")
    except Exception as error:
        traceback.print_exc()
        soak.fail(f"soak aborted: {error!r}")
    finally:
        if soak.failure_count and soak.nodes:
            kept_logs = tempfile.mkdtemp(prefix="philote-soak-logs-")
            for node in soak.nodes:
                shutil.copy(node.process.log.name, os.path.join(kept_logs, f"server-{node.name}.log"))
        for node in soak.nodes:
            node.process.cleanup()
        if soak.redis:
            soak.redis.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    print_summary(soak, started_at, time.monotonic() - started)
    if kept_logs:
        print(f"server logs kept in {kept_logs}")
    sys.exit(1 if soak.failure_count else 0)


if __name__ == "__main__":
    main()

"""A deliberately low-level WebSocket client over a raw socket, for sending exactly the bytes a test needs
(including invalid ones) and reading exactly what the server answers."""
import base64
import os
import socket
import struct
import time

GOOD_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3


def upgrade_request(path="/", host="127.0.0.1", key=GOOD_KEY, version="13", extra=(), method="GET",
                    http="HTTP/1.1", omit=()):
    lines = [f"{method} {path} {http}"]
    headers = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    for name, value in headers:
        if name not in omit and value is not None:
            lines.append(f"{name}: {value}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length_override=None):
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload) if length_override is None else length_override
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = key if key is not None else os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


class Closed(Exception):
    """The server closed the TCP connection."""


class RawClient:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed()
        self.buffer += chunk

    def _take(self, count):
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_http_response(self, no_body=False):
        """(status, {lower-case name: value}, body) of one HTTP response; `no_body` for answers to HEAD,
        whose Content-Length describes a body that is not sent."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        body = b"" if no_body else self._take(int(headers.get("content-length", "0")))
        return status, headers, body

    def handshake(self, path="/", **kwargs):
        self.send(upgrade_request(path, **kwargs))
        status, headers, _ = self.read_http_response()
        assert status == 101, status
        return headers

    def send_frame(self, opcode, payload=b"", **kwargs):
        self.send(encode_frame(opcode, payload, **kwargs))

    def recv_frame(self):
        """(fin, rsv, opcode, payload) of one server frame; server frames must not be masked."""
        first, second = self._take(2)
        assert second & 0x80 == 0, "server frame is masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return bool(first & 0x80), (first >> 4) & 7, first & 0x0F, self._take(length)

    def recv_message(self, answer_pings=True):
        """(opcode, payload) of the next data message, reassembled from its fragments. Pings that
        arrive meanwhile are answered (when answer_pings) and pongs skipped; a close raises AssertionError."""
        opcode, parts = None, []
        while True:
            fin, rsv, frame_opcode, payload = self.recv_frame()
            assert rsv == 0, f"server frame with RSV bits {rsv}"
            if frame_opcode == 0x9:
                if answer_pings:
                    self.send_frame(0xA, payload)
                continue
            if frame_opcode == 0xA:
                continue
            assert frame_opcode != 0x8, f"unexpected close {payload!r}"
            if opcode is None:
                assert frame_opcode in (0x1, 0x2), f"message starts with opcode {frame_opcode}"
                opcode = frame_opcode
            else:
                assert frame_opcode == 0x0, f"opcode {frame_opcode} inside a fragmented message"
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def send_in_pieces(self, data, sizes, pause=0.02):
        """Sends data in pieces of the given sizes (the rest as a last piece) with TCP_NODELAY and a short
        pause between them, so the server is likely to see them in separate reads. The pause only paces
        the sender; no assertion depends on it."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        offset = 0
        for size in sizes:
            self.send(data[offset:offset + size])
            offset += size
            time.sleep(pause)
        if offset < len(data):
            self.send(data[offset:])

    def expect_close(self, code, reply=True):
        """Reads until a close frame; asserts its code, optionally answers it, then expects EOF."""
        while True:
            fin, rsv, opcode, payload = self.recv_frame()
            if opcode == 0x8:
                break
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        assert got == code, f"close code {got}, expected {code} (reason {payload[2:]!r})"
        if reply:
            try:
                self.send_frame(0x8, payload[:2])
            except OSError:
                pass
        self.expect_eof()
        return payload[2:].decode()

    def expect_eof(self):
        """The server closes TCP within the socket timeout; returns whatever still arrived before it."""
        rest = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return rest
                rest += chunk
        except ConnectionResetError:
            return rest

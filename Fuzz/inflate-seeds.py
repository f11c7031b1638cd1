#!/usr/bin/env python3
"""Writes the hand-made seeds of FuzzInflate into Fuzz/seeds/inflate/: real raw deflate streams (Python's zlib,
wbits=-15 unless a smaller window is the point), with and without context takeover, over and under the limits,
and near misses (damaged, truncated, decoded with the wrong context rule). The input layout is the one
Fuzz/FuzzInflate/FuzzInflate.swift and InflateSettings.swift describe; run this again after changing it.

    python3 Fuzz/inflate-seeds.py
"""
import os
import zlib

LIMITS = [0, 1, 16, 125, 1024, 16384, 16385, 65536]
TAIL = b"\x00\x00\xff\xff"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "inflate")


def header(mode, limit, takeover, window=15, level=6):
    """Bytes 0 and 1: takeover, mode, limit index; the compressor's window and level (modes 1 and 2)."""
    flags = (1 if takeover else 0) | (mode << 1) | (LIMITS.index(limit) << 3)
    compression = next(b for b in range(256) if 9 + b % 7 == window and (b // 8) % 10 == level)
    return bytes([flags, compression])


def piece(data):
    return len(data).to_bytes(2, "big") + data


class Peer:
    """A permessage-deflate sender: one raw deflate stream, reset per message unless the context is kept."""

    def __init__(self, takeover, wbits=-15, level=6):
        self.takeover, self.wbits, self.level = takeover, wbits, level
        self.stream = zlib.compressobj(level, zlib.DEFLATED, wbits)

    def send(self, message, final=False):
        if not self.takeover:
            self.stream = zlib.compressobj(self.level, zlib.DEFLATED, self.wbits)
        if final:
            data = self.stream.compress(message) + self.stream.flush(zlib.Z_FINISH)
            self.stream = zlib.compressobj(self.level, zlib.DEFLATED, self.wbits)
            return data
        data = self.stream.compress(message) + self.stream.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(TAIL)
        return data[:-4]


def raw_stream(limit, takeover, payloads):
    return header(0, limit, takeover) + b"".join(piece(p) for p in payloads)


def text(n, seed=1):
    words = [b"channel", b"data", b"philote", b"hello", b"world", b"message", b"{}", b"0123"]
    out, x = bytearray(), seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[x % len(words)] + b" "
    return bytes(out[:n])


def seeds():
    hello = b'{"channel":"room","data":"hello, hello, hello"}'
    kept = Peer(True)
    kept_stream = [kept.send(hello), kept.send(hello), kept.send(b"hello again " + hello)]
    fresh = Peer(False)
    ending = Peer(True)
    final_then_more = [ending.send(hello, final=True), ending.send(hello), ending.send(hello)]
    bomb = Peer(False).send(b"\x00" * 200_000)
    yield "raw-one-message", raw_stream(1024, False, [fresh.send(hello)])
    yield "raw-takeover-three", raw_stream(1024, True, kept_stream)
    # The second message refers back to the first: without the kept window it cannot decode.
    yield "raw-takeover-read-without", raw_stream(1024, False, kept_stream)
    yield "raw-final-block-then-more", raw_stream(1024, True, final_then_more)
    yield "raw-bomb-over-65536", raw_stream(65536, False, [bomb])
    yield "raw-bomb-takeover-over-65536", raw_stream(65536, True, [kept.send(b"a" * 70_000)])
    for size, limit in [(16384, 16384), (16385, 16384), (16385, 16385), (16386, 16385), (1024, 1024), (1025, 1024)]:
        yield f"raw-{size}-limit-{limit}", raw_stream(limit, False, [Peer(False).send(text(size))])
    yield "raw-125-limit-125", raw_stream(125, False, [Peer(False).send(text(125, 7))])
    yield "raw-empty-payloads", raw_stream(16, True, [b"", b"\x00", Peer(False).send(b"")])
    yield "raw-stored-block", raw_stream(1024, False, [Peer(False, level=0).send(hello)])
    yield "raw-window-9", raw_stream(1024, True, [Peer(True, wbits=-9).send(text(600, 3))])
    damaged = bytearray(fresh.send(text(300, 5)))
    damaged[len(damaged) // 2] ^= 0x10
    yield "raw-bit-flipped", raw_stream(1024, False, [bytes(damaged)])
    yield "raw-truncated", raw_stream(1024, True, [fresh.send(text(300, 5))[:40], kept.send(hello)])
    # A back-reference before the start of the stream: zlib's "invalid distance too far back".
    yield "raw-distance-too-far", raw_stream(1024, False, [kept_stream[1]])
    yield "raw-reserved-block-type", raw_stream(1024, False, [b"\x07\x00"])

    # Mode 1: plain messages; the fuzz target compresses them.
    def round_trip(limit, takeover, messages, window=15, level=6):
        return header(1, limit, takeover, window, level) + b"".join(bytes([f]) + piece(m) for f, m in messages)

    yield "trip-takeover", round_trip(1024, True, [(0, hello), (0, hello), (1, hello), (0, hello)])
    yield "trip-server-deflater", round_trip(1024, False, [(2, hello), (2, b""), (0, text(900))], window=10, level=9)
    yield "trip-over-limit", round_trip(1024, False, [(0, text(1000)), (0, text(1025))], level=1)
    yield "trip-empty-after-flush", round_trip(16, True, [(0, b"abc"), (0, b""), (0, b"abc")], level=0)

    # Modes 2 and 3: frames through WebSocketReader. Flags: 1 raw piece, 2 RSV1, 4 text, 8/16/24 more
    # fragments, 32 pings between fragments, 64 final block.
    def frames(limit, takeover, chunk, messages, window=15, level=6):
        body = b"".join(bytes([f]) + piece(m) for f, m in messages)
        return header(2, limit, takeover, window, level) + bytes([chunk]) + body

    yield "frames-text", frames(1024, True, 0, [(2 | 4, hello), (2 | 4, hello)])
    yield "frames-fragments-pings", frames(1024, True, 7, [(2 | 4 | 24 | 32, text(500)), (0, b"\x01\x02"), (2, hello)])
    yield "frames-final-block", frames(1024, True, 1, [(2 | 4 | 64, hello), (2 | 4, hello)])
    yield "frames-raw-bomb", frames(65536, False, 0, [(1 | 2, bomb)])
    yield "frames-raw-kept-stream", frames(125, True, 3, [(1 | 2 | 4, p) for p in kept_stream])
    yield "frames-unicode", frames(1024, False, 2, [(2 | 4, "été, €, 🎉".encode() * 9), (2 | 4 | 8, "日本".encode())])
    yield "frames-bad-utf8", frames(1024, False, 0, [(2 | 4, hello), (2 | 4, b"\xc3\x28 broken")])
    yield "frames-payload-over-limit", frames(16, False, 0, [(1 | 2 | 8, Peer(False, level=0).send(text(40)))])
    yield "frames-inflated-over-limit", frames(125, False, 5, [(2 | 8 | 32, b"x" * 126)])


os.makedirs(OUT, exist_ok=True)
for name, data in seeds():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)

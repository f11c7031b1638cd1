"""Echo interoperability with a real client from outside this project: Python `websockets` (asyncio API).

The server runs `philote echo` with MAX_MESSAGE_SIZE raised to 2 MiB, so messages up to 1 MiB fit.
permessage-deflate is a later issue, so the client offers no compression.
"""
import asyncio
import os

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

MAX_MESSAGE_SIZE = 2 * 1024 * 1024
SIZES = [0, 1, 125, 126, 65535, 65536, 1048576]
TIMEOUT = 20.0


def text_of_size(size):
    """A str whose UTF-8 encoding is exactly `size` bytes, with 1-, 2-, 3- and 4-byte characters when it fits."""
    unit = "a\u00e9\u20ac\U0001F600"  # 1 + 2 + 3 + 4 bytes
    text = unit * (size // 10)
    text += "x" * (size - len(text.encode()))
    assert len(text.encode()) == size
    return text


def binary_of_size(size):
    return os.urandom(size)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


@pytest.fixture
def server(start_server):
    server = start_server("echo", MAX_MESSAGE_SIZE=str(MAX_MESSAGE_SIZE), CLOSE_TIMEOUT="2")
    yield server
    assert server.stop() == 0, server.log_text()


def client(port):
    return connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=MAX_MESSAGE_SIZE,
                   ping_interval=None, open_timeout=10, close_timeout=5)


async def close_cleanly(ws):
    await ws.close(1000, "bye")
    # The code the client saw in the server's close frame, not one it made up (1006 if none came).
    assert ws.protocol.close_rcvd is not None, "the server sent no close frame"
    assert ws.protocol.close_rcvd.code == 1000
    assert ws.close_code == 1000


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_round_trip(server, kind, size):
    payload = text_of_size(size) if kind == "text" else binary_of_size(size)

    async def scenario():
        async with client(server.port) as ws:
            await ws.send(payload)
            echoed = await ws.recv()
            assert type(echoed) is type(payload)  # same opcode back: str for text, bytes for binary
            assert len(echoed) == len(payload)
            assert echoed == payload
            await close_cleanly(ws)

    run(scenario())


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_fragmented_round_trip(server, kind):
    # Fragments of uneven sizes around the 7-bit and 16-bit length boundaries, plus an empty fragment;
    # the whole message is 1 MiB + a bit, still under MAX_MESSAGE_SIZE.
    sizes = [1, 0, 125, 126, 65535, 65536, 1048576 - 131072, 7]
    if kind == "text":
        fragments = [text_of_size(size) for size in sizes]
        expected = "".join(fragments)
    else:
        fragments = [binary_of_size(size) for size in sizes]
        expected = b"".join(fragments)

    async def scenario():
        async with client(server.port) as ws:
            await ws.send(fragments)  # websockets sends an iterable as one fragmented message
            echoed = await ws.recv()
            assert type(echoed) is type(expected)
            assert echoed == expected
            await close_cleanly(ws)

    run(scenario())


def test_fragmented_with_ping_between_fragments(server):
    # An async iterable lets a control frame go out between two fragments of one message.
    async def scenario():
        async with client(server.port) as ws:
            pongs = []

            async def fragments():
                yield "first half, "
                pongs.append(await ws.ping(b"between"))
                yield "second half"

            await ws.send(fragments())
            assert await ws.recv() == "first half, second half"
            await asyncio.wait_for(pongs[0], 5)
            await close_cleanly(ws)

    run(scenario())


def test_ping_pong(server):
    async def scenario():
        async with client(server.port) as ws:
            for payload in [b"", b"p", b"\x00\xff" * 62 + b"!"]:  # up to 125 bytes, the control frame limit
                waiter = await ws.ping(payload)
                latency = await asyncio.wait_for(waiter, 5)
                assert latency >= 0
            # The connection still echoes after the pings.
            await ws.send("after pings")
            assert await ws.recv() == "after pings"
            await close_cleanly(ws)

    run(scenario())


def test_many_messages_in_flight_keep_order(server):
    messages = [text_of_size(n) if n % 2 else binary_of_size(n) for n in range(0, 3000, 7)]

    async def scenario():
        async with client(server.port) as ws:
            for message in messages:
                await ws.send(message)
            for message in messages:
                assert await ws.recv() == message
            await close_cleanly(ws)

    run(scenario())


def test_clean_close_1000(server):
    async def scenario():
        async with client(server.port) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await close_cleanly(ws)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            # The close was clean on both sides: the client sent 1000 and got 1000 back.
            assert ws.protocol.close_sent.code == 1000
            assert ws.protocol.close_rcvd_then_sent is False

    run(scenario())


@pytest.mark.parametrize("fragmented", [False, True])
def test_too_big_is_closed_1009(server, fragmented):
    # One byte over MAX_MESSAGE_SIZE: the server closes with 1009, which the real client reports.
    payload = binary_of_size(MAX_MESSAGE_SIZE + 1)
    message = [payload[:MAX_MESSAGE_SIZE // 2], payload[MAX_MESSAGE_SIZE // 2:]] if fragmented else payload

    async def scenario():
        async with client(server.port) as ws:
            try:
                await ws.send(message)
            except ConnectionClosed:
                pass  # the server may close before the client has written everything
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.protocol.close_rcvd is not None, "the server sent no close frame"
            assert ws.protocol.close_rcvd.code == 1009

        # The server is unharmed: a new client still echoes.
        async with client(server.port) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
            await close_cleanly(ws)

    run(scenario())

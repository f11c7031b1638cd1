"""A misbehaving Philote-protocol pub/sub server for `philote bench`'s tests, on Python `websockets`.

Subscribes each connection to the "read" list of its token (Authorization: Bearer, not verified) and relays
every published message to the other readers of its channel, in order, through one FIFO per reader, with a
fault chosen by the mode:

    delay N MS   every Nth published message reaches its readers MS milliseconds late, and what each reader
                 gets after it waits behind it (as behind a stalled socket)
    drop N       every Nth published message is delivered to nobody

Usage: bench_stub_server.py MODE ARGS... COUNTFILE. Prints the listening port on stdout. Writes to COUNTFILE,
after every fault, how many messages of the measured window ("R" in the stamp) were faulted, so a test can
check what the tool counted against it.
"""
import asyncio
import base64
import json
import sys

from websockets.asyncio.server import serve

MODE = sys.argv[1]
EVERY = int(sys.argv[2])
DELAY = float(sys.argv[3]) / 1000 if MODE == "delay" else 0.0
COUNT_FILE = sys.argv[-1]

readers = {}  # channel -> set of Reader
published = 0
faulted_measured = 0


class Reader:
    """One subscriber's ordered outbound queue: (release time, message)."""

    def __init__(self, ws):
        self.ws = ws
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self.send_all())

    async def send_all(self):
        loop = asyncio.get_running_loop()
        while True:
            release, message = await self.queue.get()
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.ws.send(message)
            except Exception:
                return


def token_channels(request):
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip()
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("read", [])
    except Exception:
        return []


def record_fault(text):
    global faulted_measured
    if '"data":"T' in text and text.split('"data":"T', 1)[1].lstrip("0123456789").startswith("R"):
        faulted_measured += 1
    with open(COUNT_FILE, "w") as handle:
        handle.write(str(faulted_measured))


async def handler(ws):
    global published
    mine = [(channel, Reader(ws)) for channel in token_channels(ws.request)]
    for channel, reader in mine:
        readers.setdefault(channel, set()).add(reader)
    try:
        async for text in ws:
            try:
                channel = json.loads(text)["channel"]
            except Exception:
                continue
            published += 1
            faulty = published % EVERY == 0
            if faulty:
                record_fault(text)
                if MODE == "drop":
                    continue
            release = asyncio.get_running_loop().time() + (DELAY if faulty else 0.0)
            for reader in readers.get(channel, ()):
                if reader.ws is not ws:
                    reader.queue.put_nowait((release, text))
    finally:
        for channel, reader in mine:
            readers.get(channel, set()).discard(reader)
            reader.task.cancel()


async def main():
    with open(COUNT_FILE, "w") as handle:
        handle.write("0")
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())

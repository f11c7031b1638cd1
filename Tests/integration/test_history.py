"""History and recovery (README "History and recovery", and the HISTORY_SIZE, HISTORY_TTL and HISTORY_MAX_MEMORY
rows of its configuration table), end to end against the real `philote serve`, with Python `websockets` clients
on loopback.

How the tests know things without sleeping:
- Every client is read by a background task (`Client`), so the server never waits on the test, and the test
  waits for concrete events: "this reader has seen offset N".
- A channel here is fresh when a test starts, so its offsets are numbered by the test's own publishes: the
  message published n-th carries data `str(n)` (or `data(n)`) and must get offset n. A *watcher*, a reader with
  positions connected all along, reaching offset N is how a test knows that N messages are published (and in
  history); publishing waits for it to stay within a window, so no reader ever becomes a slow consumer.
- Where waiting for time is the point (HISTORY_TTL) the test polls GET /api/history, bounded.

Positions are checked in the README's exact forms: the recovery answer `{"channel":...,"recovery":...,
["reason":...,]["epoch":...,]"offset":...}` + `\\n`, and a positioned delivery, which is the old delivery with
`,"epoch":"<12 hex>","offset":<n>` before its closing brace. A client without `since` must still get the old
delivery byte for byte (../shared/PROTOCOL.md).
"""
import asyncio
import json
import re
import socket
from collections import Counter
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from conftest import ServerProcess
from pubsub_helpers import DELIVERY, UUID4, event_loops, http_request
from test_config_and_shutdown import run_binary
from test_operations import metric, parse_metrics, scrape
from tokens import SECRET, distinctive, token

CHANNEL = "room"
LIMIT = 180.0  # seconds for one scenario, whatever happens
EPOCH = re.compile(r"[0-9a-f]{12}")
POSITIONED = re.compile(r'\{"issuer":"(?P<issuer>[^"]*)","channel":"(?:[^"\\]|\\.)*"(?:,"data":"(?:[^"\\]|\\.)*")?'
                        r',"epoch":"[0-9a-f]{12}","offset":[1-9][0-9]*\}\n')
MAX_OFFSET = 2 ** 63 - 1
API = [("Authorization", "Bearer " + token(api=True))]


# ======================================================================================================
# Helpers
# ======================================================================================================


def serve(start_server, **env):
    return start_server("serve", SECRET=SECRET, CLOSE_TIMEOUT="1", **env)


def finish(server):
    """The server drains and exits 0 (a sanitizer report or a crash would not)."""
    assert server.stop() == 0, server.log_text()[-3000:]


def run(coroutine, limit=LIMIT):
    return asyncio.run(asyncio.wait_for(coroutine, limit))


def compact(value):
    """JSON as the server writes it (PROTOCOL.md): compact, non-ASCII as UTF-8, `<` `>` `&` U+2028 U+2029 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for character in "<>&\u2028\u2029":
        text = text.replace(character, "\\u%04x" % ord(character))
    return text


# --- clients ----------------------------------------------------------------------------------------------


def client_url(server, tok, sinces, encode=True):
    """`?auth=<jwt>&since=...&since=...` as a browser sends it; each `since` percent-encoded whole (README),
    or verbatim with encode=False."""
    query = "auth=" + quote(tok, safe="")
    for value in sinces:
        query += "&since=" + (quote(value, safe="") if encode else value)
    return f"ws://127.0.0.1:{server.port}/?{query}"


class Client:
    """One `websockets` connection read by a background task into `texts`, in arrival order. The test takes
    messages in order with next()/take() and waits for events with reach()/wait(). `positions` holds the last
    (epoch, offset) seen per channel, as a real client keeps it."""

    def __init__(self, ws, name, reading=True):
        self.ws, self.name = ws, name
        self.texts = []
        self.cursor = 0
        self.positions = {}
        self.problem = None
        self.ended = False
        self._changed = asyncio.Event()
        self._task = None
        if reading:
            self.start()

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self):
        try:
            async for message in self.ws:
                if not isinstance(message, str):
                    self.problem = f"a binary message {message[:100]!r}"
                    break
                self.texts.append(message)
                if message.startswith('{"issuer":') and '"offset":' in message:
                    parsed = json.loads(message)
                    self.positions[parsed.get("channel", "")] = (parsed.get("epoch"), parsed.get("offset"))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.ended = True
            self._changed.set()

    def how_it_ended(self):
        received = self.ws.protocol.close_rcvd
        return f"closed by the server ({received.code} {received.reason!r})" if received else "connection lost"

    async def wait(self, predicate, what, timeout=30.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            assert self.problem is None, f"{self.name}: {self.problem}"
            if self.ended:
                raise AssertionError(f"{self.name}: {self.how_it_ended()} after {len(self.texts)} messages, while "
                                     f"waiting for {what}; last: {self.texts[-2:]!r}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {what} within {timeout} s; {len(self.texts)} messages, "
                                     f"last: {[text[:200] for text in self.texts[-2:]]!r}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def next(self, timeout=10.0):
        """The next message the test has not taken yet."""
        await self.wait(lambda: len(self.texts) > self.cursor, f"message #{self.cursor + 1}", timeout)
        self.cursor += 1
        return self.texts[self.cursor - 1]

    async def take(self, count, timeout=60.0):
        await self.wait(lambda: len(self.texts) >= self.cursor + count, f"{count} more messages", timeout)
        self.cursor += count
        return self.texts[self.cursor - count:self.cursor]

    def offset(self, channel=CHANNEL):
        return self.positions.get(channel, (None, 0))[1]

    async def reach(self, offset, channel=CHANNEL, timeout=30.0):
        await self.wait(lambda: self.offset(channel) >= offset, f"offset {offset} of {channel!r}", timeout)

    def delivered(self, channel=CHANNEL):
        """Every positioned delivery of `channel` received so far, checked in exact form and parsed."""
        return [positioned(text, channel) for text in self.texts
                if text.startswith('{"issuer":') and json.loads(text).get("channel") == channel]

    async def send(self, channel, data):
        await self.ws.send(json.dumps({"channel": channel, "data": data}))

    def socket_view(self):
        """What pubsub_helpers.event_loops needs of a client: `.sock.getsockname()`."""
        return type("View", (), {"sock": self.ws.transport.get_extra_info("socket")})()

    async def close(self):
        """A clean close: a close frame, the server's answer, then TCP."""
        await self.ws.close()
        if self._task is not None:
            await self._task

    async def abort(self):
        """An abrupt disconnect: the TCP socket closed with no close frame."""
        if self._task is not None:
            self._task.cancel()
        self.ws.transport.abort()
        await asyncio.sleep(0)  # one turn of the event loop, so the abort takes effect before the test goes on


async def open_client(server, tok, *sinces, name="client", encode=True, reading=True, **options):
    settings = dict(compression=None, ping_interval=None, open_timeout=10, close_timeout=5, max_size=None,
                    proxy=None)
    settings.update(options)
    ws = await ws_connect(client_url(server, tok, sinces, encode), **settings)
    return Client(ws, name, reading)


async def reader(server, *sinces, channels=(CHANNEL,), name="reader"):
    return await open_client(server, token(read=list(channels)), *sinces, name=name)


async def publisher(server, channels=(CHANNEL,), name="publisher"):
    return await open_client(server, token(write=list(channels)), name=name)


async def close_all(*clients):
    for client in clients:
        await client.close()
        assert client.problem is None, f"{client.name}: {client.problem}"


async def spread(server, opener, minimum, limit=64):
    """At least `minimum` clients, more until every event loop of the server holds one (checked in /proc)."""
    clients = [await opener(index) for index in range(minimum)]
    while True:
        loops, owners = event_loops(server, [client.socket_view() for client in clients])
        assert None not in owners, "could not place a client on a loop"
        if set(owners) == loops or len(clients) >= limit:
            break
        clients.append(await opener(len(clients)))
    assert set(owners) == loops, f"{len(clients)} clients still miss a loop: {owners} of {loops}"
    return clients


# --- what the server sends ------------------------------------------------------------------------------


def check_answer(text, channel, recovery, reason=None):
    """A recovery answer in the README's exact form (keys in its order, compact, one `\\n`); returns it parsed.
    `epoch` and `offset` are the channel's position; a channel without history answers offset 0 and no epoch;
    `history off` has neither."""
    got = json.loads(text)
    assert (got.get("channel"), got.get("recovery"), got.get("reason")) == (channel, recovery, reason), text
    expected = {"channel": channel, "recovery": recovery}
    if reason is not None:
        expected["reason"] = reason
    if reason != "history off":
        if "epoch" in got:
            assert isinstance(got["epoch"], str) and EPOCH.fullmatch(got["epoch"]), text
            expected["epoch"] = got["epoch"]
        assert type(got.get("offset")) is int and 0 <= got["offset"] <= MAX_OFFSET, text
        if "epoch" not in got:
            assert got["offset"] == 0, f"a position without an epoch: {text!r}"
        expected["offset"] = got["offset"]
    assert text == compact(expected) + "\n", f"not the README's exact form: {text!r}"
    return got


def positioned(text, channel=None):
    """A delivery with its position, exactly: the old delivery plus `,"epoch":...,"offset":...`."""
    assert POSITIONED.fullmatch(text), f"not a positioned delivery in the README's exact form: {text[:300]!r}"
    message = json.loads(text)
    assert list(message)[-2:] == ["epoch", "offset"], text
    assert message["issuer"] == "api" or UUID4.fullmatch(message["issuer"].encode()), text
    if channel is not None:
        assert message.get("channel") == channel, text
    return message


def plain(text, channel, data):
    """The old delivery, byte for byte: no position (PROTOCOL.md)."""
    match = DELIVERY.fullmatch(text.encode())
    assert match, f"not a delivery in the old exact form: {text[:300]!r}"
    message = json.loads(text)
    assert (message.get("channel"), message.get("data")) == (channel, data), text
    return message


def by_channel(texts):
    """{channel: text} of deliveries on distinct channels, whatever order they came in."""
    found = {json.loads(text).get("channel", ""): text for text in texts}
    assert len(found) == len(texts), texts
    return found


def error_reply(text):
    assert text.endswith("}\n") and not text.endswith("\n\n"), text
    reply = json.loads(text)
    assert text == compact(reply) + "\n", text
    return reply


def assert_sequence(messages, first, last, epoch, data=str, who="client"):
    """Exactly offsets first..last, each once, in order, of one epoch, each carrying data(offset)."""
    offsets = [message["offset"] for message in messages]
    expected = list(range(first, last + 1))
    if offsets != expected:
        at = next((i for i, (a, b) in enumerate(zip(offsets, expected)) if a != b), min(len(offsets), len(expected)))
        duplicates = sorted(offset for offset, count in Counter(offsets).items() if count > 1)[:5]
        missing = sorted(set(expected) - set(offsets))[:5]
        pytest.fail(f"{who}: expected offsets {first}..{last}, got {len(offsets)} messages; first difference at "
                    f"index {at}: {offsets[max(0, at - 2):at + 3]}; duplicates {duplicates}; missing {missing}")
    epochs = {message["epoch"] for message in messages}
    assert epochs <= {epoch}, f"{who}: epochs {epochs}, expected {epoch}"
    wrong = [(message["offset"], message["data"][:20]) for message in messages
             if message["data"] != data(message["offset"])]
    assert not wrong, f"{who}: data does not match the offsets: {wrong[:5]}"


# --- publishing -------------------------------------------------------------------------------------------


async def publish_range(source, watcher, first, last, data=str, window=500, channel=CHANNEL):
    """Publishes what gets offsets first..last (data(n) for offset n), never more than `window` messages ahead
    of `watcher` (a reader with positions, connected all along), and returns once the watcher has the last one:
    then all of them are published and in history."""
    for n in range(first, last + 1):
        if n - watcher.offset(channel) > window:
            await watcher.reach(n - window, channel)
        await source.send(channel, data(n))
    await watcher.reach(last, channel, timeout=60)


async def started(server, warm_up, *, history_readers=1, channel=CHANNEL):
    """A watcher and `history_readers` readers, all with `::channel` (answered `new`, offset 0, no epoch: the
    channel is fresh), a publisher, and `warm_up` messages every reader has: (watcher, readers, publisher, epoch)."""
    watcher = await reader(server, "::" + channel, channels=[channel], name="watcher")
    readers = [await reader(server, "::" + channel, channels=[channel], name=f"subscriber {index}")
               for index in range(history_readers)]
    for client in [watcher] + readers:
        new = check_answer(await client.next(), channel, "new")
        assert new["offset"] == 0 and "epoch" not in new, new
    source = await publisher(server, [channel])
    await publish_range(source, watcher, 1, warm_up, channel=channel)
    epoch = watcher.positions[channel][0]
    for client in readers:
        await client.reach(warm_up, channel)
        assert_sequence([positioned(text) for text in await client.take(warm_up)], 1, warm_up, epoch,
                        who=client.name)
        assert client.positions[channel] == (epoch, warm_up)
    return watcher, readers, source, epoch


async def api_history(server, query, headers=API):
    """GET /api/history?<query>: (status, headers, body), off the event loop."""
    return await asyncio.to_thread(http_request, server.port, "GET", "/api/history?" + query, headers)


# ======================================================================================================
# 1. Reconnecting gets what was missed, once, in order, then live messages
# ======================================================================================================


@pytest.mark.parametrize("disconnect", ["clean", "abrupt"])
def test_reconnect_recovers_10000_missed_messages_once_in_order(start_server, disconnect):
    """`since=::room` answers `new`; the positions received are kept; while the subscriber is away (closed
    cleanly, or its TCP socket closed without a close frame) 10,000 messages are published; reconnecting with
    `since=<epoch>:<offset>:room` answers `ok` with the channel's position, then exactly the missed messages,
    then live ones."""
    server = serve(start_server, HISTORY_SIZE="20000")
    missed = 10_000

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 5)
        epoch_kept, offset_kept = subscriber.positions[CHANNEL]
        if disconnect == "clean":
            await subscriber.close()
        else:
            await subscriber.abort()
        await publish_range(source, watcher, 6, 5 + missed)

        back = await reader(server, f"{epoch_kept}:{offset_kept}:{CHANNEL}", name="reconnected")
        ok = check_answer(await back.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, 5 + missed), ok
        replayed = [positioned(text) for text in await back.take(missed)]
        assert_sequence(replayed, 6, 5 + missed, epoch, who="reconnected subscriber")
        # Then live messages, and nothing in between: no duplicate, no extra.
        await source.send(CHANNEL, str(6 + missed))
        assert_sequence([positioned(await back.next())], 6 + missed, 6 + missed, epoch, who="reconnected, live")
        await watcher.reach(6 + missed)
        assert_sequence(watcher.delivered(), 1, 6 + missed, epoch, who="watcher")
        await close_all(back, watcher, source)
        assert source.texts == [], source.texts

    run(scenario())
    finish(server)


# ======================================================================================================
# 2. Publishing goes on while the subscriber reconnects and replays
# ======================================================================================================


def test_publishing_during_reconnect_and_replay_loses_and_repeats_nothing(start_server):
    server = serve(start_server, HISTORY_SIZE="100000")
    offline, ceiling = 3000, 60_000

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 5)
        epoch_kept, offset_kept = subscriber.positions[CHANNEL]
        await subscriber.close()
        await publish_range(source, watcher, 6, 5 + offline)

        stop = asyncio.Event()
        published = [5 + offline]

        async def keep_publishing():
            n = published[0]
            while not stop.is_set():
                assert n < ceiling, "the reconnected subscriber never caught up with live publishing"
                for _ in range(20):
                    n += 1
                    if n - watcher.offset() > 500:
                        await watcher.reach(n - 500)
                    await source.send(CHANNEL, str(n))
                published[0] = n
                await asyncio.sleep(0)  # lets the reconnect and the readers run between publishes
            return n

        publishing = asyncio.get_running_loop().create_task(keep_publishing())
        # Publishing is under way (the watcher sees it) when the subscriber comes back.
        await watcher.reach(5 + offline + 100)
        back = await reader(server, f"{epoch_kept}:{offset_kept}:{CHANNEL}", name="reconnected")
        ok = check_answer(await back.next(), CHANNEL, "ok")
        assert ok["epoch"] == epoch and 5 + offline + 100 <= ok["offset"] <= published[0] + 20, ok
        # The replay (up to the answer's offset) ends while publishing goes on...
        await back.reach(ok["offset"], timeout=60)
        assert published[0] > ok["offset"], "nothing was published while the subscriber replayed"
        # ... and well into live messages, with publishing still going on.
        await back.reach(ok["offset"] + 200, timeout=60)
        assert not publishing.done()
        stop.set()
        last = await publishing
        await watcher.reach(last, timeout=60)
        await back.reach(last, timeout=60)
        texts = back.texts[1:]
        assert_sequence([positioned(text) for text in texts], 6, last, epoch, who="reconnected subscriber")
        assert_sequence(watcher.delivered(), 1, last, epoch, who="watcher")
        await close_all(back, watcher, source)

    run(scenario())
    finish(server)


# ======================================================================================================
# 3. Several event loops, several publishers: one contiguous order for every reader
# ======================================================================================================


def test_four_loops_several_publishers_every_reader_sees_one_contiguous_order(start_server):
    """README "Ordering": with history on, every channel's messages reach every reader in offset order (1, 2,
    3, ... with no gap), which keeps each publisher's order, and is one order on every event loop."""
    server = serve(start_server, HISTORY_SIZE="20000", WORKERS="4")
    total_wanted = 8000

    async def scenario():
        readers = await spread(server, lambda i: reader(server, "::" + CHANNEL, name=f"reader {i}"), minimum=4)
        for client in readers:
            new = check_answer(await client.next(), CHANNEL, "new")
            assert new["offset"] == 0 and "epoch" not in new, new
        sources = await spread(server, lambda i: publisher(server, name=f"publisher {i}"), minimum=4)
        per_publisher = total_wanted // len(sources)
        total = per_publisher * len(sources)

        async def publish_all(index, source):
            for i in range(per_publisher):
                await source.send(CHANNEL, f"{index}:{i}")
                if i % 25 == 0:
                    await asyncio.sleep(0)  # lets the other publishers interleave

        await asyncio.gather(*(publish_all(index, source) for index, source in enumerate(sources)))
        reference = None
        for client in readers:
            await client.reach(total, timeout=60)
            messages = client.delivered()
            offsets = [message["offset"] for message in messages]
            assert offsets == list(range(1, total + 1)), (
                f"{client.name}: offsets not 1..{total} in order: first difference at "
                f"{next((i for i, o in enumerate(offsets) if o != i + 1), len(offsets))}")
            assert len({message["epoch"] for message in messages}) == 1
            sequences, issuers = {}, {}
            for message in messages:
                index, i = map(int, message["data"].split(":"))
                assert issuers.setdefault(index, message["issuer"]) == message["issuer"]
                sequences.setdefault(index, []).append(i)
            assert len(set(issuers.values())) == len(sources)
            for index in range(len(sources)):
                assert sequences.get(index) == list(range(per_publisher)), (
                    f"{client.name}: publisher {index}'s messages out of order or incomplete")
            order = [(message["offset"], message["epoch"], message["data"], message["issuer"]) for message in messages]
            if reference is None:
                reference = order
            else:
                assert order == reference, f"{client.name} saw another order than {readers[0].name}"
        # len(sources) - 1 switches would mean one publisher after another: they must have interleaved.
        switches = sum(1 for a, b in zip(reference, reference[1:]) if a[2].split(":")[0] != b[2].split(":")[0])
        assert switches >= len(sources), f"the publishers' messages did not interleave ({switches} switches)"
        await close_all(*readers, *sources)
        for source in sources:
            assert source.texts == [], source.texts

    run(scenario())
    finish(server)


def test_each_publisher_keeps_its_order_across_channels_with_history_on(start_server):
    """README "Ordering" and PROTOCOL.md: with history on, one publisher's messages to two channels reach a reader
    of both, with positions or without, in the order sent, on every loop, while other publishers interleave."""
    server = serve(start_server, HISTORY_SIZE="20000", WORKERS="4")
    both = ("a", "b")

    async def scenario():
        readers = await spread(
            server, lambda i: (reader(server, "::a", "::b", channels=both, name=f"positioned reader {i}") if i % 2
                               else reader(server, channels=both, name=f"plain reader {i}")), minimum=4)
        for client in readers:
            if client.name.startswith("positioned"):
                check_answer(await client.next(), "a", "new")
                check_answer(await client.next(), "b", "new")
        sources = await spread(server, lambda i: publisher(server, channels=both, name=f"publisher {i}"), minimum=4)
        per_publisher = 1000

        async def publish_all(index, source):
            for i in range(per_publisher):
                await source.send(both[i % 2], f"{index}:{i}")
                if i % 25 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(publish_all(index, source) for index, source in enumerate(sources)))
        total = per_publisher * len(sources)
        for client in readers:
            await client.wait(lambda: sum(t.startswith('{"issuer":') for t in client.texts) >= total,
                              f"{total} deliveries", timeout=60)
            sequences = {}
            for text in client.texts:
                if not text.startswith('{"issuer":'):
                    continue
                message = json.loads(text)
                assert ("offset" in message) == client.name.startswith("positioned"), text
                index, i = map(int, message["data"].split(":"))
                assert message["channel"] == both[i % 2], text
                sequences.setdefault(index, []).append(i)
            for index in range(len(sources)):
                assert sequences.get(index) == list(range(per_publisher)), (
                    f"{client.name}: publisher {index}'s messages across both channels out of order or incomplete")
        await close_all(*readers, *sources)

    run(scenario())
    finish(server)


# ======================================================================================================
# 4. A backlog far larger than MAX_BACKPRESSURE is replayed paced to a client that reads
# ======================================================================================================


def test_backlog_larger_than_max_backpressure_reaches_a_reading_client(start_server):
    server = serve(start_server, HISTORY_SIZE="10000", MAX_BACKPRESSURE="65536")
    missed, size = 5000, 200

    def data(n):
        return f"{n}:".ljust(size, "x")

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 1)
        # The warm-up was str(1); from here on data(n). Small windows: MAX_BACKPRESSURE is only 64 KiB.
        await subscriber.close()
        await publish_range(source, watcher, 2, 1 + missed, data=data, window=50)
        backlog = sum(len(text) for text in watcher.texts[-missed:])
        assert backlog > 15 * 65536, backlog

        back = await reader(server, f"{epoch}:1:{CHANNEL}", name="reconnected")
        ok = check_answer(await back.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, 1 + missed), ok
        replayed = [positioned(text) for text in await back.take(missed, timeout=120)]
        assert_sequence(replayed, 2, 1 + missed, epoch, data=data, who="reconnected subscriber")
        await source.send(CHANNEL, data(2 + missed))
        assert_sequence([positioned(await back.next())], 2 + missed, 2 + missed, epoch, data=data,
                        who="reconnected, live")
        await watcher.reach(2 + missed)
        samples = parse_metrics(await asyncio.to_thread(scrape, server.port))
        assert metric(samples, "philote_slow_consumer_closes_total") == 0
        await close_all(back, watcher, source)

    run(scenario())
    finish(server)


def kernel_send_buffer_max():
    """The most a TCP socket's kernel send buffer can grow to: bytes a server can hand off without the peer reading."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as handle:
        return int(handle.read().split()[2])


def test_a_stalled_replay_never_leaves_a_silent_gap(start_server):
    """README "Replay is paced": a client too slow to catch up before its next message leaves history gets a
    second answer, `failed` / `offset too old`, and live messages from there. Here the client reads nothing
    (tiny receive buffer) while a backlog larger than the kernel's send buffer can hold waits for it, and then
    more than HISTORY_SIZE further messages are published.

    Whatever the server queued before it noticed can arrive, and the spec allows closing a client that does not
    read (1008); what must never happen is a gap without that answer. When the server keeps the connection
    open (it noticed as the client started reading again), the second answer and live messages must follow."""
    size = 4000
    history = 2 * kernel_send_buffer_max() // size + 500
    server = serve(start_server, HISTORY_SIZE=str(history), MAX_BACKPRESSURE="65536")
    head, last = 1 + history, 1 + history + history * 3 // 2

    def data(n):
        return f"{n}:".ljust(size, "y")

    async def scenario():
        watcher, _, source, epoch = await started(server, 1, history_readers=0)
        await publish_range(source, watcher, 2, head, data=data, window=10)
        stalled_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled_socket.setblocking(False)
        await asyncio.get_running_loop().sock_connect(stalled_socket, ("127.0.0.1", server.port))
        stalled = await open_client(server, token(read=[CHANNEL]), f"{epoch}:1:{CHANNEL}", name="stalled",
                                    reading=False, sock=stalled_socket, max_queue=2)
        # Half as many again as history holds: everything the stalled client has not read yet leaves history.
        await publish_range(source, watcher, head + 1, last, data=data, window=10)
        stalled.start()
        ok = check_answer(await stalled.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, head), ok
        expected, second_answer = 2, None
        while expected <= last:
            try:
                text = await stalled.next(timeout=30)
            except AssertionError:
                if not stalled.ended:
                    raise
                # Closed as a slow consumer while it did not read: allowed, as long as nothing before was a gap.
                received = stalled.ws.protocol.close_rcvd
                assert received is not None and received.code == 1008, stalled.how_it_ended()
                await close_all(watcher, source)
                return
            if '"recovery"' in text:
                assert second_answer is None, f"a third answer: {text!r}"
                second_answer = check_answer(text, CHANNEL, "failed", "offset too old")
                assert second_answer["epoch"] == epoch and second_answer["offset"] >= expected, second_answer
                expected = second_answer["offset"] + 1
                continue
            message = positioned(text, CHANNEL)
            assert (message["epoch"], message["offset"]) == (epoch, expected), (
                f"a silent gap: expected offset {expected}, got {message['offset']}")
            assert message["data"] == data(expected)
            expected += 1
        assert second_answer is not None, (
            f"the client was {last - head} messages (more than HISTORY_SIZE={history}) behind, read nothing, "
            "yet got every message and no second answer: the server must have queued more than MAX_BACKPRESSURE")
        await source.send(CHANNEL, data(last + 1))
        live = positioned(await stalled.next())
        assert (live["epoch"], live["offset"]) == (epoch, last + 1), live
        await close_all(stalled, watcher, source)

    run(scenario())
    finish(server)


# ======================================================================================================
# 5. A position older than history
# ======================================================================================================


def test_position_older_than_history_fails_offset_too_old_then_live_positioned(start_server):
    """HISTORY_SIZE=100, 300 missed: `offset too old` with the current position, then live messages with
    positions. At the edge: exactly 100 missed are recovered, 101 are not."""
    server = serve(start_server, HISTORY_SIZE="100")

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 5)
        await subscriber.close()
        await publish_range(source, watcher, 6, 305, window=50)

        too_old = await reader(server, f"{epoch}:5:{CHANNEL}", name="300 missed")
        just_too_old = await reader(server, f"{epoch}:204:{CHANNEL}", name="101 missed")
        just_in = await reader(server, f"{epoch}:205:{CHANNEL}", name="100 missed")
        for client in (too_old, just_too_old):
            failed = check_answer(await client.next(), CHANNEL, "failed", "offset too old")
            assert (failed["epoch"], failed["offset"]) == (epoch, 305), failed
        ok = check_answer(await just_in.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, 305), ok
        assert_sequence([positioned(text) for text in await just_in.take(100)], 206, 305, epoch, who=just_in.name)

        await source.send(CHANNEL, "306")
        for client in (too_old, just_too_old, just_in):
            # Nothing was replayed to the failed ones: the live message is the next thing every client gets.
            assert_sequence([positioned(await client.next())], 306, 306, epoch, who=client.name)
        await close_all(too_old, just_too_old, just_in, watcher, source)

    run(scenario())
    finish(server)


# ======================================================================================================
# 6. A restart changes the epoch
# ======================================================================================================


def test_after_a_server_restart_recovery_fails_epoch_changed(start_server):
    first = serve(start_server, HISTORY_SIZE="1000")

    async def before():
        watcher, [subscriber], source, epoch = await started(first, 3)
        position = subscriber.positions[CHANNEL]
        await close_all(subscriber, watcher, source)
        return position

    old_epoch, old_offset = run(before())
    finish(first)
    second = serve(start_server, HISTORY_SIZE="1000")  # no Redis: nothing survives the restart

    async def after():
        early = await reader(second, f"{old_epoch}:{old_offset}:{CHANNEL}", name="before any publish")
        failed = check_answer(await early.next(), CHANNEL, "failed", "epoch changed")
        assert failed["offset"] == 0 and "epoch" not in failed, "the channel has no history yet on the new server"
        source = await publisher(second)
        await source.send(CHANNEL, "1")
        message = positioned(await early.next(), CHANNEL)
        new_epoch = message["epoch"]
        assert new_epoch != old_epoch and message["offset"] == 1, message

        late = await reader(second, f"{old_epoch}:{old_offset}:{CHANNEL}", name="after a publish")
        failed = check_answer(await late.next(), CHANNEL, "failed", "epoch changed")
        assert (failed["epoch"], failed["offset"]) == (new_epoch, 1), failed
        await source.send(CHANNEL, "2")
        for client in (early, late):
            assert_sequence([positioned(await client.next())], 2, 2, new_epoch, who=client.name)
        await close_all(early, late, source)

    run(after())
    finish(second)


# ======================================================================================================
# 7. Forged positions
# ======================================================================================================


def test_forged_positions_are_answered_and_nothing_is_replayed_wrongly(start_server):
    """An offset the channel never reached, the largest offset there is, epochs that never existed: a `failed`
    answer with the channel's real position, the connection stays open, nothing is replayed, and live messages
    follow with positions. Controls: the exact position (`ok`, nothing to replay) and offset 0 (everything)."""
    server = serve(start_server, HISTORY_SIZE="1000")

    async def scenario():
        watcher, _, source, epoch = await started(server, 10, history_readers=0)
        never = "ffffffffffff" if epoch == "000000000000" else "000000000000"
        cases = [
            (f"{epoch}:11", "failed", "offset ahead of the channel", []),
            (f"{epoch}:{MAX_OFFSET}", "failed", "offset ahead of the channel", []),
            (f"{never}:5", "failed", "epoch changed", []),
            ("a" * 32 + ":5", "failed", "epoch changed", []),  # 32 characters: well formed, never issued
            ("Never-Existed_1:3", "failed", "epoch changed", []),
            (f"{epoch}:10", "ok", None, []),
            (f"{epoch}:0", "ok", None, list(range(1, 11))),
        ]
        clients = []
        for position, recovery, reason, replay in cases:
            client = await reader(server, f"{position}:{CHANNEL}", name=f"since {position[:40]}")
            answer = check_answer(await client.next(), CHANNEL, recovery, reason)
            assert (answer["epoch"], answer["offset"]) == (epoch, 10), (position, answer)
            if replay:
                assert_sequence([positioned(text) for text in await client.take(len(replay))], 1, 10, epoch,
                                who=client.name)
            clients.append(client)
        await source.send(CHANNEL, "11")
        for client in clients:
            assert_sequence([positioned(await client.next())], 11, 11, epoch, who=client.name)
        await close_all(*clients, watcher, source)

    run(scenario())
    finish(server)


# ======================================================================================================
# 8. Malformed `since`, a channel given twice, a channel the token does not read
# ======================================================================================================


@pytest.fixture(scope="module")
def history_server():
    """One server with history for the tests that need nothing else (each uses its own channels)."""
    server = ServerProcess(("serve",), {"SECRET": SECRET, "CLOSE_TIMEOUT": "1", "HISTORY_SIZE": "1000"})
    yield server
    try:
        finish(server)
    finally:
        server.cleanup()


@pytest.fixture
def hserver(history_server):
    assert history_server.process.poll() is None, "the shared server died: " + history_server.log_text()[-3000:]
    return history_server


# (value, the channel it names, if any)
MALFORMED = [
    ("abc", None), ("", None), (":", None), ("e:1", None), (":5:{c}", "{c}"), ("e::{c}", "{c}"),
    ("e:-1:{c}", "{c}"), ("e:1.5:{c}", "{c}"), ("e:1x:{c}", "{c}"), ("e:0x10:{c}", "{c}"),
    ("e:99999999999999999999:{c}", "{c}"), ("e:9223372036854775808:{c}", "{c}"), ("a" * 33 + ":1:{c}", "{c}"),
    ("ep.och:1:{c}", "{c}"), ("ep och:1:{c}", "{c}"), ("ep/och:1:{c}", "{c}"),
]


@pytest.mark.parametrize("value, named", MALFORMED, ids=[repr(value[:24]) for value, _ in MALFORMED])
def test_malformed_since_gets_an_error_and_the_connection_stays_open(hserver, value, named):
    """`{"error":"invalid since: <what is wrong>"}`, the connection stays open, and the channel then gets
    messages without positions. (The README shows no `channel` key; one naming the channel the value names, as
    the other errors carry, is tolerated.)"""
    channel = distinctive("room")

    async def scenario():
        client = await reader(hserver, value.format(c=channel), channels=[channel])
        reply = error_reply(await client.next())
        assert set(reply) in ({"error"}, {"error", "channel"}), reply
        if "channel" in reply:
            assert named is not None and reply["channel"] == named.format(c=channel), reply
        assert reply["error"].startswith("invalid since: ") and len(reply["error"]) > len("invalid since: "), reply
        source = await publisher(hserver, [channel])
        await source.send(channel, "after the mistake")
        plain(await client.next(), channel, "after the mistake")
        await close_all(client, source)

    run(scenario(), 30)


@pytest.mark.parametrize("second", ["::{c}", "{e}:1:{c}"])
def test_a_channel_given_twice_gets_an_error_and_the_connection_stays_open(hserver, second):
    """`{"error":"invalid since: channel given twice","channel":"<name>"}` and the connection stays open. The
    first `since` was well formed: it may be answered (`new`, before or after the error: the README does not
    order errors among answers), and then the channel's messages carry positions; if not, they carry none."""
    channel = distinctive("room")

    async def scenario():
        client = await reader(hserver, "::" + channel, second.format(c=channel, e="0123456789ab"),
                              channels=[channel])
        source = await publisher(hserver, [channel])
        await source.send(channel, "still open")
        errors, answers = 0, 0
        while True:
            text = await client.next()
            if text.startswith('{"error"'):
                assert text == compact({"error": "invalid since: channel given twice", "channel": channel}) + "\n"
                errors += 1
            elif '"recovery"' in text:
                check_answer(text, channel, "new")
                answers += 1
            else:
                break
        assert (errors, answers) in ((1, 0), (1, 1)), (errors, answers)
        if answers:
            assert positioned(text, channel)["data"] == "still open", text
        else:
            plain(text, channel, "still open")
        await close_all(client, source)

    run(scenario(), 30)


def test_since_for_a_channel_the_token_does_not_read(hserver):
    """`{"error":"read not permitted","channel":"<name>"}`, in the order given among the answers; the
    connection stays open and never receives that channel."""
    channel, secret = distinctive("room"), distinctive("secret")

    async def scenario():
        client = await reader(hserver, "::" + secret, "::" + channel, channels=[channel])
        assert await client.next() == compact({"error": "read not permitted", "channel": secret}) + "\n"
        check_answer(await client.next(), channel, "new")
        source = await publisher(hserver, [channel, secret])
        await source.send(secret, "not for you")
        await source.send(channel, "1")
        message = positioned(await client.next(), channel)
        assert (message["data"], message["offset"]) == ("1", 1), message
        await close_all(client, source)

    run(scenario(), 30)


def test_each_since_is_answered_in_order_and_channels_without_one_are_unchanged(hserver):
    """One `since` per channel, answered in the order given; the channel is everything after the second colon
    (colons included); percent-encoded or with its colons as they are; each channel has its own offsets; a
    channel read without `since` gets the old delivery on the same connection."""
    suffix = distinctive("")
    colons, simple, odd, unpositioned = f"a:b:c{suffix}", f"simple{suffix}", f"r\u00e9 1/?&={suffix}", f"p{suffix}"
    channels = [colons, simple, odd, unpositioned]

    async def scenario():
        tok = token(read=channels)
        url_sinces = [quote("::" + colons, safe=""), "::" + simple, quote("::" + odd, safe="")]
        client = await open_client(hserver, tok, *url_sinces, encode=False)
        for channel in (colons, simple, odd):
            new = check_answer(await client.next(), channel, "new")
            assert new["offset"] == 0 and "epoch" not in new, new
        source = await publisher(hserver, channels)
        for round_ in (1, 2):
            for channel in channels:
                await source.send(channel, f"{channel}/{round_}")
        # Per channel in order; across channels in any order (README "Ordering").
        received = {}
        for text in await client.take(2 * len(channels)):
            received.setdefault(json.loads(text)["channel"], []).append(text)
        assert sorted(received) == sorted(channels), received.keys()
        for channel in (colons, simple, odd):
            messages = [positioned(text, channel) for text in received[channel]]
            assert [(m["data"], m["offset"]) for m in messages] == [(f"{channel}/1", 1), (f"{channel}/2", 2)]
            assert messages[0]["epoch"] == messages[1]["epoch"]
        for round_, text in zip((1, 2), received[unpositioned]):
            plain(text, unpositioned, f"{unpositioned}/{round_}")
        await close_all(client, source)

    run(scenario(), 30)


# ======================================================================================================
# 9. History off
# ======================================================================================================


@pytest.mark.parametrize("env", [{}, {"HISTORY_SIZE": "0"}], ids=["default", "HISTORY_SIZE=0"])
def test_history_off_answers_history_off_and_messages_carry_no_position(start_server, env):
    server = serve(start_server, **env)

    async def scenario():
        client = await reader(server, "::" + CHANNEL, "abcdef012345:5:other", channels=[CHANNEL, "other"])
        assert await client.next() == '{"channel":"room","recovery":"failed","reason":"history off"}\n'
        assert await client.next() == '{"channel":"other","recovery":"failed","reason":"history off"}\n'
        source = await publisher(server, [CHANNEL, "other"])
        await source.send(CHANNEL, "x")
        await source.send("other", "y")
        plain(await client.next(), CHANNEL, "x")
        plain(await client.next(), "other", "y")
        await close_all(client, source)

    run(scenario(), 30)
    finish(server)


# ======================================================================================================
# 10. A client that does not opt in sees exactly the old frames
# ======================================================================================================


def test_a_client_without_since_gets_the_old_delivery_byte_for_byte(start_server):
    server = serve(start_server, HISTORY_SIZE="100")
    data = "a <b> & c \u00e9 \u2028 \"q\""
    escaped = 'a \\u003cb\\u003e \\u0026 c \u00e9 \\u2028 \\"q\\"'

    async def scenario():
        old = await reader(server, channels=[CHANNEL, "other"], name="no since")
        mixed = await reader(server, "::" + CHANNEL, channels=[CHANNEL, "other"], name="since for room only")
        check_answer(await mixed.next(), CHANNEL, "new")
        source = await publisher(server, [CHANNEL, "other"])
        await source.send(CHANNEL, data)
        await source.send("other", "plain")
        # Two channels: with history on they may arrive in either order (README "Ordering").
        old_texts = by_channel(await old.take(2))
        issuer = json.loads(old_texts[CHANNEL])["issuer"]
        assert old_texts[CHANNEL] == '{"issuer":"%s","channel":"room","data":"%s"}\n' % (issuer, escaped)
        assert old_texts["other"] == '{"issuer":"%s","channel":"other","data":"plain"}\n' % issuer
        new_texts = by_channel(await mixed.take(2))
        epoch = positioned(new_texts[CHANNEL], CHANNEL)["epoch"]
        # The same bytes with the position added before the closing brace.
        assert new_texts[CHANNEL] == old_texts[CHANNEL][:-2] + ',"epoch":"%s","offset":1}\n' % epoch
        assert new_texts["other"] == old_texts["other"]
        # Over HTTP too (issuer "api").
        status, _, body = await asyncio.to_thread(http_request, server.port, "POST", "/api/publish", API,
                                                  json.dumps({"channel": CHANNEL, "data": "via http"}).encode())
        assert status == 202, body
        assert await old.next() == '{"issuer":"api","channel":"room","data":"via http"}\n'
        assert await mixed.next() == ('{"issuer":"api","channel":"room","data":"via http","epoch":"%s","offset":2}\n'
                                      % epoch)
        await close_all(old, mixed, source)

    run(scenario(), 30)
    finish(server)


# ======================================================================================================
# 11. GET /api/history
# ======================================================================================================


def test_api_history_shape_paging_and_oldest(start_server):
    """HISTORY_SIZE=1000, 1,200 published: position, `oldest` 201, up to `limit` (default 100, at most 1000)
    messages after `since` (default 0), oldest first, each exactly as a reader with positions got it."""
    server = serve(start_server, HISTORY_SIZE="1000")

    async def get(query, headers=API):
        status, headers, body = await api_history(server, query, headers)
        assert status == 200, (query, status, body)
        assert headers.get("content-type", "").startswith("application/json"), headers
        answer = json.loads(body)
        assert set(answer) == {"channel", "epoch", "offset", "oldest", "messages"}, answer.keys()
        return answer

    async def scenario():
        watcher, _, source, epoch = await started(server, 1, history_readers=0)
        await publish_range(source, watcher, 2, 1200)
        seen = {message["offset"]: message for message in watcher.delivered()}
        assert sorted(seen) == list(range(1, 1201))

        def expect(answer, first, last):
            assert (answer["channel"], answer["epoch"], answer["offset"], answer["oldest"]) == (CHANNEL, epoch, 1200,
                                                                                                 201), answer
            for message in answer["messages"]:
                assert list(message) == ["issuer", "channel", "data", "epoch", "offset"], message
            assert answer["messages"] == [seen[offset] for offset in range(first, last + 1)], (
                [message["offset"] for message in answer["messages"]][:5], first, last)

        # since 0 is before `oldest`: the gap says messages 1..200 were lost to history.
        expect(await get(f"channel={CHANNEL}"), 201, 300)
        expect(await get(f"channel={CHANNEL}&since=0&limit=1000"), 201, 1200)
        expect(await get(f"channel={CHANNEL}&since=1150"), 1151, 1200)
        expect(await get(f"channel={CHANNEL}&since=1200"), 1201, 1200)
        expect(await get(f"channel={CHANNEL}&limit=7&since=500"), 501, 507)
        # Paging: since = the last offset received.
        paged, since = [], 200
        while since < 1200:
            page = (await get(f"channel={CHANNEL}&since={since}&limit=333"))["messages"]
            assert page and len(page) <= 333
            paged += page
            since = page[-1]["offset"]
        assert paged == [seen[offset] for offset in range(201, 1201)]
        # A token with a read list reads those channels only.
        reads_room = [("Authorization", "Bearer " + token(api=True, read=[CHANNEL]))]
        expect(await get(f"channel={CHANNEL}&since=1199", reads_room), 1200, 1200)
        await close_all(watcher, source)

    run(scenario())
    finish(server)


def test_api_history_refusals(start_server):
    server = serve(start_server, HISTORY_SIZE="100")

    async def scenario():
        watcher, _, source, epoch = await started(server, 3, history_readers=0)
        cases = [
            ("", API, 400),
            ("since=1", API, 400),
            (f"channel={CHANNEL}", [], 401),
            (f"channel={CHANNEL}", [("Authorization", "Bearer garbage")], 401),
            (f"channel={CHANNEL}", [("Authorization", "Bearer " + token(read=[CHANNEL]))], 403),
            (f"channel={CHANNEL}", [("Authorization", "Bearer " + token(api=True, read=["other"]))], 403),
        ]
        for query, headers, expected in cases:
            status, response_headers, body = await api_history(server, query, headers)
            assert status == expected, (query, headers, status, body)
            assert response_headers.get("content-type", "").startswith("application/json"), response_headers
            assert isinstance(json.loads(body).get("error"), str), body
        # A channel never published: its position is 0, and nothing to send.
        status, _, body = await api_history(server, "channel=" + quote(distinctive("quiet"), safe=""))
        assert status == 200, body
        answer = json.loads(body)
        assert (answer["offset"], answer["messages"]) == (0, []), answer
        await close_all(watcher, source)

    run(scenario(), 30)
    finish(server)


def test_api_history_is_404_when_history_is_off(start_server):
    server = serve(start_server)
    status, headers, body = http_request(server.port, "GET", f"/api/history?channel={CHANNEL}", API)
    assert status == 404, body
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert json.loads(body)["error"] == "history is off", body
    finish(server)


# ======================================================================================================
# 12. HISTORY_TTL
# ======================================================================================================


def test_messages_older_than_history_ttl_are_not_recovered(start_server):
    """HISTORY_TTL=1: once the first missed message has outlived it (GET /api/history's `oldest` moved past
    it; messages keep being published meanwhile, so the history never empties and its epoch stays), recovery
    answers `offset too old` with the same epoch; a client already at the head still gets `ok`."""
    server = serve(start_server, HISTORY_SIZE="100000", HISTORY_TTL="1")

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 3)
        await subscriber.close()
        await publish_range(source, watcher, 4, 10)
        loop = asyncio.get_running_loop()
        deadline, n = loop.time() + 10, 10
        while True:
            status, _, body = await api_history(server, f"channel={CHANNEL}&since={n - 1}&limit=1")
            assert status == 200, body
            answer = json.loads(body)
            assert answer["epoch"] == epoch, answer
            if answer["oldest"] > 4:
                break
            assert loop.time() < deadline, f"message 4 still kept 10 s after it was published: {answer}"
            n += 1
            await publish_range(source, watcher, n, n)  # a fresh message, so the history never empties
            await asyncio.sleep(0.05)  # polling interval, not a guess at timing: the loop ends on `oldest`
        back = await reader(server, f"{epoch}:3:{CHANNEL}", name="reconnected")
        failed = check_answer(await back.next(), CHANNEL, "failed", "offset too old")
        assert (failed["epoch"], failed["offset"]) == (epoch, n), failed
        current = await reader(server, f"{epoch}:{n}:{CHANNEL}", name="at the head")
        ok = check_answer(await current.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, n), ok
        await source.send(CHANNEL, str(n + 1))
        for client in (back, current):
            assert_sequence([positioned(await client.next())], n + 1, n + 1, epoch, who=client.name)
        await close_all(back, current, watcher, source)

    run(scenario(), 60)
    finish(server)


# ======================================================================================================
# HISTORY_MAX_MEMORY, and the configuration rows
# ======================================================================================================


def test_memory_cap_drops_the_least_recently_published_channel_and_starts_a_new_epoch(start_server):
    """HISTORY_MAX_MEMORY at its minimum (64 KiB, one event loop so it is all one budget): 300 KB published on
    a busy channel take the history of a quiet one, published least recently; recovering the quiet one
    answers `epoch changed`, and its next message starts a new sequence at offset 1."""
    server = serve(start_server, HISTORY_SIZE="1000", HISTORY_MAX_MEMORY="65536", WORKERS="1")
    quiet, busy = "quiet", "busy"

    async def scenario():
        watcher, [subscriber], source, epoch = await started(server, 3, channel=quiet)
        await subscriber.close()
        busy_watcher = await reader(server, "::" + busy, channels=[busy], name="busy watcher")
        check_answer(await busy_watcher.next(), busy, "new")
        busy_source = await publisher(server, [busy])
        await publish_range(busy_source, busy_watcher, 1, 300, data=lambda n: f"{n}:".ljust(1000, "z"), window=30,
                            channel=busy)

        back = await reader(server, f"{epoch}:3:{quiet}", channels=[quiet], name="quiet, reconnected")
        failed = check_answer(await back.next(), quiet, "failed", "epoch changed")
        assert failed.get("epoch") != epoch, failed
        await source.send(quiet, "new sequence")
        message = positioned(await back.next(), quiet)
        assert message["epoch"] != epoch and message["offset"] == 1 and message["data"] == "new sequence", message
        # The reader connected all along sees the new sequence start, and has missed nothing.
        await watcher.wait(lambda: watcher.positions[quiet][0] != epoch, "the new epoch")
        assert watcher.positions[quiet] == (message["epoch"], 1)
        assert [positioned(text)["offset"] for text in watcher.texts[1:]] == [1, 2, 3, 1]
        await close_all(back, watcher, source, busy_watcher, busy_source)

    run(scenario())
    finish(server)


@pytest.mark.parametrize("name, value", [
    ("HISTORY_SIZE", "-1"), ("HISTORY_SIZE", "1000001"), ("HISTORY_SIZE", "many"),
    ("HISTORY_TTL", "0"), ("HISTORY_TTL", "soon"), ("HISTORY_TTL", "-5"),
    ("HISTORY_MAX_MEMORY", "65535"), ("HISTORY_MAX_MEMORY", str(2 ** 40 + 1)), ("HISTORY_MAX_MEMORY", "lots"),
])
def test_malformed_history_setting_exits_2_naming_the_variable(name, value):
    status, output = run_binary({"SECRET": SECRET, name: value})
    assert status == 2, output
    assert name in output, output


@pytest.mark.parametrize("env", [
    {"HISTORY_SIZE": "1000000"}, {"HISTORY_SIZE": "1", "HISTORY_TTL": "500ms"}, {"HISTORY_TTL": "2m"},
    {"HISTORY_SIZE": "10", "HISTORY_MAX_MEMORY": "65536"}, {"HISTORY_MAX_MEMORY": str(2 ** 40)},
])
def test_well_formed_history_settings_are_accepted(start_server, env):
    finish(serve(start_server, **env))

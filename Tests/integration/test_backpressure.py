"""A subscriber that never reads must not cost the others anything: it is closed with 1008
"slow consumer" once its unsent bytes pass MAX_BACKPRESSURE, everyone else gets every message, and the
server's memory stays bounded by that limit."""
import selectors
import socket
import struct
import threading
import time

from conftest import memory_bound
from pubsub_helpers import connect, publish
from tokens import SECRET, token
from wsraw import RawClient, upgrade_request

CHANNEL = "flood"
ISSUER_LENGTH = 36


def delivery_length(data):
    """Bytes of one server frame carrying `data` (ASCII, nothing to escape) on CHANNEL."""
    body = len('{"issuer":"') + ISSUER_LENGTH + len('","channel":"') + len(CHANNEL) + len('","data":"')
    body += len(data) + len('"}\n')
    return body + (2 if body < 126 else 4 if body <= 0xFFFF else 10)


def payload(index, size):
    head = f"m{index:08d}-"
    return head + "x" * (size - len(head))


class Progress:
    """The fewest bytes any reading subscriber has received so far, shared with the publisher thread."""

    def __init__(self):
        self.condition = threading.Condition()
        self.least = 0

    def update(self, least):
        with self.condition:
            self.least = least
            self.condition.notify_all()

    def wait_for(self, at_least, timeout):
        with self.condition:
            return self.condition.wait_for(lambda: self.least >= at_least, timeout)


def read_until(sockets, expected, deadline_s, progress=None):
    """Reads every socket until each has `expected` bytes; returns {socket: its last 32 KiB}."""
    selector = selectors.DefaultSelector()
    received = {}
    tails = {}
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = 0
        tails[sock] = b""
    remaining = set(sockets)
    deadline = time.monotonic() + deadline_s
    while remaining and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            assert chunk, "a reading subscriber was disconnected"
            received[sock] += len(chunk)
            tails[sock] = (tails[sock] + chunk)[-32768:]
            if received[sock] >= expected:
                selector.unregister(sock)
                remaining.discard(sock)
        if progress is not None:
            progress.update(min(received.values()))
    assert not remaining, f"{len(remaining)} subscribers still short after {deadline_s} s"
    for sock in sockets:
        assert received[sock] == expected, "a subscriber received more than was published"
    return tails


def close_code_after_drain(client, timeout=20.0):
    """Reads the stalled subscriber at last: whatever frames it was sent, then the close; returns its code."""
    client.sock.setblocking(True)
    client.sock.settimeout(timeout)
    while True:
        fin, rsv, opcode, data = client.recv_frame()
        if opcode == 0x8:
            return struct.unpack("!H", data[:2])[0], data[2:].decode()



def publish_in_background(publisher, count, size, progress, window):
    """Publishes while the test reads, never more than `window` messages ahead of the slowest reader
    that reads (as a real publisher's rate is bounded by its audience): readers stay under the limit,
    only the subscriber that never reads falls behind."""
    frame = delivery_length(payload(0, size))

    def run():
        for index in range(count):
            if index >= window and not progress.wait_for((index - window) * frame, timeout=60):
                return
            publish(publisher, CHANNEL, payload(index, size))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stalled_socket(port):
    """A subscriber that never reads, with a receive buffer made tiny before connecting (so the kernel's
    window cannot hide the backlog), upgraded by hand."""
    client = RawClient.__new__(RawClient)
    client.buffer = b""
    client.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sock.settimeout(5)
    client.sock.connect(("127.0.0.1", port))
    client.send(upgrade_request("/", extra=[("Authorization", "Bearer " + token(read=[CHANNEL]))]))
    status, _, body = client.read_http_response()
    assert status == 101, body
    return client


def test_one_stalled_subscriber_among_a_thousand(start_server):
    # CLOSE_TIMEOUT: the 1008 close frame waits behind the stalled socket's full kernel buffer until the
    # test gets round to reading it, after the 999 others.
    server = start_server("serve", SECRET=SECRET, MAX_CONNECTIONS="2000", WORKERS="2", LOGLEVEL="info",
                          CLOSE_TIMEOUT="120")
    stalled = stalled_socket(server.port)
    readers = [connect(server.port, token(read=[CHANNEL])) for _ in range(999)]
    publisher = connect(server.port, token(write=[CHANNEL]))
    # 8 MiB to each: more than the kernel's send buffer for the stalled socket (up to 4 MiB) plus the
    # default MAX_BACKPRESSURE of 1 MiB, so its queue must pass the limit.
    count, size = 400, 20_000
    progress = Progress()
    sender = publish_in_background(publisher, count, size, progress, window=16)
    expected = count * delivery_length(payload(0, size))
    tails = read_until([r.sock for r in readers], expected, deadline_s=120, progress=progress)
    sender.join(10)
    last = f'"data":"{payload(count - 1, size)}"'.encode()
    assert all(last in tail for tail in tails.values()), "the last message is not the last thing received"
    code, reason = close_code_after_drain(stalled)
    assert (code, reason) == (1008, "slow consumer")
    # The publisher was never slowed down or cut off: it still publishes and is heard.
    publish(publisher, CHANNEL, payload(count, size))
    read_until([readers[0].sock], delivery_length(payload(0, size)), deadline_s=10)


@memory_bound
def test_stalled_subscriber_memory_is_bounded_by_max_backpressure(start_server):
    limit = 1 << 20
    server = start_server("serve", SECRET=SECRET, MAX_BACKPRESSURE=str(limit), WORKERS="1", LOGLEVEL="info",
                          CLOSE_TIMEOUT="120")
    stalled = stalled_socket(server.port)
    readers = [connect(server.port, token(read=[CHANNEL])) for _ in range(20)]
    publisher = connect(server.port, token(write=[CHANNEL]))
    before = server.peak_rss_kib()
    # 24 MiB published: without the limit the stalled subscriber's queue would hold nearly all of it.
    count, size = 1200, 20_000
    progress = Progress()
    sender = publish_in_background(publisher, count, size, progress, window=16)
    read_until([r.sock for r in readers], count * delivery_length(payload(0, size)), deadline_s=120, progress=progress)
    sender.join(10)
    growth_kib = server.peak_rss_kib() - before
    # The limit plus room for frames in flight to the readers and allocator slack; far below 24 MiB.
    assert growth_kib < (limit >> 10) + 6 * 1024, f"peak RSS grew by {growth_kib} KiB"
    assert close_code_after_drain(stalled) == (1008, "slow consumer")

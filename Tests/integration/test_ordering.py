"""Per-publisher ordering (PROTOCOL.md, Routing, fixed on purpose): messages from one publisher arrive at
each subscriber in the order they were sent, whichever event loop the publisher and the subscriber are on.

Connections are spread over the loops by SO_REUSEPORT hashing, so the tests connect subscribers until every
loop holds some, and check that from /proc (which epoll instance holds each server-side socket) instead of
trusting the odds.
"""
import json

import pytest

from pubsub_helpers import TEXT, Sender, close_politely, connect, event_loops, frame, message_bytes, read_all
from tokens import SECRET, token

MESSAGES = 10_000
CHANNEL = "ordered"


def spread_subscribers(server, tok, minimum=8, limit=64):
    """At least `minimum` subscribers, more until every loop holds one (bounded by `limit`)."""
    subscribers = [connect(server.port, tok) for _ in range(minimum)]
    while True:
        loops, owners = event_loops(server, subscribers)
        assert None not in owners, "could not place a subscriber on a loop"
        if set(owners) == loops or len(subscribers) >= limit:
            break
        subscribers.append(connect(server.port, tok))
    assert set(owners) == loops, f"{len(subscribers)} subscribers still miss a loop: {owners} of {loops}"
    return subscribers, loops, owners


def payload_text(i):
    # Every 100th message is large, so small and large messages (which may take different paths) interleave.
    return f"{i}" + ("." * 20000 if i % 100 == 0 else "")


@pytest.mark.parametrize("workers", [2, 4])
def test_one_publisher_10000_messages_arrive_in_order_on_every_loop(start_server, workers):
    server = start_server("serve", SECRET=SECRET, WORKERS=str(workers))
    subscribers, loops, owners = spread_subscribers(server, token(read=[CHANNEL]))
    assert len(loops) == workers
    publisher = connect(server.port, token(write=[CHANNEL]))
    data = b"".join(frame(TEXT, message_bytes(CHANNEL, payload_text(i))) for i in range(MESSAGES))
    received = read_all(subscribers, MESSAGES, [Sender([(publisher, data)])])
    expected = [payload_text(i) for i in range(MESSAGES)]
    issuers = set()
    for index, payloads in enumerate(received):
        assert len(payloads) == MESSAGES, f"subscriber {index} got {len(payloads)} messages"
        messages = [json.loads(payload) for payload in payloads]
        got = [message["data"] for message in messages]
        if got != expected:
            first_bad = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
            pytest.fail(f"subscriber {index} (loop {owners[index]}) out of order at position {first_bad}: "
                        f"got {got[first_bad][:12]!r}, expected {expected[first_bad][:12]!r}")
        issuers |= {message["issuer"] for message in messages}
    assert len(issuers) == 1
    for client in subscribers + [publisher]:
        close_politely(client)
    assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("workers", [2, 4])
def test_interleaved_publishers_each_keep_their_own_order(start_server, workers):
    server = start_server("serve", SECRET=SECRET, WORKERS=str(workers))
    subscribers, loops, _ = spread_subscribers(server, token(read=[CHANNEL]))
    # One publisher on each loop, and at least 4, so publishes cross between loops in every direction.
    write_token = token(write=[CHANNEL])
    publishers = []
    while len(publishers) < 64:
        publishers.append(connect(server.port, write_token))
        _, owners = event_loops(server, publishers)
        if set(owners) == loops and len(publishers) >= 4:
            break
    assert set(owners) == loops
    count = len(publishers)
    per_publisher = MESSAGES // count
    streams = [(publisher, b"".join(frame(TEXT, message_bytes(CHANNEL, f"{p}:{i}")) for i in range(per_publisher)))
               for p, publisher in enumerate(publishers)]
    received = read_all(subscribers, per_publisher * count, [Sender(streams, slice_size=1500)])
    for index, payloads in enumerate(received):
        sequences, issuer_of = {}, {}
        for payload in payloads:
            message = json.loads(payload)
            p, i = map(int, message["data"].split(":"))
            assert issuer_of.setdefault(p, message["issuer"]) == message["issuer"]
            sequences.setdefault(p, []).append(i)
        assert len(set(issuer_of.values())) == count
        for p in range(count):
            assert sequences.get(p) == list(range(per_publisher)), (
                f"subscriber {index}: publisher {p}'s messages arrived out of order or incomplete")
        order = [int(json.loads(payload)["data"].split(":")[0]) for payload in payloads]
        switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
        # count - 1 switches would mean one publisher after another; more means their messages interleaved.
        assert switches >= count, f"the publishers' messages did not interleave ({switches} switches)"
    for client in subscribers + publishers:
        close_politely(client)
    assert server.stop() == 0, server.log_text()

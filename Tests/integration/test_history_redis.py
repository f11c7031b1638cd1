"""History and recovery across several servers that share Redis (README "History and recovery", the client
contract, and under "Several servers" the bullet "With history"), end to end: real `philote serve` processes and
real `redis-server` processes (redis_helpers) on loopback, Python `websockets` clients (test_history's `Client`).

How the tests know things without sleeping (as in test_history, plus what Redis adds):
- Every client is read by a background task, and the test waits for concrete events: "this reader has seen
  offset N". A channel is fresh when a test starts (each test has its own REDIS_PREFIX), so the message published
  n-th gets offset n; a *watcher*, a reader with positions connected all along, reaching offset N is how a test
  knows that N messages are published (numbered by Redis, in its stream); publishing stays within a window of it.
- A server subscribes to a channel on Redis while one of its clients reads it: PUBSUB NUMSUB (test_redis's
  `subscribed`) says how many servers do. A server with no reader of a channel has no subscription and no copy of
  it (README: "A server forgets its copy of a channel when it stops subscribing to it"), so it must read Redis to
  recover a client: NUMSUB dropping back is how a test knows that a server is in that state.
- Redis faults: killed and started again (no persistence: every key is gone), or paused with SIGSTOP; /readyz
  tells when a server has noticed either way, and when it is connected again.
"""
import asyncio
import json
import re

import pytest

from redis_helpers import redis_server, shared_redis, unique_prefix, wait_until  # noqa: F401 (fixtures)
from test_history import (
    API, CHANNEL, MAX_OFFSET, assert_sequence, by_channel, check_answer, close_all, finish, open_client, plain,
    positioned, publish_range, publisher, reader, run,
)
from pubsub_helpers import http_request
from test_operations import metric, parse_metrics, scrape
from test_redis import readiness, start_cluster
from tokens import SECRET, token

UNAVAILABLE_WITHIN = 6.0  # seconds: REDIS_TIMEOUT=1 plus the PING interval (1 s), with room for a loaded machine
OUTCOMES = ("ok", "new", "epoch_changed", "too_old", "ahead", "unavailable")


# ======================================================================================================
# Helpers
# ======================================================================================================


def history_cluster(start_server, redis_url, count=2, **env):
    """`count` servers on one Redis with one fresh prefix, each ready: ([servers], prefix)."""
    return start_cluster(start_server, redis_url, count, CLOSE_TIMEOUT="1", **env)


def finish_all(*servers):
    for server in servers:
        finish(server)


def history_key(prefix, channel):
    return f"{prefix}history:{channel}"


def position_key(prefix, channel):
    return f"{prefix}position:{channel}"


def never_issued(epoch):
    return "ffffffffffff" if epoch == "000000000000" else "000000000000"


def xrevrange_calls(redis):
    """XREVRANGE commands the instance ran (the fetch script's read; scripts' commands count in commandstats)."""
    info = redis.command("INFO", "commandstats").decode()
    match = re.search(r"cmdstat_xrevrange:calls=(\d+)", info)
    return int(match[1]) if match else 0


async def blocking(function, *args):
    """A blocking call (Redis, HTTP, a bounded poll) off the event loop, so the clients keep reading meanwhile."""
    return await asyncio.to_thread(function, *args)


async def subscriptions(redis, prefix, channel, count, limit=10.0):
    """Waits until exactly `count` servers subscribe to `channel` on `redis` (bounded)."""
    await blocking(wait_until, lambda: redis.subscribers(prefix + channel) == count,
                   f"{count} subscriptions to {channel!r}", limit)


async def readiness_is(status, *servers, limit=15.0):
    """Waits until /readyz answers `status` on every server (bounded): 503 once a server noticed Redis is gone,
    200 once it is connected again."""
    for server in servers:
        await blocking(wait_until, lambda: readiness(server)[0] == status,
                       f"/readyz {status} on the server at port {server.port}", limit)


async def opted_in(server, *channels, name, ordered=True):
    """A reader with `since=::<channel>` for each channel: answered `new`, in the order given (in any order when not
    `ordered`: for tests whose point is elsewhere); (client, answers in the order of `channels`)."""
    client = await reader(server, *("::" + channel for channel in channels), channels=channels, name=name)
    texts = await client.take(len(channels))
    answered = [json.loads(text).get("channel") for text in texts]
    if ordered:
        assert answered == list(channels), f"{name}: answers not in the order given: {texts!r}"
    else:
        assert sorted(answered) == sorted(channels), f"{name}: {texts!r}"
    found = {channel: check_answer(text, channel, "new") for channel, text in zip(answered, texts)}
    return client, [found[channel] for channel in channels]


async def fresh_reader(server, name, channel=CHANNEL):
    """A reader of a channel nothing was published to yet: `new`, offset 0, no epoch."""
    client, [new] = await opted_in(server, channel, name=name)
    assert new["offset"] == 0 and "epoch" not in new, new
    return client


async def outcomes(server):
    """{outcome: philote_recoveries_total{outcome=...}} of one server, and philote_replayed_messages_total."""
    samples = parse_metrics(await blocking(scrape, server.port))
    counts = {outcome: metric(samples, "philote_recoveries_total", outcome=outcome) for outcome in OUTCOMES}
    return counts, metric(samples, "philote_replayed_messages_total")


# ======================================================================================================
# 1. A client recovers on either server: the other one, or its own after it forgot the channel
# ======================================================================================================


@pytest.mark.parametrize("disconnect", ["clean", "abrupt"])
@pytest.mark.parametrize("back_to", ["other-server", "same-server-forgot"])
def test_reconnect_on_either_server_recovers_5000_missed_messages_once_in_order(
        start_server, shared_redis, disconnect, back_to):
    """A subscriber on B (`since=::room`: `new`) receives what a publisher on A publishes, keeps its position,
    disconnects (close frame, or TCP closed without one), and 5,000 messages are published on A. It reconnects to A
    (which has a watcher, so a copy), or to B once B has dropped the channel (no subscription, no copy: B must read
    Redis): `ok` with the channel's position, exactly the missed messages once in order, then live ones published on
    either server."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="20000")
    missed = 5000
    target, target_name = (a, "A") if back_to == "other-server" else (b, "B")

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        subscriber = await fresh_reader(b, "subscriber on B")
        await subscriptions(shared_redis, prefix, CHANNEL, 2)
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, 5)
        await subscriber.reach(5)
        epoch = watcher.positions[CHANNEL][0]
        assert_sequence(subscriber.delivered(), 1, 5, epoch, who=subscriber.name)
        kept = subscriber.positions[CHANNEL]
        assert kept == (epoch, 5), kept
        await (subscriber.close() if disconnect == "clean" else subscriber.abort())
        # B has no reader of the channel left: it unsubscribes, and forgets its copy.
        await subscriptions(shared_redis, prefix, CHANNEL, 1)
        await publish_range(source, watcher, 6, 5 + missed)

        fetches_before = await blocking(xrevrange_calls, shared_redis)
        back = await reader(target, f"{kept[0]}:{kept[1]}:{CHANNEL}", name=f"reconnected to {target_name}")
        ok = check_answer(await back.next(), CHANNEL, "ok")
        assert (ok["epoch"], ok["offset"]) == (epoch, 5 + missed), ok
        replayed = [positioned(text) for text in await back.take(missed)]
        assert_sequence(replayed, 6, 5 + missed, epoch, who=back.name)
        if target is b:
            # The premise: B had nothing to answer from, so it read the stream in Redis.
            assert await blocking(xrevrange_calls, shared_redis) > fetches_before, "B answered without reading Redis"
        # Then live messages, published on each server, and nothing in between: no duplicate, no extra.
        await source.send(CHANNEL, str(6 + missed))
        assert_sequence([positioned(await back.next())], 6 + missed, 6 + missed, epoch, who=f"{back.name}, live")
        other_source = await publisher(b, name="publisher on B")
        await other_source.send(CHANNEL, str(7 + missed))
        assert_sequence([positioned(await back.next())], 7 + missed, 7 + missed, epoch, who=f"{back.name}, live")
        await watcher.reach(7 + missed)
        assert_sequence(watcher.delivered(), 1, 7 + missed, epoch, who=watcher.name)
        await close_all(back, watcher, source, other_source)
        assert source.texts == [] and other_source.texts == [], "a publisher got messages back"

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 2. Publishers on both servers while a client replays on the other server: one order, no gap, no duplicate
# ======================================================================================================


def check_one_order(messages, total, sent, who):
    """Offsets 1..total, each once, in order, one epoch; each publisher's messages (`<tag>:<i>`) all there, in the
    order sent, with one issuer per publisher."""
    offsets = [message["offset"] for message in messages]
    if offsets != list(range(1, total + 1)):
        at = next((i for i, offset in enumerate(offsets) if offset != i + 1), len(offsets))
        pytest.fail(f"{who}: {len(offsets)} messages, not offsets 1..{total}: first difference at index {at}: "
                    f"{offsets[max(0, at - 2):at + 3]}")
    assert len({message["epoch"] for message in messages}) == 1, f"{who}: several epochs"
    sequences, issuers = {}, {}
    for message in messages:
        tag, i = message["data"].split(":")
        sequences.setdefault(tag, []).append(int(i))
        assert issuers.setdefault(tag, message["issuer"]) == message["issuer"], f"{who}: two issuers for {tag}"
    assert len(set(issuers.values())) == len(issuers), f"{who}: publishers share an issuer: {issuers}"
    for tag, count in sent.items():
        assert sequences.get(tag) == list(range(count)), f"{who}: publisher {tag}'s messages missing or out of order"


@pytest.mark.parametrize("b_side", ["b-keeps-a-copy", "b-must-fetch"])
def test_publishers_on_both_servers_during_a_replay_on_the_other_server_lose_and_repeat_nothing(
        start_server, shared_redis, b_side):
    """A subscriber on A leaves; publishers on A and on B keep publishing; the subscriber comes back on B while they
    do, and replays there (from B's copy, kept by a watcher on B, or with no reader on B until then: from Redis,
    joined to B's live stream at the fetch's marker) well into live messages. Everything it got on A and then on B is
    exactly offsets 1..N, and every reader on either server saw the same order, each publisher's messages in its
    order."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="100000")
    offline, window, ceiling = 2000, 400, 60_000
    copy = b_side == "b-keeps-a-copy"

    async def scenario():
        watchers = [await fresh_reader(a, "watcher on A")]
        if copy:
            watchers.append(await fresh_reader(b, "watcher on B"))
        subscriber = await fresh_reader(a, "subscriber on A")
        await subscriptions(shared_redis, prefix, CHANNEL, 2 if copy else 1)
        sources = {"A": await publisher(a, name="publisher on A"), "B": await publisher(b, name="publisher on B")}
        sent = {"A": 0, "B": 0}
        stop = asyncio.Event()

        async def keep_publishing(tag):
            while not stop.is_set():
                total = sum(sent.values())
                assert total < ceiling, "the reconnected subscriber never caught up with live publishing"
                slowest = min(watchers, key=lambda watcher: watcher.offset())
                if total - slowest.offset() > window:
                    await slowest.reach(total - window, timeout=60)
                await sources[tag].send(CHANNEL, f"{tag}:{sent[tag]}")
                sent[tag] += 1
                if sent[tag] % 10 == 0:
                    await asyncio.sleep(0)  # lets the other publisher, the reconnect and the readers run

        loop = asyncio.get_running_loop()
        publishing = [loop.create_task(keep_publishing(tag)) for tag in sent]
        try:
            await subscriber.reach(50)
            await subscriber.close()
            epoch, kept = subscriber.positions[CHANNEL]
            for watcher in watchers:  # B's copy, when it keeps one, has what its watcher has
                await watcher.reach(kept + offline, timeout=60)
            back = await reader(b, f"{epoch}:{kept}:{CHANNEL}", name="reconnected to B")
            ok = check_answer(await back.next(), CHANNEL, "ok")
            assert ok["epoch"] == epoch and ok["offset"] >= kept + offline, ok
            # The replay (up to the answer's offset) ends while publishing goes on, and goes well into live messages.
            await back.reach(ok["offset"], timeout=60)
            assert sum(sent.values()) > ok["offset"], "nothing was published while the subscriber replayed"
            await back.reach(ok["offset"] + 200, timeout=60)
            assert not any(task.done() for task in publishing), [task for task in publishing if task.done()]
        finally:
            stop.set()
            await asyncio.gather(*publishing)
        total = sum(sent.values())
        assert min(sent.values()) > 0, sent
        for client in watchers + [back]:
            await client.reach(total, timeout=60)
        reference = watchers[0].delivered()
        check_one_order(reference, total, sent, watchers[0].name)
        for watcher in watchers[1:]:
            assert watcher.delivered() == reference, f"{watcher.name} saw another order than {watchers[0].name}"
        assert all('"recovery"' not in text for text in back.texts[1:]), "a second answer"
        recovered = subscriber.delivered() + back.delivered()
        assert len(subscriber.delivered()) == kept
        check_one_order(recovered, total, sent, "subscriber, on A then on B")
        assert recovered == reference, "the subscriber saw another order than the watcher"
        await close_all(back, *watchers, *sources.values())

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 3. Positions the history cannot continue, answered on either server
# ======================================================================================================


def test_positions_history_cannot_continue_are_answered_on_either_server(start_server, shared_redis):
    """HISTORY_SIZE=100, 305 published on A. On B, each position alone (B has no reader of the channel, so each
    is answered from Redis): older than history (`offset too old`; 100 missed are recovered, 101 are not), an epoch
    that never existed (`epoch changed`), an offset the channel never reached (`offset ahead of the channel`), each
    with the channel's current position. On A (from its copy) the same answers, and live messages published on B
    then reach every client with positions."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="100")
    head = 305

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, head, window=50)
        epoch = watcher.positions[CHANNEL][0]
        cases = [
            (f"{epoch}:5", "failed", "offset too old", None),
            (f"{epoch}:{head - 101}", "failed", "offset too old", None),
            (f"{epoch}:{head - 100}", "ok", None, (head - 99, head)),
            (f"{epoch}:{head}", "ok", None, None),
            (f"{epoch}:{head + 1}", "failed", "offset ahead of the channel", None),
            (f"{epoch}:{MAX_OFFSET}", "failed", "offset ahead of the channel", None),
            (f"{never_issued(epoch)}:5", "failed", "epoch changed", None),
            ("a" * 32 + ":5", "failed", "epoch changed", None),
        ]

        async def recover(server, where, position, recovery, reason, replay):
            client = await reader(server, f"{position}:{CHANNEL}", name=f"since {position[:40]} on {where}")
            answer = check_answer(await client.next(), CHANNEL, recovery, reason)
            assert (answer["epoch"], answer["offset"]) == (epoch, head), (where, position, answer)
            if replay:
                first, last = replay
                assert_sequence([positioned(text) for text in await client.take(last - first + 1)], first, last,
                                epoch, who=client.name)
            return client

        for case in cases:
            assert await blocking(shared_redis.subscribers, prefix + CHANNEL) == 1, "B still reads the channel"
            client = await recover(b, "B", *case)
            await client.close()
            await subscriptions(shared_redis, prefix, CHANNEL, 1)

        on_a = [await recover(a, "A", *case) for case in cases]
        # One more on B (answered from Redis), kept open for the live message.
        on_b = await recover(b, "B", *cases[0])
        await subscriptions(shared_redis, prefix, CHANNEL, 2)
        other_source = await publisher(b, name="publisher on B")
        await other_source.send(CHANNEL, str(head + 1))
        for client in on_a + [on_b]:
            # Nothing else was sent to the failed ones: the live message is the next thing every client gets.
            assert_sequence([positioned(await client.next())], head + 1, head + 1, epoch, who=client.name)
        await watcher.reach(head + 1)
        assert_sequence(watcher.delivered(), 1, head + 1, epoch, who=watcher.name)
        await close_all(*on_a, on_b, watcher, source, other_source)

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 4. A Redis restart (no persistence) starts a new epoch
# ======================================================================================================


def test_after_a_redis_restart_old_positions_fail_epoch_changed_and_offsets_restart_at_1(start_server, redis_server):
    """Redis is killed and started again without persistence: the servers reconnect (ready again) by themselves;
    what was published while it was gone reached nobody; a client coming back with its old position gets `failed`
    / `epoch changed` (offset 0 and no epoch before anything is published; the new epoch and its offset after);
    the new epoch's offsets start at 1, and no offset comes twice within one epoch."""
    redis = redis_server()
    (a, b), prefix = history_cluster(start_server, redis.url, HISTORY_SIZE="1000")

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        subscriber = await fresh_reader(b, "subscriber on B")
        await subscriptions(redis, prefix, CHANNEL, 2)
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, 5)
        await subscriber.reach(5)
        old_epoch, old_offset = subscriber.positions[CHANNEL]
        await subscriber.close()
        await subscriptions(redis, prefix, CHANNEL, 1)

        await blocking(redis.kill)
        await readiness_is(503, a, b)
        for n in range(3):
            await source.send(CHANNEL, f"lost {n}")  # Redis unreachable: dropped, reaches nobody (README)
        await blocking(redis.start)
        await readiness_is(200, a, b)
        await subscriptions(redis, prefix, CHANNEL, 1)  # A subscribed again for its watcher

        early = await reader(b, f"{old_epoch}:{old_offset}:{CHANNEL}", name="back on B before any publish")
        failed = check_answer(await early.next(), CHANNEL, "failed", "epoch changed")
        assert failed["offset"] == 0 and "epoch" not in failed, f"the channel has no history in Redis yet: {failed}"
        await subscriptions(redis, prefix, CHANNEL, 2)
        await source.send(CHANNEL, "new 1")
        first = positioned(await early.next(), CHANNEL)
        new_epoch = first["epoch"]
        assert (first["offset"], first["data"]) == (1, "new 1") and new_epoch != old_epoch, first
        await watcher.wait(lambda: watcher.positions[CHANNEL] == (new_epoch, 1), "offset 1 of the new epoch on A")

        late = [await reader(server, f"{old_epoch}:{old_offset}:{CHANNEL}", name=f"back on {where} after a publish")
                for server, where in ((a, "A"), (b, "B"))]
        for client in late:
            failed = check_answer(await client.next(), CHANNEL, "failed", "epoch changed")
            assert (failed["epoch"], failed["offset"]) == (new_epoch, 1), (client.name, failed)
        other_source = await publisher(b, name="publisher on B")
        await other_source.send(CHANNEL, "new 2")
        await early.reach(2)  # two publishers on two servers: the second goes once the first is numbered
        await source.send(CHANNEL, "new 3")
        for client in [early] + late:
            got = [positioned(await client.next(), CHANNEL) for _ in range(2)]
            assert [(m["epoch"], m["offset"], m["data"]) for m in got] == [
                (new_epoch, 2, "new 2"), (new_epoch, 3, "new 3")], (client.name, got)
        # The watcher, connected all along: the old sequence, then the new one from 1, nothing lost twice over.
        await watcher.wait(lambda: watcher.positions[CHANNEL] == (new_epoch, 3), "offset 3 of the new epoch")
        seen = [(m["epoch"], m["offset"], m["data"]) for m in watcher.delivered()]
        assert seen == ([(old_epoch, n, str(n)) for n in range(1, 6)]
                        + [(new_epoch, n, f"new {n}") for n in range(1, 4)]), seen
        await close_all(early, *late, watcher, source, other_source)

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 5. The stream deleted in Redis
# ======================================================================================================


def test_a_deleted_stream_starts_a_new_epoch_at_offset_1(start_server, shared_redis):
    """DEL `<prefix>history:<channel>` (the position hash stays): the next publish starts a new epoch at offset 1,
    seen by readers on both servers; a client recovering with the old position, on either server (on B from
    Redis), gets `epoch changed` with the new position."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="1000")

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        remote = await fresh_reader(b, "reader on B")
        await subscriptions(shared_redis, prefix, CHANNEL, 2)
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, 3)
        await remote.reach(3)
        old_epoch = watcher.positions[CHANNEL][0]

        assert await blocking(shared_redis.command, "DEL", history_key(prefix, CHANNEL)) == 1
        assert await blocking(shared_redis.command, "EXISTS", position_key(prefix, CHANNEL)) == 1
        await source.send(CHANNEL, "after the deletion")
        for client in (watcher, remote):
            await client.wait(lambda: client.positions[CHANNEL][0] != old_epoch, "the new epoch")
            message = client.delivered()[-1]
            assert (message["offset"], message["data"]) == (1, "after the deletion"), (client.name, message)
        new_epoch = message["epoch"]
        assert [(m["epoch"], m["offset"]) for m in watcher.delivered()] == [
            (old_epoch, 1), (old_epoch, 2), (old_epoch, 3), (new_epoch, 1)]
        assert await blocking(shared_redis.command, "XLEN", history_key(prefix, CHANNEL)) == 1
        epoch_kept = await blocking(shared_redis.command, "HGET", position_key(prefix, CHANNEL), "epoch")
        assert epoch_kept == new_epoch.encode(), epoch_kept

        await remote.close()
        await subscriptions(shared_redis, prefix, CHANNEL, 1)
        backs = [await reader(server, f"{old_epoch}:3:{CHANNEL}", name=f"back on {where}")
                 for server, where in ((b, "B"), (a, "A"))]
        for client in backs:
            failed = check_answer(await client.next(), CHANNEL, "failed", "epoch changed")
            assert (failed["epoch"], failed["offset"]) == (new_epoch, 1), (client.name, failed)
        await source.send(CHANNEL, "2")
        for client in backs:
            message = positioned(await client.next(), CHANNEL)
            assert (message["epoch"], message["offset"], message["data"]) == (new_epoch, 2, "2"), (client.name, message)
        await close_all(*backs, watcher, source)

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 6. Redis unavailable while a client recovers
# ======================================================================================================


@pytest.mark.parametrize("outage", ["paused", "killed"])
def test_recovery_while_redis_is_unavailable_answers_history_unavailable_promptly(start_server, redis_server, outage):
    """REDIS_TIMEOUT=1. B has no reader of the channel (no copy: it must ask Redis). Redis is paused (SIGSTOP: the
    links notice within REDIS_TIMEOUT) or killed (B already noticed). A client connecting to B with a position gets
    `failed` / `history unavailable` within a few seconds, and its connection stays open; once Redis is back, live
    messages reach it with positions (the same epoch after a pause; a new one, from 1, after the kill)."""
    redis = redis_server()
    (a, b), prefix = history_cluster(start_server, redis.url, HISTORY_SIZE="1000", REDIS_TIMEOUT="1")

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, 5)
        epoch = watcher.positions[CHANNEL][0]
        assert await blocking(redis.subscribers, prefix + CHANNEL) == 1, "B reads the channel"

        loop = asyncio.get_running_loop()
        if outage == "paused":
            redis.pause()
        else:
            await blocking(redis.kill)
            await readiness_is(503, b)
        try:
            began = loop.time()
            client = await reader(b, f"{epoch}:5:{CHANNEL}", name="recovering on B")
            text = await client.next(timeout=UNAVAILABLE_WITHIN + 10)
            elapsed = loop.time() - began
            answer = check_answer(text, CHANNEL, "failed", "history unavailable")
            assert elapsed <= UNAVAILABLE_WITHIN, f"answered after {elapsed:.1f} s"
            if "epoch" in answer:
                assert answer["epoch"] == epoch and answer["offset"] <= 5, answer
            assert not client.ended, client.how_it_ended()
        finally:
            if outage == "paused":
                redis.resume()
            else:
                await blocking(redis.start)
        await readiness_is(200, a, b)
        await subscriptions(redis, prefix, CHANNEL, 2)
        # NUMSUB may still count a link that Redis, paused, has not seen close: a probe's `new` answer on each
        # server is the sure sign, as a server with no copy answers it only once its new subscription is confirmed.
        probes = []
        for server, where in ((a, "A"), (b, "B")):
            probe = await reader(server, "::" + CHANNEL, name=f"probe on {where}")
            new = check_answer(await probe.next(), CHANNEL, "new")
            assert new["offset"] == (5 if outage == "paused" else 0), new
            probes.append(probe)
        await source.send(CHANNEL, "after the outage")
        expected = (epoch, 6) if outage == "paused" else (None, 1)
        for who in (client, watcher):
            await who.wait(lambda: any('"after the outage"' in text for text in who.texts), "the live message")
            message = who.delivered()[-1]
            assert message["data"] == "after the outage", (who.name, message)
            assert message["offset"] == expected[1], (who.name, message)
            if outage == "paused":
                assert message["epoch"] == epoch, (who.name, message)
            else:
                assert message["epoch"] != epoch, (who.name, message)
        assert client.texts[1:] == [client.texts[-1]], f"more than the live message: {client.texts[1:3]!r}"
        counts, _ = await outcomes(b)
        assert counts["unavailable"] == 1, counts
        await close_all(client, watcher, source, *probes)

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 7. Sharding: a channel's stream, position and pub/sub channel on one instance
# ======================================================================================================


def test_sharded_history_keeps_each_channel_on_one_instance_and_recovers_from_both(start_server, redis_server):
    """REDIS_URL lists two instances (in opposite orders on A and B). For 16 channels published on A: each channel's
    `history:` stream and `position:` hash exist on exactly one instance, the one its subscription is on (where its
    messages are published), and both instances hold some. A client recovering all of them on B (which reads none
    of them: every channel fetched from its own instance) gets `ok` per channel, in the order given, each channel's
    missed messages, then live ones."""
    first, second = redis_server(), redis_server()
    prefix = unique_prefix()
    env = dict(SECRET=SECRET, REDIS_PREFIX=prefix, HISTORY_SIZE="1000", CLOSE_TIMEOUT="1", METRICS_PUBLIC="true")
    a = start_server("serve", REDIS_URL=f"{first.url},{second.url}", **env)
    b = start_server("serve", REDIS_URL=f"{second.url},{first.url}", **env)
    channels = [f"shard-{index}" for index in range(16)]

    def data(channel):
        return lambda n: f"{channel}/{n}"

    async def publish_round(source, watcher, n):
        for channel in channels:
            await source.send(channel, data(channel)(n))
        for channel in channels:
            await watcher.reach(n, channel)

    def placement():
        """{channel: (holder, other)}, checking where each channel's keys and subscription are."""
        found = {}
        for channel in channels:
            holders = [redis for redis in (first, second) if redis.command("EXISTS", history_key(prefix, channel))]
            assert len(holders) == 1, f"{channel}: its stream is on {len(holders)} instances"
            holder = holders[0]
            other = second if holder is first else first
            assert holder.command("EXISTS", position_key(prefix, channel)) == 1, channel
            assert other.command("EXISTS", position_key(prefix, channel)) == 0, channel
            assert holder.subscribers(prefix + channel) >= 1 and other.subscribers(prefix + channel) == 0, (
                f"{channel}: its messages are published on another instance than its stream")
            found[channel] = (holder, other)
        return found

    async def scenario():
        await readiness_is(200, a, b)
        # (The order of the answers is checked below, on B.)
        watcher, _ = await opted_in(a, *channels, name="watcher on A", ordered=False)
        source = await publisher(a, channels, name="publisher on A")
        for n in (1, 2, 3):
            await publish_round(source, watcher, n)
        where = await blocking(placement)
        assert {holder.port for holder, _ in where.values()} == {first.port, second.port}, "one instance holds all"
        for channel, (holder, _) in where.items():
            epoch = watcher.positions[channel][0]
            assert await blocking(holder.command, "XLEN", history_key(prefix, channel)) == 3, channel
            position = await blocking(holder.command, "HGETALL", position_key(prefix, channel))
            assert dict(zip(position[::2], position[1::2])) == {b"epoch": epoch.encode(), b"offset": b"3"}, position

        kept = {channel: watcher.positions[channel] for channel in channels}
        for n in (4, 5, 6):
            await publish_round(source, watcher, n)
        back = await reader(b, *(f"{kept[c][0]}:{kept[c][1]}:{c}" for c in channels), channels=channels,
                            name="recovering every channel on B")
        texts = await back.take(len(channels) * 4)
        answers = [(index, json.loads(text)["channel"]) for index, text in enumerate(texts) if '"recovery"' in text]
        assert len(answers) == len(channels), texts[:20]
        for channel in channels:
            epoch = kept[channel][0]
            answered_at = next(index for index, name in answers if name == channel)
            ok = check_answer(texts[answered_at], channel, "ok")
            assert (ok["epoch"], ok["offset"]) == (epoch, 6), ok
            mine = [(index, text) for index, text in enumerate(texts)
                    if text.startswith('{"issuer":') and json.loads(text)["channel"] == channel]
            assert all(index > answered_at for index, _ in mine), f"{channel}: a message before its answer"
            assert_sequence([positioned(text, channel) for _, text in mine], 4, 6, epoch, data=data(channel),
                            who=f"{back.name}: {channel}")
        # Live messages, and every channel's keys still where they were.
        await publish_round(source, watcher, 7)
        received = by_channel(await back.take(len(channels)))
        for channel in channels:
            message = positioned(received[channel], channel)
            assert (message["epoch"], message["offset"], message["data"]) == (kept[channel][0], 7, data(channel)(7))
        assert await blocking(placement) == where
        await close_all(back, watcher, source)
        # Last, so that the checks above run whatever it finds (see also the test of the order of answers below).
        assert [name for _, name in answers] == channels, f"answers not in the order given: {answers}"

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 8. A client that does not opt in sees exactly the old frames
# ======================================================================================================


def test_a_client_without_since_gets_the_old_delivery_byte_for_byte_on_both_servers(start_server, shared_redis):
    """History on Redis: readers without `since`, on the publishing server and on the other, get the old delivery
    byte for byte (with the publisher's issuer, as before); one with `since` for one channel gets the same bytes
    plus the position there, and the old bytes on the other channel. Over HTTP: issuer `api`, and the answer says
    `"recipients":0`. A publisher that reads its channel still never gets its own message."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="100")
    data = "a <b> & c \u00e9 \u2028 \"q\""
    escaped = 'a \\u003cb\\u003e \\u0026 c \u00e9 \\u2028 \\"q\\"'
    both = [CHANNEL, "other"]

    async def scenario():
        old_a = await reader(a, channels=both, name="no since, on A")
        old_b = await reader(b, channels=both, name="no since, on B")
        mixed = await reader(b, "::" + CHANNEL, channels=both, name="since for room only, on B")
        check_answer(await mixed.next(), CHANNEL, "new")
        for channel in both:
            await subscriptions(shared_redis, prefix, channel, 2)
        source = await open_client(a, token(read=both, write=both), name="publisher that reads, on A")
        await source.send(CHANNEL, data)
        await source.send("other", "plain")
        # Two channels: with history on they may arrive in either order (README "Ordering").
        old_texts = by_channel(await old_b.take(2))
        issuer = json.loads(old_texts[CHANNEL])["issuer"]
        assert old_texts[CHANNEL] == '{"issuer":"%s","channel":"room","data":"%s"}\n' % (issuer, escaped)
        assert old_texts["other"] == '{"issuer":"%s","channel":"other","data":"plain"}\n' % issuer
        assert by_channel(await old_a.take(2)) == old_texts
        new_texts = by_channel(await mixed.take(2))
        epoch = positioned(new_texts[CHANNEL], CHANNEL)["epoch"]
        assert new_texts[CHANNEL] == old_texts[CHANNEL][:-2] + ',"epoch":"%s","offset":1}\n' % epoch
        assert new_texts["other"] == old_texts["other"]

        status, _, body = await blocking(http_request, b.port, "POST", "/api/publish", API,
                                         json.dumps({"channel": CHANNEL, "data": "via http"}).encode())
        assert status == 202, body
        assert json.loads(body)["recipients"] == 0, body
        for client in (old_a, old_b):
            assert await client.next() == '{"issuer":"api","channel":"room","data":"via http"}\n', client.name
        assert await mixed.next() == ('{"issuer":"api","channel":"room","data":"via http","epoch":"%s","offset":2}\n'
                                      % epoch)
        # The publisher reads both channels: it got none of its own two messages, only the others'.
        other_source = await publisher(b, name="publisher on B")
        await other_source.send(CHANNEL, "from B")
        other_issuer = json.loads(await old_a.next())["issuer"]
        assert await source.take(2) == ['{"issuer":"api","channel":"room","data":"via http"}\n',
                                         '{"issuer":"%s","channel":"room","data":"from B"}\n' % other_issuer]
        plain(await old_b.next(), CHANNEL, "from B")
        await close_all(old_a, old_b, mixed, source, other_source)

    run(scenario(), 60)
    finish_all(a, b)


# ======================================================================================================
# 9. /metrics: recovery outcomes, "unavailable" included
# ======================================================================================================


def test_recovery_outcomes_are_counted_per_server(start_server, redis_server):
    """philote_recoveries_total{outcome=...} on the server that answered: one of each outcome on B (each answered
    from Redis: B reads the channel only for the time of each), `unavailable` with Redis paused; and
    philote_replayed_messages_total counts the messages B replayed."""
    redis = redis_server()
    (a, b), prefix = history_cluster(start_server, redis.url, HISTORY_SIZE="10", REDIS_TIMEOUT="1")

    async def scenario():
        watcher = await fresh_reader(a, "watcher on A")
        source = await publisher(a, name="publisher on A")
        await publish_range(source, watcher, 1, 30, window=5)
        epoch = watcher.positions[CHANNEL][0]
        cases = [
            ("::", "new", None),
            (f"{epoch}:25:", "ok", None),
            (f"{never_issued(epoch)}:1:", "failed", "epoch changed"),
            (f"{epoch}:1:", "failed", "offset too old"),
            (f"{epoch}:31:", "failed", "offset ahead of the channel"),
        ]
        for since, recovery, reason in cases:
            client = await reader(b, since + CHANNEL, name=f"since {since} on B")
            check_answer(await client.next(), CHANNEL, recovery, reason)
            if recovery == "ok":
                assert_sequence([positioned(text) for text in await client.take(5)], 26, 30, epoch, who=client.name)
            await client.close()
            await subscriptions(redis, prefix, CHANNEL, 1)
        counts, replayed = await outcomes(b)
        assert counts == {"ok": 1, "new": 1, "epoch_changed": 1, "too_old": 1, "ahead": 1, "unavailable": 0}, counts
        assert replayed == 5, replayed

        redis.pause()
        try:
            client = await reader(b, f"{epoch}:30:{CHANNEL}", name="recovering on B, Redis paused")
            check_answer(await client.next(timeout=UNAVAILABLE_WITHIN + 10), CHANNEL, "failed", "history unavailable")
        finally:
            redis.resume()
        counts, replayed = await outcomes(b)
        assert counts == {"ok": 1, "new": 1, "epoch_changed": 1, "too_old": 1, "ahead": 1, "unavailable": 1}, counts
        assert replayed == 5, replayed
        counts, replayed = await outcomes(a)
        assert counts == {"ok": 0, "new": 1, "epoch_changed": 0, "too_old": 0, "ahead": 0, "unavailable": 0}, counts
        await readiness_is(200, a, b)
        await close_all(client, watcher, source)

    run(scenario())
    finish_all(a, b)


# ======================================================================================================
# 10. Answers in the order given when one channel is in the server's copy and another must be fetched
# ======================================================================================================


def test_answers_come_in_the_order_given_when_one_channel_is_fetched_and_another_is_in_the_copy(
        start_server, shared_redis):
    """README: "For each `since`, in the order given, the client first gets one answer". On B, channel `first` has no
    reader (B must read Redis) and channel `second` has one (B's copy can answer at once); a client recovering
    `first` then `second` gets the answer for `first` first, and each channel's missed messages after its answer."""
    (a, b), prefix = history_cluster(start_server, shared_redis.url, HISTORY_SIZE="100")
    channels = ["first", "second"]

    async def scenario():
        watcher, _ = await opted_in(a, *channels, name="watcher on A")
        keeper, _ = await opted_in(b, "second", name="reader of second on B")
        await subscriptions(shared_redis, prefix, "first", 1)
        await subscriptions(shared_redis, prefix, "second", 2)
        source = await publisher(a, channels, name="publisher on A")
        for n in (1, 2, 3):
            for channel in channels:
                await source.send(channel, str(n))
        for channel in channels:
            await watcher.reach(3, channel)
        await keeper.reach(3, "second")
        epochs = {channel: watcher.positions[channel][0] for channel in channels}
        back = await reader(b, *(f"{epochs[c]}:1:{c}" for c in channels), channels=channels, name="recovering on B")
        texts = await back.take(2 + 2 * 2)
        for channel in channels:
            at = next(i for i, text in enumerate(texts)
                      if '"recovery"' in text and json.loads(text)["channel"] == channel)
            ok = check_answer(texts[at], channel, "ok")
            assert (ok["epoch"], ok["offset"]) == (epochs[channel], 3), ok
            mine = [(i, text) for i, text in enumerate(texts)
                    if text.startswith('{"issuer":') and json.loads(text)["channel"] == channel]
            assert all(i > at for i, _ in mine), f"{channel}: a message before its answer: {texts!r}"
            assert_sequence([positioned(text, channel) for _, text in mine], 2, 3, epochs[channel], who=channel)
        # Live messages follow on both channels.
        for channel in channels:
            await source.send(channel, "4")
        received = by_channel(await back.take(2))
        for channel in channels:
            assert_sequence([positioned(received[channel], channel)], 4, 4, epochs[channel], who=f"{channel}, live")
        await close_all(back, keeper, watcher, source)
        order = [json.loads(text)["channel"] for text in texts if '"recovery"' in text]
        assert order == channels, f"answers not in the order given: {texts!r}"

    run(scenario(), 60)
    finish_all(a, b)


# ======================================================================================================
# 10. A server that has just started, before its Redis links are up
# ======================================================================================================


def test_a_recovery_right_after_start_waits_for_redis_instead_of_failing(start_server, shared_redis):
    """A server accepts clients a few milliseconds before its links to Redis are up. A recovery in that window
    waits for them (up to REDIS_TIMEOUT) and is answered from Redis, never `history unavailable` while Redis is
    fine. Each round starts a fresh server and connects the moment its start-up line is written."""
    (a,), prefix = history_cluster(start_server, shared_redis.url, count=1, HISTORY_SIZE="100")

    async def publish_one():
        watcher = await fresh_reader(a, "watcher on A")
        source = await publisher(a)
        await publish_range(source, watcher, 1, 3)
        epoch = watcher.positions[CHANNEL][0]
        await close_all(watcher, source)
        return epoch

    epoch = run(publish_one())
    for round_number in range(5):
        late = start_server("serve", SECRET=SECRET, REDIS_URL=shared_redis.url, REDIS_PREFIX=prefix,
                            HISTORY_SIZE="100", CLOSE_TIMEOUT="1")

        async def recover():
            client = await reader(late, f"{epoch}:1:{CHANNEL}", name=f"client {round_number}")
            answer = check_answer(await client.next(), CHANNEL, "ok")
            assert (answer["epoch"], answer["offset"]) == (epoch, 3), answer
            assert [m["offset"] for m in [positioned(t, CHANNEL) for t in await client.take(2)]] == [2, 3]
            await client.close()

        run(recover())
        finish_all(late)
    finish_all(a)

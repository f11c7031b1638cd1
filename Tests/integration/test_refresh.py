"""Token refresh on an open connection (README "Token refresh"): `{"auth":"<jwt>"}` is verified as at the upgrade;
a good token moves the 4001 deadline and applies its read and write lists at once, a bad one changes nothing, and
either way the client gets one answer. Against the real `philote serve`, with Python `websockets` clients.

Timing: where expiry is the point, the test waits for the close itself and checks when it came (never before the
new `exp`), or waits for the wall clock to pass an old `exp` and then proves the connection alive with a round
trip; nothing sleeps to guess when the server has done something.
"""
import asyncio
import json
import time

from pubsub_helpers import close_politely, connect, publish, recv_delivery, recv_text, send_raw
from redis_helpers import redis_server, shared_redis, wait_until  # noqa: F401 (fixtures)
from test_history import (CHANNEL, EPOCH, check_answer, finish, open_client, positioned, publisher, reader, run,
                          serve)
from test_operations import metric, parse_metrics, scrape
from test_redis import start_cluster, stop_all, subscribed
from tokens import token

OTHER = "other"


def answer_ok(text, exp=None):
    expected = {"auth": "ok"} if exp is None else {"auth": "ok", "exp": exp}
    assert text == json.dumps(expected, separators=(",", ":")) + "\n", text


async def refresh(client, new_token):
    await client.ws.send(json.dumps({"auth": new_token}))
    return await client.next()


async def round_trip(source, target, channel, data):
    """`source` publishes, `target` must receive exactly that message next."""
    await source.send(channel, data)
    text = await target.next()
    message = json.loads(text)
    assert (message.get("channel", ""), message.get("data", "")) == (channel, data), text


async def closed_with(client, timeout):
    await client.wait(lambda: client.ended, "the close", timeout)
    received = client.ws.protocol.close_rcvd
    assert received is not None, "connection lost without a close frame"
    return received.code, received.reason


def test_refresh_moves_the_expiry_deadline_and_keeps_the_connection(start_server):
    server = serve(start_server)

    async def scenario():
        first_exp = time.time() + 2
        client = await open_client(server, token(read=[CHANNEL], write=[CHANNEL], exp=first_exp), name="client")
        source = await publisher(server)
        new_exp = int(time.time()) + 5
        answer_ok(await refresh(client, token(read=[CHANNEL], write=[CHANNEL], exp=new_exp)), new_exp)
        # Past the first token's exp: still open, still reading (the same connection, no 4001).
        while time.time() < first_exp + 0.5:
            await asyncio.sleep(0.1)
        await round_trip(source, client, CHANNEL, "after the first exp")
        code, reason = await closed_with(client, timeout=15)
        assert (code, reason) == (4001, "token expired")
        assert time.time() >= new_exp, "closed before the new token's exp"
        await source.close()

    run(scenario())
    finish(server)


def test_a_refresh_to_a_token_without_exp_never_expires(start_server):
    server = serve(start_server)

    async def scenario():
        first_exp = time.time() + 1.5
        client = await open_client(server, token(read=[CHANNEL], exp=first_exp), name="client")
        source = await publisher(server)
        answer_ok(await refresh(client, token(read=[CHANNEL])))
        while time.time() < first_exp + 1:
            await asyncio.sleep(0.1)
        await round_trip(source, client, CHANNEL, "still here")
        assert not client.ended
        await client.close()
        await source.close()

    run(scenario())
    finish(server)


def test_a_refused_refresh_changes_nothing(start_server):
    server = serve(start_server)

    async def scenario():
        exp = time.time() + 3
        client = await open_client(server, token(read=[CHANNEL], write=[CHANNEL], exp=exp), name="client")
        source = await publisher(server, channels=(CHANNEL, OTHER))
        refusals = [
            (token(read=[OTHER], write=[OTHER], secret="not-the-secret"), "invalid token signature"),
            (token(read=[OTHER], exp=int(time.time()) - 10), "token expired"),
            ("not.a.token", "malformed token"),
            ("", "malformed token"),
        ]
        for bad, reason in refusals:
            text = await refresh(client, bad)
            assert json.loads(text) == {"error": json.loads(text)["error"], "auth": "failed"}, text
            assert text.endswith('"auth":"failed"}\n'), text
            assert json.loads(text)["error"].startswith(reason), (reason, text)
        # Nothing changed: it still reads CHANNEL and not OTHER, may still write CHANNEL, and still expires at exp.
        await source.send(OTHER, "not for the client")
        await round_trip(source, client, CHANNEL, "still reading")
        await client.send(OTHER, "x")
        assert json.loads(await client.next()) == {"error": "write not permitted", "channel": OTHER}
        code, _ = await closed_with(client, timeout=15)
        assert code == 4001 and time.time() >= exp
        await source.close()

    run(scenario())
    finish(server)


def test_read_and_write_lists_change_at_once(start_server):
    server = serve(start_server)

    async def scenario():
        client = await open_client(server, token(read=[CHANNEL], write=[CHANNEL]), name="client")
        source = await publisher(server, channels=(CHANNEL, OTHER))
        listener = await reader(server, channels=(CHANNEL, OTHER), name="listener")
        await round_trip(source, client, CHANNEL, "before")
        answer_ok(await refresh(client, token(read=[OTHER], write=[OTHER])))
        # CHANNEL stops and OTHER starts with the answer: CHANNEL's message must not arrive, OTHER's must.
        await source.send(CHANNEL, "gone")
        await round_trip(source, client, OTHER, "after")
        # Writes follow the new list too.
        await client.send(CHANNEL, "refused now")
        assert json.loads(await client.next()) == {"error": "write not permitted", "channel": CHANNEL}
        await client.send(OTHER, "allowed now")
        texts = [json.loads(text) for text in await listener.take(3)]
        assert [(m["channel"], m["data"]) for m in texts] == [
            (CHANNEL, "before"), (CHANNEL, "gone"), (OTHER, "after")]
        assert json.loads(await listener.next())["data"] == "allowed now"
        # A refresh that keeps a channel keeps it without a gap; one back to the old lists restores them.
        answer_ok(await refresh(client, token(read=[CHANNEL, OTHER], write=[CHANNEL])))
        await round_trip(source, client, OTHER, "kept")
        await round_trip(source, client, CHANNEL, "back")
        for other in (client, source, listener):
            await other.close()

    run(scenario())
    finish(server)


def test_channels_kept_across_a_refresh_lose_and_repeat_nothing(start_server):
    """Messages keep flowing on a channel both tokens read while the client refreshes again and again."""
    server = serve(start_server, WORKERS="2")

    async def scenario():
        client = await open_client(server, token(read=[CHANNEL]), name="client")
        source = await publisher(server)
        total = 400
        sending = asyncio.create_task(publish_numbered(source, total))
        for round_number in range(20):
            extra = [f"extra-{round_number}"] if round_number % 2 else []
            await client.ws.send(json.dumps({"auth": token(read=[CHANNEL, *extra])}))
        await sending
        await client.wait(lambda: sum(1 for t in client.texts if t.startswith('{"issuer"')) >= total,
                          f"{total} messages")
        data = [json.loads(t)["data"] for t in client.texts if t.startswith('{"issuer"')]
        assert data == [str(n) for n in range(total)]
        assert sum(1 for t in client.texts if t == '{"auth":"ok"}\n') == 20
        await client.close()
        await source.close()

    run(scenario())
    finish(server)


async def publish_numbered(source, total):
    for number in range(total):
        await source.send(CHANNEL, str(number))
        if number % 50 == 0:
            await asyncio.sleep(0)


def test_a_connection_with_positions_gets_new_channels_as_since_would(start_server):
    server = serve(start_server, HISTORY_SIZE="100")

    async def scenario():
        source = await publisher(server, channels=(CHANNEL, OTHER))
        client = await open_client(server, token(read=[CHANNEL]), "::" + CHANNEL, name="client")
        check_answer(await client.next(), CHANNEL, "new")
        watcher = await open_client(server, token(read=[OTHER]), "::" + OTHER, name="watcher")
        await watcher.next()
        await source.send(OTHER, "before the refresh")
        await watcher.reach(1, OTHER)  # numbered: the refresh below answers from offset 1
        answer_ok(await refresh(client, token(read=[CHANNEL, OTHER])))
        answer = json.loads(await client.next())
        assert answer == {"channel": OTHER, "recovery": "new", "epoch": answer["epoch"], "offset": 1}
        assert EPOCH.fullmatch(answer["epoch"])
        await source.send(OTHER, "after")
        message = positioned(await client.next(), OTHER)
        assert (message["data"], message["offset"]) == ("after", 2)
        await source.send(CHANNEL, "kept")
        assert positioned(await client.next(), CHANNEL)["offset"] == 1
        # Without positions (no `since`), a new channel arrives as before: no answer, no position.
        plain_client = await open_client(server, token(read=[CHANNEL]), name="plain")
        answer_ok(await refresh(plain_client, token(read=[CHANNEL, OTHER])))
        await source.send(OTHER, "plain")
        assert json.loads(await plain_client.next()) == {
            "issuer": json.loads(plain_client.texts[-1])["issuer"], "channel": OTHER, "data": "plain"}
        for other in (client, plain_client, source, watcher):
            await other.close()

    run(scenario())
    finish(server)


def test_a_refresh_during_replay_keeps_the_replay_or_ends_it_cleanly(start_server):
    server = serve(start_server, HISTORY_SIZE="5000")

    async def scenario():
        source = await publisher(server, channels=(CHANNEL, OTHER))
        watcher = await open_client(server, token(read=[CHANNEL, OTHER]), "::" + CHANNEL, "::" + OTHER,
                                    name="watcher")
        await watcher.take(2)
        for number in range(1, 3001):
            await source.send(CHANNEL, str(number))
            await source.send(OTHER, str(number))
        await watcher.reach(3000, CHANNEL)
        await watcher.reach(3000, OTHER)
        epoch = watcher.positions[CHANNEL][0]
        other_epoch = watcher.positions[OTHER][0]
        # Recover both channels from offset 0, then at once drop OTHER and keep CHANNEL.
        client = await open_client(server, token(read=[CHANNEL, OTHER]), f"{epoch}:0:{CHANNEL}",
                                   f"{other_epoch}:0:{OTHER}", name="client")
        await client.ws.send(json.dumps({"auth": token(read=[CHANNEL])}))
        await client.wait(lambda: '{"auth":"ok"}\n' in client.texts, "the refresh answer")
        await client.reach(3000, CHANNEL, timeout=60)
        offsets = [m["offset"] for m in client.delivered(CHANNEL)]
        assert offsets == list(range(1, 3001))
        # OTHER's replay stopped at the refresh: whatever came of it is in order and nothing comes after.
        other_offsets = [m["offset"] for m in client.delivered(OTHER)]
        assert other_offsets == list(range(1, len(other_offsets) + 1))
        await source.send(OTHER, "not any more")
        await source.send(CHANNEL, "live")
        await client.reach(3001, CHANNEL)
        assert [m["offset"] for m in client.delivered(OTHER)] == other_offsets
        for other in (client, watcher, source):
            await other.close()

    run(scenario())
    finish(server)


def test_messages_shaped_like_a_publish_keep_their_meaning(start_server):
    server = serve(start_server)

    async def scenario():
        client = await open_client(server, token(read=[CHANNEL, ""], write=[CHANNEL, ""]), name="client")
        listener = await reader(server, channels=(CHANNEL, ""), name="listener")
        # `auth` beside `channel` or `data` is an unknown key of a publish, as it always was.
        await client.ws.send(json.dumps({"channel": CHANNEL, "data": "x", "auth": token(read=["elsewhere"])}))
        await client.ws.send(json.dumps({"data": "only data", "Auth": "whatever"}))
        await client.ws.send("{}")
        texts = [json.loads(text) for text in await listener.take(3)]
        assert [(m.get("channel", ""), m.get("data", "")) for m in texts] == [
            (CHANNEL, "x"), ("", "only data"), ("", "")]
        # Keys match in any case, as `channel` and `data` do; a non-string token is an error.
        answer_ok(await refresh_raw(client, json.dumps({"AUTH": token(read=[CHANNEL], write=[CHANNEL])})))
        assert json.loads(await refresh_raw(client, '{"auth":5}')) == {"error": "auth must be a string"}
        assert json.loads(await refresh_raw(client, '{"auth":null}')) == {"error": "auth must be a string"}
        await client.close()
        await listener.close()

    run(scenario())
    finish(server)


async def refresh_raw(client, text):
    await client.ws.send(text)
    return await client.next()


def test_refreshes_are_counted(start_server):
    server = serve(start_server, METRICS_PUBLIC="true")

    async def scenario():
        client = await open_client(server, token(read=[CHANNEL]), name="client")
        answer_ok(await refresh(client, token(read=[CHANNEL])))
        answer_ok(await refresh(client, token(read=[OTHER])))
        await refresh(client, token(read=[CHANNEL], secret="wrong"))
        await client.close()

    run(scenario())
    samples = parse_metrics(scrape(server.port, headers=()))
    assert metric(samples, "philote_token_refreshes_total", result="accepted") == 2
    assert metric(samples, "philote_token_refreshes_total", result="refused") == 1
    assert metric(samples, "philote_auth_failures_total", reason="invalid_signature") == 1
    finish(server)


def test_with_redis_a_refresh_subscribes_and_unsubscribes_the_server(start_server, shared_redis):
    """Channels a refresh adds are heard from other servers; one nobody reads any more is unsubscribed."""
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    client = connect(b.port, token(read=["old"]))
    subscribed(shared_redis, prefix, "old")
    send_raw(client, json.dumps({"auth": token(read=["new"])}).encode())
    assert recv_text(client) == b'{"auth":"ok"}\n'
    subscribed(shared_redis, prefix, "new")
    wait_until(lambda: shared_redis.subscribers(prefix + "old") == 0, "the server unsubscribing from old")
    remote = connect(a.port, token(write=["old", "new"]))
    publish(remote, "old", "not any more")
    publish(remote, "new", "heard")
    assert recv_delivery(client)[1:] == ("new", "heard")
    close_politely(remote)
    stop_all([a, b], [client])

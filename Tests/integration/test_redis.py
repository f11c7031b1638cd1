"""Servers that share Redis act as one hub (issue 7): cross-server delivery without duplicates, sender
exclusion, permissions at the publishing server, per-publisher order across servers, SUBSCRIBE only for
channels some local client reads, faults (Redis absent, killed, paused), sharding over two instances."""
import json
import re
import shutil
import subprocess

import pytest

from pubsub_helpers import (
    TEXT, Sender, close_politely, connect, expect_silence, frame, http_request, message_bytes, publish,
    read_all, recv_delivery, recv_error, recv_text,
)
from conftest import free_port
from redis_helpers import Redis, redis_server, shared_redis, unique_prefix, wait_until  # noqa: F401
from test_deflate import compressible, open_raw, recv_compressed, recv_plain
from test_ordering import spread_subscribers
from tokens import SECRET, token


def start_cluster(start_server, redis_url, count, prefix=None, **env):
    """`count` servers on one Redis (same prefix), each reported ready (its broker connected)."""
    prefix = prefix or unique_prefix()
    servers = [
        start_server("serve", SECRET=SECRET, REDIS_URL=redis_url, REDIS_PREFIX=prefix, METRICS_PUBLIC="true", **env)
        for _ in range(count)
    ]
    for server in servers:
        wait_until(lambda: readiness(server)[0] == 200, "readiness")
    return servers, prefix


def readiness(server):
    status, _, body = http_request(server.port, "GET", "/readyz")
    return status, body


def metric(server, name):
    """The value of one sample line of /metrics (`name` includes its labels)."""
    _, _, body = http_request(server.port, "GET", "/metrics")
    match = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", body, re.M)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def subscribed(redis, prefix, channel, servers=1):
    """Waits until `servers` servers have SUBSCRIBEd to the channel on `redis`."""
    wait_until(lambda: redis.subscribers(prefix + channel) >= servers, f"{servers} subscriptions to {channel}")


def stop_all(servers, clients=()):
    for client in clients:
        close_politely(client)
    for server in servers:
        assert server.stop() == 0, server.log_text()


def test_message_published_on_one_server_reaches_readers_on_the_other_once(start_server, shared_redis):
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    remote = connect(b.port, token(read=["news"]))
    local = connect(a.port, token(read=["news"]))
    subscribed(shared_redis, prefix, "news", servers=2)
    publisher = connect(a.port, token(read=["news"], write=["news"]))
    publish(publisher, "news", "hello")
    issuer_remote, channel, data = recv_delivery(remote)
    assert (channel, data) == ("news", "hello")
    issuer_local, _, data = recv_delivery(local)
    assert data == "hello" and issuer_local == issuer_remote
    # Sender exclusion holds across servers: the publisher reads the channel but gets no copy, not even the
    # one Redis echoes back to its own server; and nobody gets a second copy.
    publish(publisher, "news", "second")
    assert recv_delivery(remote)[2] == "second"
    assert recv_delivery(local)[2] == "second"
    for client in (publisher, local, remote):
        expect_silence(client)
    assert metric(a, "philote_broker_published_total") == 2
    assert metric(b, "philote_broker_received_total") == 2
    assert metric(a, "philote_broker_received_total") == 0
    stop_all([a, b], [publisher, local, remote])


def test_three_servers_each_reader_gets_every_message_once(start_server, shared_redis):
    servers, prefix = start_cluster(start_server, shared_redis.url, 3)
    readers = [connect(server.port, token(read=["room"])) for server in servers for _ in range(2)]
    subscribed(shared_redis, prefix, "room", servers=3)
    publishers = [connect(server.port, token(write=["room"])) for server in servers]
    for index, publisher in enumerate(publishers):
        publish(publisher, "room", f"from {index}")
    for reader in readers:
        got = sorted(recv_delivery(reader)[2] for _ in range(3))
        assert got == ["from 0", "from 1", "from 2"]
        expect_silence(reader)
    stop_all(servers, readers + publishers)


def test_publishers_on_every_loop_reach_other_servers(start_server, shared_redis):
    # With WORKERS=2 only loop 0 talks to Redis: a publish on loop 1 reaches it through the loops' hand-off.
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2, WORKERS="2")
    reader = connect(b.port, token(read=["loops"]))
    subscribed(shared_redis, prefix, "loops")
    publishers, loops, owners = spread_subscribers(a, token(write=["loops"]), minimum=2)
    assert len(loops) == 2
    for index, publisher in enumerate(publishers):
        publish(publisher, "loops", f"p{index}")
    got = sorted(recv_delivery(reader)[2] for _ in publishers)
    assert got == sorted(f"p{index}" for index in range(len(publishers)))
    expect_silence(reader)
    stop_all([a, b], publishers + [reader])


def test_remote_messages_are_compressed_for_readers_that_negotiated_it(start_server, shared_redis):
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    compressing, _ = open_raw(b.port, offers=["permessage-deflate"], tok=token(read=["z"]))
    plain = connect(b.port, token(read=["z"]))
    subscribed(shared_redis, prefix, "z")
    publisher = connect(a.port, token(write=["z"]))
    text = compressible(2000)
    publish(publisher, "z", text)
    _, compressed, inflated = recv_compressed(compressing)
    assert json.loads(inflated)["data"] == text and len(compressed) < len(text) // 2
    assert json.loads(recv_plain(plain)[1])["data"] == text
    stop_all([a, b], [compressing, plain, publisher])


def test_write_permission_is_checked_at_the_publishing_server(start_server, shared_redis):
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    remote = connect(b.port, token(read=["locked"]))
    subscribed(shared_redis, prefix, "locked")
    intruder = connect(a.port, token(read=["locked"], write=["other"]))
    publish(intruder, "locked", "forged")
    reply, _ = recv_error(intruder)
    assert reply == {"error": "write not permitted", "channel": "locked"}
    expect_silence(remote)
    # Positive control: the same path carries a permitted publish.
    allowed = connect(a.port, token(write=["locked"]))
    publish(allowed, "locked", "real")
    assert recv_delivery(remote)[2] == "real"
    assert metric(a, "philote_broker_published_total") == 1
    stop_all([a, b], [remote, intruder, allowed])


def test_http_publish_reaches_other_servers(start_server, shared_redis):
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    remote = connect(b.port, token(read=["api"]))
    subscribed(shared_redis, prefix, "api")
    body = json.dumps({"channel": "api", "data": "over http"}).encode()
    status, _, answer = http_request(
        a.port, "POST", "/api/publish", headers=[("Authorization", "Bearer " + token(api=True))], body=body)
    assert status == 202, answer
    assert json.loads(answer)["recipients"] == 0  # local readers only: there are none on a
    assert recv_text(remote) == b'{"issuer":"api","channel":"api","data":"over http"}\n'
    stop_all([a, b], [remote])


def payload_text(i):
    return f"{i}" + ("." * 5000 if i % 100 == 0 else "")


def test_one_publisher_10000_messages_arrive_in_order_on_other_servers(start_server, shared_redis):
    servers, prefix = start_cluster(start_server, shared_redis.url, 3, WORKERS="2")
    origin, others = servers[0], servers[1:]
    subscribers = []
    for server in others:
        placed, loops, _ = spread_subscribers(server, token(read=["ordered"]), minimum=4)
        assert len(loops) == 2
        subscribers += placed
    local = connect(origin.port, token(read=["ordered"]))
    subscribed(shared_redis, prefix, "ordered", servers=3)
    publisher = connect(origin.port, token(write=["ordered"]))
    count = 10_000
    data = b"".join(frame(TEXT, message_bytes("ordered", payload_text(i))) for i in range(count))
    received = read_all(subscribers + [local], count, [Sender([(publisher, data)])])
    expected = [payload_text(i) for i in range(count)]
    for index, payloads in enumerate(received):
        got = [json.loads(payload)["data"] for payload in payloads]
        assert len(got) == count, f"subscriber {index} got {len(got)}"
        if got != expected:
            first_bad = next(i for i, (x, y) in enumerate(zip(got, expected)) if x != y)
            pytest.fail(f"subscriber {index} out of order at {first_bad}")
    stop_all(servers, subscribers + [local, publisher])


def test_server_subscribes_only_to_what_its_clients_read_and_unsubscribes_after_the_last(
        start_server, shared_redis):
    (a,), prefix = start_cluster(start_server, shared_redis.url, 1, WORKERS="2")
    assert shared_redis.channels(prefix + "*") == []
    # Readers of "kept" on both loops, one reader of "gone"; a publisher-only token subscribes to nothing.
    readers, loops, owners = spread_subscribers(a, token(read=["kept"]), minimum=2)
    assert len(loops) == 2
    single = connect(a.port, token(read=["gone"]))
    writer = connect(a.port, token(write=["never-read"]))
    wait_until(lambda: shared_redis.channels(prefix + "*") == [prefix + "gone", prefix + "kept"], "both channels")
    close_politely(single)
    wait_until(lambda: shared_redis.channels(prefix + "*") == [prefix + "kept"], "unsubscribe from gone")
    # Every reader on one loop leaves: the other loop still reads, so the subscription stays.
    first_loop = owners[0]
    for client, owner in zip(readers, owners):
        if owner == first_loop:
            close_politely(client)
    remaining = [client for client, owner in zip(readers, owners) if owner != first_loop]
    publish(connect(a.port, token(write=["kept"])), "kept", "still here")
    assert recv_delivery(remaining[0])[2] == "still here"
    assert shared_redis.channels(prefix + "*") == [prefix + "kept"]
    for client in remaining:
        close_politely(client)
    wait_until(lambda: shared_redis.channels(prefix + "*") == [], "unsubscribe after the last reader")
    stop_all([a], [writer])


def test_broker_metrics_pass_promtool(start_server, shared_redis):
    (a, b), prefix = start_cluster(start_server, shared_redis.url, 2)
    reader = connect(b.port, token(read=["m"]))
    subscribed(shared_redis, prefix, "m")
    publish(connect(a.port, token(write=["m"])), "m", "counted")
    assert recv_delivery(reader)[2] == "counted"
    _, _, text = http_request(b.port, "GET", "/metrics")
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=text,
                             capture_output=True, timeout=30)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    for line in (b"philote_broker_configured 1", b"philote_broker_connected 1", b"philote_broker_shards 1",
                 b"philote_broker_connected_shards 1", b"philote_broker_received_total 1", b"philote_ready 1"):
        assert line + b"\n" in text, line
    stop_all([a, b], [reader])


def test_foreign_payloads_on_a_channel_are_ignored_and_counted(start_server, shared_redis):
    (a,), prefix = start_cluster(start_server, shared_redis.url, 1)
    reader = connect(a.port, token(read=["mixed"]))
    subscribed(shared_redis, prefix, "mixed")
    for junk in (b"plain text", b"PH\x01" + b"\0" * 16 + b"\x81\x05abc", b""):
        assert shared_redis.command("PUBLISH", prefix + "mixed", junk) == 1
    expect_silence(reader)
    wait_until(lambda: metric(a, "philote_broker_malformed_total") == 3, "malformed count")
    publish(connect(a.port, token(write=["mixed"])), "mixed", "ok")
    assert recv_delivery(reader)[2] == "ok"
    stop_all([a], [reader])


# --- faults --------------------------------------------------------------------------------------------


def test_redis_absent_at_start_serves_locally_reports_not_ready_then_connects(start_server, redis_server):
    port = free_port()
    prefix = unique_prefix()
    server = start_server("serve", SECRET=SECRET, REDIS_URL=f"redis://127.0.0.1:{port}", REDIS_PREFIX=prefix,
                          METRICS_PUBLIC="true")
    assert readiness(server) == (503, b"broker disconnected\n")
    assert metric(server, "philote_broker_connected") == 0
    assert metric(server, "philote_ready") == 0
    reader = connect(server.port, token(read=["local"]))
    publisher = connect(server.port, token(write=["local"]))
    publish(publisher, "local", "without redis")
    assert recv_delivery(reader)[2] == "without redis"
    wait_until(lambda: metric(server, 'philote_broker_dropped_messages_total{reason="disconnected"}') == 1, "drop")
    redis = redis_server(port=port)
    wait_until(lambda: readiness(server)[0] == 200, "readiness once Redis is up", limit=15)
    subscribed(redis, prefix, "local")
    other = start_server("serve", SECRET=SECRET, REDIS_URL=redis.url, REDIS_PREFIX=prefix)
    wait_until(lambda: readiness(other)[0] == 200, "second server ready")
    remote_publisher = connect(other.port, token(write=["local"]))
    publish(remote_publisher, "local", "through redis")
    assert recv_delivery(reader)[2] == "through redis"
    # One line for the outage, one for the recovery, per connection: not one per attempt.
    log = server.log_text()
    assert log.count('msg="redis unavailable"') == 2, log
    assert log.count('msg="redis connected"') == 2, log
    stop_all([server, other], [reader, publisher, remote_publisher])


def test_redis_killed_and_restarted_mid_stream(start_server, redis_server):
    redis = redis_server()
    (a, b), prefix = start_cluster(start_server, redis.url, 2)
    local = connect(a.port, token(read=["live"]))
    remote = connect(b.port, token(read=["live"]))
    subscribed(redis, prefix, "live", servers=2)
    publisher = connect(a.port, token(write=["live"]))
    publish(publisher, "live", "before")
    assert recv_delivery(local)[2] == "before" and recv_delivery(remote)[2] == "before"

    redis.kill()
    wait_until(lambda: readiness(a) == (503, b"broker disconnected\n"), "a not ready")
    wait_until(lambda: readiness(b)[0] == 503, "b not ready")
    # Local delivery never stops; the remote reader misses what is published while Redis is gone.
    for index in range(50):
        publish(publisher, "live", f"during {index}")
    assert [recv_delivery(local)[2] for _ in range(50)] == [f"during {index}" for index in range(50)]
    expect_silence(remote)

    redis.start()
    wait_until(lambda: readiness(a)[0] == 200 and readiness(b)[0] == 200, "ready again", limit=15)
    # b re-subscribed by itself to what its client reads.
    subscribed(redis, prefix, "live", servers=2)
    publish(publisher, "live", "after")
    assert recv_delivery(local)[2] == "after"
    assert recv_delivery(remote)[2] == "after"
    expect_silence(remote)
    for server in (a, b):
        log = server.log_text()
        assert log.count('msg="redis connection lost"') == 2, log  # publish and subscribe link, once each
        assert metric(server, "philote_broker_reconnects_total") == 2
    stop_all([a, b], [local, remote, publisher])


def test_paused_redis_bounds_the_queue_and_drops_are_counted(start_server, redis_server):
    redis = redis_server()
    # A long timeout keeps the connection up while Redis is paused, so the queue (not the timeout) acts.
    (a, b), prefix = start_cluster(start_server, redis.url, 2, REDIS_MAX_PENDING="16384", REDIS_TIMEOUT="60")
    local = connect(a.port, token(read=["slow"]))
    remote = connect(b.port, token(read=["slow"]))
    subscribed(redis, prefix, "slow", servers=2)
    publisher = connect(a.port, token(write=["slow"]))
    redis.pause()
    try:
        for index in range(100):
            publish(publisher, "slow", f"{index:04d}" + "x" * 1000)
        # Local delivery is not held up by the stalled Redis.
        assert [recv_delivery(local)[2][:4] for _ in range(100)] == [f"{index:04d}" for index in range(100)]
        dropped = metric(a, 'philote_broker_dropped_messages_total{reason="queue_full"}')
        sent = metric(a, "philote_broker_published_total")
        assert dropped > 0 and sent + dropped == 100 and sent * 1000 <= 16384
        assert 'msg="redis is not keeping up: dropping publishes toward it"' in a.log_text()
    finally:
        redis.resume()
    # What was queued arrives, in order; then the queue drains and publishes flow again.
    queued = [recv_delivery(remote)[2][:4] for _ in range(int(sent))]
    assert queued == [f"{index:04d}" for index in range(int(sent))]
    publish(publisher, "slow", "after")
    assert recv_delivery(remote)[2] == "after"
    stop_all([a, b], [local, remote, publisher])


def test_unanswered_ping_reconnects(start_server, redis_server):
    redis = redis_server()
    (a,), prefix = start_cluster(start_server, redis.url, 1, REDIS_TIMEOUT="0.5")
    redis.pause()
    try:
        wait_until(lambda: readiness(a)[0] == 503, "not ready while Redis does not answer")
    finally:
        redis.resume()
    wait_until(lambda: readiness(a)[0] == 200, "ready again")
    assert 'error="no answer to PING within 500 ms"' in a.log_text()
    stop_all([a])


def test_password_and_unix_socket(start_server, redis_server):
    redis = redis_server(unix=True, password="s3cr:et@")
    url = redis.url.replace("s3cr:et@", "s3cr%3Aet%40")
    (a, b), prefix = start_cluster(start_server, url, 2)
    reader = connect(b.port, token(read=["u"]))
    subscribed(redis, prefix, "u")
    publish(connect(a.port, token(write=["u"])), "u", "via unix socket")
    assert recv_delivery(reader)[2] == "via unix socket"
    stop_all([a, b], [reader])


def test_host_names_are_resolved(start_server, redis_server):
    # "localhost" may resolve to ::1 first while Redis listens on 127.0.0.1 only: attempts take the
    # addresses in turn.
    redis = redis_server()
    (a, b), prefix = start_cluster(start_server, f"redis://localhost:{redis.port}", 2)
    reader = connect(b.port, token(read=["named"]))
    subscribed(redis, prefix, "named")
    publish(connect(a.port, token(write=["named"])), "named", "by name")
    assert recv_delivery(reader)[2] == "by name"
    assert f"broker=\"redis localhost:{redis.port}\"" in a.log_text()
    stop_all([a, b], [reader])


def test_wrong_password_is_logged_once_and_not_ready(start_server, redis_server):
    redis = redis_server(password="right")
    server = start_server("serve", SECRET=SECRET, REDIS_URL=f"redis://:wrong@127.0.0.1:{redis.port}")
    wait_until(lambda: 'msg="redis unavailable"' in server.log_text(), "the failure logged")
    log = server.log_text()
    assert ":wrong@" not in log
    assert re.search(r'msg="redis unavailable".*error="(WRONGPASS|ERR invalid password)', log), log
    assert readiness(server)[0] == 503
    stop_all([server])


def test_channels_are_spread_over_two_shards_the_same_way_on_every_server(start_server, redis_server):
    first, second = redis_server(), redis_server()
    prefix = unique_prefix()
    # The two servers list the instances in opposite orders: the assignment must not depend on it.
    a = start_server("serve", SECRET=SECRET, REDIS_URL=f"{first.url},{second.url}", REDIS_PREFIX=prefix)
    b = start_server("serve", SECRET=SECRET, REDIS_URL=f" {second.url} , {first.url}", REDIS_PREFIX=prefix)
    for server in (a, b):
        wait_until(lambda: readiness(server)[0] == 200, "ready")
    names = [f"ch{index}" for index in range(40)]
    readers = [connect(b.port, token(read=[name])) for name in names]
    wait_until(lambda: len(first.channels(prefix + "*")) + len(second.channels(prefix + "*")) == 40, "subscriptions")
    on_first, on_second = set(first.channels(prefix + "*")), set(second.channels(prefix + "*"))
    assert on_first and on_second and not on_first & on_second
    publisher = connect(a.port, token(write=names))
    for name in names:
        publish(publisher, name, f"to {name}")
    for name, reader in zip(names, readers):
        assert recv_delivery(reader)[1:] == (name, f"to {name}")
    # a published each message to the instance b subscribed on.
    assert metric_sum(first, second, prefix) == 40
    stop_all([a, b], readers + [publisher])


def metric_sum(first, second, prefix):
    """PUBLISH commands each Redis served, from INFO commandstats."""
    total = 0
    for redis in (first, second):
        info = redis.command("INFO", "commandstats").decode()
        match = re.search(r"cmdstat_publish:calls=(\d+)", info)
        total += int(match[1]) if match else 0
    return total


@pytest.mark.parametrize("value, problem", [
    ("http://127.0.0.1:6379", "scheme"),
    ("redis://127.0.0.1:99999", "port"),
    ("redis://127.0.0.1:6379/x", "database"),
    ("rediss://127.0.0.1:6379", "not supported"),
    ("redis://127.0.0.1:1,redis://127.0.0.1:1", "twice"),
    ("unix://relative.sock", "absolute"),
])
def test_bad_redis_url_exits_2_naming_the_problem(start_server, value, problem):
    with pytest.raises(RuntimeError) as failure:
        start_server("serve", SECRET=SECRET, REDIS_URL=value)
    message = str(failure.value)
    assert "exited with 2" in message and "REDIS_URL" in message and problem in message, message

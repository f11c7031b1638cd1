"""Pub/sub interoperability with two independent client implementations: Python `websockets` (asyncio API)
and Node's `ws` (Debian's node-ws, driven through node_pubsub_client.js). Auth by header and by query,
publish, receive, error replies and refusals, across both clients and our raw one."""
import asyncio
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pubsub_helpers import DELIVERY, UUID4, close_politely, connect, publish, recv_delivery
from tokens import SECRET, make_token, now, token
from conftest import node_env

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node_pubsub_client.js"
TIMEOUT = 15.0




@pytest.fixture
def server(start_server):
    server = start_server("serve", SECRET=SECRET, CLOSE_TIMEOUT="2")
    yield server
    if server.process.poll() is None:
        assert server.stop() == 0, server.log_text()


def url(server, tok=None, path="/"):
    return f"ws://127.0.0.1:{server.port}{path}" + (f"?auth={quote(tok, safe='')}" if tok else "")


def assert_delivery(payload, channel, data, issuer=None):
    """`payload` (str or bytes) is exactly the server's message for (channel, data)."""
    raw = payload.encode() if isinstance(payload, str) else payload
    match = DELIVERY.fullmatch(raw)
    assert match and UUID4.fullmatch(match["issuer"]), raw
    message = json.loads(raw)
    assert (message.get("channel", ""), message.get("data", "")) == (channel, data), raw
    if issuer is not None:
        assert message["issuer"] == issuer
    return message["issuer"]


# --- Node ws -------------------------------------------------------------------------------------------


class NodeClient:
    def __init__(self, node, target, authorization=None):
        self.process = subprocess.Popen([node, str(SCRIPT), target, authorization or "-"], env=node_env(),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def next(self, timeout=TIMEOUT):
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event from the node client in time") from None
        assert event is not None, "node client ended: " + self.process.stderr.read()
        return event

    def expect(self, kind, timeout=TIMEOUT):
        event = self.next(timeout)
        assert event["event"] == kind, event
        return event

    def command(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def finish(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def node_clients(node):
    started = []

    def start(target, authorization=None):
        client = NodeClient(node, target, authorization)
        started.append(client)
        return client

    yield start
    for client in started:
        client.finish()


def test_node_auth_by_header_and_by_query_publish_and_receive(server, node_clients):
    channel = "node-room"
    tok = token(read=[channel], write=[channel])
    by_header = node_clients(url(server), "Bearer " + tok)
    by_query = node_clients(url(server, tok))
    raw_header = node_clients(url(server, path="/any/path"), tok)  # a raw token, no Bearer
    for client in (by_header, by_query, raw_header):
        client.expect("open")
    observer = connect(server.port, token(read=[channel]))
    by_header.command(publish={"channel": channel, "data": "from node <header>"})
    for receiver in (by_query, raw_header):
        event = receiver.expect("message")
        assert event["binary"] is False
        issuer = assert_delivery(event["data"], channel, "from node <header>")
    assert recv_delivery(observer) == (issuer, channel, "from node <header>")
    # Go-client style keys, from the query-authenticated one.
    by_query.command(publish={"Channel": channel, "Data": "go style \u00e9"})
    for receiver in (by_header, raw_header):
        assert_delivery(receiver.expect("message")["data"], channel, "go style \u00e9")
    assert recv_delivery(observer)[1:] == (channel, "go style \u00e9")
    # A raw-socket publisher reaches the Node clients too.
    publisher = connect(server.port, token(write=[channel]))
    publish(publisher, channel, "from raw")
    for receiver in (by_header, by_query, raw_header):
        assert_delivery(receiver.expect("message")["data"], channel, "from raw")
    close_politely(publisher)
    close_politely(observer)


def test_node_error_replies_keep_the_connection_open(server, node_clients):
    client = node_clients(url(server), "Bearer " + token(write=["allowed"]))
    client.expect("open")
    observer = connect(server.port, token(read=["allowed"]))
    client.command(publish={"channel": "forbidden", "data": "x"})
    assert client.expect("message")["data"] == '{"error":"write not permitted","channel":"forbidden"}\n'
    for bad, binary in (("null", False), ('{"channel":"allowed","data":42}', False), ("{not json", True)):
        client.command(send=bad, binary=binary)
        data = client.expect("message")["data"]
        assert data.endswith("}\n")
        reply = json.loads(data)
        assert set(reply) == {"error"} and reply["error"], data
    client.command(publish={"channel": "allowed", "data": "still open"})
    assert recv_delivery(observer)[1:] == ("allowed", "still open")
    close_politely(observer)


@pytest.mark.parametrize("placement", ["header", "query"])
def test_node_bad_token_gets_401_with_a_reason(server, node_clients, placement):
    bad = token(read=["x"], exp=now() - 60)
    client = (node_clients(url(server), "Bearer " + bad) if placement == "header"
              else node_clients(url(server, bad)))
    event = client.expect("unexpected-response")
    assert event["status"] == 401
    assert event["contentType"].startswith("text/plain")
    assert event["body"].strip() and bad not in event["body"]


# --- Python websockets ------------------------------------------------------------------------------------


def py_client(server, tok=None, how="header", path="/"):
    headers = {"Authorization": f"Bearer {tok}"} if tok and how == "header" else None
    target = url(server, tok if how == "query" else None, path)
    return ws_connect(target, additional_headers=headers, compression=None, ping_interval=None, open_timeout=10,
                      close_timeout=5)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


def test_websockets_auth_by_header_and_by_query_publish_and_receive(server):
    channel = "py-room"
    tok = token(read=[channel], write=[channel])

    async def scenario():
        async with py_client(server, tok, "header") as by_header, py_client(server, tok, "query") as by_query:
            await by_header.send(json.dumps({"channel": channel, "data": "from header <&>"}))
            text = await by_query.recv()
            assert isinstance(text, str)
            issuer = assert_delivery(text, channel, "from header <&>")
            assert "\\u003c\\u0026\\u003e" in text
            await by_query.send(json.dumps({"Channel": channel, "Data": "from query"}).encode())  # binary frame
            assert_delivery(await by_header.recv(), channel, "from query")
            await by_header.send(json.dumps({"channel": channel, "data": "again"}))
            assert_delivery(await by_query.recv(), channel, "again", issuer=issuer)

    run(scenario())


def test_websockets_error_replies_keep_the_connection_open(server):
    async def scenario():
        async with py_client(server, token(write=["allowed"])) as client, \
                py_client(server, token(read=["allowed"]), "query") as observer:
            await client.send(json.dumps({"channel": "forbidden", "data": "x"}))
            assert await client.recv() == '{"error":"write not permitted","channel":"forbidden"}\n'
            for bad in ("null", "[1]", '{"channel":"allowed","data":{"a":1}}', '{"channel":"allowed"} trailing'):
                await client.send(bad)
                reply = json.loads(await client.recv())
                assert set(reply) == {"error"} and reply["error"]
            await client.send(json.dumps({"channel": "allowed", "data": "still open"}))
            assert_delivery(await observer.recv(), "allowed", "still open")

    run(scenario())


@pytest.mark.parametrize("how", ["header", "query"])
def test_websockets_bad_token_gets_401(server, how):
    bad = make_token({"read": ["x"]}, header={"alg": "none"}, signature=b"")

    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with py_client(server, bad, how):
                pass
        response = refused.value.response
        assert response.status_code == 401
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.body and bad.encode() not in response.body

    run(scenario())


def test_websockets_sees_4001_when_the_token_expires(server):
    async def scenario():
        async with py_client(server, token(read=["x"], exp=now() + 2)) as client:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), 5)
            assert client.protocol.close_rcvd is not None
            assert (client.protocol.close_rcvd.code, client.protocol.close_rcvd.reason) == (4001, "token expired")

    run(scenario())


def test_both_clients_see_1001_on_shutdown(server, node_clients):
    tok = token(read=["x"])
    node_client = node_clients(url(server, tok))
    node_client.expect("open")

    async def scenario():
        async with py_client(server, tok) as py:
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(py.recv(), 10)
            assert py.protocol.close_rcvd is not None and py.protocol.close_rcvd.code == 1001
            return started

    started = run(scenario())
    event = node_client.expect("close")
    assert event["code"] == 1001
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 3

"""The browser client module (/philote.js, web/philote.js) in headless Chromium against the real server: the demo
chat, recovery after a killed server (history in Redis), token refresh in place, 4001 and 401, offline/online,
wss:// with permessage-deflate, and the README's browser example.

How the pages are driven: Tests/browser/client_page.html is served by a Python http.server on its own loopback port
(`site` below), so the module is imported cross-origin from the Philote server and its CORS headers are exercised.
The page records every client event, message and token call on `window.t` with timestamps; the tests read those
through the DevTools driver (cdp.py). Chromium's own network events (Network.enable) count WebSocket attempts and
/api/token probes exactly, without wrapping the page's fetch: the module runs with the browser's own fetch,
WebSocket, timers and online/offline events, as an application would.

Timing: every wait is for a concrete event (page.wait_for), bounded. Where time itself is the point (back-off
delays, a refresh before expiry, a close at exp, "no attempt while offline", "at once when online") the test
checks the timestamps the page recorded; the one fixed wait is the offline observation window, whose length is
the claim being tested.
"""
import base64
import hashlib
import http.server
import json
import math
import re
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from cdp import Browser
from conftest import free_port
from pubsub_helpers import close_politely, connect, http_request, publish, recv_delivery
from redis_helpers import redis_server, shared_redis, unique_prefix, wait_until  # noqa: F401 (fixtures)
from test_cdp_harness import png_pixels
from test_operations import metric, parse_metrics, scrape
from test_redis import readiness
from tokens import SECRET, token

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "Tests" / "browser" / "client_page.html"
README = ROOT / "README.md"
CHANNEL = "room"  # also spelt out in the JavaScript expressions the tests wait on
BAD_SECRET = "not-the-server-secret"


def js(value):
    """A Python value as a JavaScript literal (JSON is valid JavaScript for strings, numbers, lists and objects)."""
    return json.dumps(value)


# ======================================================================================================
# Fixtures: the page's web site, Chromium, and a page with the module loaded
# ======================================================================================================


class Site:
    """The test pages' origin: client_page.html, extra pages a test adds, and GET /token minting JWTs."""

    def __init__(self):
        self.pages = {"/client_page.html": PAGE.read_bytes()}
        self.token_requests = []  # the query of each GET /token, in order
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/token":
                    site.token_requests.append(url.query)
                    self.answer(200, "application/json", js({"token": site.mint(url.query)}).encode())
                elif url.path in site.pages:
                    self.answer(200, "text/html; charset=utf-8", site.pages[url.path])
                elif url.path == "/favicon.ico":
                    self.answer(204, "text/plain", b"")  # no 404 noise in the page's log
                else:
                    self.answer(404, "text/plain", b"not found")

            def answer(self, status, content_type, body):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                # Pages of other origins (the README example, the demo) may ask for tokens too.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def mint(query):
        """?read=a,b&write=c&ttl=5 -> a JWT with those lists and exp = now + ttl; both lists default to room-1
        (what the README example reads and writes)."""
        params = urllib.parse.parse_qs(query)
        lists = {name: params[name][0].split(",") if name in params else ["room-1"] for name in ("read", "write")}
        exp = int(time.time() + float(params["ttl"][0])) if "ttl" in params else None
        return token(read=lists["read"], write=lists["write"], exp=exp)

    def url(self, path):
        return self.origin + path

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def site():
    running = Site()
    yield running
    running.stop()


@pytest.fixture
def chromium():
    """chromium(flags=()) -> a started Browser; every one is killed (by PID, with its helpers) after the test."""
    started = []

    def start(flags=()):
        browser = Browser(flags=flags)
        started.append(browser)
        browser.start()
        return browser

    yield start
    for browser in started:
        browser.close()


class ClientPage:
    """A tab showing client_page.html with the module imported from `origin` (the Philote server's http(s) URL)."""

    def __init__(self, browser, site, origin):
        self.page = browser.new_page(site.url("/client_page.html"))
        # Before anything connects, so that every WebSocket and every probe the module makes is recorded.
        self.page.call("Network.enable")
        assert self.page.evaluate(f"t.load({js(origin + '/philote.js')})") is True, self.page.log_text()

    def create(self, name, **spec):
        self.page.evaluate(f"t.create({js(name)}, {js(spec)})")

    def evaluate(self, expression):
        return self.page.evaluate(expression)

    def wait(self, expression, timeout=10.0):
        return self.page.wait_for(expression, timeout=timeout)

    def wait_state(self, name, state, timeout=10.0):
        """Waits until the client's current state is `state`."""
        self.wait(f"t.clients[{js(name)}].state === {js(state)}", timeout)

    def states(self, name):
        return self.evaluate(f"t.states({js(name)})")

    def events(self, name, kind):
        return self.evaluate(f"t.of({js(name)}, {js(kind)})")

    def details(self, name, kind):
        return [event["detail"] for event in self.events(name, kind)]

    def data(self, name, channel):
        return self.evaluate(f"t.data({js(name)}, {js(channel)})")

    def messages(self, name, channel):
        return self.evaluate(f"t.messages.filter(m => m.client === {js(name)} && m.channel === {js(channel)})")

    def publish(self, name, channel, data):
        return self.evaluate(f"t.clients[{js(name)}].publish({js(channel)}, {js(data)})")

    def network(self, method, predicate=lambda params: True):
        """Chromium's network events of this tab (Network.enable is on from the start)."""
        return [params for name, params in list(self.page.events) if name == method and predicate(params)]

    def socket_attempts(self):
        return len(self.network("Network.webSocketCreated"))

    def token_probes(self):
        return len(self.network("Network.requestWillBeSent", lambda p: "/api/token" in p["request"]["url"]))


def ws_url(server, scheme="ws"):
    return f"{scheme}://127.0.0.1:{server.port}/"


def http_origin(server, scheme="http"):
    return f"{scheme}://127.0.0.1:{server.port}"


def samples(server):
    return parse_metrics(scrape(server.port, headers=()))


def auth_failures(server, reason):
    return metric(samples(server), "philote_auth_failures_total", reason=reason)


def check_jitter(states, backoff):
    """Every "reconnecting" with a delay lies within the full-jitter bound of its attempt, and the "connecting"
    after it came no earlier than that delay (timers never fire early); returns the delays."""
    delays = []
    for index, event in enumerate(states):
        detail = event["detail"]
        if detail["state"] != "reconnecting" or "delay" not in detail:
            continue
        bound = min(backoff["max"], backoff["initial"] * 2 ** detail["attempt"])
        assert 0 <= detail["delay"] < bound, (detail, bound)
        following = states[index + 1]
        assert following["detail"]["state"] == "connecting", states
        # Chromium truncates a timer's delay to whole milliseconds, and performance.now() is coarsened (0.1 ms steps,
        # jittered) at both ends of the measurement: 1 ms of slack covers both, far below any bound checked here.
        assert following["mono"] - event["mono"] >= math.floor(detail["delay"]) - 1, (event, following)
        delays.append(detail["delay"])
    return delays


# ======================================================================================================
# 1. The demo: two pages chat, and a screenshot shows it
# ======================================================================================================


def chat_lines(page):
    return page.evaluate("[...document.querySelectorAll('#messages li')].map(li => li.textContent)")


def say(page, name, text):
    """Types a name and a line into the demo's form and clicks Send, as a user would."""
    page.evaluate(f"""(() => {{
        document.getElementById('name').value = {js(name)};
        document.getElementById('text').value = {js(text)};
        document.querySelector('#send button').click();
        return true;
    }})()""")


def test_two_pages_chat_through_the_demo_and_a_screenshot_shows_the_messages(start_server, chromium, tmp_path):
    demo = start_server("demo")
    browser = chromium()
    ada, bob = (browser.new_page(f"{http_origin(demo)}/demo") for _ in range(2))
    for page in (ada, bob):
        page.wait_for("document.getElementById('state').textContent === 'open'", timeout=10)
    first, second = "ada: hello from ada", "bob: hi ada, bob here"
    say(ada, "ada", "hello from ada")
    for page in (ada, bob):
        page.wait_for("document.querySelectorAll('#messages li').length === 1", timeout=10)
    # Bob answers only once he has seen Ada's line, so both pages must show the same order.
    say(bob, "bob", "hi ada, bob here")
    for page in (ada, bob):
        page.wait_for("document.querySelectorAll('#messages li').length === 2", timeout=10)
        assert chat_lines(page) == [first, second], page.log_text()
        assert page.evaluate("document.getElementById('state').textContent") == "open"
        assert page.evaluate("document.getElementById('text').value") == "", "the form was not cleared"

    shot = tmp_path / "chat.png"
    before = chat_lines(ada)
    data = ada.screenshot(shot, width=800, height=600)
    # At capture time the DOM showed both lines (read on both sides of the capture), inside the 800x600 viewport.
    assert before == chat_lines(ada) == [first, second]
    boxes = ada.evaluate("""[...document.querySelectorAll('#messages li')].map(li => {
        const r = li.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert ada.evaluate("[innerWidth, innerHeight]") == [800, 600]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 800 and 0 <= top < bottom <= 600, boxes
    assert shot.read_bytes() == data
    width, height, rows = png_pixels(data)
    assert (width, height) == (800, 600)
    colours = {pixel for row in rows[::4] for pixel in row[::4]}
    assert len(colours) >= 8, f"the screenshot looks blank: {len(colours)} colours"
    # Each message's box holds text: ink of more than one colour over its background, not an empty line.
    for left, top, right, bottom in boxes:
        inside = {rows[y][x] for y in range(int(top) + 1, int(bottom) - 1)
                  for x in range(int(left) + 1, int(right) - 1)}
        assert len(inside) >= 3, f"no text drawn in the message box {(left, top, right, bottom)}"
    assert demo.stop() == 0, demo.log_text()[-3000:]


# ======================================================================================================
# 2. A server SIGKILLed and restarted on the same port: pages recover everything from Redis
# ======================================================================================================


def test_pages_recover_every_message_after_their_server_is_killed_and_restarted(start_server, shared_redis, chromium,
                                                                               site):
    count = 50
    backoff = {"initial": 200, "max": 800, "stable": 10000}
    port = free_port()
    env = {"SECRET": SECRET, "REDIS_URL": shared_redis.url, "REDIS_PREFIX": unique_prefix(), "HISTORY_SIZE": "1000",
           "METRICS_PUBLIC": "true", "CLOSE_TIMEOUT": "1"}
    a = start_server("serve", PORT=port, **env)
    b = start_server("serve", **env)
    for server in (a, b):
        wait_until(lambda: readiness(server)[0] == 200, "readiness")
    browser = chromium()
    pages = [ClientPage(browser, site, http_origin(a)) for _ in range(2)]
    for page in pages:
        page.create("c", url=ws_url(a), token=token(read=[CHANNEL]), subscribe=[CHANNEL], backoff=backoff)
    for page in pages:
        page.wait("t.of('c', 'recovery').length === 1")
    # A watcher on B: once it has a message, that message is in Redis's history (every server, the publishing one
    # too, delivers what the history script published).
    watcher = connect(b.port, token(read=[CHANNEL]))
    publisher = connect(b.port, token(write=[CHANNEL]))
    wait_until(lambda: shared_redis.subscribers(env["REDIS_PREFIX"] + CHANNEL) == 2, "A and B subscribed")
    publish(publisher, CHANNEL, "before")
    assert recv_delivery(watcher)[2] == "before"
    for page in pages:
        page.wait("t.data('c', 'room').length === 1")

    a.process.kill()
    a.process.wait()
    missed = [f"missed {n}" for n in range(1, count + 1)]
    for data in missed:
        publish(publisher, CHANNEL, data)
    assert [recv_delivery(watcher)[2] for _ in missed] == missed
    # A stays down until each page has failed to reconnect a few times, so that back-off itself is under test
    # (attempts 0, 1 and 2 have different bounds), not only the first retry.
    for page in pages:
        page.wait("t.of('c', 'state').some(e => e.detail.attempt === 2)")
    a = start_server("serve", PORT=port, **env)
    for page in pages:
        page.wait(f"t.clients.c.state === 'open' && t.data('c', 'room').length === {1 + count}", timeout=20)
    # Live messages after the replay: through B again, so they reach A's pages through Redis.
    live = [f"live {n}" for n in range(1, 4)]
    for data in live:
        publish(publisher, CHANNEL, data)
    expected = ["before", *missed, *live]
    for page in pages:
        page.wait(f"t.data('c', 'room').length >= {len(expected)}")

    delays = []
    for page in pages:
        log = page.page.log_text()
        assert page.data("c", CHANNEL) == expected, log
        messages = page.messages("c", CHANNEL)
        assert [m["offset"] for m in messages] == list(range(1, len(expected) + 1)), messages
        assert len({m["epoch"] for m in messages}) == 1, messages
        recoveries = page.details("c", "recovery")
        assert [r["outcome"] for r in recoveries] == ["new", "ok"], recoveries
        assert recoveries[1]["offset"] == 1 + count and recoveries[1]["epoch"] == messages[0]["epoch"], recoveries
        # The only error: the killed server's connection dropped without a close frame.
        assert page.details("c", "error") == [
            {"kind": "closed", "message": "connection closed with code 1006", "code": 1006}], log
        states = page.events("c", "state")
        names = [event["detail"]["state"] for event in states]
        assert names[:2] == ["connecting", "open"] and names[-1] == "open" and names.count("open") == 2, names
        assert set(names[2:-1]) == {"reconnecting", "connecting"}, names
        reconnects = [event["detail"] for event in states if event["detail"]["state"] == "reconnecting"]
        assert reconnects[0]["code"] == 1006, reconnects
        assert [r["attempt"] for r in reconnects] == list(range(len(reconnects))), reconnects
        assert len(reconnects) >= 3, reconnects
        delays.append(check_jitter(states, backoff))
    # Math.random in each page: the two pages did not retry in lockstep.
    assert delays[0][0] != delays[1][0], delays

    close_politely(watcher)
    close_politely(publisher)
    browser.close()
    for server in (a, b):
        assert server.stop() == 0, server.log_text()[-3000:]


# ======================================================================================================
# 3. A 5-second token refreshed in place for 12 seconds: one connection throughout
# ======================================================================================================


def test_a_short_token_is_refreshed_in_place_and_the_connection_stays(start_server, chromium, site):
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true")
    reader = connect(server.port, token(read=[CHANNEL]))
    page = ClientPage(chromium(), site, http_origin(server))
    page.create("c", url=ws_url(server), token={"fetch": f"/token?read={CHANNEL}&write={CHANNEL}&ttl=5"},
                subscribe=[CHANNEL])
    page.wait_state("c", "open")
    assert page.publish("c", CHANNEL, "before the refreshes") is True
    issuer, _, data = recv_delivery(reader)
    assert data == "before the refreshes"
    opened = page.events("c", "state")[-1]["at"]
    page.wait(f"t.of('c', 'refresh').length >= 2 && Date.now() - {opened} >= 12000", timeout=25)
    assert page.publish("c", CHANNEL, "after the refreshes") is True
    assert recv_delivery(reader) == (issuer, CHANNEL, "after the refreshes"), "not the same connection"

    log = page.page.log_text()
    states = page.details("c", "state")
    assert [s["state"] for s in states] == ["connecting", "open"], states
    assert page.evaluate("t.clients.c.state") == "open"
    assert page.details("c", "error") == [], log
    refreshes = page.events("c", "refresh")
    calls = page.evaluate("t.tokenCalls")
    assert len(calls) == 1 + len(refreshes), (calls, refreshes)
    # Each refresh carried the newly fetched token's exp, and came before the token it replaced expired.
    exps = [json.loads(base64.urlsafe_b64decode(c["value"].split(".")[1] + "==="))["exp"] for c in calls]
    assert [r["detail"]["exp"] for r in refreshes] == exps[1:len(refreshes) + 1], (refreshes, exps)
    for refresh, previous_exp in zip(refreshes, exps):
        assert refresh["at"] < previous_exp * 1000, (refresh, previous_exp)
    # The connection outlived its first token by far; the server saw one connection and only accepted refreshes.
    assert time.time() > exps[0] + 5
    values = samples(server)
    assert metric(values, "philote_token_refreshes_total", result="accepted") == len(refreshes)
    assert metric(values, "philote_token_refreshes_total", result="refused") == 0
    assert metric(values, "philote_connections_total") == 2  # the reader and the page
    assert page.socket_attempts() == 1
    close_politely(reader)
    assert server.stop() == 0, server.log_text()[-3000:]


# ======================================================================================================
# 4. Authentication failures: 4001 with a string token, 401 with a token function
# ======================================================================================================


def test_auth_failures_close_4001_and_401_with_one_retry(start_server, chromium, site):
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true")
    browser = chromium()
    origin = http_origin(server)
    expiring, recovering, refused = (ClientPage(browser, site, origin) for _ in range(3))

    # A string token cannot be renewed: at its exp the server closes with 4001 and the client stops.
    exp = int(time.time()) + 2
    expiring.create("c", url=ws_url(server), token=token(read=[CHANNEL], exp=exp), subscribe=[CHANNEL])
    expiring.wait_state("c", "open", timeout=5)

    # A token function whose first token is refused: one probe says 401, one new token, then open.
    bad = [token(read=[CHANNEL], secret=BAD_SECRET, n=n) for n in range(2)]
    good = token(read=[CHANNEL])
    failures = auth_failures(server, "invalid_signature")
    recovering.create("c", url=ws_url(server), token={"sequence": [bad[0], good]}, subscribe=[CHANNEL])
    recovering.wait_state("c", "open")
    states = recovering.details("c", "state")
    assert [s["state"] for s in states] == ["connecting", "reconnecting", "connecting", "open"], states
    assert (states[1]["attempt"], states[1]["delay"]) == (0, 0), states  # at once, not a back-off attempt
    assert recovering.evaluate("t.tokenCalls.map(c => c.value)") == [bad[0], good]
    assert (recovering.socket_attempts(), recovering.token_probes()) == (2, 1)
    assert recovering.details("c", "error") == [], recovering.page.log_text()
    # The server refused the token twice: at the upgrade and at the probe.
    assert auth_failures(server, "invalid_signature") == failures + 2

    # A token function that only ever gives refused tokens: two attempts, then closed with the server's reason.
    status, _, body = http_request(server.port, "GET", "/api/token?auth=" + bad[1])
    assert status == 401
    reason = json.loads(body)["error"]
    failures = auth_failures(server, "invalid_signature")
    refused.create("c", url=ws_url(server), token={"sequence": bad}, subscribe=[CHANNEL])
    refused.wait_state("c", "closed")
    log = refused.page.log_text()
    assert refused.states("c") == ["connecting", "reconnecting", "connecting", "closed"], log
    assert [(e["kind"], e["message"]) for e in refused.details("c", "error")] == [("auth", reason)], log
    assert (refused.socket_attempts(), refused.token_probes()) == (2, 2)
    assert refused.evaluate("t.tokenCalls.length") == 2
    assert auth_failures(server, "invalid_signature") == failures + 4

    expiring.wait_state("c", "closed", timeout=6)
    log = expiring.page.log_text()
    states = expiring.events("c", "state")
    assert [e["detail"]["state"] for e in states] == ["connecting", "open", "closed"], log
    assert (states[2]["detail"]["code"], states[2]["detail"]["reason"]) == (4001, "token expired"), states
    assert states[2]["at"] >= exp * 1000, "closed before the token's exp"
    assert expiring.details("c", "error") == [{"kind": "auth", "message": "token expired", "code": 4001}], log
    # It stays closed: no new attempt (checked last, after the other cases took their time).
    assert expiring.socket_attempts() == 1
    assert len(expiring.events("c", "state")) == 3
    assert server.stop() == 0, server.log_text()[-3000:]


# ======================================================================================================
# 5. Offline: no attempt while offline, a connection at once when back online
# ======================================================================================================


def test_no_connection_attempt_while_offline_and_one_at_once_when_online(start_server, chromium, site):
    backoff = {"initial": 50, "max": 200, "stable": 10000}
    window = 2.0  # seconds offline with the server up: ten times the back-off bound
    port = free_port()
    env = {"SECRET": SECRET, "METRICS_PUBLIC": "true", "PORT": port}
    server = start_server("serve", **env)
    page = ClientPage(chromium(), site, http_origin(server))
    page.create("c", url=ws_url(server), token=token(read=[CHANNEL]), subscribe=[CHANNEL], backoff=backoff)
    page.wait_state("c", "open")
    page.page.set_offline(True)
    page.wait("t.net.length === 1 && t.net[0].type === 'offline'")
    # The open socket survives the emulation (cdp.py); the server must end it: a drain closes it with 1001.
    assert server.stop() == 0, server.log_text()[-3000:]
    page.wait_state("c", "reconnecting")
    server = start_server("serve", **env)
    time.sleep(window)  # the claim: nothing happens during this window, although the server is up again

    states = page.events("c", "state")
    assert [e["detail"]["state"] for e in states] == ["connecting", "open", "reconnecting"], states
    waiting = states[2]["detail"]
    assert waiting["code"] == 1001 and "delay" not in waiting, waiting  # no timer: it waits for the network
    assert page.socket_attempts() == 1
    assert metric(samples(server), "philote_connections_total") == 0
    assert page.details("c", "error") == []
    assert page.token_probes() == 0

    page.page.set_offline(False)
    page.wait_state("c", "open", timeout=5)
    online = page.evaluate("t.net")[1]
    assert online["type"] == "online"
    connecting, opened = page.events("c", "state")[3:5]
    assert (connecting["detail"]["state"], opened["detail"]["state"]) == ("connecting", "open")
    # "At once": the attempt starts in the online event's own task, and the loopback handshake takes milliseconds.
    assert connecting["mono"] - online["mono"] < 250, (online, connecting)
    assert opened["mono"] - online["mono"] < 1500, (online, opened)
    assert page.socket_attempts() == 2
    publisher = connect(server.port, token(write=[CHANNEL]))
    publish(publisher, CHANNEL, "back online")
    page.wait("t.data('c', 'room').join() === 'back online'")
    close_politely(publisher)
    assert server.stop() == 0, server.log_text()[-3000:]


# ======================================================================================================
# 6. wss:// with a test CA, permessage-deflate negotiated by the browser
# ======================================================================================================


def openssl(*args, cwd, stdin=None):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, input=stdin, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr.decode(errors='replace')}"
    return done.stdout


def make_pki(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    (directory / "ext.cnf").write_text("[server]\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n"
                                       "basicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\n")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "30", "-subj", "/CN=Philote Browser Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=directory)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x5eed",
            "-days", "30", "-extfile", "ext.cnf", "-extensions", "server", "-out", "server.pem", cwd=directory)
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


def spki_sha256_base64(certificate, directory):
    """What --ignore-certificate-errors-spki-list wants: base64(SHA-256(the certificate's SubjectPublicKeyInfo))."""
    public = openssl("x509", "-in", str(certificate), "-noout", "-pubkey", cwd=directory)
    der = openssl("pkey", "-pubin", "-outform", "DER", cwd=directory, stdin=public)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def https_metrics(server, context):
    with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/metrics", context=context, timeout=10) as answer:
        return parse_metrics(answer.read().decode())


def test_wss_with_a_test_ca_and_permessage_deflate_from_the_browser(start_server, chromium, site, tmp_path):
    ca, certificate, key = make_pki(tmp_path)
    server = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true", TLS_CERT_FILE=certificate,
                          TLS_KEY_FILE=key)
    context = ssl.create_default_context(cafile=str(ca))
    # The browser trusts exactly this server's key, not every certificate error.
    browser = chromium([f"--ignore-certificate-errors-spki-list={spki_sha256_base64(certificate, tmp_path)}"])
    page = ClientPage(browser, site, http_origin(server, "https"))
    page.create("c", url=ws_url(server, "wss"), token=token(read=[CHANNEL], write=[CHANNEL]), subscribe=[CHANNEL])
    page.wait_state("c", "open")
    [handshake] = page.network("Network.webSocketHandshakeResponseReceived")
    headers = {name.lower(): value for name, value in handshake["response"]["headers"].items()}
    assert handshake["response"]["status"] == 101
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate"), headers

    with ws_connect(f"wss://127.0.0.1:{server.port}/?auth={token(read=[CHANNEL], write=[CHANNEL])}", ssl=context,
                    compression=None, proxy=None, open_timeout=10) as python:
        python.send(js({"channel": CHANNEL, "data": "from python"}))
        page.wait("t.data('c', 'room').join() === 'from python'")
        assert page.publish("c", CHANNEL, "from the browser") is True
        assert json.loads(python.recv(timeout=10))["data"] == "from the browser"

        # Server to browser: a large compressible message is deflated once, for the one compressing reader.
        big = "philote compresses this line. " * 1600  # 48,000 bytes
        before = https_metrics(server, context)
        python.send(js({"channel": CHANNEL, "data": big}))
        page.wait(f"t.data('c', 'room').length === 2 && t.data('c', 'room')[1].length === {len(big)}")
        assert page.evaluate(f"t.data('c', 'room')[1] === {js(big)}")
        after = https_metrics(server, context)
        grew = {name: metric(after, name) - metric(before, name)
                for name in ("philote_compression_input_bytes_total", "philote_compression_output_bytes_total")}
        assert grew["philote_compression_input_bytes_total"] >= len(big), grew
        assert 0 < grew["philote_compression_output_bytes_total"] < len(big) / 10, grew

        # Browser to server: Chromium deflates what it sends, so the server reads far fewer bytes than were published.
        reverse = "the browser compresses this line. " * 1400  # 47,600 bytes
        before = https_metrics(server, context)
        assert page.publish("c", CHANNEL, reverse) is True
        assert json.loads(python.recv(timeout=10))["data"] == reverse
        read = metric(https_metrics(server, context), "philote_received_bytes_total") - \
            metric(before, "philote_received_bytes_total")
        assert 0 < read < len(reverse) / 10, read
    assert server.stop() == 0, server.log_text()[-3000:]


# ======================================================================================================
# 7. The README's browser example, as written
# ======================================================================================================


def readme_example():
    """The first ```html block under "## From the browser", or None while the README has no such section."""
    text = README.read_text()
    section = re.search(r"^## From the browser\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        return None
    block = re.search(r"^```html\n(.*?)^```", section[1], re.M | re.S)
    return block[1] if block else None


def wait_console(page, pattern, limit=10.0):
    """Waits (bounded) until one of the page's console lines matches `pattern`."""
    try:
        wait_until(lambda: any(re.search(pattern, line) for line in page.console), pattern, limit)
    except AssertionError:
        raise AssertionError(f"no console line matching {pattern!r} within {limit} s:\n{page.log_text()}") from None


def test_the_readme_browser_example_runs_as_written(start_server, chromium, site):
    example = readme_example()
    if example is None:
        pytest.skip('README.md has no ```html block under "## From the browser" yet')
    server = start_server("serve", SECRET=SECRET)
    site.pages["/example.html"] = example.replace("127.0.0.1:6380", f"127.0.0.1:{server.port}").encode()
    page = chromium().new_page(site.url("/example.html"))
    wait_console(page, r"\bopen\b")
    publisher = connect(server.port, token(write=["room-1"]))
    publish(publisher, "room-1", "hello")
    wait_console(page, r"(^|\s)room-1: hello$")
    assert site.token_requests, "the example never asked the page's origin for a token"
    assert not [line for line in page.console if "error:" in line], page.console
    close_politely(publisher)
    assert server.stop() == 0, server.log_text()[-3000:]

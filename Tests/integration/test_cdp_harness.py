"""Tests of the DevTools driver in cdp.py itself, against a static page from Python's http.server and a small
Python `websockets` echo server (no Philote server involved), so that a failure here points at the harness."""
import functools
import http.server
import os
import struct
import threading
import time
import zlib

import pytest
from websockets.sync.server import serve

from cdp import Browser, CDPError, JavaScriptError, WaitTimeout, _descendants, _is_zombie

# A white page with a solid red 100x100 box at its top-left corner. It records the window's offline/online
# events in order, logs its name, and offers openEcho(url, text): open a WebSocket, send text, resolve with
# "echo <reply>", or with "error"/"close <code>"/"timeout" when that does not happen (bounded, never hangs).
INDEX_HTML = """<!doctype html>
<html><head><title>cdp harness</title>
<style>
  html, body { margin: 0; background: #fff; }
  #box { position: absolute; left: 0; top: 0; width: 100px; height: 100px; background: #f00; }
</style></head>
<body><div id="box"></div>
<script>
  window.netEvents = [];
  addEventListener('offline', () => netEvents.push('offline'));
  addEventListener('online', () => netEvents.push('online'));
  window.pageName = new URLSearchParams(location.search).get('name') || 'page';
  console.log('loaded ' + pageName);
  window.sockets = [];
  window.openEcho = (url, text) => new Promise(resolve => {
    const socket = new WebSocket(url);
    setTimeout(() => resolve('timeout'), 3000);
    socket.onopen = () => {
      sockets.push(socket);
      socket.onmessage = event => resolve('echo ' + event.data);
      socket.send(text);
    };
    socket.onerror = () => resolve('error');
    socket.onclose = event => resolve('close ' + event.code);
  });
  // Sends on an already open socket and resolves with the echo (or "timeout").
  window.echoOn = (socket, text) => new Promise(resolve => {
    setTimeout(() => resolve('timeout'), 3000);
    socket.onmessage = event => resolve('echo ' + event.data);
    socket.send(text);
  });
</script></body></html>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass  # the request log would only clutter pytest's captured output


@pytest.fixture
def site(tmp_path):
    """Base URL of a static http.server on a kernel-chosen loopback port, serving index.html."""
    (tmp_path / "index.html").write_text(INDEX_HTML)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval, so that shutdown() at teardown returns quickly.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class PythonEchoServer:
    """A `websockets` echo server in a thread; `handshakes` counts the connections it accepted."""

    def __init__(self):
        self.handshakes = 0
        self._lock = threading.Lock()
        self.server = serve(self._echo, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _echo(self, connection):
        with self._lock:
            self.handshakes += 1
        for message in connection:
            connection.send(message)

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def python_echo_ws():
    server = PythonEchoServer()
    yield server
    server.stop()


@pytest.fixture
def browser():
    with Browser() as running:
        yield running


def test_two_pages_evaluate_independently(browser, site):
    first = browser.new_page(f"{site}/index.html?name=first")
    second = browser.new_page(f"{site}/index.html?name=second")
    first.evaluate("window.value = 1")
    second.evaluate("window.value = 2")
    assert first.evaluate("[pageName, value]") == ["first", 1]
    assert second.evaluate("[pageName, value]") == ["second", 2]
    # Events are routed by sessionId: each page's console holds only its own messages.
    assert first.console == ["log: loaded first"], first.log_text()
    assert second.console == ["log: loaded second"], second.log_text()
    assert first.evaluate("new Promise(resolve => setTimeout(() => resolve(6 * 7), 10))") == 42


def test_javascript_exception_surfaces_with_its_text(browser, site):
    page = browser.new_page(f"{site}/index.html")
    with pytest.raises(JavaScriptError) as thrown:
        page.evaluate("throw new Error('boom 42')")
    assert "boom 42" in thrown.value.text and "boom 42" in str(thrown.value)
    with pytest.raises(JavaScriptError, match="async boom"):
        page.evaluate("Promise.reject(new Error('async boom'))")
    # An exception nobody catches (here in a timer) lands in page.exceptions, for failure messages.
    mark = page.event_mark()
    page.evaluate("setTimeout(() => { throw new TypeError('uncaught in timer') }, 0)")
    page.wait_event("Runtime.exceptionThrown", since=mark, timeout=5)
    assert any("uncaught in timer" in text for text in page.exceptions), page.log_text()
    assert "uncaught in timer" in page.log_text()


def test_wait_for_returns_once_truthy_and_times_out_with_a_clear_message(browser, site):
    page = browser.new_page(f"{site}/index.html?name=waiting")
    page.evaluate("setTimeout(() => { window.flag = 7 }, 200)")
    assert page.wait_for("window.flag", timeout=5) == 7
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as timed_out:
        page.wait_for("window.neverSet === true", timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0, elapsed
    message = str(timed_out.value)
    # It says what was waited for, how long, the last value, and what the page logged.
    assert "window.neverSet === true" in message and "0.5 s" in message, message
    assert "last value: False" in message and "loaded waiting" in message, message
    # An expression that keeps throwing reports the exception as its last value.
    with pytest.raises(WaitTimeout, match="notDefinedAnywhere is not defined"):
        page.wait_for("notDefinedAnywhere.ready", timeout=0.3)


def test_offline_emulation_flips_online_and_fires_the_window_events(browser, site):
    page = browser.new_page(f"{site}/index.html?name=emulated")
    other = browser.new_page(f"{site}/index.html?name=other")
    page.set_offline(True)
    # Chromium fires the events itself (no dispatch from JS): see the cdp module docstring.
    page.wait_for("!navigator.onLine && netEvents.join() === 'offline'", timeout=5)
    with pytest.raises(JavaScriptError, match="Failed to fetch"):
        page.evaluate("fetch('/index.html')")
    # The emulation belongs to one page: another tab of the same browser stays online.
    assert other.evaluate("[navigator.onLine, netEvents]") == [True, []]
    assert other.evaluate("fetch('/index.html').then(response => response.status)") == 200
    page.set_offline(False)
    page.wait_for("navigator.onLine && netEvents.join() === 'offline,online'", timeout=5)
    assert page.evaluate("fetch('/index.html').then(response => response.status)") == 200


def png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    offset, chunks = 8, []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        # Undo the per-row filter (PNG spec section 9): each byte is predicted from left (a), up (b), up-left (c).
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        previous = line
    return width, height, rows


def test_screenshot_is_a_png_of_the_requested_size_showing_the_red_box(browser, site, tmp_path):
    page = browser.new_page(f"{site}/index.html")
    path = tmp_path / "shot.png"
    data = page.screenshot(path, width=320, height=240)
    assert path.read_bytes() == data
    # IHDR is the first chunk: width and height are the big-endian words at bytes 16..24.
    assert data[12:16] == b"IHDR" and struct.unpack(">II", data[16:24]) == (320, 240)
    width, height, rows = png_pixels(data)
    assert (width, height) == (320, 240)
    red = (255, 0, 0)
    assert rows[0][0] == red and rows[50][50] == red and rows[99][99] == red, rows[50][50]
    assert rows[50][150] == (255, 255, 255) and rows[200][50] == (255, 255, 255), (rows[50][150], rows[200][50])


def test_websocket_works_and_a_new_one_fails_while_offline(browser, site, python_echo_ws):
    page = browser.new_page(f"{site}/index.html")
    url = python_echo_ws.url
    assert page.evaluate(f"openEcho({url!r}, 'first')") == "echo first", page.log_text()
    assert python_echo_ws.handshakes == 1

    page.set_offline(True)
    # A new socket fails at once with an error event, and never reaches the server.
    mark = page.event_mark()
    assert page.evaluate(f"openEcho({url!r}, 'offline')") == "error", page.log_text()
    assert python_echo_ws.handshakes == 1
    # Chromium's own log names the reason.
    page.wait_event("Log.entryAdded", since=mark, timeout=5,
                    predicate=lambda params: "ERR_INTERNET_DISCONNECTED" in params["entry"]["text"])
    # The socket opened before going offline is not closed by the emulation and still exchanges messages.
    assert page.evaluate("sockets[0].readyState") == 1
    assert page.evaluate("echoOn(sockets[0], 'still here')") == "echo still here"

    page.set_offline(False)
    assert page.evaluate(f"openEcho({url!r}, 'back')") == "echo back", page.log_text()
    assert python_echo_ws.handshakes == 2


def test_close_page_removes_its_target(browser, site):
    keep = browser.new_page(f"{site}/index.html?name=keep")
    gone = browser.new_page(f"{site}/index.html?name=gone")
    gone.close()
    targets = {info["targetId"] for info in browser.call("Target.getTargets")["targetInfos"]}
    assert gone.target_id not in targets and keep.target_id in targets
    assert gone not in browser.pages
    with pytest.raises(CDPError, match="gone"):
        gone.evaluate("1")
    assert keep.evaluate("pageName") == "keep"


def test_browser_is_killed_and_its_profile_removed_when_the_test_fails():
    with pytest.raises(RuntimeError, match="test failed here"):
        with Browser() as running:
            running.new_page("about:blank")
            process, profile = running.process, running.profile
            helpers = _descendants(process.pid)
            assert helpers, "chromium started no helper processes?"
            raise RuntimeError("test failed here")
    assert process.poll() is not None
    assert not os.path.exists(profile)
    # Zygotes and renderers are dead too (a zombie awaiting its reaper counts as dead).
    assert all(_is_zombie(pid) for pid in helpers), helpers


def test_a_browser_that_exits_at_start_fails_with_a_clear_message(monkeypatch):
    # /bin/false stands in for a Chromium that dies before it listens: the wait must end at once, not at its deadline.
    monkeypatch.setattr("cdp.CHROMIUM", "/bin/false")
    started = time.monotonic()
    with pytest.raises(CDPError, match="exited with 1 before writing DevToolsActivePort"):
        with Browser(startup_timeout=10):
            pass
    assert time.monotonic() - started < 5

"""A small Chrome DevTools Protocol driver for headless Chromium, for tests that need a real browser page.

Standard library plus the `websockets` sync client only: no Selenium, no chromedriver, no asyncio in tests.

    with Browser(flags=["--ignore-certificate-errors"]) as browser:
        page = browser.new_page(url)
        page.evaluate("1 + 1")                       # -> 2 (awaits promises, returns JSON values)
        page.wait_for("window.done === true", timeout=5)
        page.set_offline(True)
        page.screenshot(path, width=800, height=600)

How it works: Chromium starts with `--remote-debugging-port=0` and writes the port it chose into
`DevToolsActivePort` in its profile directory; the driver reads it, opens ONE websocket to the browser
endpoint, and attaches to every page with `Target.attachToTarget(flatten=True)`, so a page's commands and
events travel on that same socket tagged with the page's `sessionId`. A reader thread routes responses to
their callers by `id` and records events per session (console messages, uncaught exceptions, and the rest
for `Page.wait_event`). Chromium is always killed by its own PID and its profile removed on exit, also when
the test fails.

Findings about network emulation in this Chromium (156, headless), checked by test_cdp_harness.py:
- `Network.emulateNetworkConditions(offline=true)` (after `Network.enable`) makes `navigator.onLine` false
  and fires the window's `offline` event; going back fires `online`. Chromium does this itself, so
  set_offline() needs no `window.dispatchEvent(new Event('offline'))` fallback.
- The emulation belongs to one page (target): another tab of the same browser stays online.
- While offline, `fetch()` rejects ("Failed to fetch") and a NEW `WebSocket` fails within milliseconds: the
  page gets `error`, then `close` with code 1006 (wasClean false); the server never sees a connection, and
  Chromium logs "net::ERR_INTERNET_DISCONNECTED" (Log.entryAdded, kept in Page.browser_log).
- A WebSocket that was ALREADY OPEN is not closed by going offline: it stays in readyState 1 and keeps
  exchanging messages both ways. To make a page see its live connection drop, the server side must close it
  (or the test stops the server); offline emulation only prevents reconnecting, and fires the events.
"""
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

CHROMIUM = os.environ.get("PHILOTE_CHROMIUM", "/usr/bin/chromium")
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
              "--no-first-run", "--no-default-browser-check")
# How often wait_for re-evaluates its expression: short, because a wait ends as soon as the page is ready.
POLL_INTERVAL = 0.02


class CDPError(Exception):
    """A DevTools command failed, the browser went away, or it answered something unexpected."""


class JavaScriptError(CDPError):
    """JavaScript evaluated in a page threw; `text` is the exception's description (message and stack)."""

    def __init__(self, expression, text):
        super().__init__(f"JavaScript threw while evaluating {expression!r}:\n{text}")
        self.expression = expression
        self.text = text


class WaitTimeout(AssertionError):
    """A bounded wait ran out (an AssertionError, so pytest shows it as a plain test failure)."""


class Browser:
    """One headless Chromium process and one DevTools websocket to it. Use as a context manager."""

    def __init__(self, flags=(), startup_timeout=20.0, command_timeout=10.0):
        self.flags = tuple(flags)
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.process = None
        self.pages = []
        self._workdir = None
        self._ws = None
        self._ws_context = contextlib.ExitStack()
        self._reader = None
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._responses = {}  # command id -> response message
        self._sessions = {}  # sessionId -> Page
        self._closed_reason = None  # set once the websocket is gone

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        # The profile and Chromium's own log share one temporary directory, removed as a whole in close().
        self._workdir = tempfile.mkdtemp(prefix="philote-cdp-")
        self.profile = os.path.join(self._workdir, "profile")
        os.mkdir(self.profile)
        self.log_path = os.path.join(self._workdir, "chromium.log")
        with open(self.log_path, "wb") as log:
            # Chromium's stderr goes to a file, so a chatty browser can never block on a full pipe.
            self.process = subprocess.Popen(
                [CHROMIUM, *BASE_FLAGS, f"--user-data-dir={self.profile}", *self.flags, "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        port, path = self._wait_for_devtools_port()
        # proxy=None: never route a loopback connection through a proxy named in the environment;
        # max_size=None: screenshots arrive as one large base64 message. The connection is entered as a
        # context manager because websockets 17 deprecates using a bare connect() result.
        self._ws = self._ws_context.enter_context(connect(
            f"ws://127.0.0.1:{port}{path}", proxy=None, max_size=None, compression=None,
            open_timeout=self.startup_timeout, ping_interval=None, close_timeout=2))
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()

    def _wait_for_devtools_port(self):
        """(port, browser websocket path) from DevToolsActivePort, which Chromium writes once it listens."""
        active_port = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CDPError(f"chromium exited with {self.process.returncode} before writing DevToolsActivePort:\n"
                               + self.log_tail())
            try:
                with open(active_port) as handle:
                    lines = handle.read().split("\n")
            except FileNotFoundError:
                lines = []
            # Both lines present means the file is complete (it may be read while still being written).
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].startswith("/devtools/browser/"):
                return int(lines[0]), lines[1].strip()
            time.sleep(POLL_INTERVAL)
        raise CDPError(f"chromium did not write {active_port} within {self.startup_timeout} s:\n" + self.log_tail())

    def close(self):
        """Closes the websocket, kills Chromium by its PID and removes its profile; safe to call twice."""
        try:
            self._ws_context.close()  # closes the websocket, if it was opened
            self._ws = None
            if self._reader is not None:
                self._reader.join(timeout=5)
                self._reader = None
        finally:
            try:
                if self.process is not None:
                    # The browser's zygotes, renderers and utility processes outlive a killed browser by a second
                    # or two; they are noted first and killed by PID too, so no test leaves Chromium behind.
                    helpers = _descendants(self.process.pid) if self.process.poll() is None else {}
                    if self.process.poll() is None:
                        self.process.kill()
                    self.process.wait(timeout=10)
                    _kill_and_reap(helpers, timeout=5.0)
            finally:
                if self._workdir is not None:
                    shutil.rmtree(self._workdir, ignore_errors=True)
                    self._workdir = None

    def log_tail(self, limit=3000):
        """The end of Chromium's own stderr log, for failure messages."""
        try:
            with open(self.log_path, "r", errors="replace") as handle:
                return handle.read()[-limit:]
        except (OSError, AttributeError):
            return "(no chromium log)"

    # -- protocol --------------------------------------------------------------------------------------------

    def _read_loop(self):
        reason = "websocket closed"
        try:
            for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._responses[message["id"]] = message
                        self._lock.notify_all()
                else:
                    self._dispatch_event(message)
        except ConnectionClosed as error:
            reason = f"websocket closed: {error}"
        except Exception as error:  # a reader that dies silently would turn every call into a timeout
            reason = f"reader failed: {error!r}"
        finally:
            with self._lock:
                self._closed_reason = reason
                self._lock.notify_all()

    def _dispatch_event(self, message):
        method, params = message.get("method", ""), message.get("params", {})
        with self._lock:
            page = self._sessions.get(message.get("sessionId"))
            if page is None and method == "Target.detachedFromTarget":
                page = self._sessions.get(params.get("sessionId"))
            if page is not None:
                page._record_event(method, params)
            self._lock.notify_all()

    def call(self, method, params=None, session_id=None, timeout=None):
        """Sends one command (to the browser, or to a page's session) and returns its `result`."""
        timeout = self.command_timeout if timeout is None else timeout
        command_id = next(self._ids)
        message = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        if self._ws is None:
            raise CDPError(f"{method}: the browser is not running")
        with self._lock:
            if self._closed_reason is not None:
                raise CDPError(f"{method}: {self._closed_reason}")
        try:
            self._ws.send(json.dumps(message))
        except ConnectionClosed as error:
            raise CDPError(f"{method}: websocket closed: {error}") from error
        deadline = time.monotonic() + timeout
        with self._lock:
            while command_id not in self._responses:
                if self._closed_reason is not None:
                    raise CDPError(f"{method}: {self._closed_reason}\n" + self.log_tail())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"no answer to {method} {json.dumps(params or {})[:200]} within {timeout} s")
                self._lock.wait(remaining)
            response = self._responses.pop(command_id)
        if "error" in response:
            raise CDPError(f"{method} failed: {response['error']}")
        return response.get("result", {})

    # -- pages -----------------------------------------------------------------------------------------------

    def new_page(self, url=None, timeout=None):
        """Opens a new tab, attaches to it and enables Runtime/Page events; navigates to url if given."""
        target_id = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self.call("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        page = Page(self, target_id, session_id)
        with self._lock:
            self._sessions[session_id] = page
        self.pages.append(page)
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Log.enable")  # the browser's own messages: failed loads, WebSocket errors with their net:: reason
        if url is not None:
            page.navigate(url, timeout=timeout)
        return page


class Page:
    """One tab, driven through its flat session on the browser's websocket."""

    def __init__(self, browser, target_id, session_id):
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.console = []  # "level: text" per console.* call, in order
        self.exceptions = []  # description of each uncaught exception
        self.browser_log = []  # "level: text" of Chromium's own messages about the page (Log.entryAdded)
        self.events = []  # (method, params) of every event this session received, in order
        self.detached = None  # why the session ended, once it has
        self.offline = False

    def __repr__(self):
        return f"<Page {self.target_id[:8]}>"

    def call(self, method, params=None, timeout=None):
        if self.detached is not None:
            raise CDPError(f"{method}: {self} is gone ({self.detached})")
        return self.browser.call(method, params, session_id=self.session_id, timeout=timeout)

    # Runs on the reader thread, under the browser's lock.
    def _record_event(self, method, params):
        self.events.append((method, params))
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_describe(arg) for arg in params.get("args", []))
            self.console.append(f"{params.get('type', 'log')}: {text}")
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(_exception_text(params.get("exceptionDetails", {})))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            where = f" ({entry['url']})" if entry.get("url") else ""
            self.browser_log.append(f"{entry.get('level', 'info')}: {entry.get('text', '')}{where}")
        elif method == "Inspector.targetCrashed":
            self.detached = "renderer crashed"
        elif method == "Target.detachedFromTarget":
            self.detached = "detached from target"

    def log_text(self):
        """The page's console messages, uncaught exceptions and browser log, for a failure message."""
        with self.browser._lock:
            lines = [f"console {line}" for line in self.console]
            lines += [f"uncaught {text}" for text in self.exceptions]
            lines += [f"browser {line}" for line in self.browser_log]
        return "\n".join(lines) if lines else "(no console output or exceptions)"

    # -- waiting -----------------------------------------------------------------------------------------------

    def wait_event(self, method, since=0, predicate=None, timeout=10.0):
        """params of the first `method` event at or after index `since` of self.events (that matches predicate)."""
        deadline = time.monotonic() + timeout
        lock = self.browser._lock
        with lock:
            index = since
            while True:
                while index < len(self.events):
                    name, params = self.events[index]
                    index += 1
                    if name == method and (predicate is None or predicate(params)):
                        return params
                if self.detached is not None:
                    raise CDPError(f"waiting for {method}: {self} is gone ({self.detached})\n" + self.log_text())
                if self.browser._closed_reason is not None:
                    raise CDPError(f"waiting for {method}: {self.browser._closed_reason}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"no {method} event on {self} within {timeout} s\n" + self.log_text())
                lock.wait(remaining)

    def event_mark(self):
        """The current end of self.events, to wait for an event that a following command causes."""
        with self.browser._lock:
            return len(self.events)

    def navigate(self, url, timeout=None):
        """Loads url and returns after the page's load event; raises if the navigation itself fails."""
        timeout = self.browser.command_timeout if timeout is None else timeout
        mark = self.event_mark()
        result = self.call("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise CDPError(f"navigating {self} to {url} failed: {result['errorText']}")
        self.wait_event("Page.loadEventFired", since=mark, timeout=timeout)

    def evaluate(self, expression, timeout=None):
        """The JSON value of a JavaScript expression (promises awaited); raises JavaScriptError if it throws."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise JavaScriptError(expression, _exception_text(result["exceptionDetails"]))
        value = result.get("result", {})
        if "unserializableValue" in value:  # NaN, Infinity, -0, bigint: JSON cannot carry them
            return value["unserializableValue"]
        return value.get("value")

    def wait_for(self, expression, timeout=5.0, interval=POLL_INTERVAL):
        """Re-evaluates expression until it is truthy and returns that value; WaitTimeout after timeout seconds.

        The expression may throw while the page is still getting ready (e.g. a variable not defined yet): that
        counts as not ready, and the last error is reported if the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            # Checked before evaluating, so the last evaluation happens at or after the deadline.
            expired = time.monotonic() >= deadline
            try:
                value = self.evaluate(expression, timeout=max(deadline - time.monotonic(), 1.0))
                if value:
                    return value
                last = repr(value)
            except JavaScriptError as error:
                last = f"threw {error.text}"
            if expired:
                raise WaitTimeout(f"waited {timeout} s for {expression!r} on {self} to be truthy; last value: {last}\n"
                                  + self.log_text())
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))

    # -- emulation ---------------------------------------------------------------------------------------------

    def set_offline(self, offline):
        """Emulates the network going away (True) or coming back (False) for this page only.

        navigator.onLine follows, the page's `offline`/`online` events fire, and new requests and new
        WebSockets fail while offline (see the module docstring for what this Chromium does)."""
        self.call("Network.enable")
        self.call("Network.emulateNetworkConditions", {
            "offline": bool(offline), "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self.offline = bool(offline)

    def screenshot(self, path=None, width=800, height=600):
        """PNG bytes of the page rendered at width x height CSS pixels (scale 1); also written to path if given.

        The page keeps that viewport size afterwards (the override is not undone)."""
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        data = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        if path is not None:
            with open(path, "wb") as handle:
                handle.write(data)
        return data

    def close(self, timeout=None):
        """Closes the tab and waits until Chromium says the target is gone."""
        if self.detached is None:
            mark = self.event_mark()
            self.browser.call("Target.closeTarget", {"targetId": self.target_id}, timeout=timeout)
            try:
                self.wait_event("Target.detachedFromTarget", since=mark, timeout=timeout or 10.0)
            except CDPError:
                pass  # wait_event raises once `detached` is set by a crash instead: either way the tab is gone
        if self in self.browser.pages:
            self.browser.pages.remove(self)


def _process_table():
    """{pid: (parent pid, start time)} of every process visible in /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        # After the command name: state, ppid, ... ; starttime is field 22 of stat, index 19 here.
        table[int(name)] = (int(fields[1]), fields[19])
    return table


def _descendants(root):
    """{pid: start time} of every process below root, so that a PID reused later is never mistaken for one."""
    table = _process_table()
    children = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, frontier = {}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found[child] = table[child][1]
            frontier.append(child)
    return found


def _kill_and_reap(processes, timeout):
    """SIGKILLs each {pid: start time} that is still that same process, then waits (bounded) until all are gone."""
    deadline = time.monotonic() + timeout
    remaining = dict(processes)
    signalled = set()
    while remaining:
        table = _process_table()
        for pid, started in list(remaining.items()):
            if pid not in table or table[pid][1] != started or _is_zombie(pid):
                del remaining[pid]
            elif pid not in signalled:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                signalled.add(pid)
        if remaining and time.monotonic() > deadline:
            raise CDPError(f"chromium helper processes {sorted(remaining)} still exist {timeout} s after SIGKILL")
        if remaining:
            time.sleep(POLL_INTERVAL)


def _is_zombie(pid):
    """True for a dead process its new parent has not reaped yet (it holds no resources any more)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _describe(remote_object):
    """A console argument (a Runtime.RemoteObject) as text."""
    if "value" in remote_object:
        value = remote_object["value"]
        return value if isinstance(value, str) else json.dumps(value)
    if "unserializableValue" in remote_object:
        return remote_object["unserializableValue"]
    return remote_object.get("description", remote_object.get("type", "?"))


def _exception_text(details):
    """Runtime.ExceptionDetails as text: the thrown value's description (message and stack) when there is one."""
    exception = details.get("exception", {})
    text = (exception.get("description") or _describe(exception)) if exception else ""
    return text or details.get("text", "unknown exception")

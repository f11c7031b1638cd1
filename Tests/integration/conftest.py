"""Shared fixtures: start the real `philote` binary on a kernel-chosen port and stop it by PID."""
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("PHILOTE_BIN", ROOT / ".build" / "debug" / "philote"))
# A sanitizer build (`make sanitize`) reads its options from the environment, which the servers here get only
# what a test gives them: these pass through, so that a report fails the server's exit status.
SANITIZER_ENV = {name: os.environ[name] for name in ("ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS",
                                                      "UBSAN_OPTIONS", "SWIFT_BACKTRACE") if name in os.environ}
# Set by `make sanitize` to "address" or "thread": tests whose bound is memory or time skip themselves there.
SANITIZER = os.environ.get("PHILOTE_SANITIZER", "")
# For a test whose assertion is a memory bound: a sanitizer's shadow memory and quarantine (ASan's alone holds
# about 100 MB of freed blocks) are no part of what the server itself keeps.
memory_bound = pytest.mark.skipif(SANITIZER != "",
                                  reason=f"memory bounds do not hold under the {SANITIZER} sanitizer")


class ServerProcess:
    """One server process. Its stderr goes to a file, so a chatty log can never block it."""

    def __init__(self, args, env):
        self.log = tempfile.NamedTemporaryFile(prefix="philote-", suffix=".log", delete=False)
        full_env = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "HOST": "127.0.0.1", "WORKERS": "2",
                    **SANITIZER_ENV}
        full_env.update({k: str(v) for k, v in env.items()})
        self.process = subprocess.Popen(
            [str(BINARY), *args], env=full_env, stdout=subprocess.DEVNULL, stderr=self.log
        )
        self.pid = self.process.pid
        try:
            self.port = self._wait_for_port()
        except Exception:
            # Never leave a server behind when start-up detection fails.
            self.process.kill()
            self.process.wait()
            raise

    def _wait_for_port(self, limit=20.0):
        # The start-up line carries the bound port (PORT=0 lets the kernel choose a free one).
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            text = self.log_text()
            for line in text.splitlines():
                if "msg=\"philote started\"" in line:
                    address = line.split("address=")[1].split()[0]
                    return int(address.rsplit(":", 1)[1])
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {text}")
            time.sleep(0.02)
        raise RuntimeError("server did not start: " + self.log_text())

    def log_text(self):
        with open(self.log.name, "r", errors="replace") as handle:
            return handle.read()

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        return self._status_kib("VmRSS")

    def peak_rss_kib(self):
        """The most resident memory the process has had (VmHWM)."""
        return self._status_kib("VmHWM")

    def _status_kib(self, field):
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    def stop(self, timeout=15):
        """SIGTERM, then the exit status (the server must exit 0 on its own)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode

    def cleanup(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.unlink(self.log.name)


@pytest.fixture
def raised_fd_limit():
    """Soft RLIMIT_NOFILE raised to the hard limit, which must allow 11,000 descriptors (10,000 client sockets and
    the server's); a server started afterwards inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 11_000
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"hard RLIMIT_NOFILE {hard} is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def start_server():
    """start_server(*args, **env) -> ServerProcess; every server is stopped after the test."""
    started = []

    def start(*args, **env):
        server = ServerProcess(args or ("echo",), env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def echo_server(start_server):
    """An echo server with short timeouts, so timeout tests finish quickly."""
    server = start_server("echo", HANDSHAKE_TIMEOUT="1", CLOSE_TIMEOUT="1", LOGLEVEL="debug")
    yield server
    assert server.stop() == 0, server.log_text()


NODE_PATH = "/usr/share/nodejs"  # where Debian's node-ws installs `ws`


def node_env():
    """The environment for a Node client script: Debian's `ws` on NODE_PATH."""
    env = dict(os.environ)
    env["NODE_PATH"] = os.pathsep.join(p for p in (NODE_PATH, env.get("NODE_PATH")) if p)
    return env


@pytest.fixture(scope="session")
def node():
    """The node binary, checked to find Debian's `ws` module."""
    path = shutil.which("node") or shutil.which("nodejs")
    if path is None:
        pytest.fail("node is not installed (apt-get install nodejs node-ws)")
    check = subprocess.run([path, "-e", "require('ws')"], env=node_env(), capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        pytest.fail("Node's ws module is missing (apt-get install node-ws): " + check.stderr)
    return path


def free_port():
    """A loopback TCP port nothing listens on right now (for a server that must be given one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port, process, limit=10.0):
    """Polls until the port accepts TCP connections (bounded), for servers whose log says nothing at start."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("server never listened")

"""Redis for the broker tests: redis-server processes started (and killed, paused, restarted) by the tests,
or the one `.ci/run` started (PHILOTE_TEST_REDIS_URL), and a minimal RESP client to look inside."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"



class Redis:
    """A redis-server on loopback: TCP on `port`, or a unix socket when `unix` is set."""

    def __init__(self, port=None, unix=False, password=None):
        self.directory = tempfile.mkdtemp(prefix="philote-redis-")
        self.unix_path = os.path.join(self.directory, "redis.sock") if unix else None
        self.port = None if unix else (port or free_port())
        self.password = password
        self.process = None
        self.start()

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        if self.unix_path:
            return f"unix://{auth}{self.unix_path}"
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self):
        args = [REDIS_SERVER, "--save", "", "--appendonly", "no", "--dir", self.directory]
        if self.unix_path:
            args += ["--port", "0", "--unixsocket", self.unix_path]
        else:
            args += ["--bind", "127.0.0.1", "--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        self.log = open(os.path.join(self.directory, "redis.log"), "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == b"PONG":
                    return
            except OSError:
                pass
            assert self.process.poll() is None, "redis-server exited: " + self.log_text()
            assert time.monotonic() < deadline, "redis-server did not answer: " + self.log_text()
            time.sleep(0.02)

    def log_text(self):
        with open(os.path.join(self.directory, "redis.log"), errors="replace") as handle:
            return handle.read()

    def kill(self):
        self.process.kill()
        self.process.wait()
        self.log.close()

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def cleanup(self):
        if self.process and self.process.poll() is None:
            self.resume()
            self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect(self):
        if self.unix_path:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5)
            sock.connect(self.unix_path)
        else:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock

    def command(self, *args):
        with self.connect() as sock:
            stream = sock.makefile("rb")
            if self.password:
                sock.sendall(encode(["AUTH", self.password]))
                read_reply(stream)
            sock.sendall(encode(args))
            return read_reply(stream)

    def channels(self, pattern="*"):
        return sorted(name.decode() for name in self.command("PUBSUB", "CHANNELS", pattern))

    def subscribers(self, channel):
        return self.command("PUBSUB", "NUMSUB", channel)[1]


class SharedRedis:
    """The Redis `.ci/run` started, when there is one: only looked at, never stopped."""

    def __init__(self, url):
        rest = url.split("://", 1)[1]
        self.port = int(rest.rsplit(":", 1)[1].split("/")[0])
        self.unix_path, self.password, self.url = None, None, url

    connect = Redis.connect
    command = Redis.command
    channels = Redis.channels
    subscribers = Redis.subscribers


def encode(args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(out)


def read_reply(stream):
    line = stream.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        data = stream.read(length + 2)
        return data[:-2]
    if kind == b"*":
        return [read_reply(stream) for _ in range(int(rest))]
    raise RuntimeError(f"bad reply {line!r}")


def wait_until(condition, what, limit=10.0):
    """Polls `condition` until it holds: for state that other processes reach in their own time (a
    SUBSCRIBE sent by a server, a reconnect), bounded, never a guessed sleep."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def unique_prefix():
    """A REDIS_PREFIX per test, so tests sharing one Redis never see each other's channels."""
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture
def redis_server():
    """redis_server(**options) -> Redis; each is killed after the test."""
    started = []

    def start(**options):
        instance = Redis(**options)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.cleanup()


@pytest.fixture
def shared_redis(redis_server):
    url = os.environ.get("PHILOTE_TEST_REDIS_URL")
    return SharedRedis(url) if url else redis_server()

"""Echo interoperability with a real client from outside this project: Node's `ws` (Debian's node-ws).

node_echo_client.js runs the whole matrix (text and binary, 0 B to 1 MiB, fragmented, ping/pong, close 1000)
against `philote echo` and prints one JSON summary line; it exits 0 only when every case passed.
"""
import json
import subprocess
from pathlib import Path

import pytest
from conftest import node_env

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node_echo_client.js"
MAX_MESSAGE_SIZE = 2 * 1024 * 1024

EXPECTED_CASES = (
    [f"{kind}-{size}" for size in (0, 1, 125, 126, 65535, 65536, 1048576) for kind in ("text", "binary")]
    + ["text-fragmented", "binary-fragmented", "text-fragmented-split-characters", "binary-fragmented-500",
       "ping-empty", "ping-125", "ping-between-fragments", "pipelined-200", "close-1000"]
)




def test_node_ws_echo_matrix(node, start_server):
    server = start_server("echo", MAX_MESSAGE_SIZE=str(MAX_MESSAGE_SIZE), CLOSE_TIMEOUT="2")
    try:
        run = subprocess.run([node, str(SCRIPT), f"ws://127.0.0.1:{server.port}/"], env=node_env(),
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"node client timed out; output so far: {error.stdout!r} {error.stderr!r}")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON summary (exit {run.returncode}): {run.stdout!r} {run.stderr!r}"
    summary = json.loads(lines[-1])
    failures = [r for r in summary.get("results", []) if not r["ok"]]
    assert run.returncode == 0 and summary["ok"], json.dumps(
        {"exit": run.returncode, "error": summary.get("error"), "socketError": summary.get("socketError"),
         "failures": failures, "stderr": run.stderr[-2000:]}, indent=1)
    assert [r["name"] for r in summary["results"]] == EXPECTED_CASES
    assert summary["failed"] == 0 and summary["passed"] == len(EXPECTED_CASES)
    assert summary["extensions"] == []  # no permessage-deflate negotiated
    assert summary["closeCode"] == 1000
    assert server.stop() == 0, server.log_text()

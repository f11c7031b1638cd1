"""WORKERS defaults to the CPUs the process may use (README "Configuration"): its affinity mask here (`taskset`);
the cgroup quota rule is unit-tested over a fake cgroup tree (AvailableCPUsTests), as no test may change this
machine's cgroups."""
import os
import shutil
import subprocess

import pytest

from conftest import BINARY
from tokens import SECRET


def started_workers(prefix, env):
    """The workers= of the start-up line of a server started under `prefix` (e.g. taskset), then stopped."""
    process = subprocess.Popen([*prefix, str(BINARY)], env={"PATH": os.environ.get("PATH", ""), "SECRET": SECRET,
                                                             "PORT": "0", "HOST": "127.0.0.1", **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if "philote started" in line:
                return int(line.split("workers=")[1].split()[0])
        pytest.fail("no start-up line")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_workers_follow_the_affinity_mask_unless_set():
    assert started_workers(["taskset", "-c", "0"], {}) == 1
    assert started_workers(["taskset", "-c", "0"], {"WORKERS": "3"}) == 3
    assert started_workers([], {}) == len(os.sched_getaffinity(0))

"""Headless Chromium running Tests/browser/exchange.html against a server: two sockets publish to each other."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

PAGE = Path(__file__).resolve().parents[1] / "browser" / "exchange.html"


def chromium_exchange(port, token, channel, scheme="ws", host="127.0.0.1", flags=()):
    """The page's outcome line: "ok ext_a=... ext_b=..." or "fail <why>"."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")
    query = urlencode({"port": port, "token": token, "channel": channel, "scheme": scheme, "host": host},
                      quote_via=quote)
    with tempfile.TemporaryDirectory(prefix="philote-chromium-") as profile:
        try:
            done = subprocess.run(
                ["timeout", "30", chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                 "--enable-logging=stderr", "--v=0", *flags, f"file://{PAGE}?{query}"],
                capture_output=True, text=True, timeout=40)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"chromium did not exit: {error.stderr!r}")
    output = done.stdout + done.stderr
    results = re.findall(r"WSRESULT ([^\"]*)", output)
    assert len(results) == 1, output[-3000:]
    return results[0].strip()

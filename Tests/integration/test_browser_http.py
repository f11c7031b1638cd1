"""What the server serves to browsers (README "From the browser"): the module at /philote.js and its typings, with
their caching and CORS headers; GET /api/token, through which a page learns why an upgrade was refused; and
`philote demo`'s page and token endpoint, which exist only in demo mode and only with the development secret."""
import json
import time
from pathlib import Path

import pytest

from pubsub_helpers import connect, close_politely, http_request, publish, recv_delivery
from test_config_and_shutdown import run_binary
from test_operations import metric, parse_metrics, raw_request, scrape
from tokens import SECRET, make_token, token

ROOT = Path(__file__).resolve().parents[2]
DEMO_SECRET = "development-secret-do-not-use-in-production"


@pytest.fixture
def server(start_server):
    process = start_server("serve", SECRET=SECRET, METRICS_PUBLIC="true")
    yield process
    assert process.stop() == 0, process.log_text()[-3000:]


@pytest.mark.parametrize("path, file, content_type", [
    ("/philote.js", "philote.js", "text/javascript; charset=utf-8"),
    ("/philote.d.ts", "philote.d.ts", "application/typescript; charset=utf-8"),
])
def test_the_module_and_its_typings_are_served_as_committed(server, path, file, content_type):
    status, headers, body = http_request(server.port, "GET", path)
    assert status == 200
    assert body == (ROOT / "web" / file).read_bytes()
    assert headers["content-type"] == content_type
    assert headers["access-control-allow-origin"] == "*"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["x-content-type-options"] == "nosniff"
    etag = headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 18
    # Revalidation: the same tag (alone, in a list, weak, or `*`) gets 304 with no body; another gets the file.
    for value in (etag, f'"0000000000000000", {etag}', "W/" + etag, "*"):
        status, headers304, body = http_request(server.port, "GET", path, [("If-None-Match", value)])
        assert (status, body) == (304, b""), value
        assert headers304["etag"] == etag and headers304["access-control-allow-origin"] == "*"
    status, _, body = http_request(server.port, "GET", path, [("If-None-Match", '"0000000000000000"')])
    assert status == 200 and body == (ROOT / "web" / file).read_bytes()
    status, headers, _ = raw_request(server.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), no_body=True)
    assert status == 200 and int(headers["content-length"]) == len((ROOT / "web" / file).read_bytes())
    status, headers, _ = http_request(server.port, "POST", path)
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_an_upgrade_on_the_module_path_is_still_a_client_connection(server):
    """PROTOCOL.md: a WebSocket upgrade on any path is a client connection."""
    reader = connect(server.port, token(read=["c"]), path="/philote.js")
    writer = connect(server.port, token(write=["c"]), path="/demo")
    publish(writer, "c", "x")
    assert recv_delivery(reader)[1:] == ("c", "x")
    close_politely(reader)
    close_politely(writer)


def test_token_check_says_what_an_upgrade_would(server):
    exp = int(time.time()) + 600
    good = token(read=["a", "b"], write=["b"], exp=exp)
    for headers, path in (((), "/api/token?auth=" + good), ((("Authorization", "Bearer " + good),), "/api/token")):
        status, response_headers, body = http_request(server.port, "GET", path, headers)
        assert status == 200, body
        assert json.loads(body) == {"exp": exp, "read": ["a", "b"], "write": ["b"], "api": False}
        assert response_headers["access-control-allow-origin"] == "*"
        assert response_headers["cache-control"] == "no-store"
    status, _, body = http_request(server.port, "GET", "/api/token?auth=" + token(api=True))
    assert json.loads(body) == {"exp": None, "read": [], "write": [], "api": True}
    refusals = [
        ("/api/token", "missing token"),
        ("/api/token?auth=" + token(read=["a"], exp=int(time.time()) - 5), "token expired"),
        ("/api/token?auth=" + token(read=["a"], secret="other"), "invalid token signature"),
        ("/api/token?auth=" + make_token({"read": "a"}), "invalid claim"),
    ]
    for path, reason in refusals:
        status, headers, body = http_request(server.port, "GET", path)
        assert status == 401, (path, body)
        assert json.loads(body)["error"].startswith(reason), body
        assert headers["access-control-allow-origin"] == "*"
    status, headers, _ = http_request(server.port, "POST", "/api/token?auth=" + good)
    assert status == 405 and headers["allow"] == "GET"
    samples = parse_metrics(scrape(server.port, headers=()))
    assert metric(samples, "philote_auth_failures_total", reason="expired") == 1
    assert metric(samples, "philote_auth_failures_total", reason="missing") == 1


def test_the_demo_does_not_exist_in_normal_serving(server):
    for path in ("/demo", "/demo/", "/demo/token", "/demo/token?name=x"):
        status, _, _ = http_request(server.port, "GET", path)
        assert status != 200, path
        status, _, _ = http_request(server.port, "GET", path, [("Authorization", "Bearer " + token(api=True))])
        assert status != 200, path


@pytest.mark.parametrize("secret", ["a-real-secret", SECRET])
def test_the_demo_refuses_a_real_secret(secret):
    status, output = run_binary({"SECRET": secret}, ["demo"])
    assert status == 2
    assert "only with the development secret" in output and secret not in output


def test_the_demo_serves_its_page_and_tokens_for_its_channel(start_server):
    demo = start_server("demo")
    status, headers, body = http_request(demo.port, "GET", "/demo")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (ROOT / "web" / "demo.html").read_bytes()
    assert b"/philote.js" in body
    status, headers, body = http_request(demo.port, "GET", "/demo/token?name=ada")
    assert status == 200 and headers["cache-control"] == "no-store"
    minted = json.loads(body)["token"]
    status, _, body = http_request(demo.port, "GET", "/api/token?auth=" + minted)
    claims = json.loads(body)
    assert (claims["read"], claims["write"], claims["api"]) == (["chat"], ["chat"], False)
    assert 55 <= claims["exp"] - time.time() <= 61
    # The token works, and the demo keeps history (so a reloaded page catches up).
    reader = connect(demo.port, minted)
    writer = connect(demo.port, json.loads(http_request(demo.port, "GET", "/demo/token")[2])["token"])
    publish(writer, "chat", "hi")
    assert recv_delivery(reader)[1:] == ("chat", "hi")
    status, _, body = http_request(demo.port, "GET", "/api/info", [("Authorization", "Bearer " + make_token(
        {"api": True}, secret=DEMO_SECRET))])
    assert status == 200 and json.loads(body)["config"]["history_size"] == 1000, body
    assert "/demo" in demo.log_text()
    close_politely(reader)
    close_politely(writer)
    assert demo.stop() == 0

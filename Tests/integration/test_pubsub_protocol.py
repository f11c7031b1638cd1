"""PROTOCOL.md, row by row and bullet by bullet, against the real `philote serve` over raw sockets.

Each section of this file follows a section of PROTOCOL.md. "Nothing arrives" is shown without sleeping:
where one publisher can send a sentinel after the message that must not arrive, per-publisher ordering makes
the sentinel the first thing the subscriber sees; otherwise a short bounded read is followed by a positive
control on the same connection.
"""
import json
import os
import re
import socket
import struct
import time
from urllib.parse import quote

import pytest

from conftest import ServerProcess
from pubsub_helpers import (BINARY, CLOSE, TEXT, UUID4, Reader, attempt, close_politely, connect, expect_silence,
                            frame, http_request, message_bytes, publish, recv_delivery, recv_error,
                            recv_text, refused, send_raw)
from tokens import (SECRET, alg_none, asymmetric_header, b64url, b64url_decode, distinctive, flipped_signature,
                    make_token, now, sign, tampered_payload, token)
from wsraw import Closed, RawClient, upgrade_request


@pytest.fixture(scope="module")
def shared():
    """One pub/sub server for the tests that need no special configuration (each uses its own channels)."""
    server = ServerProcess(("serve",), {"SECRET": SECRET, "LOGLEVEL": "debug", "CLOSE_TIMEOUT": "1"})
    yield server
    try:
        assert server.stop() == 0, server.log_text()
    finally:
        server.cleanup()


@pytest.fixture
def port(shared):
    assert shared.process.poll() is None, "the shared server died: " + shared.log_text()[-3000:]
    return shared.port


@pytest.fixture
def ch(request):
    """ch("room") -> a channel name unique to this test."""
    suffix = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)[:60] + "-" + os.urandom(4).hex()
    return lambda name="room": f"{name}@{suffix}"


def serve(start_server, **env):
    return start_server("serve", SECRET=SECRET, CLOSE_TIMEOUT="1", **env)


def assert_unauthorized(status, headers, body, *hidden):
    """HTTP 401, a short plain-text reason, no upgrade, and none of `hidden` (tokens) in the answer."""
    assert status == 401, (status, body)
    assert headers.get("content-type", "").lower().startswith("text/plain"), headers
    assert "sec-websocket-accept" not in headers
    text = body.decode("utf-8")
    assert text.strip(), "empty reason"
    assert len(body) <= 200, body
    for value in hidden:
        for part in [value] + [p for p in value.split(".") if len(p) >= 8]:
            assert part not in text, f"the 401 body contains (part of) the token: {text!r}"


def refused_401(port, tok, how="bearer", **kwargs):
    status, headers, body = refused(port, tok, how, **kwargs)
    assert_unauthorized(status, headers, body, *([tok] if tok else []))
    return body.decode()


def next_delivery(client, channel, data):
    """The next message the client receives is the delivery of (channel, data); returns its issuer."""
    issuer, got_channel, got_data = recv_delivery(client)
    assert (got_channel, got_data) == (channel, data), f"got {(got_channel, got_data)}, expected {(channel, data)}"
    return issuer


def pair(port, *channels):
    """A publisher and a subscriber that both read and write `channels`."""
    tok = token(read=channels, write=channels)
    return connect(port, tok), connect(port, tok)


def works(port, tok, how="bearer", path="/"):
    """The token is accepted, and the connection is a real pub/sub client: it receives what another publishes."""
    claims = json.loads(base64_payload(tok))
    channel = (claims.get("read") or [None])[0]
    client = connect(port, tok, how, path)
    if channel is not None:
        other = connect(port, token(write=[channel]))
        publish(other, channel, "proof")
        next_delivery(client, channel, "proof")
        close_politely(other)
    close_politely(client)


def base64_payload(tok):
    return b64url_decode(tok.split(".")[1])


# ======================================================================================================
# Connecting
# ======================================================================================================

# --- URL: a WebSocket upgrade on any path is a client connection ---------------------------------------


@pytest.mark.parametrize("path", ["/", "/ws", "/a/b/c", "/philote?x=1&y=2", "/%7Euser/", "/channels/room-1"])
def test_upgrade_on_any_path_is_a_client_connection(port, ch, path):
    channel = ch()
    subscriber = connect(port, token(read=[channel]), path=path)
    publisher = connect(port, token(write=[channel]), path="/some/other/path")
    publish(publisher, channel, "via " + path)
    next_delivery(subscriber, channel, "via " + path)
    close_politely(publisher)
    close_politely(subscriber)


# --- token location --------------------------------------------------------------------------------------


def test_token_in_authorization_header_with_bearer(port, ch):
    works(port, token(read=[ch()]), how="bearer")


def test_token_in_authorization_header_raw(port, ch):
    works(port, token(read=[ch()]), how="raw")


@pytest.mark.parametrize("template", ["Bearer {}", "Bearer   {}   ", "Bearer\t{}\t", "Bearer{}", "  {}  ",
                                      "Bearer \t {}"])
def test_bearer_is_stripped_and_whitespace_trimmed(port, ch, template):
    channel = ch()
    tok = token(read=[channel])
    client = connect(port, None, authorization=template.format(tok))
    other = connect(port, token(write=[channel]))
    publish(other, channel, "trimmed")
    next_delivery(client, channel, "trimmed")
    close_politely(other)
    close_politely(client)


@pytest.mark.parametrize("prefix", ["bearer ", "BEARER ", "Token ", "Basic "])
def test_bearer_prefix_is_case_sensitive_and_nothing_else_is_stripped(port, ch, prefix):
    tok = token(read=[ch()])
    status, headers, body = refused(port, None, authorization=prefix + tok)
    assert_unauthorized(status, headers, body, tok)


def test_token_in_auth_query_parameter(port, ch):
    works(port, token(read=[ch()]), how="query")


def test_auth_query_parameter_is_url_decoded(port, ch):
    channel = ch()
    tok = token(read=[channel])
    encoded = "".join(f"%{ord(c):02X}" for c in tok)  # every character percent-encoded
    subscriber = connect(port, None, path=f"/?x=1&auth={encoded}&y=2")
    publisher = connect(port, token(write=[channel]))
    publish(publisher, channel, "decoded")
    next_delivery(subscriber, channel, "decoded")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("query, accepted", [
    ("auth={t}", True), ("a=1&auth={t}&b=2", True), ("%61uth={t}", True), ("auth={t}&auth=garbage", True),
    ("AUTH={t}", False), ("xauth={t}", False), ("auth_={t}", False), ("token={t}", False), ("auth=%zz{t}", False),
])
def test_auth_query_parameter_name_and_value(port, ch, query, accepted):
    channel = ch()
    tok = token(read=[channel])
    path = "/?" + query.format(t=quote(tok, safe=""))
    if accepted:
        subscriber = connect(port, None, path=path)
        publisher = connect(port, token(write=[channel]))
        publish(publisher, channel, "by query")
        next_delivery(subscriber, channel, "by query")
        close_politely(publisher)
        close_politely(subscriber)
    else:
        status, headers, body = refused(port, None, path=path)
        assert_unauthorized(status, headers, body, tok)


def test_header_is_used_before_the_query_parameter(port, ch):
    from_header, from_query = ch("header"), ch("query")
    header_token, query_token = token(read=[from_header]), token(read=[from_query])
    client = connect(port, header_token, path="/?auth=" + quote(query_token, safe=""))
    publisher = connect(port, token(write=[from_header, from_query]))
    publish(publisher, from_query, "query permissions")  # must not arrive: the header's token is in force
    publish(publisher, from_header, "header permissions")
    next_delivery(client, from_header, "header permissions")
    close_politely(publisher)
    close_politely(client)


@pytest.mark.parametrize("value", ["", "   ", "Bearer", "Bearer   ", "Bearer\t"])
def test_header_yielding_nothing_falls_back_to_query(port, ch, value):
    channel = ch()
    tok = token(read=[channel])
    client = connect(port, None, authorization=value, path="/?auth=" + quote(tok, safe=""))
    publisher = connect(port, token(write=[channel]))
    publish(publisher, channel, "fallback")
    next_delivery(client, channel, "fallback")
    close_politely(publisher)
    close_politely(client)


@pytest.mark.parametrize("bad", ["garbage", "Bearer garbage", "bearer {good}", "Bearer {expired}",
                                 "Bearer {wrong_secret}", "Bearer {none}"])
def test_bad_header_never_falls_back_to_query(port, ch, bad):
    """Fixed on purpose: a bad header is a 401 even with a valid token in `auth`."""
    channel = ch()
    good = token(read=[channel])
    header = bad.format(good=good, expired=token(read=[channel], exp=now() - 10),
                        wrong_secret=token(read=[channel], secret="another-secret"),
                        none=alg_none({"read": [channel]}))
    status, headers, body = refused(port, None, authorization=header, path="/?auth=" + quote(good, safe=""))
    assert_unauthorized(status, headers, body, good)


def test_no_token_anywhere_is_401(port):
    refused_401(port, None)
    refused_401(port, None, path="/?auth=")
    refused_401(port, None, path="/?other=1")


# --- token: HMAC only ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_are_accepted(port, ch, alg):
    works(port, token(read=[ch()], alg=alg))


@pytest.mark.parametrize("variant", ["unsigned", "hmac-signature", "None", "NONE"])
def test_alg_none_is_refused(port, ch, variant):
    claims = {"read": [ch()], "write": [ch()]}
    if variant == "unsigned":
        tok = alg_none(claims)
    elif variant == "hmac-signature":
        # a valid HMAC-SHA256 over this `alg: none` header: still refused, alg decides
        tok = make_token(claims, header={"alg": "none", "typ": "JWT"}, alg="HS256")
    else:
        tok = make_token(claims, header={"alg": variant, "typ": "JWT"}, signature=b"")
    refused_401(port, tok)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"])
def test_asymmetric_algorithms_are_refused(port, ch, alg):
    refused_401(port, asymmetric_header({"read": [ch()]}, alg))


@pytest.mark.parametrize("header", [{"typ": "JWT"}, {"alg": "hs256"}, {"alg": "HS256 "}, {"alg": None},
                                    {"alg": ["HS256"]}, {"alg": "HS1"}])
def test_missing_or_unknown_alg_is_refused(port, ch, header):
    # Signed with HMAC-SHA256 over this very header: only `alg` is wrong.
    refused_401(port, make_token({"read": [ch()]}, header=header, alg="HS256"))


@pytest.mark.parametrize("header", [{"alg": "HS256"}, {"typ": "JWT", "alg": "HS256"}, {"alg": "HS384", "kid": "k1"},
                                    {"alg": "HS512", "typ": "at+jwt", "cty": "x"}])
def test_other_header_fields_do_not_matter(port, ch, header):
    claims = {"read": [ch()]}
    works(port, make_token(claims, header=header, alg=header["alg"]))


def test_alg_not_matching_the_signature_is_refused(port, ch):
    claims = {"read": [ch()]}
    header = b64url(b'{"alg":"HS512","typ":"JWT"}')
    payload = b64url(json.dumps(claims).encode())
    tok = f"{header}.{payload}." + b64url(sign(f"{header}.{payload}", SECRET, "HS256"))
    refused_401(port, tok)


@pytest.mark.parametrize("header", [b"[" * 1500 + b"]" * 1500, b'{"alg":' + b"[" * 1500 + b"]" * 1500 + b"}",
                                    b'{"alg":"HS256","x":"' + b"\\" * 1000 + b'"}', b"\xff\xfe", b""],
                         ids=["nested-array", "nested-alg", "backslashes", "not-utf8", "empty"])
def test_hostile_token_header_before_the_signature_check_is_a_401(port, ch, header):
    """The header is read before the signature is checked, so anyone can send these: 401, never a crash."""
    tok = b64url(header) + "." + b64url(b'{"read":["x"]}') + "." + b64url(b"sig")
    refused_401(port, tok)
    works(port, token(read=[ch()]))


def test_wrong_secret_is_refused(port, ch):
    refused_401(port, token(read=[ch()], secret="not-the-server-secret"))


def test_tampered_payload_is_refused(port, ch):
    tok = tampered_payload({"read": [ch()]}, {"read": [ch()], "write": [ch()], "api": True})
    refused_401(port, tok)


def test_flipped_signature_bit_is_refused(port, ch):
    refused_401(port, flipped_signature({"read": [ch()]}))


def test_truncated_signature_is_refused(port, ch):
    tok = token(read=[ch()])
    refused_401(port, tok[:-4])
    refused_401(port, tok.rsplit(".", 1)[0] + ".")


@pytest.mark.parametrize("tok", [
    "abc", "a.b", "a.b.c.d", "..", "...", "!!!.???.***",
    b64url(b"not json") + "." + b64url(b"{}") + ".c2ln",
    b64url(b"[1,2]") + "." + b64url(b"{}") + ".c2ln",
])
def test_malformed_tokens_are_refused(port, tok):
    refused_401(port, tok)


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'"string"', b"null", b'{"read":["a"]', b"{} x"])
def test_signed_payload_that_is_not_a_json_object_is_refused(port, payload):
    refused_401(port, make_token(payload))


# --- claims -------------------------------------------------------------------------------------------


def test_read_claim_receives_but_does_not_grant_write(port, ch):
    channel = ch()
    reader = connect(port, token(read=[channel]))
    writer = connect(port, token(write=[channel]))
    publish(reader, channel, "from reader")
    reply, raw = recv_error(reader)
    assert reply == {"error": "write not permitted", "channel": channel}
    publish(writer, channel, "from writer")
    next_delivery(reader, channel, "from writer")
    close_politely(reader)
    close_politely(writer)


def test_write_claim_publishes_but_does_not_grant_read(port, ch):
    channel, control = ch(), ch("control")
    writer_only = connect(port, token(read=[control], write=[channel]))
    reader = connect(port, token(read=[channel]))
    other_writer = connect(port, token(write=[channel, control]))
    publish(writer_only, channel, "published")
    next_delivery(reader, channel, "published")
    publish(other_writer, channel, "must not reach a write-only connection")
    publish(other_writer, control, "control")
    next_delivery(writer_only, control, "control")
    for client in (writer_only, reader, other_writer):
        close_politely(client)


@pytest.mark.parametrize("claims", [{}, {"read": None, "write": None}, {"read": [], "write": []},
                                    {"read": None}, {"write": None, "api": None}])
def test_missing_or_null_lists_mean_empty(port, ch, claims):
    channel = ch()
    empty = connect(port, make_token(claims))
    reader = connect(port, token(read=[channel]))
    writer = connect(port, token(write=[channel]))
    publish(writer, channel, "for readers only")
    next_delivery(reader, channel, "for readers only")
    expect_silence(empty, 0.2)
    publish(empty, channel, "no write permission")
    reply, _ = recv_error(empty)  # positive control: the connection is alive and answers
    assert reply == {"error": "write not permitted", "channel": channel}
    for client in (empty, reader, writer):
        close_politely(client)


def test_other_claims_are_ignored(port, ch):
    channel = ch()
    works(port, make_token({"read": [channel], "sub": "user-1", "iss": "backend", "aud": ["x", "y"],
                            "jti": 17, "nested": {"read": "not a list"}, "Read": 5, "scope": None}))


@pytest.mark.parametrize("claim, value", [
    ("read", "room"), ("read", [1]), ("read", [["room"]]), ("read", {"room": True}), ("read", ["room", None]),
    ("read", True), ("write", "room"), ("write", [1.5]), ("write", {}), ("write", 0),
    ("api", "true"), ("api", 1), ("api", []), ("api", {}),
    ("exp", "9999999999"), ("exp", True), ("exp", [9999999999]), ("exp", {}),
    ("nbf", "0"), ("nbf", False), ("iat", "0"), ("iat", [0]),
])
def test_claim_of_the_wrong_type_is_refused(port, ch, claim, value):
    claims = {"read": [ch()], "write": [ch()], "exp": now() + 3600}
    claims[claim] = value
    refused_401(port, make_token(claims))


def test_api_claim_false_and_true_are_booleans(port, ch):
    works(port, token(read=[ch()], api=False))
    works(port, token(read=[ch()], api=True))


def test_time_claims_in_integer_seconds_are_accepted(port, ch):
    t = now()
    works(port, token(read=[ch()], exp=t + 3600, nbf=t - 1, iat=t - 1))
    works(port, token(read=[ch()], exp=t + 3600, nbf=t - 3600, iat=t - 3600))


@pytest.mark.parametrize("delta", [-3600, -2, 0])
def test_expired_token_is_refused_with_no_leeway(port, ch, delta):
    body = refused_401(port, token(read=[ch()], exp=now() + delta))
    assert "expired" in body.lower(), body


@pytest.mark.parametrize("delta", [3600, 3])
def test_token_not_valid_before_nbf_is_refused_with_no_leeway(port, ch, delta):
    refused_401(port, token(read=[ch()], nbf=now() + delta))


@pytest.mark.parametrize("delta", [3600, 3])
def test_token_issued_in_the_future_is_refused_with_no_leeway(port, ch, delta):
    refused_401(port, token(read=[ch()], iat=now() + delta))


HUGE = 5000


def test_huge_claim_lists_work(start_server):
    """5,000 channels in each list: the token is ~200 KB, so the request-head limit is raised to hold it."""
    server = serve(start_server, MAX_HEADER_SIZE=str(1 << 20))
    channels = [f"huge-channel-{i:05d}" for i in range(HUGE)]
    big = token(read=channels, write=channels)
    assert len(big) > 100_000
    subscriber = connect(server.port, big)
    publisher = connect(server.port, big)
    for channel in (channels[0], channels[HUGE // 2], channels[-1]):
        publish(publisher, channel, "to " + channel)
        next_delivery(subscriber, channel, "to " + channel)
    publish(publisher, "huge-channel-99999", "not in the list")
    reply, _ = recv_error(publisher)
    assert reply == {"error": "write not permitted", "channel": "huge-channel-99999"}
    # Many connections sharing the huge token still connect and work.
    more = [connect(server.port, big) for _ in range(4)]
    publish(publisher, channels[123], "fan-out")
    for client in more + [subscriber]:
        next_delivery(client, channels[123], "fan-out")
    for client in more + [subscriber, publisher]:
        close_politely(client)
    assert server.stop() == 0, server.log_text()


def test_huge_token_over_the_header_limit_is_a_clear_error(port, ch):
    channels = [f"huge-{i:05d}" for i in range(HUGE)]
    status, _, _ = refused(port, token(read=channels, write=channels))
    assert status == 431
    works(port, token(read=[ch()]))  # and the server carries on


# --- expiry while connected (fixed) ---------------------------------------------------------------------


def test_token_expiry_while_connected_closes_4001(start_server):
    server = serve(start_server, MAX_CONNECTIONS="3", WORKERS="2")
    port, channel = server.port, "expiring"
    exp = now() + 2
    expiring = connect(port, token(read=[channel], exp=exp))
    lasting = connect(port, token(read=[channel]))
    publisher = connect(port, token(write=[channel]))
    publish(publisher, channel, "before expiry")
    next_delivery(expiring, channel, "before expiry")
    next_delivery(lasting, channel, "before expiry")
    expiring.sock.settimeout(6)
    reason = expiring.expect_close(4001)
    closed_at = time.time()
    assert reason == "token expired"
    assert closed_at >= exp - 0.05, f"closed {exp - closed_at:.3f} s before exp"
    assert closed_at <= exp + 1.5, f"closed {closed_at - exp:.3f} s after exp"
    expiring.close()
    publish(publisher, channel, "after expiry")
    next_delivery(lasting, channel, "after expiry")
    # The expired connection gave back its place (MAX_CONNECTIONS=3).
    replacement = connect_retrying(port, token(read=[channel]))
    publish(publisher, channel, "to the replacement")
    next_delivery(replacement, channel, "to the replacement")
    for client in (publisher, lasting, replacement):
        close_politely(client)
    assert server.stop() == 0, server.log_text()


def test_a_fractional_exp_is_honoured_to_the_fraction(start_server):
    """exp = now + 1.7 s with its fraction: accepted, and closed with 4001 no earlier than exp (the fraction was
    dropped, so tokens were refused or closed up to a second early)."""
    server = serve(start_server, WORKERS="1")
    exp = time.time() + 1.7
    client = connect(server.port, token(read=["fractional"], exp=exp))
    client.sock.settimeout(6)
    assert client.expect_close(4001) == "token expired"
    closed_at = time.time()
    # The server sends its close at or after exp, and the client reads it after that, on the same clock.
    assert closed_at >= exp, f"closed {exp - closed_at:.3f} s before exp"
    client.close()
    assert server.stop() == 0, server.log_text()


def test_expiry_timers_are_per_connection(port, ch):
    """Two connections with different exp: each is closed at its own time, the earlier first."""
    channel = ch()
    t = now()
    early = connect(port, token(read=[channel], exp=t + 2))
    late = connect(port, token(read=[channel], exp=t + 3))
    early.sock.settimeout(6)
    early.expect_close(4001)
    first = time.time()
    late.sock.settimeout(6)
    late.expect_close(4001)
    second = time.time()
    assert t + 2 - 0.05 <= first < t + 3, (first - t)
    assert second >= t + 3 - 0.05, (second - t)
    early.close()
    late.close()


# --- auth failure -------------------------------------------------------------------------------------


def test_auth_failure_is_401_with_a_short_plain_text_reason_and_no_upgrade(port, ch):
    secret_ish = distinctive("claimvalue")
    tok = token(read=[secret_ish], secret="wrong")
    status, headers, body, client = attempt(port, tok)
    try:
        assert_unauthorized(status, headers, body, tok)
        assert secret_ish not in body.decode()
        # No upgrade happened: the server closes the connection instead of reading frames.
        client.send_frame(TEXT, message_bytes(secret_ish, "x"))
        client.expect_eof()
    finally:
        client.close()
    status, headers, body = refused(port, None, path="/?auth=" + quote(tok, safe=""))
    assert_unauthorized(status, headers, body, tok)


# --- channel names --------------------------------------------------------------------------------------


def test_channel_match_is_exact_and_case_sensitive(port, ch):
    channel = ch("Room")
    near = [channel.lower(), channel.upper(), channel + " ", " " + channel, channel[:-1], channel + "x"]
    subscriber = connect(port, token(read=[channel]))
    publisher = connect(port, token(write=[channel] + near))
    for other in near:
        publish(publisher, other, "wrong channel " + repr(other))
    publish(publisher, channel, "exact")
    next_delivery(subscriber, channel, "exact")
    close_politely(publisher)
    close_politely(subscriber)


def test_unicode_channel_names_match_by_exact_string(port, ch):
    composed, decomposed = ch("caf\u00e9"), ch("cafe\u0301")
    subscriber = connect(port, token(read=[composed]))
    publisher = connect(port, token(write=[composed, decomposed]))
    publish(publisher, decomposed, "decomposed")
    publish(publisher, composed, "composed")
    next_delivery(subscriber, composed, "composed")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("pattern", ["*", "#", "room.*", "room/#", "room.>", ".*", "room%"])
def test_no_wildcards(port, ch, pattern):
    literal = ch(pattern)
    concrete = literal.replace("*", "x").replace("#", "x").replace(">", "x").replace("%", "x")
    subscriber = connect(port, token(read=[literal]))
    publisher = connect(port, token(write=[literal, concrete, ch("room.1"), ch("room/1")]))
    for other in (concrete, ch("room.1"), ch("room/1")):
        publish(publisher, other, "matched by a pattern?")
    publish(publisher, literal, "literal")
    next_delivery(subscriber, literal, "literal")
    close_politely(publisher)
    close_politely(subscriber)


def test_empty_string_is_a_legal_channel_name(start_server):
    server = serve(start_server)  # its own server: every test would share the channel ""
    port = server.port
    subscriber = connect(port, token(read=[""]))
    publisher = connect(port, token(write=[""]))
    publish(publisher, "", "to the empty channel")
    payload = recv_text(subscriber)
    assert json.loads(payload) == {"issuer": json.loads(payload)["issuer"], "data": "to the empty channel"}
    assert b'"channel"' not in payload  # an empty channel is omitted
    # An absent or null channel key is the empty channel too.
    send_raw(publisher, '{"data":"no channel key"}')
    assert recv_delivery(subscriber)[1:] == ("", "no channel key")
    send_raw(publisher, '{"channel":null,"data":"null channel"}')
    assert recv_delivery(subscriber)[1:] == ("", "null channel")
    # Without "" in its write list, a connection may not publish to it.
    other = connect(port, token(write=["x"]))
    publish(other, "", "denied")
    reply, raw = recv_error(other)
    assert reply == {"error": "write not permitted", "channel": ""}
    assert raw == b'{"error":"write not permitted","channel":""}\n'
    for client in (subscriber, publisher, other):
        close_politely(client)
    assert server.stop() == 0, server.log_text()


# --- MAX_CONNECTIONS (503 before upgrade, never registered) ---------------------------------------------


def connect_retrying(port, tok, limit=5.0):
    """Connects, retrying while the server answers 503 (a closed slot is freed when the server has seen the
    close; the retry loop polls for that, bounded by `limit`)."""
    deadline = time.monotonic() + limit
    while True:
        status, headers, body, client = attempt(port, tok)
        if status == 101:
            return client
        client.close()
        assert status == 503, status
        assert time.monotonic() < deadline, "the closed connection's slot was never freed"
        time.sleep(0.02)


def test_max_connections_refuses_with_503_before_upgrade(start_server):
    server = serve(start_server, MAX_CONNECTIONS="3", WORKERS="2")
    channel = "limited"
    tok = token(read=[channel], write=[channel], api=True)
    clients = [connect(server.port, tok) for _ in range(3)]
    for _ in range(10):
        status, headers, body = refused(server.port, tok)
        assert status == 503, (status, body)
        assert "sec-websocket-accept" not in headers
        assert tok not in body.decode(errors="replace")
    # The refused attempts were never registered: the count is 3 and a publish reaches exactly the 2 others.
    status, _, body = http_request(server.port, "GET", "/api/info", [("Authorization", "Bearer " + tok)])
    assert status == 200 and json.loads(body)["connections"] == 3, body
    publish(clients[0], channel, "to the other two")
    next_delivery(clients[1], channel, "to the other two")
    next_delivery(clients[2], channel, "to the other two")
    # Closing one frees exactly one place.
    clients[2].send_frame(CLOSE, struct.pack("!H", 1000))
    clients[2].expect_close(1000, reply=False)
    clients[2].close()
    clients[2] = connect_retrying(server.port, tok)
    status, _, _ = refused(server.port, tok)
    assert status == 503
    publish(clients[0], channel, "after the replacement")
    next_delivery(clients[1], channel, "after the replacement")
    next_delivery(clients[2], channel, "after the replacement")
    # A client that vanishes without a close frame frees its place too.
    clients[1].close()
    clients[1] = connect_retrying(server.port, tok)
    assert refused(server.port, tok)[0] == 503
    for client in clients:
        close_politely(client)
    assert server.stop() == 0, server.log_text()


def test_default_max_connections_is_255_and_the_api_still_answers_at_capacity(start_server):
    server = serve(start_server, WORKERS="2")
    channel = "crowd"
    clients = [connect(server.port, token(read=[channel])) for _ in range(254)]
    publisher = connect(server.port, token(write=[channel]))
    assert refused(server.port, token(read=[channel]))[0] == 503
    status, _, body = http_request(server.port, "GET", "/api/info", [("Authorization", "Bearer " + token(api=True))])
    assert status == 200 and json.loads(body)["connections"] == 255, (status, body)
    publish(publisher, channel, "to 254 subscribers")
    for client in clients:
        next_delivery(client, channel, "to 254 subscribers")
    for client in clients + [publisher]:
        close_politely(client)
    assert server.stop() == 0, server.log_text()


def test_max_connections_holds_under_concurrent_handshakes(start_server):
    """30 upgrade requests sent at once to both loops before any answer is read: exactly 5 get in."""
    server = serve(start_server, MAX_CONNECTIONS="5", WORKERS="2")
    tok = token(read=["x"])
    clients = [RawClient(server.port) for _ in range(30)]
    for client in clients:
        client.send(upgrade_request("/", extra=[("Authorization", "Bearer " + tok)]))
    statuses = [client.read_http_response()[0] for client in clients]
    assert sorted(statuses) == [101] * 5 + [503] * 25, statuses
    for client, status in zip(clients, statuses):
        if status == 101:
            close_politely(client)
        else:
            client.close()
    assert server.stop() == 0, server.log_text()


# --- CHECK_ORIGIN ---------------------------------------------------------------------------------------


@pytest.fixture
def origin_server(start_server):
    server = serve(start_server, CHECK_ORIGIN="true")
    yield server
    assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("host, origin", [
    ("127.0.0.1:{port}", None),
    ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
    ("127.0.0.1:{port}", "https://127.0.0.1:{port}"),
    ("127.0.0.1:{port}", "http://127.0.0.1:{port}/some/page"),
    ("localhost:{port}", "http://LocalHost:{port}"),
    ("LOCALHOST:{port}", "HTTP://localhost:{port}"),
    ("example.com", "https://example.com"),
])
def test_check_origin_allows_missing_or_same_host(origin_server, host, origin):
    port = origin_server.port
    tok = token(read=["origin"])
    extra = [("Origin", origin.format(port=port))] if origin else []
    status, _, body, client = attempt(port, tok, extra=extra, host=host.format(port=port))
    client.close()
    assert status == 101, (status, body)


@pytest.mark.parametrize("host, origin", [
    ("127.0.0.1:{port}", "http://127.0.0.1:{other}"),
    ("127.0.0.1:{port}", "http://127.0.0.1"),
    ("127.0.0.1:{port}", "http://localhost:{port}"),
    ("127.0.0.1:{port}", "http://evil.example"),
    ("127.0.0.1:{port}", "null"),
    ("127.0.0.1:{port}", ""),
    ("example.com", "https://example.com.evil.example"),
    ("example.com", "https://evil.example/example.com"),
])
def test_check_origin_refuses_other_hosts_with_403(origin_server, host, origin):
    port = origin_server.port
    tok = token(read=["origin"])
    status, headers, body = refused(port, tok, extra=[("Origin", origin.format(port=port, other=port + 1))],
                                    host=host.format(port=port))
    assert status == 403, (status, body)
    assert "sec-websocket-accept" not in headers


def test_origin_is_not_checked_by_default(port):
    status, _, _, client = attempt(port, token(read=["x"]), extra=[("Origin", "http://evil.example")])
    client.close()
    assert status == 101


# ======================================================================================================
# Messages
# ======================================================================================================


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_publish_in_a_text_or_binary_frame(port, ch, opcode):
    publisher, subscriber = pair(port, ch())
    publish(publisher, ch(), "framed", opcode=opcode)
    next_delivery(subscriber, ch(), "framed")  # always delivered as a text frame
    close_politely(publisher)
    close_politely(subscriber)


def test_fragmented_publish_is_one_message(port, ch):
    publisher, subscriber = pair(port, ch())
    payload = message_bytes(ch(), "in three fragments")
    publisher.send_frame(TEXT, payload[:5], fin=False)
    publisher.send_frame(0x0, payload[5:12], fin=False)
    publisher.send_frame(0x0, payload[12:], fin=True)
    next_delivery(subscriber, ch(), "in three fragments")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("channel_key, data_key", [("channel", "data"), ("Channel", "Data"), ("CHANNEL", "DATA"),
                                                   ("cHaNnEl", "dAtA"), ("\\u0063hannel", "D\\u0041TA")])
def test_keys_match_case_insensitively(port, ch, channel_key, data_key):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, '{"%s":"%s","%s":"keys"}' % (channel_key, ch(), data_key))  # (keys may hold escapes)
    next_delivery(subscriber, ch(), "keys")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("message", ['{"channel":"%s"}', '{"channel":"%s","data":null}',
                                     '{"channel":"%s","data":""}', '{"data":null,"channel":"%s"}'])
def test_absent_or_null_data_is_empty_and_omitted(port, ch, message):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, message % ch())
    payload = recv_text(subscriber)
    issuer = json.loads(payload)["issuer"]
    assert payload == b'{"issuer":"%s","channel":"%s"}\n' % (issuer.encode(), ch().encode())
    close_politely(publisher)
    close_politely(subscriber)


def test_unknown_keys_are_ignored(port, ch):
    publisher, subscriber = pair(port, ch())
    message = ('{"id":1,"channel":"%s","meta":{"a":[1,2,{"b":null}],"c":"\\u00e9"},"data":"kept",'
               '"x":true,"y":-1.5e3,"z":[]}' % ch())
    send_raw(publisher, message)
    payload = recv_text(subscriber)
    assert set(json.loads(payload)) == {"issuer", "channel", "data"}
    assert json.loads(payload)["data"] == "kept"
    close_politely(publisher)
    close_politely(subscriber)


def test_client_sent_issuer_is_ignored_and_replaced(port, ch):
    publisher, subscriber = pair(port, ch())
    publish(publisher, ch(), "plain")
    real = next_delivery(subscriber, ch(), "plain")
    for key in ("issuer", "Issuer"):
        send_raw(publisher, json.dumps({key: "forged-issuer", "channel": ch(), "data": "forged"}))
        assert next_delivery(subscriber, ch(), "forged") == real
    send_raw(publisher, json.dumps({"channel": ch(), "data": "forged last", "issuer": real[::-1]}))
    assert next_delivery(subscriber, ch(), "forged last") == real
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("message, data", [
    ('{"channel":"nowhere","data":"first","channel":"%s","data":"second"}', "second"),
    ('{"channel":"nowhere","Channel":"%s","data":"case-insensitive duplicate"}', "case-insensitive duplicate"),
    ('{"data":"a","DATA":"b","Data":"c","channel":"%s"}', "c"),
    ('{"channel":null,"channel":"%s","data":"null then name"}', "null then name"),
])
def test_duplicate_keys_last_one_wins(port, ch, message, data):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, message % ch())
    next_delivery(subscriber, ch(), data)
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("before, after", [("", " "), ("", "\n"), ("", " \t\r\n "), ("", "\n\n\n"),
                                           (" \n", "")])
def test_whitespace_around_the_object_is_allowed(port, ch, before, after):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, before + message_bytes(ch(), "spaced").decode() + after)
    next_delivery(subscriber, ch(), "spaced")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("after", ["x", "{}", ",", "]", "}", " 1", "null", '"s"', "\x00", "\u00a0", " //", "\x0c",
                                   "\x0b", "\ufeff"])
def test_anything_but_whitespace_after_the_object_is_an_error(port, ch, after):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, message_bytes(ch(), "trailing garbage").decode() + after)
    reply, _ = recv_error(publisher)
    assert set(reply) == {"error"}
    publish(publisher, ch(), "sentinel")
    next_delivery(subscriber, ch(), "sentinel")  # the bad message was not relayed
    close_politely(publisher)
    close_politely(subscriber)


# --- the server's message ---------------------------------------------------------------------------------


def test_server_message_is_exact(port, ch):
    publisher, subscriber = pair(port, ch())
    publish(publisher, ch(), "any string")
    opcode, payload = subscriber.recv_message()
    assert opcode == TEXT
    issuer = json.loads(payload)["issuer"]
    assert UUID4.fullmatch(issuer.encode()), issuer
    assert payload == ('{"issuer":"%s","channel":"%s","data":"any string"}\n' % (issuer, ch())).encode()
    close_politely(publisher)
    close_politely(subscriber)


def test_server_message_is_a_single_unfragmented_text_frame(port, ch):
    publisher, subscriber = pair(port, ch())
    publish(publisher, ch(), "x" * 60000)
    fin, rsv, opcode, payload = subscriber.recv_frame()
    assert (fin, rsv, opcode) == (True, 0, TEXT)
    assert payload.endswith(b'"}\n') and payload.count(b"\n") == 1
    close_politely(publisher)
    close_politely(subscriber)


def test_empty_channel_and_empty_data_are_omitted(start_server):
    server = serve(start_server)  # its own server: every test would share the channel ""
    port = server.port
    subscriber = connect(port, token(read=[""]))
    publisher = connect(port, token(write=[""]))
    for message in ('{}', '{"channel":"","data":""}', '{"channel":null,"data":null}'):
        send_raw(publisher, message)
        payload = recv_text(subscriber)
        issuer = json.loads(payload)["issuer"]
        assert payload == b'{"issuer":"%s"}\n' % issuer.encode()
    close_politely(publisher)
    close_politely(subscriber)
    assert server.stop() == 0, server.log_text()


def test_html_characters_and_line_separators_are_escaped_like_go(port, ch):
    channel = ch("<tag>&")
    publisher, subscriber = pair(port, channel)
    publish(publisher, channel, "<script>&amp;\u2028\u2029</script>")
    payload = recv_text(subscriber)
    issuer = json.loads(payload)["issuer"]
    escaped_channel = channel.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    expected = ('{"issuer":"%s","channel":"%s","data":"\\u003cscript\\u003e\\u0026amp;\\u2028\\u2029\\u003c/script'
                '\\u003e"}\n' % (issuer, escaped_channel))
    assert payload == expected.encode()
    close_politely(publisher)
    close_politely(subscriber)


def test_json_specials_are_escaped_and_non_ascii_passes_through_as_utf8(port, ch):
    publisher, subscriber = pair(port, ch())
    data = 'quote " backslash \\ newline \n return \r tab \t slash / \u00e9\u20ac\U0001F600 \u4e2d\u6587 \x7f'
    send_raw(publisher, json.dumps({"channel": ch(), "data": data}, ensure_ascii=False).encode())
    payload = recv_text(subscriber)
    issuer = json.loads(payload)["issuer"]
    expected_data = ('quote \\" backslash \\\\ newline \\n return \\r tab \\t slash / \u00e9\u20ac\U0001F600 '
                     '\u4e2d\u6587 \x7f')
    assert payload == ('{"issuer":"%s","channel":"%s","data":"%s"}\n' % (issuer, ch(), expected_data)).encode()
    # The same non-ASCII text sent as \u escapes arrives as raw UTF-8 too.
    send_raw(publisher, json.dumps({"channel": ch(), "data": "\u00e9\U0001F600"}))  # ensure_ascii escapes
    assert "\u00e9\U0001F600".encode() in recv_text(subscriber)
    close_politely(publisher)
    close_politely(subscriber)


def test_control_characters_are_escaped_and_round_trip(port, ch):
    publisher, subscriber = pair(port, ch())
    data = "".join(chr(c) for c in range(0x20)) + "end"
    publish(publisher, ch(), data)
    payload = recv_text(subscriber)
    assert all(byte >= 0x20 for byte in payload[:-1]), payload  # only the final newline is a control byte
    assert json.loads(payload)["data"] == data
    close_politely(publisher)
    close_politely(subscriber)


def test_invalid_utf8_in_a_binary_frame_never_yields_invalid_text(port, ch):
    publisher, subscriber = pair(port, ch())
    raw = b'{"channel":"' + ch().encode() + b'","data":"bad \xff\xfe \xc3 end"}'
    send_raw(publisher, raw, opcode=BINARY)
    # Either an error reply to the sender, or a delivery whose text frame is valid UTF-8.
    publish(publisher, ch(), "sentinel")
    first = recv_text(subscriber)
    first.decode("utf-8")  # raises on invalid UTF-8 in a text frame
    if json.loads(first).get("data") != "sentinel":
        assert json.loads(first)["data"].startswith("bad ")
        next_delivery(subscriber, ch(), "sentinel")
    close_politely(publisher)
    close_politely(subscriber)


def test_issuer_is_a_per_connection_random_uuid4(port, ch):
    channel = ch()
    tok = token(read=[channel], write=[channel])
    publishers = [connect(port, tok) for _ in range(3)]
    subscriber = connect(port, token(read=[channel]))
    issuers = []
    for index, publisher in enumerate(publishers):
        publish(publisher, channel, f"first {index}")
        issuers.append(next_delivery(subscriber, channel, f"first {index}"))
    for index, publisher in enumerate(publishers):
        publish(publisher, channel, f"second {index}")
        assert next_delivery(subscriber, channel, f"second {index}") == issuers[index]  # stable per connection
    assert len(set(issuers)) == 3  # distinct even with the same token
    for issuer in issuers:
        assert UUID4.fullmatch(issuer.encode())
    for client in publishers + [subscriber]:
        close_politely(client)


def test_the_same_bytes_go_to_every_recipient(port, ch):
    channel = ch()
    subscribers = [connect(port, token(read=[channel])) for _ in range(6)]
    publisher = connect(port, token(write=[channel]))
    publish(publisher, channel, "identical <&> \u00e9")
    payloads = [recv_text(subscriber) for subscriber in subscribers]
    assert len(set(payloads)) == 1, payloads
    for client in subscribers + [publisher]:
        close_politely(client)


# ======================================================================================================
# Routing
# ======================================================================================================


def test_relayed_only_if_the_write_list_contains_the_channel(port, ch):
    allowed, denied = ch("allowed"), ch("denied")
    subscriber = connect(port, token(read=[allowed, denied]))
    publisher = connect(port, token(write=[allowed]))
    publish(publisher, denied, "not permitted")
    reply, _ = recv_error(publisher)
    assert reply == {"error": "write not permitted", "channel": denied}
    publish(publisher, allowed, "permitted")
    next_delivery(subscriber, allowed, "permitted")
    close_politely(publisher)
    close_politely(subscriber)


def test_publish_to_a_channel_nobody_reads_gets_no_reply(port, ch):
    lonely, control = ch("lonely"), ch("control")
    publisher = connect(port, token(read=[control], write=[lonely]))
    publish(publisher, lonely, "into the void")
    expect_silence(publisher, 0.2)
    other = connect(port, token(write=[control]))
    publish(other, control, "control")
    next_delivery(publisher, control, "control")
    close_politely(publisher)
    close_politely(other)


def test_delivered_to_every_other_reader_of_the_channel_and_nobody_else(port, ch):
    channel, elsewhere = ch(), ch("elsewhere")
    readers = [connect(port, token(read=[channel])) for _ in range(4)]
    multi = connect(port, token(read=[elsewhere, channel]))
    non_reader = connect(port, token(read=[elsewhere]))
    publisher = connect(port, token(write=[channel, elsewhere]))
    publish(publisher, channel, "to readers")
    for reader in readers + [multi]:
        next_delivery(reader, channel, "to readers")
    publish(publisher, elsewhere, "sentinel")
    next_delivery(non_reader, elsewhere, "sentinel")  # first thing it sees: "to readers" never came
    next_delivery(multi, elsewhere, "sentinel")
    for client in readers + [multi, non_reader, publisher]:
        close_politely(client)


def test_never_back_to_the_sender(port, ch):
    channel = ch()
    tok = token(read=[channel], write=[channel])
    sender, other = connect(port, tok), connect(port, tok)
    publish(sender, channel, "not to myself")
    next_delivery(other, channel, "not to myself")  # delivery is done
    expect_silence(sender, 0.2)
    publish(other, channel, "from the other")  # positive control: the sender does receive
    next_delivery(sender, channel, "from the other")
    close_politely(sender)
    close_politely(other)


def test_a_channel_listed_twice_in_read_is_delivered_once(port, ch):
    channel, control = ch(), ch("control")
    subscriber = connect(port, token(read=[channel, channel, control, channel]))
    publisher = connect(port, token(write=[channel, channel, control]))
    publish(publisher, channel, "once")
    publish(publisher, control, "control")
    next_delivery(subscriber, channel, "once")
    next_delivery(subscriber, control, "control")  # not a second copy of "once"
    close_politely(publisher)
    close_politely(subscriber)


def test_other_connections_with_the_same_token_receive(port, ch):
    channel = ch()
    tok = token(read=[channel], write=[channel])
    clients = [connect(port, tok) for _ in range(4)]
    publish(clients[0], channel, "same token")
    for client in clients[1:]:
        next_delivery(client, channel, "same token")
    for client in clients:
        close_politely(client)


def test_a_reconnecting_client_never_gets_a_message_twice(start_server):
    """At-most-once delivery: a message a client has already received is not delivered again to the connection
    it opens next (with the same token). The new connection is made after the old one received the message, so
    the message was published before the new connection existed. Racy by nature, so repeated 300 times (each
    round takes ~1 ms); a correct server passes every round, and per-publisher order makes the check exact: the
    first thing the new connection sees must be the sentinel published after it connected."""
    server = serve(start_server, WORKERS="2")
    reader_token = token(read=["reconnect"])
    publisher = connect(server.port, token(write=["reconnect"]))
    subscriber = connect(server.port, reader_token)
    duplicates = []
    for i in range(300):
        publish(publisher, "reconnect", f"message {i}")
        next_delivery(subscriber, "reconnect", f"message {i}")
        close_politely(subscriber)
        subscriber = connect(server.port, reader_token)
        publish(publisher, "reconnect", f"sentinel {i}")
        first = recv_delivery(subscriber)[2]
        if first != f"sentinel {i}":
            duplicates.append((i, first))
            next_delivery(subscriber, "reconnect", f"sentinel {i}")
    close_politely(subscriber)
    close_politely(publisher)
    assert server.stop() == 0, server.log_text()
    assert not duplicates, (f"{len(duplicates)} of 300 reconnects received a message the previous connection had "
                            f"already received, e.g. round {duplicates[0][0]} got {duplicates[0][1]!r}")


def test_per_publisher_order_is_kept(port, ch):
    """The small version of test_ordering.py: 2,000 messages in one burst on the shared (WORKERS=2) server."""
    channel = ch()
    subscribers = [connect(port, token(read=[channel])) for _ in range(4)]
    publisher = connect(port, token(write=[channel]))
    publisher.send(b"".join(frame(TEXT, message_bytes(channel, str(i))) for i in range(2000)))
    for subscriber in subscribers:
        got = [recv_delivery(subscriber)[2] for _ in range(2000)]
        assert got == [str(i) for i in range(2000)]
    for client in subscribers + [publisher]:
        close_politely(client)


SLOW_COUNT, SLOW_SIZE, SLOW_BATCH = 1280, 8000, 64  # 10 MB in batches of 512 KB
# 10 MB is more than the kernel can buffer for one connection (a 4 MiB send buffer and a 4 KiB window) plus
# the default MAX_BACKPRESSURE of 1 MiB.


def scraped(port, name):
    """One unlabelled sample of /metrics (with an api token)."""
    status, _, body = http_request(port, "GET", "/metrics", [("Authorization", "Bearer " + token(api=True))])
    assert status == 200, body
    return next(float(line.split()[1]) for line in body.decode().splitlines() if line.startswith(name + " "))


def flood_past_a_slow_subscriber(start_server):
    """A subscriber with a tiny receive window that never reads while a publisher sends 10 MB to its channel in
    batches of 512 KB; three subscribers read each batch before the next is sent (so they keep up: their queues
    stay under MAX_BACKPRESSURE). Returns (the numbers the slow one then read, the close code it finally got or
    None)."""
    # The slow subscriber reads only after the flood, however long the flood took on a loaded machine: the close
    # frame queued behind what the kernel already holds for it must still be there then, so the server waits for
    # its close far longer than the test can take.
    server = start_server("serve", SECRET=SECRET, CLOSE_TIMEOUT="600", WORKERS="2")
    channel = "firehose"
    slow_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_sock.settimeout(5)
    slow_sock.connect(("127.0.0.1", server.port))
    slow = RawClient.__new__(RawClient)
    slow.sock, slow.buffer = slow_sock, b""
    slow.send(upgrade_request("/", extra=[("Authorization", "Bearer " + token(read=[channel]))]))
    assert slow.read_http_response()[0] == 101
    readers = [Reader(connect(server.port, token(read=[channel]))) for _ in range(3)]
    publisher = connect(server.port, token(write=[channel]))
    filler = "f" * SLOW_SIZE
    for batch in range(0, SLOW_COUNT, SLOW_BATCH):
        publisher.send(b"".join(frame(TEXT, message_bytes(channel, f"{i:06d}{filler}"))
                                for i in range(batch, batch + SLOW_BATCH)))
        for reader in readers:
            while len(reader.payloads) < batch + SLOW_BATCH:
                reader.feed()
    for index, reader in enumerate(readers):
        numbers = [int(json.loads(payload)["data"][:6]) for payload in reader.payloads]
        assert numbers == list(range(SLOW_COUNT)), f"reading subscriber {index} missed or reordered messages"
    # Now the slow one reads whatever the server kept for it, up to the close frame that ends it (the timeout only
    # ends a run where the server sent neither).
    slow.sock.settimeout(30)
    seen, code = [], None
    try:
        while len(seen) < SLOW_COUNT:
            fin, rsv, opcode, payload = slow.recv_frame()
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0]
                break
            if opcode == TEXT:
                seen.append(int(json.loads(payload)["data"][:6]))
    except (socket.timeout, TimeoutError, ConnectionResetError, Closed):
        pass
    for client in [reader.client for reader in readers] + [publisher]:
        close_politely(client)
    slow.close()
    sent = scraped(server.port, "philote_messages_sent_total")
    assert server.stop() == 0, server.log_text()
    return seen, code, sent


def test_a_slow_subscriber_never_stalls_anyone_else(start_server):
    """The readers got every batch while the slow one read nothing (a stalled fan-out would leave them waiting
    until their read timeout fails the flood)."""
    seen, code, _ = flood_past_a_slow_subscriber(start_server)
    assert seen == sorted(set(seen)), "the slow subscriber got messages out of order or twice"


def test_a_slow_subscriber_over_max_backpressure_is_closed_1008(start_server):
    """PROTOCOL.md: at-most-once, reliability rules in DESIGN.md: over MAX_BACKPRESSURE (1 MiB) queued bytes a
    connection is closed 1008 "slow consumer" (its queue is not allowed to grow without bound)."""
    seen, code, sent = flood_past_a_slow_subscriber(start_server)
    # What was written, not what was queued: the readers' messages and those the slow one read before its close
    # frame; the backlog freed when it was closed is not counted.
    assert sent == 3 * SLOW_COUNT + len(seen), (sent, len(seen))
    assert code == 1008, (f"the slow subscriber was not closed 1008 (close code {code}); it was sent "
                          f"{len(seen)} of {SLOW_COUNT} messages of {SLOW_SIZE} bytes")
    assert len(seen) < SLOW_COUNT
    assert seen == sorted(set(seen))


# ======================================================================================================
# Errors a client causes
# ======================================================================================================


def test_write_not_permitted_reply_is_exact_and_the_connection_stays_open(port, ch):
    allowed, denied = ch("allowed"), ch("denied")
    publisher = connect(port, token(write=[allowed]))
    subscriber = connect(port, token(read=[allowed, denied]))
    publish(publisher, denied, "nope")
    payload = recv_text(publisher)
    assert payload == ('{"error":"write not permitted","channel":"%s"}\n' % denied).encode()
    publish(publisher, allowed, "still open")
    next_delivery(subscriber, allowed, "still open")
    close_politely(publisher)
    close_politely(subscriber)


def test_write_not_permitted_channel_is_escaped(port, ch):
    denied = ch('odd "<name>"\n\u00e9')
    publisher = connect(port, token(write=["x"]))
    publish(publisher, denied, "nope")
    reply, raw = recv_error(publisher)
    assert reply == {"error": "write not permitted", "channel": denied}
    assert b"<" not in raw and b">" not in raw
    close_politely(publisher)


def test_flood_of_forbidden_publishes_gets_every_reply_and_stalls_nobody(port, ch):
    allowed, denied = ch("allowed"), ch("denied")
    flooder = connect(port, token(write=[allowed]))
    subscriber = connect(port, token(read=[allowed]))
    bystander = connect(port, token(write=[allowed]))
    flooder.send(b"".join(frame(TEXT, message_bytes(denied, str(i))) for i in range(3000)))
    publish(bystander, allowed, "not stalled")
    next_delivery(subscriber, allowed, "not stalled")
    for _ in range(3000):
        assert recv_text(flooder) == ('{"error":"write not permitted","channel":"%s"}\n' % denied).encode()
    publish(flooder, allowed, "flooder still open")
    next_delivery(subscriber, allowed, "flooder still open")
    for client in (flooder, subscriber, bystander):
        close_politely(client)


BAD_MESSAGES = [
    b"null", b"[]", b'["a","b"]', b'"a string"', b"42", b"-1.5", b"true", b"false", b"", b" ", b"\n",
    b"not json", b"{", b"}", b'{"channel":"%s","data":"unterminated', b"{'channel':'%s','data':'x'}",
    b'{"channel":"%s","data":1}', b'{"channel":"%s","data":1.5}', b'{"channel":"%s","data":true}',
    b'{"channel":"%s","data":false}', b'{"channel":"%s","data":{"nested":"json"}}',
    b'{"channel":"%s","data":["x"]}', b'{"channel":1,"data":"x"}', b'{"channel":["%s"],"data":"x"}',
    b'{"channel":{"name":"%s"},"data":"x"}', b'{"channel":true,"data":"x"}',
    b'{"channel":"%s","data":"x",}', b'{"channel":"%s" "data":"x"}', b'{"channel":"%s","data":"bad \\q escape"}',
    b'{"channel":"%s","data":"raw \x01 control"}', b'{"channel":"%s","data":"\\u12"}', b'{channel:"%s"}',
    b'{"channel":"%s","data":NaN}', b'{"channel":"%s","data":"x","extra":01}', b'{"channel":"%s","data":"x","e":tru}',
    b'\xef\xbb\xbf{"channel":"%s","data":"after a BOM"}', b'{"channel":"%s","data":"x"}\x0c',
    b'{"x":' + b"[" * 30000 + b"]" * 30000 + b',"channel":"%s","data":"deep"}',
]


@pytest.mark.parametrize("message", BAD_MESSAGES, ids=[repr(m[:40]) for m in BAD_MESSAGES])
def test_bad_message_gets_an_error_reply_and_the_connection_stays_open(port, ch, message):
    channel = ch()
    publisher, subscriber = pair(port, channel)
    marker = distinctive("payload")
    body = message.replace(b"%s", channel.encode()).replace(b"unterminated", marker.encode())
    publisher.send_frame(TEXT, body)
    reply, raw = recv_error(publisher)
    assert set(reply) == {"error"}, reply
    assert reply["error"] != "write not permitted"
    assert len(reply["error"]) <= 100 and marker not in reply["error"]
    publish(publisher, channel, "sentinel")
    next_delivery(subscriber, channel, "sentinel")  # nothing was relayed, and the connection still works
    close_politely(publisher)
    close_politely(subscriber)


def test_bad_message_in_a_binary_frame_gets_an_error_reply(port, ch):
    publisher, subscriber = pair(port, ch())
    send_raw(publisher, b"\xff\xfe not json", opcode=BINARY)
    reply, _ = recv_error(publisher)
    assert set(reply) == {"error"}
    publish(publisher, ch(), "sentinel")
    next_delivery(subscriber, ch(), "sentinel")
    close_politely(publisher)
    close_politely(subscriber)


@pytest.fixture
def small_server(start_server):
    server = serve(start_server, MAX_MESSAGE_SIZE="1024")
    yield server
    assert server.stop() == 0, server.log_text()


def message_of_size(channel, size):
    base = message_bytes(channel, "")
    message = message_bytes(channel, "d" * (size - len(base)))
    assert len(message) == size
    return message


def test_message_at_max_message_size_is_delivered(small_server):
    publisher, subscriber = pair(small_server.port, "sized")
    send_raw(publisher, message_of_size("sized", 1024))
    assert recv_delivery(subscriber)[2] == "d" * (1024 - len(message_bytes("sized", "")))
    close_politely(publisher)
    close_politely(subscriber)


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_over_max_message_size_closes_1009(small_server, fragmented):
    publisher, subscriber = pair(small_server.port, "sized")
    message = message_of_size("sized", 1025)
    if fragmented:
        publisher.send_frame(TEXT, message[:600], fin=False)
        publisher.send_frame(0x0, message[600:], fin=True)
    else:
        send_raw(publisher, message)
    publisher.expect_close(1009)
    publisher.close()
    other = connect(small_server.port, token(write=["sized"]))
    publish(other, "sized", "others unaffected")
    next_delivery(subscriber, "sized", "others unaffected")  # the oversized one was never relayed
    close_politely(other)
    close_politely(subscriber)


@pytest.mark.parametrize("violation", ["unmasked", "rsv1", "reserved opcode", "bare continuation",
                                       "long ping", "fragmented ping", "new message inside fragments"])
def test_protocol_violation_closes_1002(port, ch, violation):
    publisher, subscriber = pair(port, ch())
    payload = message_bytes(ch(), "violation")
    if violation == "unmasked":
        publisher.send_frame(TEXT, payload, mask=False)
    elif violation == "rsv1":
        publisher.send_frame(TEXT, payload, rsv=4)
    elif violation == "reserved opcode":
        publisher.send_frame(0x3, payload)
    elif violation == "bare continuation":
        publisher.send_frame(0x0, payload)
    elif violation == "long ping":
        publisher.send_frame(0x9, b"p" * 126)
    elif violation == "fragmented ping":
        publisher.send_frame(0x9, b"p", fin=False)
    else:
        publisher.send_frame(TEXT, payload[:4], fin=False)
        publisher.send_frame(TEXT, payload[4:])
    publisher.expect_close(1002)
    publisher.close()
    other = connect(port, token(write=[ch()]))
    publish(other, ch(), "others unaffected")
    next_delivery(subscriber, ch(), "others unaffected")
    close_politely(other)
    close_politely(subscriber)


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"])
def test_invalid_utf8_in_a_text_message_closes_1007(port, ch, bad):
    publisher, subscriber = pair(port, ch())
    publisher.send_frame(TEXT, b'{"channel":"' + ch().encode() + b'","data":"' + bad + b'"}')
    publisher.expect_close(1007)
    publisher.close()
    other = connect(port, token(write=[ch()]))
    publish(other, ch(), "others unaffected")
    next_delivery(subscriber, ch(), "others unaffected")
    close_politely(other)
    close_politely(subscriber)


# ======================================================================================================
# HTTP API
# ======================================================================================================


def api_get(port, tok=None, path="/api/info", how="bearer", method="GET"):
    headers = []
    if tok is not None and how == "bearer":
        headers.append(("Authorization", "Bearer " + tok))
    elif tok is not None and how == "raw":
        headers.append(("Authorization", tok))
    elif tok is not None:
        path += ("&" if "?" in path else "?") + "auth=" + quote(tok, safe="")
    return http_request(port, method, path, headers)


def json_body(headers, body):
    assert headers.get("content-type", "").lower().startswith("application/json"), headers
    return json.loads(body)


@pytest.mark.parametrize("how", ["bearer", "raw", "query"])
def test_api_info_with_an_api_token(shared, ch, how):
    port = shared.port
    clients = [connect(port, token(read=[ch()])) for _ in range(3)]
    api_token = token(api=True)
    status, headers, body = api_get(port, api_token, how=how)
    assert status == 200, body
    info = json_body(headers, body)
    assert {"version", "uptime", "pid", "connections", "config"} <= set(info)
    assert isinstance(info["version"], str) and info["version"]
    assert isinstance(info["uptime"], (int, float)) and info["uptime"] >= 0
    assert info["pid"] == shared.pid
    assert info["connections"] >= 3  # (other tests' connections may still be closing)
    assert isinstance(info["config"], dict) and info["config"]
    assert SECRET not in body.decode()
    assert api_token not in body.decode()
    for client in clients:
        close_politely(client)


def test_api_info_counts_connections(start_server):
    server = serve(start_server)
    api_token = token(api=True)
    status, headers, body = api_get(server.port, api_token)
    assert json_body(headers, body)["connections"] == 0
    clients = [connect(server.port, token(read=["x"])) for _ in range(4)]
    status, headers, body = api_get(server.port, api_token)
    assert json_body(headers, body)["connections"] == 4
    for client in clients:
        close_politely(client)
    assert server.stop() == 0


@pytest.mark.parametrize("tok", [None, "garbage", "Bearer", token(api=True, secret="wrong"),
                                 token(api=True, exp=1), alg_none({"api": True})])
def test_api_without_a_valid_token_is_401_json(port, tok):
    status, headers, body = api_get(port, tok)
    assert status == 401, body
    reply = json_body(headers, body)
    assert isinstance(reply.get("error"), str) and reply["error"]
    if tok:
        assert tok not in body.decode()


@pytest.mark.parametrize("claims", [{}, {"api": False}, {"read": ["a"], "write": ["a"]}, {"api": None}])
def test_api_with_a_token_not_granting_the_api_is_403_json(port, claims):
    status, headers, body = api_get(port, make_token(claims))
    assert status == 403, body
    assert isinstance(json_body(headers, body).get("error"), str)


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nope", "/api/info/extra", "/api/INFO", "/api/info2"])
def test_other_api_paths_are_404_json(port, path):
    status, headers, body = api_get(port, token(api=True), path=path)
    assert status == 404, (path, status, body)
    assert isinstance(json_body(headers, body).get("error"), str)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_api_info_are_405_json(port, method):
    status, headers, body = api_get(port, token(api=True), method=method)
    assert status == 405, (method, status, body)
    assert isinstance(json_body(headers, body).get("error"), str)


def test_head_request_on_the_api_gets_no_body(port):
    """HTTP: a response to HEAD carries no content (RFC 9110 section 9.3.2), whatever its status."""
    client = RawClient(port)
    client.send(("HEAD /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
                 % token(api=True)).encode())
    received = b""
    try:
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            received += chunk
    finally:
        client.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), received
    assert body == b"", f"the response to HEAD has content: {received!r}"

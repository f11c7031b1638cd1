"""Mints the JWTs the pub/sub tests need, good and bad, with nothing but the standard library.

A token is compact JWS (RFC 7515): base64url(header) . base64url(payload) . base64url(signature), no padding.
"""
import base64
import hashlib
import hmac
import json
import os
import time

SECRET = "integration-test-secret-" + "4f1c9a"
HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_json(value):
    """Compact JSON; a str/bytes is taken as already-encoded JSON text (for malformed segments)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


def sign(signing_input, secret=SECRET, alg="HS256"):
    digest = HMAC_HASHES.get(alg, hashlib.sha256)
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, signing_input.encode(), digest).digest()


def make_token(claims, secret=SECRET, alg="HS256", header=None, signature=None):
    """A JWT over `claims`. `header` replaces the whole header; `signature` (bytes) replaces the HMAC."""
    header = {"alg": alg, "typ": "JWT"} if header is None else header
    signing_input = b64url(encode_json(header)) + "." + b64url(encode_json(claims))
    if signature is None:
        signature = sign(signing_input, secret, alg)
    return signing_input + "." + b64url(signature)


def token(read=(), write=(), api=None, exp=None, nbf=None, iat=None, secret=SECRET, alg="HS256", **extra):
    """The usual token: read/write channel lists, optional api flag and time claims, extra claims as given."""
    claims = {"read": list(read), "write": list(write)}
    if api is not None:
        claims["api"] = api
    for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat)):
        if value is not None:
            claims[name] = value
    claims.update(extra)
    return make_token(claims, secret=secret, alg=alg)


def now():
    return int(time.time())


# --- bad tokens ---------------------------------------------------------------------------------------


def alg_none(claims, signature=b""):
    """`alg: none`, unsigned (empty signature) or with a signature attached."""
    return make_token(claims, header={"alg": "none", "typ": "JWT"}, signature=signature)


def asymmetric_header(claims, alg="RS256"):
    """An asymmetric `alg` in the header, signed with HMAC over the secret (the classic key-confusion attack)."""
    header = {"alg": alg, "typ": "JWT"}
    signing_input = b64url(encode_json(header)) + "." + b64url(encode_json(claims))
    return signing_input + "." + b64url(sign(signing_input, SECRET, "HS256"))


def tampered_payload(original_claims, new_claims):
    """The header and signature of a valid token for original_claims, with new_claims as payload."""
    header, _, signature = make_token(original_claims).split(".")
    return ".".join([header, b64url(encode_json(new_claims)), signature])


def flipped_signature(claims):
    header, payload, signature = make_token(claims).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 0x01
    return ".".join([header, payload, b64url(bytes(raw))])


def distinctive(prefix):
    """A string that appears nowhere by accident (for 'never in the log/body' checks)."""
    return prefix + "-" + os.urandom(8).hex()

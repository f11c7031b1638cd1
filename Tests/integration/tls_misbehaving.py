"""A TLS client that can misbehave, built on tlslite-ng (0.8.x): tlslite-ng runs the handshake (with a chosen
version, cipher suite and groups, and optionally a mangled flight: the client's TLS 1.2 Finished cut into
fragments or preceded by an empty record, a max_fragment_length offer), then this module takes the traffic keys
and seals and opens records itself, so that a test can send exactly the records it wants - any content type, any
legacy record version, any TLS 1.3 inner plaintext (padding included, or no content type at all), empty records,
fragments of handshake messages, several messages in one record, replays of earlier records - and read back what
the server answers: application data, handshake messages (NewSessionTicket, KeyUpdate, which updates the read
keys), the alert it sends, or the end of the connection (EOF or reset).

    client = MisbehavingClient(port, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
    client.ws_upgrade()                          # WebSocket over the record layer below (wsraw's helpers)
    client.send_frame(0x1, b"hello")
    assert client.recv_message() == (0x1, b"hello")
    client.send_record(ALERT, b"")               # an empty alert record
    assert client.expect_alert() == (FATAL, UNEXPECTED_MESSAGE)

Every socket operation has a deadline (the client's `timeout`); nothing here sleeps.
"""
import errno
import os
import select
import socket
import struct
import time

from tlslite.constants import CipherSuite, ContentType, ExtensionType, GroupName, HandshakeType
from tlslite.errors import TLSAbruptCloseError, TLSClosedConnectionError, TLSRemoteAlert
from tlslite.extensions import SupportedGroupsExtension, TLSExtension
from tlslite.handshakesettings import HandshakeSettings
from tlslite.messages import EncryptedExtensions, Message, ServerHello, ServerKeyExchange
from tlslite.tlsconnection import TLSConnection

from wsraw import Closed, RawClient

# Content types (RFC 8446 section 5.1).
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
# Alert levels and the descriptions the tests name.
WARNING, FATAL = 1, 2
CLOSE_NOTIFY = 0
UNEXPECTED_MESSAGE = 10
BAD_RECORD_MAC = 20
RECORD_OVERFLOW = 22
HANDSHAKE_FAILURE = 40
ILLEGAL_PARAMETER = 47
DECODE_ERROR = 50
PROTOCOL_VERSION = 70
INTERNAL_ERROR = 80
USER_CANCELED = 90
NO_RENEGOTIATION = 100
ALERT_NAMES = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 120: "no_application_protocol",
}
# Handshake message types after the handshake.
CLIENT_HELLO, NEW_SESSION_TICKET, KEY_UPDATE = 1, 4, 24

TLS12, TLS13 = (3, 3), (3, 4)
VERSIONS = {"TLSv1.2": TLS12, "TLSv1.3": TLS13}

# OpenSSL's names of the suites the server allows -> (tlslite cipher name, key exchange names, IANA number).
SUITES = {
    "TLS_AES_128_GCM_SHA256": ("aes128gcm", None, CipherSuite.TLS_AES_128_GCM_SHA256),
    "TLS_AES_256_GCM_SHA384": ("aes256gcm", None, CipherSuite.TLS_AES_256_GCM_SHA384),
    "TLS_CHACHA20_POLY1305_SHA256": ("chacha20-poly1305", None, CipherSuite.TLS_CHACHA20_POLY1305_SHA256),
    "ECDHE-RSA-AES128-GCM-SHA256": ("aes128gcm", "ecdhe_rsa", CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    "ECDHE-RSA-AES256-GCM-SHA384": ("aes256gcm", "ecdhe_rsa", CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    "ECDHE-RSA-CHACHA20-POLY1305": ("chacha20-poly1305", "ecdhe_rsa",
                                    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    "ECDHE-ECDSA-AES128-GCM-SHA256": ("aes128gcm", "ecdhe_ecdsa",
                                      CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    "ECDHE-ECDSA-AES256-GCM-SHA384": ("aes256gcm", "ecdhe_ecdsa",
                                      CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    "ECDHE-ECDSA-CHACHA20-POLY1305": ("chacha20-poly1305", "ecdhe_ecdsa",
                                      CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
}
# Group names as OpenSSL writes them -> tlslite's.
GROUPS = {"X25519": "x25519", "P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1", "X448": "x448",
          "ffdhe2048": "ffdhe2048", "ffdhe3072": "ffdhe3072", "ffdhe4096": "ffdhe4096",
          "ffdhe6144": "ffdhe6144", "ffdhe8192": "ffdhe8192"}
# max_fragment_length codes (RFC 6066 section 4).
MAX_FRAGMENT_CODES = {512: 1, 1024: 2, 2048: 3, 4096: 4}


def alert_name(description):
    return ALERT_NAMES.get(description, f"alert {description}")


class HandshakeRefused(Exception):
    """The server ended the handshake: `alert` is the description it sent, or None for a bare close."""

    def __init__(self, alert, detail):
        super().__init__(f"handshake refused: {alert_name(alert) if alert is not None else detail}")
        self.alert = alert
        self.detail = detail


class _Tap:
    """The socket tlslite-ng writes the handshake through: every byte sent is kept, so that a test can replay one
    of the client's handshake records after the handshake."""

    def __init__(self, sock):
        self._sock = sock
        self.sent = bytearray()

    def send(self, data):
        count = self._sock.send(data)
        self.sent += bytes(data[:count])
        return count

    def sendall(self, data):
        self._sock.sendall(data)
        self.sent += bytes(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Connection(TLSConnection):
    """tlslite-ng's client with two hooks into the messages it sends: `edit_client_hello(hello)` changes the
    ClientHello before it is hashed and sent, and `finished_fragments(message)` returns the pieces (possibly empty)
    of the client's Finished message, each of which goes out as a record of its own."""

    edit_client_hello = None
    finished_fragments = None

    def __init__(self, sock):
        super().__init__(sock)
        self.received_messages = []  # the server's handshake messages, as tlslite-ng parsed them

    def _getMsg(self, expectedType, secondaryType=None, constructorType=None):
        for result in super()._getMsg(expectedType, secondaryType, constructorType):
            if result not in (0, 1):
                self.received_messages.append(result)
            yield result

    def _sendMsg(self, msg, randomizeFirstBlock=True, update_hashes=True):
        if msg.contentType == ContentType.handshake:
            kind = msg.write()[0]
            if kind == HandshakeType.client_hello and self.edit_client_hello:
                self.edit_client_hello(msg)
            elif kind == HandshakeType.finished and self.finished_fragments:
                message = msg.write()
                if update_hashes:
                    self._handshake_hash.update(message)
                for piece in self.finished_fragments(bytes(message)):
                    for result in self._sendMsgThroughSocket(Message(ContentType.handshake, bytearray(piece))):
                        yield result
                return
        for result in super()._sendMsg(msg, randomizeFirstBlock, update_hashes):
            yield result


def split_records(data):
    """The TLS records in `data`: (content type, version bytes, body) each."""
    records = []
    offset = 0
    while offset + 5 <= len(data):
        length = struct.unpack("!H", data[offset + 3:offset + 5])[0]
        records.append((data[offset], bytes(data[offset + 1:offset + 3]), bytes(data[offset + 5:offset + 5 + length])))
        offset += 5 + length
    return records


def record_bytes(content_type, body, version=b"\x03\x03"):
    return bytes([content_type]) + bytes(version) + struct.pack("!H", len(body)) + bytes(body)


def handshake_message(kind, body):
    return bytes([kind]) + len(body).to_bytes(3, "big") + bytes(body)


def key_update(requested):
    return handshake_message(KEY_UPDATE, bytes([1 if requested else 0]))


class Event:
    """One thing the server did: kind is "data" (payload), "alert" (level, description), "handshake" (message
    type, body), "eof" or "reset". `plaintext_length` is the record's plaintext (content only) length."""

    def __init__(self, kind, payload=b"", level=None, description=None, message_type=None, plaintext_length=None):
        self.kind, self.payload = kind, payload
        self.level, self.description, self.message_type = level, description, message_type
        self.plaintext_length = plaintext_length

    def __repr__(self):
        if self.kind == "alert":
            return f"Event(alert {self.level}/{alert_name(self.description)})"
        if self.kind == "handshake":
            return f"Event(handshake type {self.message_type}, {len(self.payload)} bytes)"
        if self.kind == "data":
            return f"Event(data {len(self.payload)} bytes)"
        return f"Event({self.kind})"


class MisbehavingClient(RawClient):
    """A TLS client over a real socket (loopback), whose records after the handshake are made here. It is a
    wsraw.RawClient whose `send` seals application data and whose reads open records, so wsraw's WebSocket helpers
    (handshake, send_frame, recv_message, ...) run over it."""

    def __init__(self, port, version="TLSv1.3", cipher=None, groups=None, key_shares=None, host="127.0.0.1",
                 server_name="localhost", timeout=10.0, alpn=(b"http/1.1",), max_fragment_length=None,
                 finished_fragments=None, connect=True):
        super().__init__(port, host=host, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.timeout = timeout
        self.requested_version = VERSIONS[version]
        self.cipher = cipher
        self.groups = groups
        self.key_shares = key_shares
        self.server_name = server_name
        self.alpn = list(alpn) if alpn else None
        self.max_fragment_length = max_fragment_length
        self.finished_fragments = finished_fragments
        self.incoming = bytearray()        # raw bytes read, not yet a whole record
        self.handshake_in = bytearray()    # handshake message bytes from the server, not yet a whole message
        self.events = []                   # events decoded but not consumed
        self.records_received = []         # (content type, plaintext length, padding length) of every record
        self.key_updates_received = 0
        self.tickets_received = 0
        self.ended = None                  # "eof" or "reset" once the server ended the TCP stream
        self.send_error = None             # a send that failed because the server had closed
        if connect:
            self.connect()

    # --- handshake ------------------------------------------------------------------------------------------

    def settings(self):
        settings = HandshakeSettings()
        settings.minVersion = settings.maxVersion = self.requested_version
        if self.cipher:
            name, exchange, _ = SUITES[self.cipher]
            settings.cipherNames = [name]
            settings.macNames = ["aead"]
            if exchange:
                settings.keyExchangeNames = [exchange]
        else:
            settings.cipherNames = ["aes256gcm", "aes128gcm", "chacha20-poly1305"]
            settings.keyExchangeNames = ["ecdhe_rsa", "ecdhe_ecdsa"]
        if self.groups:
            names = [GROUPS[group] for group in self.groups]
            settings.eccCurves = [name for name in names if not name.startswith("ffdhe")]
            settings.dhGroups = [name for name in names if name.startswith("ffdhe")]
            settings.keyShares = [GROUPS[group] for group in (self.key_shares or self.groups[:1])]
            if self.requested_version == TLS12:
                settings.keyShares = []
        else:
            settings.eccCurves = ["x25519", "secp256r1", "secp384r1"]
            settings.keyShares = ["x25519"]
        settings.usePaddingExtension = False
        settings.use_heartbeat_extension = False
        settings.record_size_limit = None
        return settings

    def connect(self):
        """Runs the handshake; raises HandshakeRefused if the server refuses it."""
        self.tap = _Tap(self.sock)
        connection = _Connection(self.tap)
        connection.edit_client_hello = self._edit_client_hello
        connection.finished_fragments = self.finished_fragments
        try:
            connection.handshakeClientCert(settings=self.settings(), serverName=self.server_name,
                                           alpn=[bytearray(p) for p in self.alpn] if self.alpn else None)
        except TLSRemoteAlert as alert:
            raise HandshakeRefused(alert.description, str(alert)) from None
        except (TLSAbruptCloseError, TLSClosedConnectionError, ConnectionError, OSError) as error:
            raise HandshakeRefused(None, repr(error)) from None
        self.connection = connection
        self.layer = connection._recordLayer
        self.version = connection.version
        self.suite = connection.session.cipherSuite
        self.handshake_records = split_records(self.tap.sent)
        assert connection._defragmenter.is_empty(), "tlslite kept handshake bytes the server sent after Finished"

    def _edit_client_hello(self, hello):
        """supported_groups lists exactly the groups asked for (tlslite-ng sends FFDHE groups only along with DHE
        suites, which the server does not take); max_fragment_length is offered when asked for."""
        if self.groups:
            ids = [getattr(GroupName, GROUPS[group]) for group in self.groups]
            hello.extensions = [e for e in hello.extensions if e.extType != ExtensionType.supported_groups]
            hello.extensions.append(SupportedGroupsExtension().create(ids))
        if self.max_fragment_length:
            code = MAX_FRAGMENT_CODES[self.max_fragment_length]
            hello.extensions.append(TLSExtension(extType=ExtensionType.max_fragment_length).create(bytearray([code])))

    def server_extension(self, extension_type):
        """The extension of this type in the server's ServerHello or EncryptedExtensions, or None."""
        for message in self.connection.received_messages:
            if isinstance(message, (ServerHello, EncryptedExtensions)) and message.extensions:
                for extension in message.extensions:
                    if extension.extType == extension_type:
                        return extension
        return None

    def negotiated_group(self):
        """The key exchange group the server chose, in GROUPS' names (TLS 1.3: its key share; TLS 1.2: the curve
        of its ServerKeyExchange)."""
        names = {getattr(GroupName, tlslite_name): name for name, tlslite_name in GROUPS.items()}
        share = self.server_extension(ExtensionType.key_share)
        if share is not None:
            return names.get(share.server_share.group)
        for message in self.connection.received_messages:
            if isinstance(message, ServerKeyExchange):
                return names.get(message.named_curve)
        return None

    @property
    def tls13(self):
        return self.version == TLS13

    @property
    def suite_name(self):
        return CipherSuite.ietfNames.get(self.suite, hex(self.suite))

    def handshake_record(self, content_type, index=-1):
        """One of the records the client sent during the handshake, as sent (e.g. the encrypted Finished)."""
        matching = [r for r in self.handshake_records if r[0] == content_type]
        content_type, version, body = matching[index]
        return record_bytes(content_type, body, version)

    # --- sealing ----------------------------------------------------------------------------------------------

    def _nonce(self, state, sequence, explicit=None):
        if explicit is not None:
            return bytearray(state.fixedNonce) + bytearray(explicit)
        padded = bytearray(len(state.fixedNonce) - 8) + bytearray(sequence)
        return bytearray(a ^ b for a, b in zip(padded, state.fixedNonce))

    def _explicit_nonce(self, state):
        return not self.tls13 and "aes" in state.encContext.name

    def seal_inner(self, inner, outer_type=APPLICATION_DATA, record_version=b"\x03\x03"):
        """TLS 1.3: one record whose TLSInnerPlaintext is exactly `inner` (content, type byte, zero padding - or
        anything else), protected under the current write keys with the header it goes out with."""
        assert self.tls13
        state = self.layer._writeState
        sequence = state.getSeqNumBytes()
        length = len(inner) + state.encContext.tagLength
        header = bytes([outer_type]) + bytes(record_version) + struct.pack("!H", length)
        sealed = state.encContext.seal(self._nonce(state, sequence), bytearray(inner), bytearray(header))
        return header + bytes(sealed)

    def seal(self, content_type, payload, record_version=b"\x03\x03", padding=0, outer_type=None):
        """One protected record carrying `payload` as `content_type` (TLS 1.3: followed by `padding` zero bytes,
        under outer type application_data unless `outer_type` says otherwise)."""
        payload = bytes(payload)
        if self.tls13:
            inner = payload + bytes([content_type]) + bytes(padding)
            return self.seal_inner(inner, outer_type if outer_type is not None else APPLICATION_DATA,
                                   record_version)
        state = self.layer._writeState
        sequence = state.getSeqNumBytes()
        outer = outer_type if outer_type is not None else content_type
        aad = bytearray(sequence) + bytearray([outer]) + bytearray(record_version) + \
            bytearray(struct.pack("!H", len(payload)))
        explicit = sequence if self._explicit_nonce(state) else None
        sealed = bytes(state.encContext.seal(self._nonce(state, sequence, explicit), bytearray(payload), aad))
        body = (bytes(explicit) if explicit is not None else b"") + sealed
        return record_bytes(outer, body, record_version)

    def send_raw(self, data):
        """Sends bytes; if the server has already closed (it may refuse a record before the rest arrives), the
        error is kept in `send_error` and the test goes on to read what the server said."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as error:
            self.send_error = error

    def send_record(self, content_type, payload, **kwargs):
        self.send_raw(self.seal(content_type, payload, **kwargs))

    def send_records(self, records):
        """Several (content type, payload) records in one write."""
        self.send_raw(b"".join(self.seal(t, p) for t, p in records))

    def send(self, data, record_size=16384):
        """Application data in records of at most `record_size` bytes (wsraw's send)."""
        data = bytes(data)
        out = []
        for offset in range(0, len(data), record_size):
            out.append(self.seal(APPLICATION_DATA, data[offset:offset + record_size]))
        self.send_raw(b"".join(out))

    def send_alert(self, level, description, **kwargs):
        self.send_record(ALERT, bytes([level, description]), **kwargs)

    def send_close_notify(self):
        self.send_alert(WARNING, CLOSE_NOTIFY)

    def update_write_keys(self):
        """After a KeyUpdate went out: what follows is sealed under the next client traffic secret."""
        session = self.connection.session
        session.cl_app_secret, session.sr_app_secret = self.layer.calcTLS1_3KeyUpdate_reciever(
            session.cipherSuite, session.cl_app_secret, session.sr_app_secret)

    def send_key_update(self, requested=False, fragments=None):
        """A KeyUpdate, whole in one record or cut at `fragments` (offsets) into several, then the new keys."""
        message = key_update(requested)
        cuts = [0, *(fragments or []), len(message)]
        self.send_raw(b"".join(self.seal(HANDSHAKE, message[a:b]) for a, b in zip(cuts, cuts[1:])))
        self.update_write_keys()

    # --- opening ----------------------------------------------------------------------------------------------

    def _read_some(self, deadline):
        """More raw bytes into `incoming`; False once the server ended the stream (self.ended says how)."""
        if self.ended:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise TimeoutError("no answer from the server in time") from None
        except ConnectionResetError:
            self.ended = "reset"
            return False
        if not chunk:
            self.ended = "eof"
            return False
        self.incoming += chunk
        return True

    def _open(self, content_type, version, body):
        state = self.layer._readState
        sequence = state.getSeqNumBytes()
        tag = state.encContext.tagLength
        if self.tls13:
            header = bytes([content_type]) + version + struct.pack("!H", len(body))
            opened = state.encContext.open(self._nonce(state, sequence), bytearray(body), bytearray(header))
            if opened is None:
                raise AssertionError(f"cannot open the server's record {header.hex()} (sequence "
                                     f"{int.from_bytes(sequence, 'big')})")
            inner = bytes(opened)
            stripped = inner.rstrip(b"\x00")
            assert stripped, "the server sent a TLS 1.3 record without a content type"
            return stripped[-1], stripped[:-1], len(inner) - len(stripped)
        explicit = body[:8] if self._explicit_nonce(state) else None
        if explicit is not None:
            body = body[8:]
        aad = bytearray(sequence) + bytearray([content_type]) + bytearray(version) + \
            bytearray(struct.pack("!H", len(body) - tag))
        opened = state.encContext.open(self._nonce(state, sequence, explicit), bytearray(body), aad)
        if opened is None:
            raise AssertionError(f"cannot open the server's record (type {content_type}, sequence "
                                 f"{int.from_bytes(sequence, 'big')})")
        return content_type, bytes(opened), 0

    def _decode_next_record(self, deadline):
        """Reads one record and turns it into events; False when the stream ended before a whole record."""
        while len(self.incoming) < 5 or len(self.incoming) < 5 + struct.unpack("!H", self.incoming[3:5])[0]:
            if not self._read_some(deadline):
                if self.incoming:
                    self.events.append(Event(self.ended, payload=bytes(self.incoming)))
                    self.incoming.clear()
                else:
                    self.events.append(Event(self.ended))
                return False
        length = struct.unpack("!H", self.incoming[3:5])[0]
        outer, version, body = self.incoming[0], bytes(self.incoming[1:3]), bytes(self.incoming[5:5 + length])
        del self.incoming[:5 + length]
        content_type, plaintext, padding = self._open(outer, version, body)
        self.records_received.append((content_type, len(plaintext), padding))
        if content_type == APPLICATION_DATA:
            self.events.append(Event("data", payload=plaintext, plaintext_length=len(plaintext)))
        elif content_type == ALERT:
            for offset in range(0, len(plaintext) - 1, 2):
                self.events.append(Event("alert", level=plaintext[offset], description=plaintext[offset + 1],
                                         plaintext_length=len(plaintext)))
        elif content_type == HANDSHAKE:
            self.handshake_in += plaintext
            while len(self.handshake_in) >= 4:
                size = int.from_bytes(self.handshake_in[1:4], "big")
                if len(self.handshake_in) < 4 + size:
                    break
                kind, message = self.handshake_in[0], bytes(self.handshake_in[4:4 + size])
                del self.handshake_in[:4 + size]
                if kind == KEY_UPDATE:
                    # The server's next records are under its next traffic secret.
                    session = self.connection.session
                    session.cl_app_secret, session.sr_app_secret = self.layer.calcTLS1_3KeyUpdate_sender(
                        session.cipherSuite, session.cl_app_secret, session.sr_app_secret)
                    self.key_updates_received += 1
                elif kind == NEW_SESSION_TICKET:
                    self.tickets_received += 1
                self.events.append(Event("handshake", payload=message, message_type=kind,
                                         plaintext_length=len(plaintext)))
        else:
            self.events.append(Event(f"content type {content_type}", payload=plaintext))
        return True

    def next_event(self, timeout=None):
        """The server's next event (data, alert, handshake, eof, reset); TimeoutError if nothing comes in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.events:
            if not self._decode_next_record(deadline):
                break
        return self.events.pop(0)

    def expect_alert(self, timeout=None, skip_data=True):
        """Reads until the server's alert: (level, description). Data and post-handshake messages before it are
        skipped (with skip_data); the stream ending first fails the test."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = []
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event.kind == "alert":
                return event.level, event.description
            if event.kind in ("eof", "reset"):
                raise AssertionError(f"the connection ended ({event.kind}) without an alert; before it: {seen[-5:]}")
            if event.kind == "data" and not skip_data:
                raise AssertionError(f"data instead of an alert: {event.payload[:60]!r}")
            seen.append(event)

    def outcome(self, timeout=None):
        """What the server did in the end, as a word: 'alert:<name>' (fatal), 'warning:<name>', 'eof', 'reset',
        after skipping data and post-handshake handshake messages; 'open' if nothing came within `timeout`."""
        try:
            event = None
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            while True:
                event = self.next_event(max(0.0, deadline - time.monotonic()))
                if event.kind in ("data", "handshake"):
                    continue
                break
        except TimeoutError:
            return "open"
        if event.kind == "alert":
            return ("alert:" if event.level == FATAL else "warning:") + alert_name(event.description)
        return event.kind

    def expect_end(self, timeout=None):
        """After a fatal alert: the TCP stream ends; returns 'eof' or 'reset'."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event.kind in ("eof", "reset"):
                return event.kind

    # --- wsraw over the records ---------------------------------------------------------------------------------

    def _fill(self):
        """wsraw's read: the next application data; Closed when an alert or the end of the stream comes first
        (the event stays in `last_event`)."""
        while True:
            event = self.next_event()
            if event.kind == "data":
                self.buffer += event.payload
                return
            if event.kind == "handshake":
                continue
            self.last_event = event
            raise Closed(repr(event))

    def ws_upgrade(self, path="/"):
        return self.handshake(path=path, host=f"localhost:{self.port}")

    # --- flooding ---------------------------------------------------------------------------------------------

    def flood(self, total, limit=2.0):
        """Sends up to `total` more bytes (junk) without blocking: stops when the socket stays unwritable for
        `limit` seconds or fails (the server is gone). Returns (bytes sent, error or None)."""
        junk = os.urandom(65536)
        sent = 0
        self.sock.setblocking(False)
        try:
            while sent < total:
                try:
                    sent += self.sock.send(junk[:min(len(junk), total - sent)])
                except BlockingIOError:
                    _, writable, _ = select.select([], [self.sock], [], limit)
                    if not writable:
                        return sent, None
                except OSError as error:
                    if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        continue
                    return sent, error
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(self.timeout)
        return sent, None

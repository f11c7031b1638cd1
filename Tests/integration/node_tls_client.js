// wss:// interoperability with Node's `ws` (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs):
// two clients on one channel, verifying the server's chain with the test CA (`ca:` option), publish to each
// other (A -> B, then B -> A), each checking that it received the server's exact message.
//
// Usage: node node_tls_client.js URL_A URL_B CA_FILE CHANNEL DATA_A DATA_B
//   URL_A / URL_B: wss://localhost:PORT/...?auth=TOKEN
//   CA_FILE: PEM of the certificate authority to trust ("-": Node's default trust store only, which must fail)
//   DATA_A / DATA_B: what A and B publish (plain ASCII without characters JSON escapes).
// Both clients offer ALPN http/1.1. The environment may pin the protocol and suite: TLS_VERSION (e.g.
// TLSv1.2) and TLS_CIPHERS (OpenSSL names; TLS 1.3 suites such as TLS_CHACHA20_POLY1305_SHA256 too).
//
// stdout: one JSON summary line
//   {"ok":true|false,"error":..., "a":{...}, "b":{...}}
// with, per client: the negotiated TLS version, cipher and ALPN protocol, whether the peer was authorized
// against the CA, the peer certificate's serial number, the messages it received and its close code.
// Exit 0 only when everything checked out.
'use strict';

const fs = require('fs');
const WebSocket = require('ws');

const [urlA, urlB, caFile, channel, dataA, dataB] = process.argv.slice(2);
if (!dataB) {
  console.error('usage: node node_tls_client.js URL_A URL_B CA_FILE CHANNEL DATA_A DATA_B');
  process.exit(2);
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const summary = { ok: false, error: null, a: null, b: null };
let finished = false;

function finish(error) {
  if (finished) return;
  finished = true;
  summary.error = error || null;
  summary.ok = !error;
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(error ? 1 : 0);
}

setTimeout(() => finish('timeout'), 15000).unref();

const tlsOptions = { ALPNProtocols: ['http/1.1'] };
if (process.env.TLS_VERSION) {
  tlsOptions.minVersion = process.env.TLS_VERSION;
  tlsOptions.maxVersion = process.env.TLS_VERSION;
}
if (process.env.TLS_CIPHERS) tlsOptions.ciphers = process.env.TLS_CIPHERS;
if (caFile !== '-') tlsOptions.ca = fs.readFileSync(caFile);

function client(name, url) {
  const state = {
    version: null, cipher: null, alpn: null, authorized: null, serial: null, received: [], closeCode: null,
  };
  summary[name] = state;
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10000, ...tlsOptions });
  ws.on('upgrade', (response) => {
    const socket = response.socket;
    state.version = socket.getProtocol();
    state.cipher = socket.getCipher().name;
    state.alpn = socket.alpnProtocol || null;
    state.authorized = socket.authorized;
    state.serial = socket.getPeerCertificate().serialNumber || null;
  });
  ws.on('error', (error) => finish(`${name}: ${error.code || ''} ${error.message}`));
  ws.on('close', (code) => {
    state.closeCode = code;
  });
  return ws;
}

function check(name, data, isBinary, expected) {
  if (isBinary) return `${name} received a binary message`;
  const text = data.toString('utf8');
  summary[name].received.push(text.length > 200 ? text.slice(0, 200) + '...' : text);
  const prefix = '{"issuer":"';
  const suffix = `","channel":"${channel}","data":"${expected}"}\n`;
  if (!text.startsWith(prefix) || !text.endsWith(suffix)) return `${name} received an unexpected message`;
  const issuer = text.slice(prefix.length, text.length - suffix.length);
  return UUID4.test(issuer) ? null : `${name} got issuer ${issuer}`;
}

const a = client('a', urlA);
const b = client('b', urlB);
let opened = 0;
let closed = 0;
let done = false;

function onOpen() {
  opened += 1;
  if (opened === 2) a.send(JSON.stringify({ channel, data: dataA }));
}
a.on('open', onOpen);
b.on('open', onOpen);
b.on('message', (data, isBinary) => {
  const problem = check('b', data, isBinary, dataA);
  if (problem) return finish(problem);
  b.send(JSON.stringify({ channel, data: dataB }));
});
a.on('message', (data, isBinary) => {
  const problem = check('a', data, isBinary, dataB);
  if (problem) return finish(problem);
  done = true;
  a.close(1000);
  b.close(1000);
});
function onClose() {
  closed += 1;
  if (!done) return finish('a socket closed early');
  if (closed === 2) finish(null);
}
a.on('close', onClose);
b.on('close', onClose);

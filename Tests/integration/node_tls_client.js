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
// against the CA, the peer certificate's serial number, the sizes of the messages it received and its close code.
// Exit 0 only when everything checked out.
'use strict';

const fs = require('fs');
const WebSocket = require('ws');
const { createRun, exchange } = require('./node_exchange.js');

const [urlA, urlB, caFile, channel, dataA, dataB] = process.argv.slice(2);
if (!dataB) {
  console.error('usage: node node_tls_client.js URL_A URL_B CA_FILE CHANNEL DATA_A DATA_B');
  process.exit(2);
}

const run = createRun();
const { summary, finish } = run;

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
  ws.state = state;
  return ws;
}

const a = client('a', urlA);
const b = client('b', urlB);
exchange(run, a, b, channel, dataA, dataB);

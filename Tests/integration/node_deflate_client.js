// permessage-deflate interoperability with Node's `ws` (Debian's node-ws, found through
// NODE_PATH=/usr/share/nodejs): two clients with `perMessageDeflate: true` on one channel publish to each other
// (A -> B, then B -> A), each checking that it received the server's exact message.
//
// Usage: node node_deflate_client.js URL_A URL_B AUTHORIZATION_B CHANNEL DATA_A DATA_B
//   URL_A carries its token as ?auth=; B sends AUTHORIZATION_B as its Authorization header ("-": none).
//   DATA_A / DATA_B: what A and B publish (plain ASCII without characters JSON escapes).
//
// stdout: one JSON summary line
//   {"ok":true|false,"error":..., "a":{...}, "b":{...}}
// with, per client: the Sec-WebSocket-Extensions response header, the compressed (RSV1) frames it sent and
// received (counted by wrapping ws's Sender#dispatch and Receiver#decompress on that connection), the
// messages it received, and its close code. Exit 0 only when everything checked out.
'use strict';

const WebSocket = require('ws');

const [urlA, urlB, authorizationB, channel, dataA, dataB] = process.argv.slice(2);
if (!dataB) {
  console.error('usage: node node_deflate_client.js URL_A URL_B AUTHORIZATION_B CHANNEL DATA_A DATA_B');
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

function client(name, url, headers) {
  const state = {
    extensions: null, sentCompressed: 0, sentPlain: 0, receivedCompressed: 0, received: [], closeCode: null,
  };
  summary[name] = state;
  const ws = new WebSocket(url, { perMessageDeflate: true, headers, handshakeTimeout: 10000 });
  ws.on('upgrade', (response) => {
    state.extensions = response.headers['sec-websocket-extensions'] || null;
  });
  ws.on('open', () => {
    // Client-side evidence of what crossed the wire. These are ws 8's internals: fail loudly if they moved.
    const sender = ws._sender;
    const receiver = ws._receiver;
    if (!sender || typeof sender.dispatch !== 'function' || !receiver || typeof receiver.decompress !== 'function') {
      finish('ws internals (Sender#dispatch, Receiver#decompress) not found: cannot observe RSV1');
      return;
    }
    const dispatch = sender.dispatch;
    sender.dispatch = function (data, compress, options, cb) {
      if (options.opcode === 1 || options.opcode === 2) {
        if (compress && options.rsv1) state.sentCompressed += 1;
        else state.sentPlain += 1;
      }
      return dispatch.call(this, data, compress, options, cb);
    };
    const decompress = receiver.decompress;
    receiver.decompress = function (data, cb) {
      // Called only for frames of a message whose first frame had RSV1 set.
      if (this._fin) state.receivedCompressed += 1;
      return decompress.call(this, data, cb);
    };
  });
  ws.on('error', (error) => finish(`${name}: ${error && error.message}`));
  ws.on('unexpected-response', (request, response) => finish(`${name}: HTTP ${response.statusCode}`));
  ws.state = state;
  return ws;
}

function checkDelivery(name, raw, expected) {
  const text = raw.toString('utf8');
  const prefix = '{"issuer":"';
  const suffix = `","channel":"${channel}","data":"${expected}"}\n`;
  if (!text.startsWith(prefix) || !text.endsWith(suffix)) {
    return `${name} received an unexpected message (${text.length} bytes): ${text.slice(0, 120)}`;
  }
  const issuer = text.slice(prefix.length, text.length - suffix.length);
  if (!UUID4.test(issuer)) return `${name}: issuer is not a UUIDv4: ${issuer}`;
  return null;
}

const a = client('a', urlA, {});
const b = client('b', urlB, authorizationB && authorizationB !== '-' ? { Authorization: authorizationB } : {});

let opened = 0;
function onOpen() {
  opened += 1;
  if (opened === 2) a.send(JSON.stringify({ channel, data: dataA }));
}
a.on('open', onOpen);
b.on('open', onOpen);

b.on('message', (raw, isBinary) => {
  b.state.received.push(raw.length);
  const problem = isBinary ? 'b received a binary message' : checkDelivery('b', raw, dataA);
  if (problem) return finish(problem);
  b.send(JSON.stringify({ channel, data: dataB }));
});

a.on('message', (raw, isBinary) => {
  a.state.received.push(raw.length);
  const problem = isBinary ? 'a received a binary message' : checkDelivery('a', raw, dataB);
  if (problem) return finish(problem);
  a.close(1000);
  b.close(1000);
});

let closed = 0;
function onClose(name) {
  return (code) => {
    summary[name].closeCode = code;
    closed += 1;
    if (closed < 2) return;
    if (a.state.received.length !== 1 || b.state.received.length !== 1) {
      return finish(`messages received: a=${a.state.received.length} b=${b.state.received.length}`);
    }
    finish(null);
  };
}
a.on('close', onClose('a'));
b.on('close', onClose('b'));

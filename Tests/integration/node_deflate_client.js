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
// sizes of the messages it received, and its close code. Exit 0 only when everything checked out.
'use strict';

const WebSocket = require('ws');
const { createRun, exchange } = require('./node_exchange.js');

const [urlA, urlB, authorizationB, channel, dataA, dataB] = process.argv.slice(2);
if (!dataB) {
  console.error('usage: node node_deflate_client.js URL_A URL_B AUTHORIZATION_B CHANNEL DATA_A DATA_B');
  process.exit(2);
}

const run = createRun();
const { summary, finish } = run;

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

const a = client('a', urlA, {});
const b = client('b', urlB, authorizationB && authorizationB !== '-' ? { Authorization: authorizationB } : {});

exchange(run, a, b, channel, dataA, dataB);

// A line-driven pub/sub client on Node's `ws` (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs),
// for the interoperability tests: the test process drives it through stdin and reads events from stdout.
//
// Usage: node node_pubsub_client.js ws://host:port/path?auth=... [AUTHORIZATION-HEADER-VALUE | -]
//
// stdout, one JSON object per line:
//   {"event":"open"}
//   {"event":"message","binary":false,"data":"<the exact payload, as UTF-8 text>"}
//   {"event":"unexpected-response","status":401,"contentType":"text/plain...","body":"..."}   (then exit 0)
//   {"event":"close","code":1001,"reason":"..."}                                              (then exit 0)
//   {"event":"error","message":"..."}
// stdin, one JSON object per line:
//   {"send":"<text>"}            sends a text frame (or a binary one with "binary":true)
//   {"publish":{...}}            sends JSON.stringify of the object as a text frame
//   {"close":1000}               starts the closing handshake
// End of stdin closes with 1000.
'use strict';

const readline = require('readline');
const WebSocket = require('ws');

const url = process.argv[2];
const authorization = process.argv[3];
if (!url) {
  console.error('usage: node node_pubsub_client.js ws://host:port/ [authorization-header|-]');
  process.exit(2);
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

const options = { perMessageDeflate: false, handshakeTimeout: 10000 };
if (authorization && authorization !== '-') options.headers = { Authorization: authorization };
const ws = new WebSocket(url, options);

ws.on('open', () => emit({ event: 'open' }));
ws.on('message', (data, isBinary) => emit({ event: 'message', binary: isBinary, data: data.toString('utf8') }));
ws.on('unexpected-response', (request, response) => {
  let body = '';
  response.setEncoding('utf8');
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => {
    emit({
      event: 'unexpected-response', status: response.statusCode,
      contentType: response.headers['content-type'] || '', body,
    });
    process.exit(0);
  });
});
ws.on('close', (code, reason) => {
  emit({ event: 'close', code, reason: reason.toString('utf8') });
  process.exit(0);
});
ws.on('error', (error) => emit({ event: 'error', message: String(error && error.message) }));

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if ('send' in command) {
    ws.send(command.binary ? Buffer.from(command.send, 'utf8') : command.send, { binary: !!command.binary });
  } else if ('publish' in command) {
    ws.send(JSON.stringify(command.publish));
  } else if ('close' in command) {
    ws.close(command.close);
  }
});
input.on('close', () => {
  if (ws.readyState === WebSocket.OPEN) ws.close(1000);
});

// Echo interoperability client using Node's `ws` (Debian's node-ws, found through NODE_PATH=/usr/share/nodejs).
//
// Usage: node node_echo_client.js ws://127.0.0.1:PORT/
//
// Runs text and binary messages from 0 bytes to 1 MiB, fragmented messages (ws.send(chunk, {fin: false})
// ... {fin: true}), ping/pong and a clean close with 1000 against an echo server, checks every echoed byte,
// prints one JSON summary line on stdout and exits 0 only when everything passed.
'use strict';

const crypto = require('crypto');
const WebSocket = require('ws');

const url = process.argv[2];
if (!url) {
  console.error('usage: node node_echo_client.js ws://host:port/');
  process.exit(2);
}

const SIZES = [0, 1, 125, 126, 65535, 65536, 1048576];
const OVERALL_TIMEOUT_MS = 30000;
const STEP_TIMEOUT_MS = 10000;

// A string whose UTF-8 encoding is exactly `size` bytes, with 1-, 2-, 3- and 4-byte characters when it fits.
function textOfSize(size) {
  const unit = 'a\u00e9\u20ac\u{1F600}'; // 1 + 2 + 3 + 4 bytes
  let text = unit.repeat(Math.floor(size / 10));
  text += 'x'.repeat(size - Buffer.byteLength(text));
  if (Buffer.byteLength(text) !== size) throw new Error(`textOfSize(${size}) is wrong`);
  return text;
}

// Each case: fragments to send (one element means an unfragmented message), whether the message is binary,
// and the exact bytes expected back.
function buildCases() {
  const cases = [];
  for (const size of SIZES) {
    const text = textOfSize(size);
    cases.push({ name: `text-${size}`, binary: false, fragments: [text], expected: Buffer.from(text) });
    const data = crypto.randomBytes(size);
    cases.push({ name: `binary-${size}`, binary: true, fragments: [data], expected: data });
  }
  // Fragment sizes around the 7- and 16-bit length boundaries, with an empty fragment; ~1 MiB in all.
  const pieces = [1, 0, 125, 126, 65535, 65536, 1048576 - 131072, 7];
  const textPieces = pieces.map(textOfSize);
  cases.push({
    name: 'text-fragmented', binary: false, fragments: textPieces,
    expected: Buffer.from(textPieces.join('')),
  });
  const binaryPieces = pieces.map((n) => crypto.randomBytes(n));
  cases.push({
    name: 'binary-fragmented', binary: true, fragments: binaryPieces,
    expected: Buffer.concat(binaryPieces),
  });
  // A text message whose fragment boundaries split multi-byte characters (sent as Buffers with
  // binary: false, so the opcode is still text): the server must validate UTF-8 across fragments.
  const whole = Buffer.from(textOfSize(70000));
  const splitPieces = [];
  for (let at = 0, step = 1; at < whole.length; at += step, step = step * 3 + 1) {
    splitPieces.push(whole.subarray(at, Math.min(whole.length, at + step)));
  }
  cases.push({ name: 'text-fragmented-split-characters', binary: false, fragments: splitPieces, expected: whole });
  // Many small fragments.
  const manyPieces = [];
  for (let i = 0; i < 500; i++) manyPieces.push(crypto.randomBytes(i % 37));
  cases.push({ name: 'binary-fragmented-500', binary: true, fragments: manyPieces, expected: Buffer.concat(manyPieces) });
  return cases;
}

const results = [];
let ws;
let closeInfo = null; // { code, reason } once the connection has closed
let collector = null; // receives every message while set (pipelined case)
let pending = null; // { resolve, reject, timer } of the step in progress

function waitFor(kind) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending = null;
      reject(new Error(`timed out waiting for ${kind}`));
    }, STEP_TIMEOUT_MS);
    pending = { kind, resolve, reject, timer };
  });
}

function settle(kind, value) {
  if (!pending) return false;
  const step = pending;
  pending = null;
  clearTimeout(step.timer);
  if (step.kind !== kind) {
    step.reject(new Error(`expected ${step.kind}, got ${kind}`));
  } else {
    step.resolve(value);
  }
  return true;
}

function sendMessage(testCase) {
  const { fragments, binary } = testCase;
  if (fragments.length === 1) {
    ws.send(fragments[0], { binary, fin: true });
    return;
  }
  fragments.forEach((fragment, index) => {
    ws.send(fragment, { binary, fin: index === fragments.length - 1 });
  });
}

async function runCase(testCase) {
  const reply = waitFor('message');
  sendMessage(testCase);
  const { data, isBinary } = await reply;
  const got = Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (isBinary !== testCase.binary) {
    throw new Error(`opcode: sent ${testCase.binary ? 'binary' : 'text'}, got ${isBinary ? 'binary' : 'text'}`);
  }
  if (got.length !== testCase.expected.length) {
    throw new Error(`length: expected ${testCase.expected.length}, got ${got.length}`);
  }
  if (!got.equals(testCase.expected)) {
    let at = 0;
    while (got[at] === testCase.expected[at]) at++;
    throw new Error(`bytes differ first at offset ${at}`);
  }
}

async function runPing(payload) {
  const pong = waitFor('pong');
  ws.ping(payload);
  const got = await pong;
  if (!Buffer.from(got).equals(payload)) throw new Error(`pong payload ${got.toString('hex')} != ${payload.toString('hex')}`);
}

// A ping between the fragments of one message: allowed by RFC 6455 5.4, answered at once.
async function runPingBetweenFragments() {
  const pong = waitFor('pong');
  ws.send('first half, ', { fin: false });
  ws.ping(Buffer.from('between'));
  const got = await pong;
  if (got.toString() !== 'between') throw new Error(`pong payload ${got.toString('hex')}`);
  const reply = waitFor('message');
  ws.send('second half', { fin: true });
  const { data, isBinary } = await reply;
  if (isBinary || data.toString() !== 'first half, second half') throw new Error(`echo ${data.toString()}`);
}

async function record(name, bytes, body) {
  const started = Date.now();
  try {
    if (closeInfo) throw new Error(`connection already closed with ${closeInfo.code} ${JSON.stringify(closeInfo.reason)}`);
    await body();
    results.push({ name, bytes, ok: true, ms: Date.now() - started });
  } catch (error) {
    results.push({ name, bytes, ok: false, error: String(error && error.message || error) });
  }
}

function finish(summary) {
  console.log(JSON.stringify(summary));
  process.exit(summary.ok ? 0 : 1);
}

async function main() {
  const started = Date.now();
  const overall = setTimeout(() => {
    finish({ ok: false, error: 'overall timeout', results });
  }, OVERALL_TIMEOUT_MS);

  ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      settle('close', closeInfo); // fails a step still waiting for a message or pong
      resolve(closeInfo);
    });
  });
  ws.on('message', (data, isBinary) => {
    if (collector) return collector(data, isBinary);
    if (!settle('message', { data, isBinary })) results.push({ name: 'unexpected-message', ok: false });
  });
  ws.on('pong', (data) => {
    if (!settle('pong', data)) results.push({ name: 'unexpected-pong', ok: false });
  });
  let socketError = null;
  ws.on('error', (error) => {
    socketError = String(error && error.message || error);
    if (pending) {
      const step = pending;
      pending = null;
      clearTimeout(step.timer);
      step.reject(error);
    }
  });

  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before open')));
  }).catch((error) => finish({ ok: false, error: `connect: ${error.message}`, results }));

  const extensions = ws.extensions;
  for (const testCase of buildCases()) {
    await record(testCase.name, testCase.expected.length, () => runCase(testCase));
  }
  await record('ping-empty', 0, () => runPing(Buffer.alloc(0)));
  await record('ping-125', 125, () => runPing(crypto.randomBytes(125)));
  await record('ping-between-fragments', 23, runPingBetweenFragments);
  // Ordering with many messages in flight at once.
  await record('pipelined-200', 0, async () => {
    const sent = [];
    for (let i = 0; i < 200; i++) sent.push(crypto.randomBytes(i * 13));
    const got = [];
    const all = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of 200 echoes`)), STEP_TIMEOUT_MS);
      collector = (data) => {
        got.push(Buffer.from(data));
        if (got.length === sent.length) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    try {
      for (const data of sent) ws.send(data);
      await all;
    } finally {
      collector = null;
    }
    sent.forEach((data, i) => {
      if (!got[i].equals(data)) throw new Error(`message ${i} differs`);
    });
  });

  // Clean close: the client sends 1000, the server answers with 1000 and closes TCP.
  await record('close-1000', 0, async () => {
    ws.close(1000, 'done');
    const info = await Promise.race([
      closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no close')), STEP_TIMEOUT_MS)),
    ]);
    if (info.code !== 1000) throw new Error(`close code ${info.code} (reason ${JSON.stringify(info.reason)})`);
  });

  clearTimeout(overall);
  const failed = results.filter((r) => !r.ok);
  finish({
    ok: failed.length === 0 && socketError === null,
    passed: results.length - failed.length,
    failed: failed.length,
    extensions: Object.keys(extensions),
    closeCode: closeInfo && closeInfo.code,
    socketError,
    ms: Date.now() - started,
    results,
  });
}

main().catch((error) => finish({ ok: false, error: String(error && error.stack || error), results }));

// The exchange the Node interop clients run (node_deflate_client.js, node_tls_client.js): two connected `ws`
// clients A and B on one channel; once both are open A publishes DATA_A, B checks it received the server's exact
// message and publishes DATA_B, A checks that and both close with 1000. The outcome is one JSON summary line on
// stdout, {"ok":..., "error":..., "a":{...}, "b":{...}}, and the exit status (0 only when everything checked out).
'use strict';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// The summary, and `finish(error)`, which prints it once and exits; a run that takes over 15 s fails.
function createRun() {
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
  return { summary, finish };
}

function checkDelivery(name, raw, channel, expected) {
  const text = raw.toString('utf8');
  const prefix = '{"issuer":"';
  const suffix = `","channel":"${channel}","data":"${expected}"}\n`;
  if (!text.startsWith(prefix) || !text.endsWith(suffix)) {
    return `${name} received an unexpected message (${text.length} bytes): ${text.slice(0, 120)}`;
  }
  const issuer = text.slice(prefix.length, text.length - suffix.length);
  return UUID4.test(issuer) ? null : `${name}: issuer is not a UUIDv4: ${issuer}`;
}

// `a` and `b` are ws clients whose `state` (also summary.a / summary.b) has `received: []` and `closeCode`.
function exchange(run, a, b, channel, dataA, dataB) {
  let opened = 0;
  function onOpen() {
    opened += 1;
    if (opened === 2) a.send(JSON.stringify({ channel, data: dataA }));
  }
  a.on('open', onOpen);
  b.on('open', onOpen);
  b.on('message', (raw, isBinary) => {
    b.state.received.push(raw.length);
    const problem = isBinary ? 'b received a binary message' : checkDelivery('b', raw, channel, dataA);
    if (problem) return run.finish(problem);
    b.send(JSON.stringify({ channel, data: dataB }));
  });
  a.on('message', (raw, isBinary) => {
    a.state.received.push(raw.length);
    const problem = isBinary ? 'a received a binary message' : checkDelivery('a', raw, channel, dataB);
    if (problem) return run.finish(problem);
    a.close(1000);
    b.close(1000);
  });
  let closed = 0;
  function onClose(ws) {
    return (code) => {
      ws.state.closeCode = code;
      closed += 1;
      if (closed < 2) return;
      if (a.state.received.length !== 1 || b.state.received.length !== 1) {
        return run.finish(`messages received: a=${a.state.received.length} b=${b.state.received.length}`);
      }
      run.finish(null);
    };
  }
  a.on('close', onClose(a));
  b.on('close', onClose(b));
}

module.exports = { createRun, exchange };

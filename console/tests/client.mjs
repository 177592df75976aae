// gatewarden.js, the client module, in Node.js with mqtt.js over WebSockets, as tests/console.rs runs
// it against mosquitto as shipped and a daemon whose MQTT rate limit is tight (rpc_burst 4, rpc_rate
// 1) and argon2 costly: a broker login refused, a login, an error from its code, a write given too
// short a timeout (never sent twice), a burst of reads over the rate limit (refusals matched by correlation data and
// waited out, timeouts sent again: all answered), the broker restarted under it (reconnected,
// subscriptions still delivering, calls answered), logout revoking the token.
//
// Input: the JSON in $CLIENT_TEST. Output: one line, `{"report": {...}}` (or `{"failed": ...}`, exit 1).

import mqtt from 'mqtt';
import { webcrypto } from 'node:crypto';
import { createInterface } from 'node:readline';
import { connect, GatewardenError } from '../gatewarden.js';

// Debian 12's Node.js 18 has no global Web Crypto (19+ does); gatewarden.js needs it for client ids.
globalThis.crypto ??= webcrypto;

const cfg = JSON.parse(process.env.CLIENT_TEST);
const report = { retries: [] };

// Steps that need the Rust side (stopping and starting the broker) are asked for on stdout as
// `{"wait": "<step>"}` and answered with one line on stdin.
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(step) {
  process.stdout.write(`${JSON.stringify({ wait: step })}\n`);
  const { value, done } = await lines.next();
  if (done) throw new Error(`stdin closed while waiting for ${step}`);
  return JSON.parse(value);
}

/** Resolves when `pred(value)` holds for something `gw` reports through `on`; fails after 15 s. */
function until(what, pred, on) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within 15 s`)), 15000);
    const off = on((v) => {
      if (pred(v)) {
        clearTimeout(timer);
        off();
        resolve(v);
      }
    });
  });
}

async function main() {
  const options = {
    url: cfg.url,
    site: cfg.site,
    username: cfg.broker.user,
    password: cfg.broker.password,
    mqtt,
    timeoutMs: 1500,
    retries: 10,
    onRetry: (r) => report.retries.push(r),
  };

  // The broker's own login, refused.
  try {
    const bad = await connect({ ...options, password: 'not-the-broker-password' });
    bad.close();
    report.bad_broker_login = 'connected';
  } catch (err) {
    report.bad_broker_login = err.code;
  }

  const gw = await connect(options);
  report.license = await new Promise((resolve) => gw.subscribe('license', resolve));
  report.login = (await gw.login(cfg.user, cfg.password, { timeoutMs: 60000 })).user;
  const token = gw.token;

  try {
    await gw.call('user.list', {});
    report.forbidden = 'answered';
  } catch (err) {
    report.forbidden = { code: err.code, text: err.text, is_error: err instanceof GatewardenError };
  }

  // A write whose reply cannot come in time (authenticated by password, which the daemon hashes
  // with a deliberately costly argon2 here): a timeout, and it is not sent again.
  const before = report.retries.length;
  try {
    const auth = { user: cfg.user, password: cfg.password };
    await gw.call('supervisor.message', { text: cfg.broadcast }, { timeoutMs: 20, auth });
    report.write = 'answered';
  } catch (err) {
    report.write = err.code;
  }
  report.write_retries = report.retries.length - before;

  // More reads at once than the rate limit lets through: every one answered in the end.
  const burst = await Promise.all(Array.from({ length: 6 }, () => gw.call('status', {})));
  report.burst = burst.map((s) => s.site);

  // The broker restarts (same ports): the module reconnects by itself, its subscriptions still
  // deliver and its calls are answered again.
  const states = [];
  gw.onState((s) => states.push(s));
  const messages = [];
  const licences = [];
  gw.subscribe('supervisor/message', (m) => m && messages.push(m.text));
  gw.subscribe('license', (l) => l && licences.push(l));
  await gw.call('status', {}); // the subscriptions are in place: the broker answered after them
  const down = until('drop of the link', (s) => s !== 'online', (fn) => gw.onState(fn));
  await ask('stop_broker');
  await down;
  const up = until('reconnect', (s) => s === 'online', (fn) => gw.onState(fn));
  licences.length = 0;
  await ask('start_broker');
  await up;
  report.states = [...states];
  report.status_after_restart = (await gw.call('status', {})).site;
  const heard = until('broadcast after the restart', (t) => t === cfg.after_restart, (fn) => {
    const id = setInterval(() => { if (messages.length) fn(messages[messages.length - 1]); }, 50);
    return () => clearInterval(id);
  });
  await ask('broadcast_after_restart');
  report.message_after_restart = await heard;
  report.license_after_restart = licences.length > 0 ? licences[licences.length - 1].limit : null;

  await gw.logout();
  report.token_after_logout = gw.token;
  try {
    await gw.call('user.show', {}, { auth: { token } });
    report.revoked = 'answered';
  } catch (err) {
    report.revoked = err.code;
  }
  gw.close();
}

main().then(
  () => {
    process.stdout.write(`${JSON.stringify({ report })}\n`);
    process.exit(0);
  },
  (err) => {
    process.stdout.write(`${JSON.stringify({ failed: String(err && err.stack ? err.stack : err), report })}\n`);
    process.exit(1);
  },
);

// gatewarden.js: the JavaScript client of gatewarden's MQTT request protocol, for browsers (the
// supervisor console, HMI screens). One module, no dependencies of its own: it drives an mqtt.js
// client (https://github.com/mqttjs/MQTT.js), passed in as `mqtt` or found as the global `mqtt` that
// mqtt.js's browser build (mqtt.min.js) defines.
//
// What it does (docs/console.md has the whole story, with examples):
// - connects over WebSockets (MQTT v5), with mqtt.js's own reconnect;
// - sends requests on gatewarden/<site>/rpc/request/<client id> and reads the replies on
//   hmi/<client id>/reply, the one reply topic the shipped ACL lets only this client read;
// - `call(method, params)` with a timeout, retries of reads and of refused (`rate_limited`) requests,
//   and the login token as auth;
// - `subscribe('license', fn)`, `subscribe('events/#', fn)`, ...: the mirrored state and the events,
//   re-subscribed by mqtt.js after every reconnect.
//
// Must never happen: a request whose reply could be read by another client (the reply topic is always
// this client's own); a write sent twice because a reply was slow (only reads are retried after a
// timeout; a `rate_limited` refusal was never executed, so retrying it is safe).

/** Text for each error code of the contract (docs/api.md, ErrorCode), for people at a panel. */
export const ERROR_TEXT = {
  bad_request: 'The request was not valid',
  unauthenticated: 'Not logged in, or the login has expired',
  forbidden: 'You do not have the right to do this',
  not_found: 'Not found',
  conflict: 'It conflicts with what is there already',
  invalid_credentials: 'Wrong user name or password',
  account_disabled: 'This account is disabled',
  account_locked: 'Too many failed logins: the account is locked for a while',
  license_limit_reached: 'No licence seat is free',
  session_terminated: 'This session was terminated',
  session_expired: 'This session has expired',
  supervisor_locked: 'A supervisor lock is set: changes are refused',
  protected_account: 'This account is protected',
  self_delete: 'You cannot delete your own account',
  registration_disabled: 'Self-registration is disabled',
  rate_limited: 'Too many requests: try again in a moment',
  internal: 'The gateway had an internal error',
  unavailable: 'The gateway is unavailable',
  timeout: 'No answer from the gateway (is it running, and is the broker connected?)',
  disconnected: 'Not connected to the broker',
};

/** An error answered by gatewarden (`code` from the contract), or `timeout` / `disconnected`. */
export class GatewardenError extends Error {
  constructor(code, message, details = {}) {
    super(message || ERROR_TEXT[code] || code);
    this.name = 'GatewardenError';
    this.code = code;
    this.details = details;
  }

  /** One line for a person: the code's text, then the daemon's own message when it adds something. */
  get text() {
    const base = ERROR_TEXT[this.code] || this.code;
    return this.message && this.message !== base ? `${base}: ${this.message}` : base;
  }
}

/** Methods that change nothing: safe to send again when a reply does not come in time. */
const READS = new Set([
  'status', 'audit.list', 'user.list', 'user.show', 'key.list', 'role.list', 'role.show', 'resource.list',
  'group.list', 'authz.check', 'authz.check_many', 'authz.allowed', 'authz.explain', 'authz.who_can',
  'object.show', 'object.list', 'object.who_can', 'settings.get', 'session.list', 'session.show',
]);

/** The built-in permissions (SPEC "Authorization"): what `permissions()` asks about. */
export const BUILTIN_PERMISSIONS = [
  'sessions.view', 'sessions.terminate', 'users.view', 'users.manage', 'roles.manage', 'resources.manage',
  'settings.manage', 'supervisor.lock', 'supervisor.broadcast', 'audit.view',
];

/** A fresh client id: `<prefix>-` and 16 random hex digits (1-128 bytes, no wildcards, as required). */
export function randomClientId(prefix = 'console') {
  const bytes = new Uint8Array(8);
  if (!globalThis.crypto?.getRandomValues) {
    // Browsers and Node.js 19+ have Web Crypto as a global; Node.js 18 has it as node:crypto's webcrypto.
    throw new Error("no Web Crypto: on Node.js 18 set globalThis.crypto = (await import('node:crypto')).webcrypto first");
  }
  globalThis.crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Does MQTT topic `topic` match `filter` (with `+` and `#`)? */
export function topicMatches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A connection to gatewarden through the broker.
 *
 * options:
 * - `url`: the broker's WebSockets URL (`ws://host:9001`, `wss://...`); default: the page's own host
 *   and port (the console is served by the broker's `http_dir`), `wss:` under https.
 * - `site`: gatewarden's `[site] id` (default `default`): the prefix is `gatewarden/<site>`.
 * - `clientId`: default a fresh `console-<random>`; the ACL lets only this id read its replies.
 * - `username`, `password`: the broker login (not gatewarden's).
 * - `token`: a login token to use from the start (after a page reload, say).
 * - `timeoutMs` (5000), `retries` (2): per call, for reads; `mqtt`: the mqtt.js module.
 * - `onRetry({method, attempt, reason, retry_after_ms})`: told of each request sent again
 *   (`reason`: `timeout` or `rate_limited`).
 */
export class Gatewarden {
  constructor(options = {}) {
    const loc = globalThis.location;
    const defaultUrl = loc && loc.host ? `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}` : undefined;
    this.url = options.url || defaultUrl;
    if (!this.url) throw new Error('gatewarden: no broker url');
    this.site = options.site || 'default';
    this.prefix = `gatewarden/${this.site}`;
    this.clientId = options.clientId || randomClientId();
    this.replyTopic = `hmi/${this.clientId}/reply`;
    this.requestTopic = `${this.prefix}/rpc/request/${this.clientId}`;
    this.token = options.token || null;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = options.retries ?? 2;
    this.onRetry = options.onRetry || (() => {});
    this.mqttLib = options.mqtt || globalThis.mqtt;
    if (!this.mqttLib || typeof this.mqttLib.connect !== 'function') {
      throw new Error('gatewarden: mqtt.js is not loaded (pass options.mqtt, or load mqtt.min.js first)');
    }
    this.options = options;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.handlers = new Map(); // filter (below the prefix) -> Set of functions
    this.stateHandlers = new Set();
    this.state = 'connecting';
    this.client = null;
  }

  /** Connects; resolves at the first CONNACK, rejects if the broker refuses the login. */
  connect() {
    return new Promise((resolve, reject) => {
      const c = this.mqttLib.connect(this.url, {
        protocolVersion: 5,
        clientId: this.clientId,
        username: this.options.username || undefined,
        password: this.options.password || undefined,
        clean: true,
        keepalive: 30,
        reconnectPeriod: 2000,
        connectTimeout: 10000,
        resubscribe: true,
      });
      this.client = c;
      let first = true;
      c.on('connect', () => {
        c.subscribe(this.replyTopic, { qos: 1 });
        for (const filter of this.handlers.keys()) c.subscribe(`${this.prefix}/${filter}`, { qos: 1 });
        this.setState('online');
        if (first) {
          first = false;
          resolve(this);
        }
      });
      c.on('error', (err) => {
        // A refused login (CONNACK 0x86/0x87, or 4/5 in 3.1.1) will not get better by retrying.
        if (first && err && [4, 5, 134, 135].includes(err.code)) {
          first = false;
          c.end(true);
          this.setState('refused');
          reject(new GatewardenError('unauthenticated', `the broker refused the login (${err.message})`));
        }
      });
      c.on('offline', () => this.setState('offline'));
      c.on('reconnect', () => this.setState('connecting'));
      c.on('close', () => {
        if (this.state === 'online') this.setState('offline');
      });
      c.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
      // A broker that does not answer at all: say so, rather than wait forever for the first CONNACK
      // (mqtt.js keeps trying; a later success still reaches onState).
      setTimeout(() => {
        if (first) {
          first = false;
          reject(new GatewardenError('disconnected', `the broker at ${this.url} does not answer`));
        }
      }, 15000);
    });
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const fn of this.stateHandlers) fn(state);
  }

  /** `fn(state)` on every change: `connecting`, `online`, `offline`, `refused`, `closed`. */
  onState(fn) {
    this.stateHandlers.add(fn);
    return () => this.stateHandlers.delete(fn);
  }

  onMessage(topic, payload, packet) {
    const text = new TextDecoder().decode(payload);
    if (topic === this.replyTopic) {
      let reply;
      try {
        reply = JSON.parse(text);
      } catch {
        return;
      }
      // A refusal before the payload was read (`rate_limited`) has no `id`: the correlation data,
      // copied from the request, says which request it answers.
      let id = reply && reply.id;
      const corr = packet && packet.properties && packet.properties.correlationData;
      if ((id === undefined || id === null) && corr) id = Number(new TextDecoder().decode(corr));
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.settle(reply);
      }
      return;
    }
    if (!topic.startsWith(`${this.prefix}/`)) return;
    const below = topic.slice(this.prefix.length + 1);
    let value = null;
    if (text.length > 0) {
      try {
        value = JSON.parse(text);
      } catch {
        return;
      }
    }
    for (const [filter, fns] of this.handlers) {
      if (topicMatches(filter, below)) for (const fn of fns) fn(value, below);
    }
  }

  /**
   * `fn(value, topic)` for messages on `filter` below the prefix (`license`, `supervisor/lock`,
   * `supervisor/message`, `events/#`, `events/session.opened`, `sessions/42/control`). An empty
   * payload (no supervisor lock) arrives as `null`. Returns the function that unsubscribes.
   */
  subscribe(filter, fn) {
    let fns = this.handlers.get(filter);
    if (!fns) {
      fns = new Set();
      this.handlers.set(filter, fns);
      if (this.client && this.client.connected) this.client.subscribe(`${this.prefix}/${filter}`, { qos: 1 });
    }
    fns.add(fn);
    return () => {
      fns.delete(fn);
      if (fns.size === 0) {
        this.handlers.delete(filter);
        if (this.client) this.client.unsubscribe(`${this.prefix}/${filter}`);
      }
    };
  }

  /** One request/reply, once: resolves with the raw reply object. */
  request(method, params, auth, timeoutMs) {
    if (!this.client) return Promise.reject(new GatewardenError('disconnected'));
    const id = this.nextId++;
    const body = { id, method, params: params || {} };
    if (auth) body.auth = auth;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GatewardenError('timeout', `no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { timer, settle: resolve });
      this.client.publish(this.requestTopic, JSON.stringify(body), {
        qos: 1,
        properties: { responseTopic: this.replyTopic, correlationData: new TextEncoder().encode(String(id)) },
      });
    });
  }

  /**
   * Calls `method` with `params` and resolves with its result, or rejects with a GatewardenError.
   * Auth is the login token unless `opts.auth` says otherwise (`null`: anonymous). Reads are sent
   * again after a timeout (`opts.retries`, default `retries`); a `rate_limited` refusal is waited out
   * (its `retry_after_ms`) and sent again, whatever the method: it was never executed.
   */
  async call(method, params = {}, opts = {}) {
    const auth = 'auth' in opts ? opts.auth : this.token ? { token: this.token } : undefined;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const retries = opts.retries ?? (READS.has(method) ? this.retries : 0);
    let attempt = 0;
    for (;;) {
      let reply;
      try {
        reply = await this.request(method, params, auth, timeoutMs);
      } catch (err) {
        if (err.code === 'timeout' && attempt < retries) {
          attempt++;
          this.onRetry({ method, attempt, reason: 'timeout' });
          continue;
        }
        throw err;
      }
      if (!reply.error) return reply.result;
      const { code, message, ...details } = reply.error;
      if (code === 'rate_limited' && attempt < Math.max(retries, 2)) {
        attempt++;
        this.onRetry({ method, attempt, reason: 'rate_limited', retry_after_ms: details.retry_after_ms });
        await sleep(Math.min(details.retry_after_ms ?? 500, 10000));
        continue;
      }
      throw new GatewardenError(code, message, details);
    }
  }

  /** Logs in and keeps the token for the calls that follow (`opts.timeoutMs`: as for `call`). */
  async login(user, password, opts = {}) {
    const r = await this.call('login', { user, password }, { ...opts, auth: undefined });
    this.token = r.token;
    return r;
  }

  /**
   * Revokes the login token at the daemon (`logout`) and forgets it. Unlike other writes it is sent
   * again after a timeout (a request dropped by the rate limit gets no answer): revoking twice is
   * harmless, and a token found already dead (`unauthenticated`) counts as revoked.
   */
  async logout() {
    if (!this.token) return null;
    try {
      return await this.call('logout', {}, { retries: this.retries });
    } catch (err) {
      if (err.code === 'unauthenticated') return { logged_out: null };
      throw err;
    } finally {
      this.token = null;
    }
  }

  /**
   * The built-in permissions the caller holds on the gateway (`*`), as a Set, from one
   * `authz.check_many` about the caller itself (which every account may ask).
   */
  async permissions(list = BUILTIN_PERMISSIONS) {
    const r = await this.call('authz.check_many', {
      checks: list.map((permission) => ({ permission, resource: '*' })),
    });
    return new Set(list.filter((_, i) => r.results[i] && r.results[i].decision === 'allow'));
  }

  /** Closes the connection; pending calls fail with `disconnected`. */
  close() {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.settle({ id, error: { code: 'disconnected', message: ERROR_TEXT.disconnected } });
    }
    this.pending.clear();
    if (this.client) this.client.end(true);
    this.client = null;
    this.setState('closed');
  }
}

/** `new Gatewarden(options)` and its first connection. */
export async function connect(options = {}) {
  const gw = new Gatewarden(options);
  await gw.connect();
  return gw;
}

// app.js: the supervisor console's shell. Login and logout, the screens the caller may use (asked
// of the daemon: `authz.check_many` on the built-in permissions), the licence gauge, the live
// sessions table, the supervisor lock and its banner, broadcasts. The admin screens are in admin.js.
//
// Where things are kept: the login token and the broker password in sessionStorage (this tab only,
// gone when it closes), never in a URL; the broker user, the site and the broker address in
// localStorage (not secrets). Nothing else is stored.

import { Gatewarden, GatewardenError, ERROR_TEXT } from './gatewarden.js';
import { h, fill, field, table, time, span, actor } from './dom.js';
import { adminScreens } from './admin.js';

const $ = (id) => document.getElementById(id);

const store = {
  get token() { return sessionStorage.getItem('gw.token'); },
  set token(v) { v ? sessionStorage.setItem('gw.token', v) : sessionStorage.removeItem('gw.token'); },
  get brokerPassword() { return sessionStorage.getItem('gw.brokerPassword') || ''; },
  set brokerPassword(v) { v ? sessionStorage.setItem('gw.brokerPassword', v) : sessionStorage.removeItem('gw.brokerPassword'); },
  get brokerUser() { return localStorage.getItem('gw.brokerUser') || ''; },
  set brokerUser(v) { localStorage.setItem('gw.brokerUser', v || ''); },
  get site() { return localStorage.getItem('gw.site') || 'default'; },
  set site(v) { localStorage.setItem('gw.site', v || 'default'); },
  get brokerUrl() { return localStorage.getItem('gw.brokerUrl') || ''; },
  set brokerUrl(v) { localStorage.setItem('gw.brokerUrl', v || ''); },
};

/** Everything the screens share. */
export const app = {
  gw: null,
  me: null, // user.show of the caller
  perms: new Set(),
  lock: null,
  license: null,
  screens: [],
  current: null,
  toast,
  errorText,
  confirm: confirmDialog,
};

/** The text a person reads for an error: the code's meaning, then the daemon's words. */
export function errorText(err) {
  if (err instanceof GatewardenError) return err.text;
  return String((err && err.message) || err);
}

let toastTimer = null;
/** A short message at the top; errors stay until the next one. */
export function toast(text, kind = 'ok') {
  const t = $('toast');
  fill(t, text);
  t.className = `toast ${kind}`;
  t.hidden = false;
  clearTimeout(toastTimer);
  if (kind === 'ok') toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

/**
 * A modal confirmation: `title`, the body nodes, and the button's label; resolves true on confirm.
 * `extra` form fields (a reason, say) are read by the caller before the dialog closes.
 */
export function confirmDialog(title, body, okLabel, { danger = true } = {}) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok' }, okLabel);
    const cancel = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'dlg-title' },
      h('form', { method: 'dialog' }, h('h2', { id: 'dlg-title' }, title), body, h('div', { class: 'actions' }, cancel, ok)));
    cancel.addEventListener('click', () => dlg.close('cancel'));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    // A field to fill (a reason, roles) takes the focus, so the keyboard types there and Enter
    // confirms; otherwise the confirm button has it. Escape cancels either way.
    (dlg.querySelector('input, select, textarea') || ok).focus();
  });
}

// ---- connection and login ---------------------------------------------------------------------

// Whether this link was ever up: a drop after that is told as reconnecting, not as a first try.
let wasOnline = false;
function showLinkState(state) {
  const pill = $('link-state');
  if (state === 'online') wasOnline = true;
  if (state === 'closed' || state === 'refused') wasOnline = false;
  const text = wasOnline && (state === 'offline' || state === 'connecting')
    ? { offline: 'reconnecting… (broker unreachable)', connecting: 'reconnecting…' }[state]
    : { online: 'connected', connecting: 'connecting…', offline: 'broker unreachable', refused: 'broker refused the login', closed: 'not connected' }[state] || state;
  fill(pill, text);
  pill.className = `pill ${state}`;
}

async function openLink() {
  if (app.gw) app.gw.close();
  const gw = new Gatewarden({
    url: store.brokerUrl || undefined,
    site: store.site,
    username: store.brokerUser,
    password: store.brokerPassword,
    token: store.token,
  });
  app.gw = gw;
  // A token that stopped working (expired, revoked, its account disabled) ends the console's login.
  const call = gw.call.bind(gw);
  gw.call = async (method, params, opts) => {
    try {
      return await call(method, params, opts);
    } catch (err) {
      if (err.code === 'unauthenticated' && app.me && method !== 'logout') leave('Your login has ended (expired or revoked): log in again.');
      throw err;
    }
  };
  gw.onState((s) => {
    showLinkState(s);
    if (s === 'online' && app.me) refreshAll();
  });
  showLinkState('connecting');
  fill($('site-name'), `· ${store.site}`);
  // The lock banner and the licence gauge are for everyone, from the retained topics.
  gw.subscribe('supervisor/lock', (lock) => { app.lock = lock; renderLock(); });
  gw.subscribe('license', (lic) => { app.license = lic; renderLicense(); });
  gw.subscribe('supervisor/message', (m) => m && addBroadcast(m));
  gw.subscribe('events/#', (ev, topic) => onEvent(topic.slice('events/'.length), ev));
  await gw.connect();
  return gw;
}

async function onLogin(e) {
  e.preventDefault();
  const btn = $('login-submit');
  btn.disabled = true;
  fill($('login-error'));
  store.brokerUser = $('broker-user').value.trim();
  store.brokerPassword = $('broker-password').value;
  store.site = $('site-id').value.trim() || 'default';
  store.brokerUrl = $('broker-url').value.trim();
  try {
    const gw = await openLink();
    const r = await gw.login($('login-user').value.trim(), $('login-password').value);
    store.token = r.token;
    $('login-password').value = '';
    await enter();
  } catch (err) {
    fill($('login-error'), errorText(err));
    if (err.code === 'unauthenticated' && app.gw && app.gw.state === 'refused') $('station').open = true;
  } finally {
    btn.disabled = false;
  }
}

/** After a login (or a reload with a token): who am I, what may I do, and the screens for that. */
async function enter() {
  const gw = app.gw;
  app.me = await gw.call('user.show', {});
  app.perms = await gw.permissions();
  fill($('who'), app.me.display_name ? `${app.me.display_name} (${app.me.name})` : app.me.name);
  $('logout').hidden = false;
  $('login').hidden = true;
  buildScreens();
}

async function logout() {
  try {
    if (app.gw) await app.gw.logout();
  } catch (err) {
    toast(`The token could not be revoked: ${errorText(err)}`, 'error');
  }
  leave();
}

/** Back to the login form: forget the token and the screens. */
function leave(message) {
  store.token = null;
  app.me = null;
  app.current = null;
  clearTimeout(sessionsTimer);
  licenseBox = null;
  sessionsBox = null;
  lockBox = null;
  app.perms = new Set();
  $('logout').hidden = true;
  fill($('who'));
  for (const s of app.screens) s.section.remove();
  app.screens = [];
  fill($('nav'));
  $('nav').hidden = true;
  $('login').hidden = false;
  if (message) fill($('login-error'), message);
  $('login-user').focus();
}

// ---- screens ----------------------------------------------------------------------------------

function buildScreens() {
  const p = app.perms;
  const all = [
    { id: 'overview', title: 'Overview', show: true, build: overviewScreen },
    { id: 'sessions', title: 'Sessions', show: p.has('sessions.view'), build: sessionsScreen },
    { id: 'lock', title: 'Lock', show: p.has('supervisor.lock'), build: lockScreen },
    { id: 'broadcast', title: 'Broadcast', show: true, build: broadcastScreen },
    ...adminScreens(app),
  ].filter((s) => s.show);
  const nav = $('nav');
  fill(nav);
  for (const s of all) {
    s.section = h('section', { id: `screen-${s.id}`, class: 'screen', hidden: true, 'aria-label': s.title });
    $('main').appendChild(s.section);
    s.tab = h('button', { type: 'button', class: 'tab', 'data-screen': s.id, onclick: () => show(s.id) }, s.title);
    nav.appendChild(s.tab);
    s.refresh = s.build(s.section) || (() => {});
  }
  nav.hidden = false;
  app.screens = all;
  show(all[0].id);
}

function show(id) {
  for (const s of app.screens) {
    const on = s.id === id;
    s.section.hidden = !on;
    s.tab.setAttribute('aria-current', on ? 'page' : 'false');
    if (on) {
      app.current = s;
      s.refresh();
    }
  }
}

function refreshAll() {
  if (app.current) app.current.refresh();
}

// Overview: the licence gauge by pool, the lock, the latest broadcasts.
let licenseBox = null;
function overviewScreen(section) {
  licenseBox = h('div', { class: 'gauges' });
  section.append(h('h1', {}, 'Licence seats'), licenseBox, h('h2', {}, 'Latest broadcasts'), feedBox());
  renderLicense();
  return () => renderLicense();
}

function renderLicense() {
  if (!licenseBox) return;
  const lic = app.license;
  if (!lic) {
    fill(licenseBox, h('p', { class: 'muted' }, 'No licence figures yet (is gatewarden connected to the broker?).'));
    return;
  }
  const pools = lic.pools && lic.pools.length ? lic.pools : [{ pool: null, seats: lic.limit, in_use: lic.in_use, free: lic.free }];
  const gauge = (label, p, key) => {
    const pct = p.seats > 0 ? Math.round((100 * p.in_use) / p.seats) : 100;
    const level = p.free === 0 ? 'full' : pct >= 80 ? 'high' : 'ok';
    return h('div', { class: `gauge ${level}`, 'data-pool': key },
      h('div', { class: 'gauge-label' }, label),
      h('meter', { min: 0, max: Math.max(p.seats, 1), value: p.in_use, 'aria-label': `seats in use, ${label}` }),
      h('div', { class: 'gauge-figures' }, `${p.in_use} / ${p.seats} in use · ${p.free} free`));
  };
  fill(
    licenseBox,
    h('p', { class: 'summary' }, `${lic.in_use} of ${lic.limit} seats in use, ${lic.free} free, ${lic.sessions ?? 0} live sessions`),
    pools.map((p) => gauge(p.pool === null || p.pool === undefined ? 'General pool' : `Reserved for ${p.pool}`, p, p.pool ?? '')),
    // license.types: the read-write seats each client type may hold; license.read_only_seats apart.
    (lic.types || []).map((t) => gauge(`Clients of type ${t.type}`, t, `type:${t.type}`)),
    lic.read_only ? gauge('Read-only seats', lic.read_only, 'read-only') : null,
  );
}

// Sessions: live from session.list, kept live by the session events.
const sessions = new Map(); // session_id -> view
let sessionsBox = null;
let sessionsTimer = null;
function sessionsScreen(section) {
  sessionsBox = h('div', { class: 'table-wrap' });
  const refresh = h('button', { type: 'button', onclick: () => loadSessions() }, 'Refresh');
  section.append(h('div', { class: 'row' }, h('h1', {}, 'Sessions'), refresh), sessionsBox);
  return () => loadSessions();
}

async function loadSessions() {
  if (!sessionsBox) return;
  try {
    const list = await app.gw.call('session.list', {});
    sessions.clear();
    for (const s of list) sessions.set(s.session_id, s);
    renderSessions();
  } catch (err) {
    fill(sessionsBox, h('p', { class: 'error' }, errorText(err)));
  }
  // Events keep the table live; a slow re-read catches heartbeats ("last seen") and missed events.
  clearTimeout(sessionsTimer);
  sessionsTimer = setTimeout(() => { if (app.current && app.current.id === 'sessions') loadSessions(); }, 30000);
}

function renderSessions() {
  if (!sessionsBox) return;
  const now = Date.now();
  const rows = [...sessions.values()].sort((a, b) => a.session_id - b.session_id);
  const canEnd = app.perms.has('sessions.terminate');
  fill(sessionsBox, table(
    [
      ['ID', (s) => String(s.session_id)],
      ['User', (s) => s.user],
      ['Type', (s) => s.type],
      ['Project', (s) => s.project ?? '–'],
      ['Host', (s) => s.host ?? '–'],
      ['Address', (s) => s.address ?? '–'],
      ['Opened', (s) => h('span', { title: time(s.opened_at) }, `${span(now - s.opened_at)} ago`)],
      ['Last seen', (s) => (s.last_seen_at ? `${span(now - s.last_seen_at)} ago` : '–')],
      ['Seat pool', (s) => (s.pool ?? 'general') + (s.read_only ? ', read-only' : '') + (s.shared_seat ? ' (shared)' : '')],
      ...(canEnd ? [['', (s) => h('button', { type: 'button', class: 'danger', onclick: () => terminate(s) }, 'Terminate')]] : []),
    ],
    rows,
    { empty: 'No live sessions.', rowAttrs: (s) => ({ 'data-session': s.session_id }) },
  ));
}

async function terminate(s) {
  const reason = h('input', { maxlength: 500, required: true, placeholder: 'panel frozen, replaced' });
  const ok = await confirmDialog(
    `Terminate session ${s.session_id}?`,
    [h('p', {}, `${s.user} on ${s.host ?? 'an unknown host'} (${s.type}${s.project ? `, ${s.project}` : ''}) loses its seat at once and is told why.`),
      field('Reason', reason)],
    'Terminate',
  );
  if (!ok) return;
  try {
    const r = await app.gw.call('session.terminate', { session_id: s.session_id, reason: reason.value.trim() || null });
    sessions.delete(s.session_id);
    renderSessions();
    toast(`Session ${r.session_id} of ${r.user} terminated${r.seat_freed ? ', its seat is free' : ''}.`);
  } catch (err) {
    toast(errorText(err), 'error');
  }
}

function onEvent(name, ev) {
  if (!ev) return;
  if (name === 'session.opened') {
    sessions.set(ev.session_id, {
      session_id: ev.session_id, user: ev.user, type: ev.type, project: ev.project, host: ev.host,
      address: ev.address, opened_at: ev.ts, last_seen_at: ev.ts, shared_seat: ev.shared_seat, pool: ev.pool, read_only: ev.read_only,
    });
    renderSessions();
  } else if (name === 'session.closed' || name === 'session.expired' || name === 'session.terminated') {
    if (sessions.delete(ev.session_id)) renderSessions();
  } else if (name === 'user.disabled' || name === 'user.deleted' || name === 'policy.changed') {
    if (app.me && ev.user === app.me.name) {
      leave('Your account was changed: log in again.');
      return;
    }
    if (name === 'policy.changed' && app.me) recheckPermissions();
  }
  for (const s of app.screens) if (s.onEvent) s.onEvent(name, ev);
}

async function recheckPermissions() {
  try {
    const now = await app.gw.permissions();
    const same = now.size === app.perms.size && [...now].every((p) => app.perms.has(p));
    if (!same) {
      app.perms = now;
      const current = app.current && app.current.id;
      for (const s of app.screens) s.section.remove();
      buildScreens();
      if (current && app.screens.some((s) => s.id === current)) show(current);
      toast('Your rights changed: the screens were updated.');
    }
  } catch {
    // The next refresh will tell.
  }
}

// The supervisor lock: a banner for everyone, the form for holders of supervisor.lock.
function renderLock() {
  const banner = $('lock-banner');
  const l = app.lock;
  if (!l) {
    banner.hidden = true;
    fill(banner);
  } else {
    const scope = l.l === 'u' ? `only ${actor(l.o)} may change things` : l.l === 'k' ? `only the key ${l.o.key_id ?? ''} may change things` : 'only supervisors may change things';
    fill(banner,
      h('strong', {}, 'Supervisor lock'), ' ',
      h('span', { class: 'lock-reason' }, l.reason || '(no reason given)'), ' — ',
      `set by ${actor(l.o)} at ${time(l.since)}; ${scope}`,
      l.expires_at ? `; clears itself at ${time(l.expires_at)}` : '');
    banner.hidden = false;
  }
  if (lockBox) renderLockForm();
}

let lockBox = null;
function lockScreen(section) {
  lockBox = h('div');
  section.append(h('h1', {}, 'Supervisor lock'), lockBox);
  renderLockForm();
  return () => renderLockForm();
}

function renderLockForm() {
  const l = app.lock;
  const scopeSelect = (name) => h('select', { name },
    h('option', { value: '' }, 'any supervisor'),
    h('option', { value: 'u' }, 'only me, logged in as a user'),
    h('option', { value: 'k' }, 'only my API key'));
  const lScope = scopeSelect('l');
  const cScope = scopeSelect('c');
  const reason = h('input', { name: 'reason', maxlength: 500, placeholder: 'line 1 changeover' });
  const expires = h('select', { name: 'expires_in' },
    h('option', { value: '' }, 'never (until cleared)'),
    ['15m', '30m', '1h', '2h', '4h', '8h', '12h', '24h'].map((v) => h('option', { value: v }, v)));
  const set = h('form', { class: 'card grid', onsubmit: async (e) => {
    e.preventDefault();
    const params = { l: lScope.value || null, c: cScope.value || null, reason: reason.value.trim() || null, expires_in: expires.value || null };
    try {
      await app.gw.call('supervisor.lock', params);
      toast('Supervisor lock set.');
    } catch (err) {
      toast(errorText(err), 'error');
    }
  } },
  h('h2', {}, l ? 'Replace the lock' : 'Set a lock'),
  field('Reason', reason, 'Shown to every operator and on every console.'),
  field('Who may still make changes', lScope),
  field('Who may clear it', cScope),
  field('Clears itself after', expires),
  h('button', { type: 'submit', class: 'primary' }, l ? 'Replace lock' : 'Set lock'));
  const clear = l
    ? h('div', { class: 'card' }, h('h2', {}, 'Current lock'),
      h('p', {}, `${l.reason || '(no reason given)'} — set by ${actor(l.o)} at ${time(l.since)}`),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await confirmDialog('Clear the supervisor lock?', h('p', {}, 'Everyone with the right may make changes again.'), 'Clear lock'))) return;
        try {
          const r = await app.gw.call('supervisor.unlock', {});
          toast(r.unlocked ? 'Supervisor lock cleared.' : r.message || 'No lock was set.');
        } catch (err) {
          toast(errorText(err), 'error');
        }
      } }, 'Clear lock'))
    : h('p', { class: 'muted' }, 'No supervisor lock is set.');
  fill(lockBox, clear, set);
}

// Broadcasts: the feed for everyone (supervisor/message), sending for holders of supervisor.broadcast.
const feed = [];
const feedBoxes = new Set();
function feedBox() {
  const box = h('ol', { class: 'feed', 'aria-live': 'polite' });
  feedBoxes.add(box);
  renderFeedInto(box);
  return box;
}

function addBroadcast(m) {
  feed.unshift(m);
  if (feed.length > 50) feed.pop();
  renderFeed();
}

function renderFeed() {
  for (const box of feedBoxes) {
    // A box of screens taken down (logout, changed rights) is forgotten.
    if (!box.isConnected) feedBoxes.delete(box);
    else renderFeedInto(box);
  }
}

function renderFeedInto(box) {
  fill(box, feed.length === 0
    ? h('li', { class: 'muted' }, 'No broadcasts since this console opened.')
    : feed.map((m) => h('li', {}, h('span', { class: 'when' }, time(m.ts)), ' ', h('strong', {}, actor(m.sender)), ': ', h('span', { class: 'text' }, m.text))));
}

function broadcastScreen(section) {
  section.append(h('h1', {}, 'Broadcast'));
  if (app.perms.has('supervisor.broadcast')) {
    const text = h('textarea', { maxlength: 1000, rows: 3, required: true, placeholder: 'Line 1 stops at 14:00 for the changeover' });
    section.append(h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      try {
        await app.gw.call('supervisor.message', { text: text.value });
        text.value = '';
        toast('Broadcast sent to every HMI.');
      } catch (err) {
        toast(errorText(err), 'error');
      }
    } }, field('Message to every HMI', text), h('button', { type: 'submit', class: 'primary' }, 'Send')));
  }
  section.append(h('h2', {}, 'Received'), feedBox());
}

// ---- start ------------------------------------------------------------------------------------

async function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', logout);
  $('broker-user').value = store.brokerUser;
  $('site-id').value = store.site === 'default' ? '' : store.site;
  $('broker-url').value = store.brokerUrl;
  if (!store.brokerUser) $('station').open = true;
  if (store.token) {
    try {
      await openLink();
      await enter();
      return;
    } catch (err) {
      leave(err.code === 'unauthenticated' ? 'Your login has expired: log in again.' : errorText(err));
      return;
    }
  }
  $('login-user').focus();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();

export { ERROR_TEXT };

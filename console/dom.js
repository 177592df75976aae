// dom.js: the one way the console puts anything on screen. Every piece of data becomes a text node
// (textContent), never markup: a user named `<img src=x onerror=alert(1)>` shows as those characters.
// There is no innerHTML anywhere in the console; attributes are set one by one, never from data that
// could name an event handler.

/**
 * `h('button', {class: 'danger', onclick: fn, disabled: true}, 'Terminate')`: an element with its
 * attributes and children (strings become text nodes; null and false are skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else if (k.startsWith('on')) throw new Error(`h: ${k} must be a function`);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A unix-ms time as local date and time, or a dash. */
export function time(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** How long ago (or for how long), short: `42 s`, `5 min`, `3 h 10 min`, `2 d 4 h`. */
export function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

/** Who did it (`{"u", "key_id"}`), as one name. */
export function actor(a) {
  if (!a) return 'gatewarden';
  if (a.u && a.key_id) return `${a.u} (key ${a.key_id})`;
  if (a.u) return a.u;
  if (a.key_id) return `key ${a.key_id}`;
  return 'gatewarden';
}

/** A labelled form field: `field('Reason', h('input', {...}))`. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

/** A table: `columns` as [title, row => text or Node], one row per item. */
export function table(columns, rows, opts = {}) {
  return h(
    'table',
    { class: opts.class || null },
    h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, opts.empty || 'Nothing here.'))
        : rows.map((r) =>
            h(
              'tr',
              opts.rowAttrs ? opts.rowAttrs(r) : {},
              columns.map(([title, f]) => h('td', { 'data-label': title }, f(r))),
            ),
          ),
    ),
  );
}

/** Comma- or line-separated text as a list of trimmed, non-empty items. */
export function list(text) {
  return String(text || '')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

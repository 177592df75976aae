// admin.js: the console's screens for holders of the management rights: users (add, disable and
// enable, roles), roles and grants, resources and groups, access questions (who can, explain) and
// the audit trail. Each screen is offered only to callers with the right it needs to read, and its
// changing controls only to those with the right to change; the daemon checks every request anyway.

import { h, fill, field, table, time, actor, list } from './dom.js';

/** The admin screens, each with `show` from the caller's permissions. */
export function adminScreens(app) {
  const p = app.perms;
  return [
    { id: 'users', title: 'Users', show: p.has('users.view'), build: (s) => usersScreen(app, s) },
    { id: 'roles', title: 'Roles', show: p.has('users.view'), build: (s) => rolesScreen(app, s) },
    { id: 'resources', title: 'Resources', show: p.has('resources.manage') || p.has('users.view'), build: (s) => resourcesScreen(app, s) },
    { id: 'access', title: 'Access', show: p.has('users.view'), build: (s) => accessScreen(app, s) },
    { id: 'audit', title: 'Audit', show: p.has('audit.view'), build: (s) => auditScreen(app, s) },
  ];
}

/** Runs `fn`, then says `done` (or the error) in the toast; returns whether it worked. */
async function act(app, fn, done) {
  try {
    const r = await fn();
    if (done) app.toast(typeof done === 'function' ? done(r) : done);
    return true;
  } catch (err) {
    app.toast(app.errorText(err), 'error');
    return false;
  }
}

function errorBox(app, box, err) {
  fill(box, h('p', { class: 'error' }, app.errorText(err)));
}

// ---- users ------------------------------------------------------------------------------------

function usersScreen(app, section) {
  const manage = app.perms.has('users.manage');
  const roles = app.perms.has('roles.manage');
  const box = h('div', { class: 'table-wrap' });
  section.append(h('h1', {}, 'Users'), box);
  if (manage) {
    const name = h('input', { maxlength: 64, required: true, autocomplete: 'off' });
    const display = h('input', { maxlength: 128, autocomplete: 'off' });
    const pw = h('input', { type: 'password', maxlength: 1024, autocomplete: 'new-password' });
    const rolesIn = h('input', { maxlength: 1024, placeholder: 'operator, night' });
    section.append(h('form', { class: 'card inline', onsubmit: async (e) => {
      e.preventDefault();
      const params = { name: name.value.trim(), display_name: display.value.trim() || null, password: pw.value || null };
      if (roles && list(rolesIn.value).length) params.roles = list(rolesIn.value);
      if (await act(app, () => app.gw.call('user.create', params), `User ${params.name} created.`)) {
        e.target.reset();
        load();
      }
    } }, h('h2', {}, 'Add a user'), field('User name', name), field('Display name', display), field('Password', pw),
    roles ? field('Roles', rolesIn, 'Comma-separated role names.') : null,
    h('button', { type: 'submit', class: 'primary' }, 'Add user')));
  }

  async function load() {
    try {
      const users = await app.gw.call('user.list', {});
      fill(box, table(
        [
          ['User', (u) => u.name],
          ['Display name', (u) => u.display_name ?? '–'],
          ['State', (u) => (u.enabled ? 'enabled' : 'disabled') + (u.locked_until && u.locked_until > Date.now() ? ', locked' : '')],
          ['Roles', (u) => (u.roles.length ? u.roles.join(', ') : '–')],
          ['Source', (u) => u.source],
          ...(manage ? [['', (u) => userActions(u)]] : []),
        ],
        users,
        { empty: 'No users.', rowAttrs: (u) => ({ 'data-user': u.name }) },
      ));
    } catch (err) {
      errorBox(app, box, err);
    }
  }

  function userActions(u) {
    if (u.builtin) return h('span', { class: 'muted' }, 'built-in');
    const toggle = u.enabled
      ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await app.confirm(`Disable ${u.name}?`, h('p', {}, 'Its logins are revoked and its sessions end at once.'), 'Disable'))) return;
        if (await act(app, () => app.gw.call('user.disable', { name: u.name }), (r) => `${r.user} disabled; ${r.sessions_terminated} sessions ended.`)) load();
      } }, 'Disable')
      : h('button', { type: 'button', onclick: async () => {
        if (await act(app, () => app.gw.call('user.enable', { name: u.name }), `${u.name} enabled.`)) load();
      } }, 'Enable');
    const editRoles = roles
      ? h('button', { type: 'button', onclick: async () => {
        const input = h('input', { value: u.roles.join(', '), maxlength: 1024 });
        if (!(await app.confirm(`Roles of ${u.name}`, field('Roles (comma-separated)', input), 'Save', { danger: false }))) return;
        const want = new Set(list(input.value));
        const add_roles = [...want].filter((r) => !u.roles.includes(r));
        const remove_roles = u.roles.filter((r) => !want.has(r));
        if (await act(app, () => app.gw.call('user.update', { name: u.name, add_roles, remove_roles }), `Roles of ${u.name} saved.`)) load();
      } }, 'Roles…')
      : null;
    return h('div', { class: 'actions' }, toggle, editRoles);
  }

  return load;
}

// ---- roles and grants -------------------------------------------------------------------------

function rolesScreen(app, section) {
  const manage = app.perms.has('roles.manage');
  const listBox = h('div', { class: 'table-wrap' });
  const detail = h('div');
  section.append(h('h1', {}, 'Roles and grants'), listBox, detail);
  if (manage) {
    const name = h('input', { maxlength: 64, required: true });
    const desc = h('input', { maxlength: 1024 });
    section.append(h('form', { class: 'card inline', onsubmit: async (e) => {
      e.preventDefault();
      if (await act(app, () => app.gw.call('role.create', { name: name.value.trim(), description: desc.value.trim() || null }), `Role ${name.value.trim()} created.`)) {
        e.target.reset();
        load();
      }
    } }, h('h2', {}, 'Create a role'), field('Name', name), field('Description', desc), h('button', { type: 'submit', class: 'primary' }, 'Create role')));
  }

  async function load() {
    try {
      const roles = await app.gw.call('role.list', {});
      fill(listBox, table(
        [
          ['Role', (r) => h('button', { type: 'button', class: 'link', onclick: () => showRole(r.name) }, r.name)],
          ['Description', (r) => r.description ?? '–'],
          ['Grants', (r) => String(r.grants)],
          ['Users', (r) => String(r.users)],
          ['Built-in', (r) => (r.builtin ? 'yes' : 'no')],
        ],
        roles,
        { empty: 'No roles.' },
      ));
    } catch (err) {
      errorBox(app, listBox, err);
    }
  }

  async function showRole(name) {
    let r;
    try {
      r = await app.gw.call('role.show', { name });
    } catch (err) {
      errorBox(app, detail, err);
      return;
    }
    const canEdit = manage && !r.builtin;
    const grants = table(
      [
        ['ID', (g) => String(g.id)],
        ['Permission', (g) => g.permission],
        ['Access', (g) => g.access],
        ['Resource', (g) => g.resource],
        ['Effect', (g) => g.effect],
        ...(canEdit ? [['', (g) => h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!(await app.confirm(`Revoke grant ${g.id}?`, h('p', {}, `${g.permission} (${g.access}) on ${g.resource}, from role ${r.name}.`), 'Revoke'))) return;
          if (await act(app, () => app.gw.call('role.revoke', { role: r.name, id: g.id }), 'Grant revoked.')) { showRole(r.name); load(); }
        } }, 'Revoke')]] : []),
      ],
      r.grants,
      { empty: 'No grants.' },
    );
    let form = null;
    if (canEdit) {
      const perm = h('input', { maxlength: 64, required: true, placeholder: 'tag.write' });
      const res = h('input', { maxlength: 4096, placeholder: 'line1/*, @line1-pumps' });
      const read = h('input', { type: 'checkbox', checked: true });
      const write = h('input', { type: 'checkbox' });
      const deny = h('input', { type: 'checkbox' });
      form = h('form', { class: 'card inline', onsubmit: async (e) => {
        e.preventDefault();
        const params = { role: r.name, permission: perm.value.trim(), read: read.checked, write: write.checked, deny: deny.checked, resources: list(res.value) };
        if (await act(app, () => app.gw.call('role.grant', params), (g) => `${g.grants.length} grant(s) added to ${g.target}.`)) { showRole(r.name); load(); }
      } }, h('h3', {}, 'Grant'), field('Permission', perm), field('Resources', res, 'Ids, @groups or globs, comma-separated; empty: * (everything).'),
      h('div', { class: 'checks' }, h('label', {}, read, ' read'), h('label', {}, write, ' write'), h('label', {}, deny, ' deny')),
      h('button', { type: 'submit', class: 'primary' }, 'Grant'));
    }
    fill(detail, h('div', { class: 'card' }, h('h2', {}, `Role ${r.name}`), r.description ? h('p', {}, r.description) : null,
      h('p', {}, `Users: ${r.users.length ? r.users.join(', ') : '–'}; API keys: ${r.keys.length ? r.keys.join(', ') : '–'}`),
      h('div', { class: 'table-wrap' }, grants), form));
  }

  return load;
}

// ---- resources and groups ---------------------------------------------------------------------

function resourcesScreen(app, section) {
  const manage = app.perms.has('resources.manage');
  const resBox = h('div', { class: 'table-wrap' });
  const groupBox = h('div', { class: 'table-wrap' });
  section.append(h('h1', {}, 'Resources and groups'), h('h2', {}, 'Groups'), groupBox, h('h2', {}, 'Resources'), resBox);
  if (manage) {
    const id = h('input', { maxlength: 256, required: true, placeholder: 'line1/pump1' });
    const kind = h('input', { maxlength: 64, required: true, placeholder: 'tag' });
    const gname = h('input', { maxlength: 64, required: true, placeholder: 'line1-pumps' });
    const gdesc = h('input', { maxlength: 1024 });
    const mgroup = h('input', { maxlength: 64, required: true });
    const members = h('input', { maxlength: 8192, required: true, placeholder: 'line1/pump1, line1/pump2' });
    const rgroup = h('input', { maxlength: 64, required: true });
    const leaving = h('input', { maxlength: 8192, required: true, placeholder: 'line1/pump2' });
    section.append(h('div', { class: 'cards' },
      h('form', { class: 'card', onsubmit: async (e) => {
        e.preventDefault();
        if (await act(app, () => app.gw.call('resource.add', { id: id.value.trim(), kind: kind.value.trim() }), `Resource ${id.value.trim()} added.`)) { e.target.reset(); load(); }
      } }, h('h2', {}, 'Add a resource'), field('Id', id), field('Kind', kind), h('button', { type: 'submit', class: 'primary' }, 'Add')),
      h('form', { class: 'card', 'data-form': 'group-create', onsubmit: async (e) => {
        e.preventDefault();
        if (await act(app, () => app.gw.call('group.create', { name: gname.value.trim(), description: gdesc.value.trim() || null }), `Group ${gname.value.trim()} created.`)) { e.target.reset(); load(); }
      } }, h('h2', {}, 'Create a group'), field('Name', gname), field('Description', gdesc), h('button', { type: 'submit', class: 'primary' }, 'Create')),
      h('form', { class: 'card', 'data-form': 'group-add', onsubmit: async (e) => {
        e.preventDefault();
        if (await act(app, () => app.gw.call('group.add', { group: mgroup.value.trim(), resources: list(members.value) }), (r) => `${r.added} added to ${r.group}.`)) { e.target.reset(); load(); }
      } }, h('h2', {}, 'Add to a group'), field('Group', mgroup), field('Resources', members), h('button', { type: 'submit', class: 'primary' }, 'Add')),
      h('form', { class: 'card', 'data-form': 'group-remove', onsubmit: async (e) => {
        e.preventDefault();
        const params = { group: rgroup.value.trim(), resources: list(leaving.value) };
        if (await act(app, () => app.gw.call('group.remove', params), (r) => `${r.removed} removed from ${r.group}.`)) { e.target.reset(); load(); }
      } }, h('h2', {}, 'Remove from a group'), field('Group', rgroup), field('Resources', leaving), h('button', { type: 'submit', class: 'danger' }, 'Remove'))));
  }

  async function load() {
    try {
      const [resources, groups] = await Promise.all([app.gw.call('resource.list', {}), app.gw.call('group.list', {})]);
      fill(groupBox, table([['Group', (g) => g.name], ['Description', (g) => g.description ?? '–'], ['Members', (g) => String(g.members)]], groups, { empty: 'No groups.' }));
      fill(resBox, table([['Id', (r) => r.id], ['Kind', (r) => r.kind], ['Groups', (r) => (r.groups.length ? r.groups.join(', ') : '–')]], resources.slice(0, 1000), { empty: 'No resources.' }),
        resources.length > 1000 ? h('p', { class: 'muted' }, `The first 1000 of ${resources.length}.`) : null);
    } catch (err) {
      errorBox(app, resBox, err);
    }
  }
  return load;
}

// ---- who can, explain -------------------------------------------------------------------------

function accessScreen(app, section) {
  const question = () => ({
    permission: h('input', { maxlength: 64, required: true, placeholder: 'tag.write' }),
    resource: h('input', { maxlength: 256, required: true, placeholder: 'line1/pump1 or *' }),
    access: h('select', {}, h('option', { value: 'read' }, 'read'), h('option', { value: 'write' }, 'write')),
  });
  const w = question();
  const whoBox = h('div', { class: 'table-wrap' });
  const x = question();
  const subject = h('input', { maxlength: 128, placeholder: 'yourself' });
  const explainBox = h('div');
  section.append(h('h1', {}, 'Access'),
    h('form', { class: 'card inline', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await app.gw.call('authz.who_can', { permission: w.permission.value.trim(), resource: w.resource.value.trim(), access: w.access.value });
        fill(whoBox, table([['Who', (p) => p.name], ['Kind', (p) => p.kind], ['Superuser', (p) => (p.superuser ? 'yes' : 'no')]], r, { empty: 'Nobody.' }));
      } catch (err) {
        errorBox(app, whoBox, err);
      }
    } }, h('h2', {}, 'Who can'), field('Permission', w.permission), field('Resource', w.resource), field('Access', w.access), h('button', { type: 'submit', class: 'primary' }, 'Ask')),
    whoBox,
    h('form', { class: 'card inline', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const q = { permission: x.permission.value.trim(), resource: x.resource.value.trim(), access: x.access.value };
        if (subject.value.trim()) q.subject = subject.value.trim();
        const r = await app.gw.call('authz.explain', q);
        fill(explainBox, h('div', { class: 'card' },
          h('p', { class: `decision ${r.decision}` }, `${r.subject}: ${r.decision} (${r.reason})`),
          table([
            ['Grant', (m) => String(m.grant.id)],
            ['Permission', (m) => m.grant.permission],
            ['Access', (m) => [m.grant.read ? 'read' : null, m.grant.write ? 'write' : null].filter(Boolean).join(',')],
            ['Resource', (m) => m.grant.selector],
            ['Effect', (m) => m.grant.effect],
            ['From', (m) => origin(m.origin)],
          ], r.matched, { empty: 'No grant matched.' })));
      } catch (err) {
        errorBox(app, explainBox, err);
      }
    } }, h('h2', {}, 'Explain'), field('Subject', subject, 'A user name or key:NAME; empty: yourself.'), field('Permission', x.permission), field('Resource', x.resource), field('Access', x.access), h('button', { type: 'submit', class: 'primary' }, 'Explain')),
    explainBox);
  return () => {};
}

function origin(o) {
  if (!o) return '';
  return o.kind === 'role' ? `role ${o.name}` : 'held directly';
}

// ---- audit ------------------------------------------------------------------------------------

function auditScreen(app, section) {
  const since = h('input', { type: 'datetime-local' });
  const limit = h('input', { type: 'number', min: 1, max: 10000, value: '200' });
  const who = h('input', { maxlength: 128, placeholder: 'user or key name' });
  const action = h('input', { maxlength: 128, placeholder: 'session.terminate' });
  const outcome = h('select', {}, h('option', { value: '' }, 'any'), ['ok', 'denied', 'failed'].map((o) => h('option', { value: o }, o)));
  const text = h('input', { maxlength: 256, placeholder: 'target or source contains' });
  const box = h('div', { class: 'table-wrap' });
  let rows = [];
  const render = () => {
    const t = text.value.trim().toLowerCase();
    const shown = rows.filter((e) => !t || `${e.target ?? ''} ${e.source}`.toLowerCase().includes(t));
    fill(box, h('p', { class: 'muted' }, `${shown.length} of ${rows.length} entries`), table(
      [
        ['When', (e) => time(e.ts)],
        ['Who', (e) => actor(e.actor)],
        ['Source', (e) => e.source],
        ['Action', (e) => e.action],
        ['Target', (e) => e.target ?? '–'],
        ['Outcome', (e) => e.outcome],
        ['Detail', (e) => {
          if (e.detail === undefined || e.detail === null) return '';
          const all = JSON.stringify(e.detail);
          return all.length > 120 ? h('span', { title: all }, `${all.slice(0, 120)}…`) : all;
        }],
      ],
      shown,
      { empty: 'No entries.' },
    ));
  };
  const load = async () => {
    const params = { limit: Math.min(10000, Math.max(1, Number(limit.value) || 200)) };
    if (since.value) params.since = new Date(since.value).getTime();
    // Who, action (exact, or a family ending in a dot) and outcome are asked of the daemon, so older
    // matches are found too; the text filter narrows what came back, as you type.
    if (who.value.trim()) params.actor = who.value.trim();
    if (action.value.trim()) params.action = action.value.trim();
    if (outcome.value) params.outcome = outcome.value;
    try {
      rows = await app.gw.call('audit.list', params);
      render();
    } catch (err) {
      errorBox(app, box, err);
    }
  };
  text.addEventListener('input', render);
  outcome.addEventListener('change', load);
  section.append(h('h1', {}, 'Audit trail'),
    h('form', { class: 'card inline', onsubmit: (e) => { e.preventDefault(); load(); } },
      field('Since', since), field('At most', limit), h('button', { type: 'submit', class: 'primary' }, 'Load'),
      field('Who', who), field('Action', action), field('Outcome', outcome), field('Text', text)),
    box);
  return load;
}

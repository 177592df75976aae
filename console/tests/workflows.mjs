// The console's other workflows in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), as tests/console.rs runs them against a real mosquitto (WebSockets, http_dir,
// the shipped ACL) and a real daemon with client-type caps and read-only seats:
// - the licence gauges by client type and for read-only seats, and a read-only session in the table;
// - the keyboard only: Tab to Sessions, open Terminate, Escape cancels, a reason and Enter confirm;
// - a lock only its owner may write through (`l = u`), with a reason and an expiry;
// - a resource group created, filled and one member taken out, from the Resources screen;
// - a user's roles edited (one added, one removed) and a grant added and revoked;
// - the broker restarted under the console: it says it is reconnecting, then connected, and what it
//   subscribed to and its calls work again.
//
// Input: the JSON in $CONSOLE_TEST. Steps that need the Rust side are asked for on stdout as
// `{"wait": "<step>", ...}` and answered with one line on stdin. Output: the last stdout line is
// `{"report": {...}}` (or `{"failed": ...}`, exit 1).


import { cfg, WAIT, report, ask, watch, finish, launch, tab } from './harness.mjs';

report.steps = [];
const step = (name) => report.steps.push(name);
const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
const untilText = (page, sel, want) => page.waitForFunction(([s, w]) => {
  const e = document.querySelector(s);
  return e && e.textContent === w;
}, [sel, want], { timeout: WAIT });

/** Presses Tab until `pred` (run in the page on the focused element) holds; at most 60 times. */
async function tabUntil(page, pred, what) {
  for (let i = 0; i < 60; i++) {
    if (await page.evaluate(pred)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${what}`);
}

async function main() {
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 600 } });
    const page = await ctx.newPage();
    watch(page, 'sup');
    await page.goto(`${cfg.url}/index.html`);
    await page.fill('#broker-user', cfg.broker.user);
    await page.fill('#broker-password', cfg.broker.password);
    await page.fill('#site-id', cfg.site);
    await page.fill('#login-user', cfg.supervisor.user);
    await page.fill('#login-password', cfg.supervisor.password);
    await page.click('#login-submit');
    await page.waitForSelector('#nav:not([hidden]) .tab', { timeout: WAIT });
    step('login');

    // The gauges: the pools, then each client type's cap, then the read-only seats.
    await page.waitForFunction((n) => document.querySelectorAll('.gauge').length === n, cfg.gauges, { timeout: WAIT });
    report.gauges = await page.$$eval('.gauge', (els) => els.map((e) => ({ pool: e.dataset.pool, text: e.textContent })));

    // The keyboard only, from the top of the page: Tab to the Sessions tab, Enter.
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await tabUntil(page, () => document.activeElement && document.activeElement.dataset.screen === 'sessions', 'the Sessions tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#screen-sessions:not([hidden])', { timeout: WAIT });
    for (const id of cfg.expect_sessions) await page.waitForSelector(`tr[data-session="${id}"]`, { timeout: WAIT });
    report.read_only_pool_cell = await text(page, `tr[data-session="${cfg.read_only_session}"] td[data-label="Seat pool"]`);
    report.read_write_pool_cell = await text(page, `tr[data-session="${cfg.keyboard_terminate}"] td[data-label="Seat pool"]`);
    step('sessions by keyboard');
    // Tab to the session's Terminate button; Enter opens the dialog, Escape cancels it.
    const focusedOnTerminate = () => page.evaluate((id) => {
      const e = document.activeElement;
      return !!e && e.matches('button.danger') && !!e.closest('tr') && e.closest('tr').dataset.session === id;
    }, String(cfg.keyboard_terminate));
    for (let i = 0; i < 60 && !(await focusedOnTerminate()); i++) await page.keyboard.press('Tab');
    if (!(await focusedOnTerminate())) throw new Error('Tab never reached the Terminate button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    report.dialog_focus = await page.evaluate(() => document.activeElement.tagName.toLowerCase());
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog.confirm', { state: 'detached', timeout: WAIT });
    report.escape_kept_row = (await page.$(`tr[data-session="${cfg.keyboard_terminate}"]`)) !== null;
    step('escape cancels');
    // Again: the reason typed into the focused field, Enter confirms.
    for (let i = 0; i < 60 && !(await focusedOnTerminate()); i++) await page.keyboard.press('Tab');
    if (!(await focusedOnTerminate())) throw new Error('Tab never got back to the Terminate button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    await page.keyboard.type(cfg.terminate_reason);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`tr[data-session="${cfg.keyboard_terminate}"]`, { state: 'detached', timeout: WAIT });
    step('terminated by keyboard');

    // A lock only its owner may write through, with a reason and an expiry.
    await tab(page, 'lock');
    await page.fill('#screen-lock [name="reason"]', cfg.lock_reason);
    await page.selectOption('#screen-lock [name="l"]', 'u');
    await page.selectOption('#screen-lock [name="expires_in"]', '2h');
    await page.click('#screen-lock form button[type="submit"]');
    await page.waitForSelector('#lock-banner:not([hidden])', { timeout: WAIT });
    report.owner_lock_banner = await text(page, '#lock-banner');
    await ask('lock_set', { token: await page.evaluate(() => sessionStorage.getItem('gw.token')) });
    await page.waitForSelector('#screen-lock button.danger', { timeout: WAIT });
    await page.click('#screen-lock button.danger');
    await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    await page.keyboard.press('Enter');
    await page.waitForSelector('#lock-banner[hidden]', { state: 'attached', timeout: WAIT });
    step('owner lock set and cleared');

    // A resource group: created, three members added, one taken out.
    await tab(page, 'resources');
    await page.fill('#screen-resources [data-form="group-create"] .field:nth-of-type(1) input', cfg.group);
    await page.fill('#screen-resources [data-form="group-create"] .field:nth-of-type(2) input', 'The pumps of line 1');
    await page.click('#screen-resources [data-form="group-create"] button[type="submit"]');
    await page.waitForSelector(`#screen-resources td[data-label="Group"] >> text=${cfg.group}`, { timeout: WAIT });
    await page.fill('#screen-resources [data-form="group-add"] .field:nth-of-type(1) input', cfg.group);
    await page.fill('#screen-resources [data-form="group-add"] .field:nth-of-type(2) input', cfg.members.join(', '));
    await page.click('#screen-resources [data-form="group-add"] button[type="submit"]');
    await untilText(page, '#screen-resources td[data-label="Members"]', String(cfg.members.length));
    await page.fill('#screen-resources [data-form="group-remove"] .field:nth-of-type(1) input', cfg.group);
    await page.fill('#screen-resources [data-form="group-remove"] .field:nth-of-type(2) input', cfg.member_removed);
    await page.click('#screen-resources [data-form="group-remove"] button[type="submit"]');
    await untilText(page, '#screen-resources td[data-label="Members"]', String(cfg.members.length - 1));
    report.group_members_shown = await text(page, '#screen-resources td[data-label="Members"]');
    step('group');

    // A user's roles: one added, then one removed, through the Roles… dialog.
    await tab(page, 'users');
    const rolesOf = `tr[data-user="${cfg.role_user}"]`;
    await page.waitForSelector(rolesOf, { timeout: WAIT });
    const editRoles = async (value) => {
      await page.click(`${rolesOf} button >> text=Roles…`);
      await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
      await page.fill('dialog.confirm input', value);
      await page.click('dialog.confirm button[value="ok"]');
      await page.waitForSelector('dialog.confirm', { state: 'detached', timeout: WAIT });
    };
    await editRoles(cfg.roles_added.join(', '));
    await untilText(page, `${rolesOf} td[data-label="Roles"]`, [...cfg.roles_added].sort().join(', '));
    await ask('roles_added');
    await editRoles(cfg.roles_kept.join(', '));
    await untilText(page, `${rolesOf} td[data-label="Roles"]`, cfg.roles_kept.join(', '));
    step('user roles');

    // A grant added to a role and revoked, from the Roles screen.
    await tab(page, 'roles');
    await page.waitForSelector(`#screen-roles button.link >> text=${cfg.grant_role}`, { timeout: WAIT });
    await page.click(`#screen-roles button.link >> text=${cfg.grant_role}`);
    await page.waitForSelector(`#screen-roles h2 >> text=Role ${cfg.grant_role}`, { timeout: WAIT });
    await page.fill('#screen-roles .card form .field:nth-of-type(1) input', cfg.grant.permission);
    await page.fill('#screen-roles .card form .field:nth-of-type(2) input', cfg.grant.resource);
    await page.check('#screen-roles .card form .checks label:nth-of-type(2) input');
    await page.click('#screen-roles .card form button[type="submit"]');
    await page.waitForSelector(`#screen-roles .card td[data-label="Permission"] >> text=${cfg.grant.permission}`, { timeout: WAIT });
    report.grant_row = await page.$eval('#screen-roles .card tbody tr', (tr) => Object.fromEntries(
      [...tr.querySelectorAll('td[data-label]')].filter((td) => td.dataset.label).map((td) => [td.dataset.label, td.textContent])));
    await ask('grant_added');
    await page.click('#screen-roles .card tbody tr button.danger');
    await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    await page.click('dialog.confirm button[value="ok"]');
    await page.waitForSelector('#screen-roles .card td.empty >> text=No grants.', { timeout: WAIT });
    step('grant added and revoked');

    // The broker restarts under the console, on the Sessions screen.
    await tab(page, 'sessions');
    await untilText(page, '#link-state', 'connected');
    await ask('stop_broker');
    await page.waitForFunction(() => document.getElementById('link-state').textContent.startsWith('reconnecting'), null, { timeout: WAIT });
    report.link_while_down = await text(page, '#link-state');
    await ask('start_broker');
    await untilText(page, '#link-state', 'connected');
    step('reconnected');
    // What it subscribed to still arrives: a lock set now shows its banner, a session opened now
    // appears in the table.
    const after = await ask('after_restart');
    await page.waitForSelector('#lock-banner:not([hidden])', { timeout: WAIT });
    report.banner_after_restart = await text(page, '#lock-banner');
    await page.waitForSelector(`tr[data-session="${after.session_id}"]`, { timeout: WAIT });
    report.live_after_restart = after.session_id;
    // And calls work: the lock is cleared from the console.
    await tab(page, 'lock');
    await page.waitForSelector('#screen-lock button.danger', { timeout: WAIT });
    await page.click('#screen-lock button.danger');
    await page.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    await page.keyboard.press('Enter');
    await page.waitForSelector('#lock-banner[hidden]', { state: 'attached', timeout: WAIT });
    report.cleared_after_restart = true;
    step('calls after restart');
  } finally {
    await browser.close();
  }
}

finish(main);

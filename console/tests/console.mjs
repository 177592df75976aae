// The console in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core), as
// tests/console.rs runs it: a real mosquitto serves the built console and carries MQTT over
// WebSockets to a real daemon; HMIs played by the Rust test hold sessions.
//
// Input: the JSON in $CONSOLE_TEST (url, site, broker login, accounts, the session ids to expect).
// Steps that need the Rust side (an HMI opening a session while the table is on screen) are asked for
// on stdout as `{"wait": "<step>"}` and answered with one line on stdin. Output: the last stdout line
// is the report, `{"report": {...}}`; the Rust test asserts on it. A step that fails reports
// `{"failed": "<what>", ...}` and exits 1. With `screenshots` set, PNGs of the main screens go there.


import { cfg, WAIT, report, ask, watch, finish, launch, tab } from './harness.mjs';

async function shot(page, name, scrollTo) {
  if (!cfg.screenshots) return;
  if (scrollTo) await page.$eval(scrollTo, (e) => e.scrollIntoView());
  else await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${cfg.screenshots}/${name}.png` });
}

async function openConsole(context, who) {
  const page = await context.newPage();
  watch(page, who);
  await page.goto(`${cfg.url}/index.html`);
  return page;
}

/** Logs in with the mouse (the station fields open, as on a first visit). */
async function login(page, account) {
  await page.fill('#broker-user', cfg.broker.user);
  await page.fill('#broker-password', cfg.broker.password);
  await page.fill('#site-id', cfg.site);
  await page.fill('#login-user', account.user);
  await page.fill('#login-password', account.password);
  await page.click('#login-submit');
  await page.waitForSelector('#nav:not([hidden]) .tab', { timeout: WAIT });
}

/** Logs in with the keyboard only: Tab between the fields, Enter submits. */
async function loginByKeyboard(page, account) {
  // A first visit: the station fields are open already (no broker user remembered).
  await page.focus('#login-user');
  await page.keyboard.type(account.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(account.password);
  await page.keyboard.press('Tab'); // the station's summary
  await page.keyboard.press('Tab');
  await page.keyboard.type(cfg.broker.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(cfg.broker.password);
  await page.keyboard.press('Tab');
  await page.keyboard.type(cfg.site);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nav:not([hidden]) .tab', { timeout: WAIT });
}

const tabs = (page) => page.$$eval('#nav .tab', (els) => els.map((e) => e.textContent));

async function main() {
  const browser = await launch();
  try {
    const viewport = { width: 1024, height: 600 };
    const supCtx = await browser.newContext({ viewport });
    const opCtx = await browser.newContext({ viewport });

    // The supervisor logs in and is offered every screen their rights allow.
    const sup = await openConsole(supCtx, 'supervisor');
    await shot(sup, 'login');
    // A wrong password first: the error is the code's text, on the form.
    await sup.fill('#broker-user', cfg.broker.user);
    await sup.fill('#broker-password', cfg.broker.password);
    await sup.fill('#site-id', cfg.site);
    await sup.fill('#login-user', cfg.supervisor.user);
    await sup.fill('#login-password', 'not-the-password');
    await sup.click('#login-submit');
    await sup.waitForFunction(() => document.getElementById('login-error').textContent !== '', null, { timeout: WAIT });
    report.bad_login_error = await sup.$eval('#login-error', (e) => e.textContent);
    await login(sup, cfg.supervisor);
    report.supervisor_tabs = await tabs(sup);
    report.token_in_session_storage = await sup.evaluate(() => (sessionStorage.getItem('gw.token') || '').startsWith('gwt_'));
    report.token = await sup.evaluate(() => sessionStorage.getItem('gw.token'));
    report.local_storage = await sup.evaluate(() => JSON.stringify({ ...localStorage }));
    report.url = sup.url();
    await sup.waitForSelector('.gauge', { timeout: WAIT });
    report.gauges = await sup.$$eval('.gauge', (els) => els.map((e) => e.textContent));
    await shot(sup, 'overview');

    // The live sessions.
    await tab(sup, 'sessions');
    for (const id of cfg.expect_sessions) await sup.waitForSelector(`tr[data-session="${id}"]`, { timeout: WAIT });
    report.sessions_seen = await sup.$$eval('tr[data-session]', (els) => els.map((e) => Number(e.dataset.session)));
    report.xss_project_cell = await sup.$eval(`tr[data-session="${cfg.xss_session}"] td[data-label="Project"]`, (e) => e.textContent);
    report.img_elements = await sup.evaluate(() => document.querySelectorAll('img').length);
    // A session opened while the table is on screen appears without a reload (events).
    const live = await ask('open_live_session');
    await sup.waitForSelector(`tr[data-session="${live.session_id}"]`, { timeout: WAIT });
    report.live_session_seen = live.session_id;
    await shot(sup, 'sessions');

    // Terminate one, with a reason, through the confirmation dialog.
    await sup.click(`tr[data-session="${cfg.terminate}"] button.danger`);
    await sup.waitForSelector('dialog.confirm[open]', { timeout: WAIT });
    await shot(sup, 'terminate');
    await sup.fill('dialog.confirm input', cfg.terminate_reason);
    await sup.click('dialog.confirm button[value="ok"]');
    await sup.waitForSelector(`tr[data-session="${cfg.terminate}"]`, { state: 'detached', timeout: WAIT });
    report.terminated = cfg.terminate;

    // An operator, on another browser, logs in by keyboard: no admin screens.
    const op = await openConsole(opCtx, 'operator');
    await loginByKeyboard(op, cfg.operator);
    report.operator_tabs = await tabs(op);
    report.operator_sections = await op.$$eval('main section.screen', (els) => els.map((e) => e.id));

    // The supervisor sets a lock; the operator's console shows the banner.
    await tab(sup, 'lock');
    await sup.fill('#screen-lock [name="reason"]', cfg.lock_reason);
    await sup.selectOption('#screen-lock [name="expires_in"]', '1h');
    await sup.click('#screen-lock form button[type="submit"]');
    await op.waitForSelector('#lock-banner:not([hidden])', { timeout: WAIT });
    report.operator_banner = await op.$eval('#lock-banner', (e) => e.textContent);
    await sup.waitForSelector('#lock-banner:not([hidden])', { timeout: WAIT });
    await sup.waitForSelector('#screen-lock button.danger', { timeout: WAIT });
    await shot(sup, 'lock');

    // A broadcast: the operator's feed shows it, as text.
    await tab(sup, 'broadcast');
    await sup.fill('#screen-broadcast textarea', cfg.broadcast);
    await sup.click('#screen-broadcast button[type="submit"]');
    await op.waitForFunction((t) => [...document.querySelectorAll('.feed .text')].some((e) => e.textContent === t), cfg.broadcast, { timeout: WAIT });
    report.operator_feed = await op.$$eval('.feed .text', (els) => els.map((e) => e.textContent));
    await shot(op, 'operator');
    await shot(sup, 'broadcast');

    // Clearing the lock takes the banner away everywhere.
    await tab(sup, 'lock');
    await sup.click('#screen-lock button.danger');
    await sup.click('dialog.confirm button[value="ok"]');
    await op.waitForSelector('#lock-banner[hidden]', { state: 'attached', timeout: WAIT });
    report.banner_cleared = true;

    // Users: the XSS display name is text.
    await tab(sup, 'users');
    await sup.waitForSelector(`tr[data-user="${cfg.xss_user}"]`, { timeout: WAIT });
    report.xss_display_cell = await sup.$eval(`tr[data-user="${cfg.xss_user}"] td[data-label="Display name"]`, (e) => e.textContent);
    await shot(sup, 'users');
    // Add an account, with a role, then disable it (through the confirmation).
    await sup.fill('#screen-users form .field:nth-of-type(1) input', 'newop');
    await sup.fill('#screen-users form .field:nth-of-type(2) input', 'New operator');
    await sup.fill('#screen-users form .field:nth-of-type(3) input', cfg.new_password);
    await sup.fill('#screen-users form .field:nth-of-type(4) input', 'supervisor');
    await sup.click('#screen-users form button[type="submit"]');
    await sup.waitForSelector('tr[data-user="newop"]', { timeout: WAIT });
    await sup.click('tr[data-user="newop"] button.danger');
    await sup.click('dialog.confirm button[value="ok"]');
    await sup.waitForFunction(() => {
      const td = document.querySelector('tr[data-user="newop"] td[data-label="State"]');
      return td && td.textContent.startsWith('disabled');
    }, null, { timeout: WAIT });
    report.new_user_state = await sup.$eval('tr[data-user="newop"] td[data-label="State"]', (e) => e.textContent);
    await tab(sup, 'roles');
    await sup.waitForSelector('#screen-roles tbody tr', { timeout: WAIT });
    await sup.click('#screen-roles button.link >> text=operator');
    await sup.waitForSelector('#screen-roles h2 >> text=Role operator', { timeout: WAIT });
    report.operator_role_grants = await sup.$$eval('#screen-roles .card td[data-label="Permission"]', (els) => els.map((e) => e.textContent));
    await shot(sup, 'roles', '#screen-roles h2');
    // Resources: add one; Access: who can write it.
    await tab(sup, 'resources');
    await sup.fill('#screen-resources form:nth-of-type(1) .field:nth-of-type(1) input', 'line1/pump1');
    await sup.fill('#screen-resources form:nth-of-type(1) .field:nth-of-type(2) input', 'tag');
    await sup.click('#screen-resources form:nth-of-type(1) button[type="submit"]');
    await sup.waitForSelector('#screen-resources td[data-label="Id"] >> text=line1/pump1', { timeout: WAIT });
    await tab(sup, 'access');
    await sup.fill('#screen-access form:nth-of-type(1) .field:nth-of-type(1) input', 'tag.write');
    await sup.fill('#screen-access form:nth-of-type(1) .field:nth-of-type(2) input', 'line1/pump1');
    await sup.selectOption('#screen-access form:nth-of-type(1) select', 'write');
    await sup.click('#screen-access form:nth-of-type(1) button[type="submit"]');
    await sup.waitForSelector('#screen-access td[data-label="Who"]', { timeout: WAIT });
    report.who_can = await sup.$$eval('#screen-access td[data-label="Who"]', (els) => els.map((e) => e.textContent));
    await tab(sup, 'audit');
    await sup.waitForSelector('#screen-audit tbody tr td[data-label="Action"]', { timeout: WAIT });
    report.audit_actions = await sup.$$eval('#screen-audit td[data-label="Action"]', (els) => els.map((e) => e.textContent));
    await shot(sup, 'audit');
    // The filters go to the daemon: the one termination is found even when only one entry is asked
    // for and newer entries exist.
    await sup.fill('#screen-audit input[placeholder="session.terminate"]', 'session.terminate');
    await sup.fill('#screen-audit input[type="number"]', '1');
    await sup.click('#screen-audit form button[type="submit"]');
    await sup.waitForFunction(() => {
      const cells = [...document.querySelectorAll('#screen-audit td[data-label="Action"]')];
      return cells.length === 1 && cells[0].textContent === 'session.terminate';
    }, null, { timeout: WAIT }).catch(() => {});
    report.audit_filtered = await sup.$$eval('#screen-audit td[data-label="Action"]', (els) => els.map((e) => e.textContent));

    // Control room and panel: every visible control is a touch target of 44 px or more, and the
    // page fits a phone's width.
    report.smallest_target = await sup.evaluate(() => {
      let min = Infinity;
      for (const el of document.querySelectorAll('button, input:not([type=checkbox]), select, textarea, summary')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.height > 0) min = Math.min(min, r.height, r.width);
      }
      return min;
    });
    await sup.setViewportSize({ width: 390, height: 844 });
    await tab(sup, 'sessions');
    report.phone_overflow_px = await sup.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await sup.setViewportSize(viewport);

    // Logout revokes the token and forgets it.
    await sup.click('#logout');
    await sup.waitForSelector('#login:not([hidden])', { timeout: WAIT });
    report.token_after_logout = await sup.evaluate(() => sessionStorage.getItem('gw.token'));
    report.img_elements_end = (await sup.evaluate(() => document.querySelectorAll('img').length))
      + (await op.evaluate(() => document.querySelectorAll('img').length));
  } finally {
    await browser.close();
  }
}

finish(main);

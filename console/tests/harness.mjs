// What the browser scripts share (console.mjs, workflows.mjs): their input, the conversation with
// tests/console.rs over stdin/stdout, watching a page for dialogs, errors and its last toast, and the
// one report line they end with.
//
// Input: the JSON in $CONSOLE_TEST. Steps that need the Rust side are asked for on stdout as
// `{"wait": "<step>", ...}` and answered with one line on stdin. Output: the last stdout line is
// `{"report": {...}}`, or `{"failed": "<what>", "toast": ..., "report": ...}` with exit code 1.

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const cfg = JSON.parse(process.env.CONSOLE_TEST);
export const WAIT = 15000;
export const report = { dialogs: [], page_errors: [], console_errors: [] };

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust side to do `step` and waits for its one-line answer. */
export async function ask(step, data = {}) {
  process.stdout.write(`${JSON.stringify({ wait: step, ...data })}\n`);
  const { value, done } = await lines.next();
  if (done) throw new Error(`stdin closed while waiting for ${step}`);
  return JSON.parse(value);
}

// The console's last message on each page (its toast), for the report of a failed step.
const lastToast = {};

/** Records the page's dialogs (dismissed: none may open), page errors, console errors and toast. */
export function watch(page, who) {
  setInterval(() => {
    page.$eval('#toast', (e) => e.textContent).then((t) => { lastToast[who] = t; }, () => {});
  }, 500).unref();
  page.on('dialog', async (d) => {
    report.dialogs.push(`${who}: ${d.type()} ${d.message()}`);
    await d.dismiss();
  });
  page.on('pageerror', (e) => report.page_errors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') report.console_errors.push(`${who}: ${m.text()}`);
  });
}

/** Headless Debian Chromium (`cfg.chromium`), as both scripts drive it. */
export function launch() {
  return chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** Opens a screen of the console by its tab. */
export const tab = (page, name) => page.click(`#nav .tab[data-screen="${name}"]`);

/** Runs `main` and prints the report line, or the failure with the last toasts; exits. */
export function finish(main) {
  main().then(
    () => {
      process.stdout.write(`${JSON.stringify({ report })}\n`);
      process.exit(0);
    },
    (err) => {
      const failed = String(err && err.stack ? err.stack : err);
      process.stdout.write(`${JSON.stringify({ failed, toast: lastToast, report })}\n`);
      process.exit(1);
    },
  );
}

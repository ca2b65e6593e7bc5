// Helpers of the browser tests: the API client, the browser, waiting, and
// the artifacts directory. Configuration comes from the environment (run.sh
// sets it):
//
//   RELATED_URL        the server, e.g. http://127.0.0.1:18080
//   RELATED_KEY        an admin key of the tenant (writes and checks)
//   RELATED_AGENT_KEY  the key the console signs in with (default RELATED_KEY)
//   ARTIFACTS_DIR      where screenshots go (default web/e2e/artifacts)
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BASE = (process.env.RELATED_URL ?? '').replace(/\/$/, '');
export const ADMIN_KEY = process.env.RELATED_KEY ?? '';
export const AGENT_KEY = process.env.RELATED_AGENT_KEY || ADMIN_KEY;
if (!BASE || !ADMIN_KEY) {
  throw new Error('set RELATED_URL and RELATED_KEY (web/e2e/run.sh does)');
}
export const ARTIFACTS = process.env.ARTIFACTS_DIR || path.join(here, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** Runs a GraphQL operation over HTTP and returns data; throws on any error. */
export async function api(query, variables = {}, key = ADMIN_KEY) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${BASE}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (res.status === 429 && attempt < 5) {
      await sleep(1000);
      continue;
    }
    if (body.errors?.length) throw new Error(`API: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value (returned) or the time is up. */
export async function until(what, fn, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * A new page in its own context that records console errors and page errors
 * in page.problems. Times are shown in UTC with British formats, so the test
 * can compute what the page should show.
 */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    // Navigations away abort in-flight requests; anything else is a problem.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') page.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.setDefaultTimeout(10_000);
  return page;
}

export async function shot(page, name, opts = {}) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), ...opts });
}

/** Signs in through the form. */
export async function signIn(page, key = AGENT_KEY) {
  await page.goto(`${BASE}/`);
  await page.locator('form[data-testid=signin]').waitFor();
  await page.fill('#api-key', key);
  await page.click('form[data-testid=signin] button[type=submit]');
  await page.locator('[data-testid=recent] .item').first().waitFor();
}

export const ROW_FIELDS = `id channel status closedState contact { name address } queue { name } lastMessage { preview sentAt }`;

/** What the console shows as a row's time: relative today, a date otherwise (en-GB, UTC). */
export function expectedShortWhen(iso, now = new Date()) {
  const t = new Date(iso);
  const day = (d) => d.toISOString().slice(0, 10);
  if (day(t) === day(now)) {
    const min = Math.floor((now - t) / 60000);
    if (min < 1) return /^just now$/;
    if (min < 60) return /^\d+ min ago$/;
    return /^\d+ h ago$/;
  }
  const opts = { day: 'numeric', month: 'short', timeZone: 'UTC' };
  if (t.getUTCFullYear() !== now.getUTCFullYear()) opts.year = 'numeric';
  return new RegExp(`^${t.toLocaleDateString('en-GB', opts).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

export const closedNames = { CLOSED: 'Closed', IGNORED: 'Ignored', SPAM: 'Spam' };

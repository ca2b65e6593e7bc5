// Helpers of the browser tests: the API client, the browser, waiting, and
// the artifacts directory. Configuration comes from the environment (run.sh
// sets it):
//
//   RELATED_URL        the server, e.g. http://127.0.0.1:18080
//   RELATED_KEY        an admin key of the tenant (writes and checks)
//   RELATED_AGENT_KEY  the key the console signs in with (default RELATED_KEY)
//   ARTIFACTS_DIR      where screenshots go (default web/e2e/artifacts)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   RELATED_BIN        the relatedd binary, for tests that run a server of their own
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
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
export function api(query, variables = {}, key = ADMIN_KEY) {
  return apiAt(BASE, query, variables, key);
}

/** api, against the server at base. */
export async function apiAt(base, query, variables, key) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/graphql`, {
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

export const channelNames = {
  WEBCHAT: 'Web chat',
  EMAIL: 'Email',
  SMS: 'SMS',
  WHATSAPP: 'WhatsApp',
  MESSENGER: 'Messenger',
  INSTAGRAM: 'Instagram',
  TWITTER: 'Twitter/X',
  VOICE: 'Voice',
};

/**
 * Layout problems of what the page shows now, as strings (none: []):
 *  - the page scrolls sideways;
 *  - an element sticks out of its container sideways, or clips its content
 *    sideways (cut off, with or without an ellipsis);
 *  - a text's block is narrower than one word (the word, up to 120 px, must
 *    fit), or a word of up to 20 characters is broken across lines (wrapped
 *    letter by letter);
 *  - a text input narrower than 100 px.
 * Popovers (position absolute or fixed) and visually hidden text are left out.
 */
export function layoutProblems(page) {
  return page.evaluate(() => {
    const out = [];
    const name = (el) => {
      let s = el.tagName.toLowerCase();
      if (el.id) s += `#${el.id}`;
      if (typeof el.className === 'string' && el.className.trim()) s += `.${el.className.trim().split(/\s+/).join('.')}`;
      if (el.dataset?.testid) s += `[data-testid=${el.dataset.testid}]`;
      return s;
    };
    const shown = (el) => {
      if (el.closest('[hidden], .sr-only, option, script, style, noscript, title')) return false;
      const cs = getComputedStyle(el);
      if (cs.display === 'none' || cs.visibility === 'hidden') return false;
      const r = el.getBoundingClientRect();
      return r.width > 0 || r.height > 0;
    };
    const floating = (el) => {
      for (let e = el; e && e !== document.body; e = e.parentElement) {
        const p = getComputedStyle(e).position;
        if (p === 'absolute' || p === 'fixed') return true;
      }
      return false;
    };
    const boxParent = (el) => {
      let p = el.parentElement;
      while (p && getComputedStyle(p).display === 'contents') p = p.parentElement;
      return p;
    };
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth + 1) out.push(`the page scrolls sideways (${doc.scrollWidth} px in ${window.innerWidth})`);
    for (const el of document.querySelectorAll('body *')) {
      if (el instanceof SVGElement && el.tagName !== 'svg') continue;
      if (!shown(el) || floating(el)) continue;
      const cs = getComputedStyle(el);
      if (cs.display === 'contents') continue;
      const p = boxParent(el);
      if (p && p !== document.body) {
        const r = el.getBoundingClientRect();
        const pr = p.getBoundingClientRect();
        if (r.left < pr.left - 1 || r.right > pr.right + 1) {
          out.push(`${name(el)} sticks out of ${name(p)} (${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(pr.left)}..${Math.round(pr.right)})`);
        }
      }
      const clips = ['hidden', 'clip'].includes(cs.overflowX);
      if (clips && el.scrollWidth > el.clientWidth + 1 && !el.classList.contains('ch')) {
        out.push(`${name(el)} cuts its content off${cs.textOverflow === 'ellipsis' ? ' with an ellipsis' : ''} (${el.scrollWidth} px in ${el.clientWidth})`);
      }
      if (cs.overflowX === 'auto' || cs.overflowX === 'scroll') {
        if (el.scrollWidth > el.clientWidth + 1) out.push(`${name(el)} scrolls sideways (${el.scrollWidth} px in ${el.clientWidth})`);
      }
      if ((el instanceof HTMLInputElement && !['checkbox', 'radio', 'hidden'].includes(el.type)) || el instanceof HTMLTextAreaElement) {
        if (el.getBoundingClientRect().width < 100) out.push(`${name(el)} is ${Math.round(el.getBoundingClientRect().width)} px wide`);
      }
    }
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || !/\S/.test(n.data) || el.closest('svg') || !shown(el)) continue;
      let block = el;
      while (block.parentElement && ['inline', 'contents'].includes(getComputedStyle(block).display)) block = block.parentElement;
      const bcs = getComputedStyle(block);
      const width = block.clientWidth - parseFloat(bcs.paddingLeft) - parseFloat(bcs.paddingRight);
      let longest = 0;
      let longestWord = '';
      for (const m of n.data.matchAll(/\S{2,}/g)) {
        range.setStart(n, m.index);
        range.setEnd(n, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter((r) => r.width > 0);
        const lines = new Set(rects.map((r) => Math.round(r.top))).size;
        const w = rects.reduce((s, r) => s + r.width, 0);
        if (w > longest) [longest, longestWord] = [w, m[0]];
        if (lines > 1 && m[0].length <= 20) out.push(`“${m[0]}” is broken across ${lines} lines in ${name(block)} (${Math.round(width)} px wide)`);
      }
      if (width + 1 < Math.min(longest, 120)) out.push(`${name(block)} is ${Math.round(width)} px wide, narrower than “${longestWord}” (${Math.round(longest)} px)`);
    }
    return [...new Set(out)];
  });
}

/**
 * Text whose contrast with its background is below WCAG AA (4.5:1, or 3:1
 * for large text). Disabled controls are exempt, as WCAG allows.
 */
export function contrastProblems(page) {
  return page.evaluate(() => {
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return [255, 255, 255, 1];
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, bottom) => {
      const a = top[3];
      return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
    };
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c[3] > 0) layers.push(c);
        if (c[3] >= 1) break;
      }
      let bg = [255, 255, 255, 1];
      for (const l of layers.reverse()) bg = over(l, bg);
      return bg;
    };
    const lum = (c) => {
      const [r, g, b] = c.slice(0, 3).map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => {
      const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
      return (x + 0.05) / (y + 0.05);
    };
    const out = [];
    const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || !/\S/.test(n.data) || seen.has(el)) continue;
      seen.add(el);
      if (el.closest('[hidden], .sr-only, option, script, style, noscript, title, :disabled, [aria-disabled=true]')) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === 'hidden' || cs.display === 'none' || el.getClientRects().length === 0) continue;
      const bg = background(el);
      const fg = over(parse(cs.color), bg);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      const need = large ? 3 : 4.5;
      const r = ratio(fg, bg);
      if (r < need) out.push(`“${n.data.trim().slice(0, 30)}” (${el.tagName.toLowerCase()}.${el.className}) ${r.toFixed(2)}:1 < ${need}:1 (${cs.color} on rgb(${bg.slice(0, 3).map(Math.round).join(', ')}))`);
    }
    return out;
  });
}

/** The viewports the console is checked at: the widths of agents' desks. */
export const DESKS = [
  { width: 768, height: 900 },
  { width: 1024, height: 768 },
  { width: 1280, height: 800 },
  { width: 1920, height: 1080 },
];

export const RELATED_BIN = process.env.RELATED_BIN ?? '';

/** A free TCP port on the loopback interface. */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * Starts `relatedd serve` of its own on port and dataDir and waits until it
 * serves. stop() sends SIGTERM and waits for the exit; the server's log
 * goes to ARTIFACTS/<logName>.
 */
export async function startServer({ port, dataDir, logName }) {
  if (!RELATED_BIN) throw new Error('set RELATED_BIN (web/e2e/run.sh does)');
  const proc = spawn(RELATED_BIN, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (log += d));
  const save = () => writeFileSync(path.join(ARTIFACTS, `${logName}.log`), log);
  try {
    await until(
      `relatedd on port ${port}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`relatedd exited: ${log}`);
        const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
        return r?.ok && out.includes('Related is serving');
      },
      20_000,
    );
  } catch (e) {
    proc.kill('SIGKILL');
    save();
    throw e;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      save();
    },
  };
}

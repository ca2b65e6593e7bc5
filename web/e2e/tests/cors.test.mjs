// CORS in a real browser: a page served from another origin calls /graphql
// with the headers GraphQL clients send (so Chromium sends a preflight),
// reads the answer and its exposed headers, and opens a graphql-transport-ws
// WebSocket. run.sh starts the server with
// --cors-origins 'http://localhost:*,http://127.0.0.1:*,http://*.partner.test:*';
// Chromium resolves *.test to this machine, so app.partner.test is an
// allowed origin by pattern and evil.test a refused one.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { ADMIN_KEY, BASE, CHROMIUM_ARGS, newPage, shot } from '../lib.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><title>Partner app</title>
<style>body{font:16px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style>
<h1>A partner's page on <span id="origin"></span></h1><pre id="out">waiting</pre>
<script>document.getElementById('origin').textContent = location.origin;</script>`;

let browser;
let site;
let port;
before(async () => {
  site = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  port = site.address().port;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP *.test 127.0.0.1'],
  });
});
after(async () => {
  await browser?.close();
  await new Promise((r) => site?.close(r));
});

/** Runs a fetch of /graphql inside the page, the way Apollo Client sends one. */
function callFromPage(page, { api, key, credentials = 'same-origin' }) {
  return page.evaluate(
    async ({ api, key, credentials }) => {
      try {
        const res = await fetch(`${api}/graphql`, {
          method: 'POST',
          credentials,
          headers: {
            'content-type': 'application/json',
            accept: 'application/graphql-response+json,application/json;q=0.9',
            authorization: `Bearer ${key}`,
            'apollo-require-preflight': 'true',
            'x-apollo-operation-name': 'Recent',
          },
          body: JSON.stringify({ operationName: 'Recent', query: 'query Recent { viewer { tenant } interactions(first: 1) { totalCount } }' }),
        });
        const body = await res.json();
        document.getElementById('out').textContent = JSON.stringify(body, null, 2);
        return { status: res.status, body, requestId: res.headers.get('x-request-id') };
      } catch (e) {
        document.getElementById('out').textContent = String(e);
        return { error: String(e) };
      }
    },
    { api, key, credentials },
  );
}

describe('CORS from another origin', () => {
  it('an allowed origin (by pattern) reads the answer after a preflight', async () => {
    const page = await newPage(browser);
    await page.goto(`http://app.partner.test:${port}/`);
    for (const credentials of ['same-origin', 'include']) {
      const got = await callFromPage(page, { api: BASE, key: ADMIN_KEY, credentials });
      assert.equal(got.error, undefined, `fetch failed (credentials ${credentials}): ${got.error}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.data.viewer.tenant, 'demo');
      assert.ok(got.body.data.interactions.totalCount > 0);
      assert.match(got.requestId ?? '', /^[0-9a-f]{24}$/, 'X-Request-Id is exposed to the page');
    }
    await shot(page, 'cors-allowed-origin');
    const wrong = await callFromPage(page, { api: BASE, key: 'rk_not-a-real-key' });
    assert.equal(wrong.status, 401, 'a refusal is readable by the page too');
    assert.equal(wrong.body.errors[0].extensions.code, 'UNAUTHENTICATED');
    assert.deepEqual(page.problems.filter((p) => !p.includes('401')), []);
    await page.context().close();
  });

  it('an allowed origin subscribes over a WebSocket', async () => {
    const page = await newPage(browser);
    await page.goto(`http://app.partner.test:${port}/`);
    const first = await page.evaluate(
      ({ ws, key }) =>
        new Promise((resolve) => {
          const s = new WebSocket(`${ws}/graphql`, 'graphql-transport-ws');
          s.onopen = () => s.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${key}` } }));
          s.onmessage = (m) => {
            resolve(JSON.parse(m.data).type);
            s.close();
          };
          s.onerror = () => resolve('error');
          setTimeout(() => resolve('timeout'), 5000);
        }),
      { ws: BASE.replace(/^http/, 'ws'), key: ADMIN_KEY },
    );
    assert.equal(first, 'connection_ack');
    await page.context().close();
  });

  it('an origin not listed is refused by the browser', async () => {
    const page = await newPage(browser);
    await page.goto(`http://evil.test:${port}/`);
    const got = await callFromPage(page, { api: BASE, key: ADMIN_KEY });
    assert.match(got.error ?? '', /Failed to fetch/, `the page read ${JSON.stringify(got)}`);
    assert.ok(
      page.problems.some((p) => /CORS|Access-Control-Allow-Origin/.test(p)),
      `Chromium names CORS: ${page.problems.join('; ')}`,
    );
    await shot(page, 'cors-refused-origin');
    await page.context().close();
  });
});

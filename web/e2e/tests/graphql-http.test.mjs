// The GraphQL-over-HTTP audit of the graphql-http package (auditServer)
// against the running server: every MUST and SHOULD must pass; MAY results
// are printed.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { auditServer } from 'graphql-http';
import { ADMIN_KEY, BASE, sleep } from '../lib.mjs';

/** fetch with the key, honouring Retry-After as a well-behaved client does. */
async function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${ADMIN_KEY}`);
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(input, { ...init, headers });
    if (res.status !== 429 || attempt === 10) return res;
    await sleep(1000 * Number(res.headers.get('retry-after') || 1));
  }
}

it('graphql-http audit: 100% of MUST and SHOULD', async () => {
  const results = await auditServer({ url: `${BASE}/graphql`, fetchFn });
  const count = {};
  const failed = [];
  for (const r of results) {
    count[r.status] = (count[r.status] ?? 0) + 1;
    if (r.status !== 'ok') {
      const line = `${r.status} ${r.id} ${r.name}: ${r.reason}`;
      if (r.status === 'notice') console.log(`MAY not met: ${line}`);
      else failed.push(line);
    }
  }
  console.log(`graphql-http audit: ${JSON.stringify(count)} of ${results.length}`);
  assert.deepEqual(failed, []);
});

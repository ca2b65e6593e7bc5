// The agent console and GraphiQL in headless Chromium, against a running
// relatedd on the embedded database (see ../run.sh). Every value the page
// shows is checked against the API, queried here with the same key.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ADMIN_KEY,
  channelNames,
  AGENT_KEY,
  api,
  BASE,
  closedNames,
  expectedShortWhen,
  launch,
  newPage,
  ROW_FIELDS,
  shot,
  signIn,
  until,
} from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const PANEL = (args) => `related(${args}) { scope totalCount edges { node { ${ROW_FIELDS} } } pageInfo { hasNextPage endCursor } }`;

/** The rows of the Related panel, as shown. */
function panelRows(page) {
  return page.$$eval('[data-testid=related-rows] a.row', (rows) =>
    rows.map((a) => {
      const time = a.querySelector('time');
      return {
        id: a.dataset.id,
        href: a.getAttribute('href'),
        channel: a.querySelector('.ch')?.getAttribute('data-channel'),
        channelLabel: a.querySelector('.ch')?.getAttribute('aria-label'),
        name: a.querySelector('.row-name')?.textContent,
        preview: a.querySelector('.row-preview')?.textContent,
        queue: a.querySelector('.row-queue')?.textContent,
        state: a.querySelector('.state')?.textContent,
        closed: a.classList.contains('closed'),
        greyed: getComputedStyle(a).backgroundColor,
        time: time?.textContent,
        datetime: time?.getAttribute('datetime'),
        title: time?.getAttribute('title'),
      };
    }),
  );
}

function assertRowsMatch(shown, nodes, now = new Date()) {
  assert.equal(shown.length, nodes.length, 'row count');
  nodes.forEach((n, i) => {
    const r = shown[i];
    const at = `row ${i} (${n.id})`;
    assert.equal(r.id, n.id, `${at}: order`);
    assert.equal(r.href, `/?interaction=${encodeURIComponent(n.id)}`, `${at}: link`);
    assert.equal(r.channel, n.channel, `${at}: channel icon`);
    assert.ok(r.channelLabel, `${at}: channel icon label`);
    assert.equal(r.name, n.contact.name || n.contact.address, `${at}: contact name`);
    assert.equal(r.preview, n.lastMessage ? n.lastMessage.preview : 'No messages', `${at}: preview`);
    assert.equal(r.queue, n.queue ? n.queue.name : 'No queue', `${at}: queue`);
    if (n.status === 'CLOSED') {
      assert.ok(r.closed, `${at}: closed rows are greyed`);
      assert.equal(r.state, closedNames[n.closedState], `${at}: closed state`);
    } else {
      assert.ok(!r.closed, `${at}: open rows are not greyed`);
      assert.equal(r.state, 'Open', `${at}: state`);
    }
    if (n.lastMessage) {
      assert.equal(r.datetime, n.lastMessage.sentAt, `${at}: time`);
      assert.match(r.time, expectedShortWhen(n.lastMessage.sentAt, now), `${at}: short time`);
      assert.ok(r.title && r.title.length > 10 && r.title !== r.time, `${at}: full time on hover (${r.title})`);
    }
  });
}

function assertNoProblems(page, ignore = () => false) {
  const problems = page.problems.filter((p) => !ignore(p));
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
}

async function openInteraction(page, id) {
  await page.goto(`${BASE}/?interaction=${encodeURIComponent(id)}`);
  await page.locator(`[data-testid=interaction][data-id="${id}"]`).waitFor();
}

async function waitLive(page) {
  await page.locator('[data-testid=live-state][data-state=live]').waitFor();
}

// A fresh customer of our own, so the live tests know exactly what to expect.
const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
const email = `e2e-${stamp}@example.com`;
async function record(thread, body, { channel = 'EMAIL', address = email, name = 'Erin Tester', queue = 'Billing', attributes } = {}) {
  const d = await api(
    `mutation R($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id } userErrors { message } } }`,
    { in: { channel, threadRef: `${stamp}-${thread}`, direction: 'INBOUND', contact: { address, name, attributes }, queue, body } },
  );
  assert.deepEqual(d.recordMessage.userErrors, []);
  return d.recordMessage.interaction.id;
}

describe('agent console', () => {
  it('signs in with a key, keeps it, and serves the page with its headers', async () => {
    const res = await fetch(`${BASE}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const page = await newPage(browser);
    await page.goto(`${BASE}/`);
    await page.locator('form[data-testid=signin]').waitFor();
    await shot(page, 'signin-1280');
    await signIn(page);
    assert.equal(await page.evaluate(() => localStorage.getItem('related.console.apiKey')), AGENT_KEY);
    // The list is the API's open interactions, newest first.
    const d = await api(`{ interactions(first: 25, status: OPEN) { totalCount edges { node { id } } } }`);
    const ids = await page.$$eval('[data-testid=recent] a.item', (as) => as.map((a) => a.dataset.id));
    assert.deepEqual(ids, d.interactions.edges.map((e) => e.node.id));
    assert.equal(await page.textContent('[data-testid=recent] .count'), String(d.interactions.totalCount));
    // A reload stays signed in.
    await page.reload();
    await page.locator('[data-testid=recent] .item').first().waitFor();
    await shot(page, 'list-1280');
    assertNoProblems(page);
    await page.context().close();
  });

  it('shows an interaction: profile bar, messages paged upward, and every Related field as the API has it', async () => {
    // The richest panel among recent interactions with a profile.
    const d = await api(
      `{ interactions(first: 60) { edges { node { id profile { id identifiers { key value } } related(first: 1) { totalCount scope } } } } }`,
    );
    const cands = d.interactions.edges.map((e) => e.node).filter((n) => n.profile && n.profile.identifiers.length > 0);
    assert.ok(cands.length > 0, 'the demo data has interactions with profiles');
    // Prefer a profile of several contacts (its panel has two scopes that differ).
    cands.sort((a, b) => Number(b.related.scope === 'PROFILE') - Number(a.related.scope === 'PROFILE') || b.related.totalCount - a.related.totalCount);
    const target = cands[0];
    const ident = target.profile.identifiers[0];

    const page = await newPage(browser);
    await signIn(page);
    // Find the customer by an identifier, as an agent would.
    await page.selectOption('[data-testid=search] select', ident.key);
    await page.fill('#search-value', ident.value);
    await page.press('#search-value', 'Enter');
    await page.locator('[data-testid=search-result] a.item').first().waitFor();
    const found = await api(
      `query($k: String!, $v: String!) { profileByIdentifier(key: $k, value: $v) { name interactions(first: 25) { edges { node { id } } } } }`,
      { k: ident.key, v: ident.value },
    );
    assert.equal(await page.textContent('[data-testid=search-result] .found-name'), found.profileByIdentifier.name);
    assert.deepEqual(
      await page.$$eval('[data-testid=search-result] a.item', (as) => as.map((a) => a.dataset.id)),
      found.profileByIdentifier.interactions.edges.map((e) => e.node.id),
    );
    await page.click(`[data-testid=search-result] a.item[data-id="${target.id}"]`);
    await page.locator(`[data-testid=interaction][data-id="${target.id}"]`).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('interaction'), target.id);
    await page.locator('[data-testid=related-rows]').waitFor();

    const q = await api(
      `query($id: ID!) { interaction(id: $id) {
        channel contact { name address } queue { name } status closedState
        profile { name channels contacts { name } }
        messages(last: 20) { totalCount edges { node { id body } } pageInfo { hasPreviousPage } }
        all: messages(first: 100) { edges { node { id } } }
        ${PANEL('first: 10')}
        more: ${PANEL('first: 20')}
      } }`,
      { id: target.id },
    );
    const it = q.interaction;
    const now = new Date();

    // Profile bar: the person's name (a contact's own name; the profile's
    // automatic name is an identifier), and each channel labelled.
    const person = it.contact.name || it.profile.contacts.find((c) => c.name)?.name || it.profile.name;
    assert.equal(await page.textContent('[data-testid=profile-bar] [data-testid=person-name]'), person);
    if (person !== it.profile.name) assert.equal(await page.textContent('[data-testid=profile-bar] .profile-key'), it.profile.name);
    assert.deepEqual(
      await page.$$eval('[data-testid=profile-bar] .ch', (cs) => cs.map((c) => c.getAttribute('data-channel'))),
      it.profile.channels,
    );
    assert.deepEqual(
      await page.$$eval('[data-testid=profile-bar] .chip-label', (ls) => ls.map((l) => l.textContent)),
      it.profile.channels.map((c) => channelNames[c]),
      'every channel icon has a text label',
    );
    // Header.
    assert.equal(await page.textContent('#conv-title'), it.contact.name || it.contact.address);
    // Messages: the newest page, then earlier ones on demand.
    const shownMsgs = () => page.$$eval('[data-testid=messages] li.msg', (ls) => ls.map((l) => l.dataset.id));
    assert.deepEqual(await shownMsgs(), it.messages.edges.map((e) => e.node.id));
    if (it.messages.pageInfo.hasPreviousPage) {
      await page.click('[data-testid=messages] button.earlier');
      await until('earlier messages', async () => (await shownMsgs()).length > it.messages.edges.length);
    }
    // Related panel: count, scope, every field of every row.
    assert.equal(await page.textContent('[data-testid=related-count]'), String(it.related.totalCount));
    assert.equal(await page.getAttribute('[data-testid=related-panel]', 'data-scope'), it.related.scope);
    assertRowsMatch(await panelRows(page), it.related.edges.map((e) => e.node), now);
    await shot(page, 'interaction-1280');
    // More, via the cursor.
    if (it.related.pageInfo.hasNextPage) {
      await page.click('[data-testid=related-more]');
      await until('the next page', async () => (await panelRows(page)).length > it.related.edges.length);
      assertRowsMatch(await panelRows(page), it.more.edges.map((e) => e.node), now);
    }
    // The scope switch: the panel shows what the API gives for the other scope
    // (the server reports the scope it used: a profile of one contact is CHANNEL).
    const other = it.related.scope === 'PROFILE' ? 'CHANNEL' : 'PROFILE';
    const o = await api(`query($id: ID!, $s: RelatedScope) { interaction(id: $id) { ${PANEL('first: 10, scope: $s')} } }`, {
      id: target.id,
      s: other,
    });
    await page.click(`[data-testid=related-panel] button.seg[data-scope=${other}]`);
    await page.locator(`[data-testid=related-panel][data-requested=${other}][data-scope=${o.interaction.related.scope}]`).waitFor();
    assert.equal(await page.textContent('[data-testid=related-count]'), String(o.interaction.related.totalCount));
    assertRowsMatch(await panelRows(page), o.interaction.related.edges.map((e) => e.node), now);
    await shot(page, `interaction-${other.toLowerCase()}-1280`);

    // Keyboard: a row is a real link; Enter opens that interaction and its correspondence.
    const first = o.interaction.related.edges[0]?.node;
    if (first) {
      await page.focus(`[data-testid=related-rows] a.row[data-id="${first.id}"]`);
      await page.keyboard.press('Enter');
      await page.locator(`[data-testid=interaction][data-id="${first.id}"]`).waitFor();
      await page.locator('[data-testid=messages] li.msg').first().waitFor();
    }
    // Back to where we were.
    await page.goBack();
    await page.locator(`[data-testid=interaction][data-id="${target.id}"]`).waitFor();
    assertNoProblems(page);
    await page.context().close();
  });

  it('hides the profile bar when the interaction has no profile', async () => {
    const d = await api(`{ interactions(first: 60) { edges { node { id profile { id } } } } }`);
    const plain = d.interactions.edges.map((e) => e.node).find((n) => !n.profile);
    if (!plain) return; // every recent interaction has a profile
    const page = await newPage(browser);
    await signIn(page);
    await openInteraction(page, plain.id);
    await page.locator('[data-testid=related-rows]').waitFor();
    assert.equal(await page.locator('[data-testid=profile-bar]').count(), 0);
    assert.ok(await page.isDisabled('[data-testid=related-panel] button.seg[data-scope=PROFILE]'));
    assertNoProblems(page);
    await page.context().close();
  });

  it('updates the panel live: a new related interaction on top, a close greys it, a merge adds rows', async () => {
    const a = await record('a', 'First question about my bill.');
    const b = await record('b', 'Second question, a week later.');
    const page = await newPage(browser);
    await signIn(page);
    await openInteraction(page, a);
    await page.locator(`[data-testid=related-rows] a.row[data-id="${b}"]`).waitFor();
    await waitLive(page);
    // Subscriptions start right after the connection; give the server a moment to register them.
    await page.waitForTimeout(500);

    const c = await record('c', 'A third thread: where is my refund?', { queue: 'Returns' });
    await until('the new row on top', async () => (await panelRows(page))[0]?.id === c);
    let rows = await panelRows(page);
    assert.equal(rows[0].preview, 'A third thread: where is my refund?');
    assert.equal(rows[0].queue, 'Returns');
    assert.equal(rows[0].state, 'Open');
    assert.equal(await page.textContent('[data-testid=related-count]'), '2');
    await shot(page, 'live-added-1280');

    await api(`mutation($id: ID!) { closeInteraction(input: { id: $id, state: SPAM }) { userErrors { message } } }`, { id: c });
    await until('the closed row greyed', async () => {
      const r = (await panelRows(page)).find((x) => x.id === c);
      return r && r.closed && r.state === 'Spam';
    });
    rows = await panelRows(page);
    const open = rows.find((x) => x.id === b);
    const closed = rows.find((x) => x.id === c);
    assert.notEqual(closed.greyed, open.greyed, 'a closed row looks different from an open one');
    await shot(page, 'live-closed-1280');

    // A contact on another channel that shares the email joins the profile:
    // the panel (default scope) follows the merge and shows its interaction.
    const sms = await record('sms', 'Texting about the same refund.', {
      channel: 'SMS',
      address: `+4477009${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`,
      attributes: [{ key: 'email', value: email }],
    });
    const linked = await api(`query($id: ID!) { interaction(id: $id) { related { scope edges { node { id } } } } }`, { id: a });
    if (linked.interaction.related.scope === 'PROFILE') {
      await until('the merged row', async () => (await panelRows(page)).some((x) => x.id === sms), 15_000);
      await page.locator('[data-testid=related-panel][data-scope=PROFILE]').waitFor();
      const p = await api(`query($id: ID!) { interaction(id: $id) { ${PANEL('first: 10')} } }`, { id: a });
      await until('the panel to settle', async () => (await panelRows(page)).length === p.interaction.related.edges.length);
      assertRowsMatch(await panelRows(page), p.interaction.related.edges.map((e) => e.node));
      // The profile bar follows: the profile now has both channels.
      await until('the profile bar with both channels', async () => {
        const chs = await page.$$eval('[data-testid=profile-bar] .ch', (cs) => cs.map((c) => c.getAttribute('data-channel')));
        return chs.includes('SMS') && chs.includes('EMAIL');
      });
      await shot(page, 'live-merged-1280');
    } else {
      console.log('# the rules did not link the SMS contact: merge step skipped');
    }
    assertNoProblems(page);
    await page.context().close();
  });

  it('shows a reconnecting state when the connection drops, and comes back live', async () => {
    const a = await record('r1', 'Reconnect test, first.');
    const page = await newPage(browser);
    const sockets = [];
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      ws.connectToServer();
      sockets.push(ws);
    });
    await signIn(page);
    await openInteraction(page, a);
    await waitLive(page);
    for (const ws of sockets.splice(0)) await ws.close({ code: 1012, reason: 'test drop' });
    await page.locator('[data-testid=reconnecting]').waitFor();
    assert.match(await page.textContent('[data-testid=live-state]'), /Reconnecting/);
    await shot(page, 'reconnecting-1280');
    await waitLive(page);
    assert.equal(await page.locator('[data-testid=reconnecting]').count(), 0);
    await page.waitForTimeout(500);
    const b = await record('r2', 'Reconnect test, after the drop.');
    await until('a live row after reconnecting', async () => (await panelRows(page))[0]?.id === b);
    // The browser logs the dropped socket; nothing else may go wrong.
    assertNoProblems(page, (p) => /WebSocket/i.test(p));
    await page.context().close();
  });

  it('remembers whether the panel is shown, per key, across interactions and reloads', async () => {
    const prefs = (key) => api(`{ viewer { preferences { showRelated } } }`, {}, key).then((d) => d.viewer.preferences.showRelated);
    const setPrefs = (v, key) => api(`mutation($v: Boolean) { setPreferences(input: { showRelated: $v }) { preferences { showRelated } } }`, { v }, key);
    await setPrefs(true, AGENT_KEY);
    const d = await api(`{ interactions(first: 2, status: OPEN) { edges { node { id } } } }`);
    const [x, y] = d.interactions.edges.map((e) => e.node.id);
    const page = await newPage(browser);
    await signIn(page);
    await openInteraction(page, x);
    await page.locator('[data-testid=related-panel]').waitFor();
    assert.equal(await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed'), 'true');

    await page.click('[data-testid=toggle-related]');
    await page.locator('[data-testid=related-panel]').waitFor({ state: 'detached' });
    assert.equal(await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed'), 'false');
    await until('the choice stored on the server', async () => (await prefs(AGENT_KEY)) === false);
    if (AGENT_KEY !== ADMIN_KEY) assert.equal(await prefs(ADMIN_KEY), true, 'another key keeps its own choice');
    await shot(page, 'panel-hidden-1280');

    // Another interaction, opened from the list.
    await page.click(`[data-testid=recent] a.item[data-id="${y}"]`);
    await page.locator(`[data-testid=interaction][data-id="${y}"]`).waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.locator('[data-testid=related-panel]').count(), 0);
    // A reload, and a fresh browser with the same key.
    await page.reload();
    await page.locator(`[data-testid=interaction][data-id="${y}"]`).waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.locator('[data-testid=related-panel]').count(), 0);
    assert.equal(await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed'), 'false');
    const fresh = await newPage(browser);
    await signIn(fresh);
    await openInteraction(fresh, x);
    await fresh.waitForTimeout(300);
    assert.equal(await fresh.locator('[data-testid=related-panel]').count(), 0);
    await fresh.context().close();

    // And back on, with the keyboard.
    await page.focus('[data-testid=toggle-related]');
    await page.keyboard.press('Space');
    await page.locator('[data-testid=related-panel]').waitFor();
    await until('the choice stored on the server', async () => (await prefs(AGENT_KEY)) === true);
    await page.reload();
    await page.locator('[data-testid=related-panel]').waitFor();
    assertNoProblems(page);
    await page.context().close();
  });

  it('is readable at 360 px', async () => {
    const d = await api(
      `{ interactions(first: 40) { edges { node { id profile { id } related(first: 1) { totalCount } } } } }`,
    );
    const target = d.interactions.edges.map((e) => e.node).sort((p, q) => Number(!!q.profile) - Number(!!p.profile) || q.related.totalCount - p.related.totalCount)[0];
    const page = await newPage(browser, { width: 360, height: 740 });
    await page.goto(`${BASE}/`);
    await page.locator('form[data-testid=signin]').waitFor();
    await shot(page, 'signin-360');
    await signIn(page);
    await shot(page, 'list-360');
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok((await overflow()) <= 0, 'no horizontal scrolling on the list');
    await openInteraction(page, target.id);
    await page.locator('[data-testid=messages] li.msg').first().waitFor();
    assert.ok((await overflow()) <= 0, 'no horizontal scrolling on an interaction');
    // One column: the list gives way to the interaction, with a way back.
    assert.ok(!(await page.isVisible('[data-testid=recent]')));
    assert.ok(await page.isVisible('button.back'));
    await shot(page, 'interaction-360', { fullPage: true });
    // The panels are tabs.
    await page.click('[role=tab][data-tab=related]');
    await page.locator('[data-testid=related-rows]').waitFor();
    assert.ok((await overflow()) <= 0, 'no horizontal scrolling on the Related tab');
    await shot(page, 'interaction-related-360', { fullPage: true });
    await page.click('[role=tab][data-tab=customer]');
    await page.locator('[data-testid=contact-details]').waitFor();
    assert.ok((await overflow()) <= 0, 'no horizontal scrolling on the Customer tab');
    await shot(page, 'interaction-customer-360', { fullPage: true });
    await page.click('button.back');
    await page.locator('[data-testid=recent] a.item').first().waitFor();
    assertNoProblems(page);
    await page.context().close();
  });
});

describe('GraphiQL', () => {
  it('asks for the key first, then opens on a real Related panel', async () => {
    const page = await newPage(browser);
    const introspections = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/graphql') && /IntrospectionQuery/.test(r.postData() ?? '')) {
        introspections.push(r.headers().authorization ?? '');
      }
    });
    await page.goto(`${BASE}/graphiql`);
    // The key first: nothing is fetched with no key.
    await page.locator('[data-testid=key-prompt]').waitFor();
    await shot(page, 'graphiql-key-prompt');
    await page.fill('#api-key', 'rk_this-is-not-a-key');
    await page.click('[data-testid=key-prompt] button[type=submit]');
    await page.locator('.key-error').waitFor();
    assert.match(await page.textContent('.key-error'), /did not work/);
    page.problems.length = 0; // the refused key's 401 is the point of that step
    await page.fill('#api-key', ADMIN_KEY);
    await page.click('[data-testid=key-prompt] button[type=submit]');
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
    // The example's variables name an interaction with related ones.
    const variables = await until('the example variables', () =>
      page.evaluate(() => {
        const editors = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
        return editors.map((e) => e.CodeMirror.getValue()).find((v) => v.includes('"id"'));
      }),
    );
    const id = JSON.parse(variables).id;
    assert.ok(id, `the example has an interaction id: ${variables}`);
    const want = await api(`query($id: ID!) { interaction(id: $id) { related(first: 20) { totalCount } } }`, { id });
    assert.ok(want.interaction.related.totalCount > 0, 'the example interaction has related ones');
    await until('the schema, fetched with the key', () => introspections.length > 0);
    assert.equal(introspections[0], `Bearer ${ADMIN_KEY}`);
    await page.click('button.graphiql-execute-button');
    await until('the Related panel in the result pane', async () => {
      const text = await page.textContent('.graphiql-response');
      return text && text.includes(`"totalCount": ${want.interaction.related.totalCount}`) && text.includes('"scope"');
    });
    await shot(page, 'graphiql-1280');
    // Another key in the Headers tab: the schema is fetched again with it.
    await page.click('button:has-text("Headers")');
    await page.evaluate((key) => {
      const editors = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')];
      const headers = editors.find((e) => e.CodeMirror.getValue().includes('Authorization'));
      headers.CodeMirror.setValue(JSON.stringify({ Authorization: `Bearer ${key}` }));
    }, AGENT_KEY);
    await until('the schema fetched again with the new key', () => introspections.includes(`Bearer ${AGENT_KEY}`));
    assertNoProblems(page);
    await page.context().close();
  });
});

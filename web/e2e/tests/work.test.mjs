// The agent console for real work, in headless Chromium against a real
// relatedd: at each desk width, nothing cut off and no text squeezed narrower
// than a word, AA contrast, nothing from other hosts; a reply, a close and a
// reopen driven end to end; live updates from another client; every refusal
// explained; the keyboard; and recovery after the server restarts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AGENT_KEY,
  api,
  apiAt,
  BASE,
  contrastProblems,
  DESKS,
  freePort,
  launch,
  layoutProblems,
  newPage,
  RELATED_BIN,
  shot,
  signIn,
  startServer,
  until,
} from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
let seq = 0;

/** Records an inbound message from a customer of this test run; returns the interaction's id. */
async function inbound(body, { thread = `w${++seq}`, address = `work-${stamp}@example.com`, name = 'Wren Worker', queue = 'Billing', channel = 'EMAIL', url } = {}) {
  const q = `mutation R($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id } userErrors { message } } }`;
  const vars = { in: { channel, threadRef: `${stamp}-${thread}`, direction: 'INBOUND', contact: { address, name }, queue, body } };
  const d = url ? await apiAt(url.base, q, vars, url.key) : await api(q, vars);
  assert.deepEqual(d.recordMessage.userErrors, []);
  return d.recordMessage.interaction.id;
}

const fetchInteraction = (id) =>
  api(
    `query($id: ID!) { interaction(id: $id) { id status closedState lastMessage { id body direction author }
      messages(last: 5) { edges { node { id body direction author } } } } }`,
    { id },
  ).then((d) => d.interaction);

async function openInteraction(page, id) {
  await page.goto(`${BASE}/?interaction=${encodeURIComponent(id)}`);
  await page.locator(`[data-testid=interaction][data-id="${id}"]`).waitFor();
}

const waitLive = (page) => page.locator('[data-testid=live-state][data-state=live]').waitFor({ timeout: 30_000 });
const inboxIds = (page) => page.$$eval('[data-testid=recent] a.item', (as) => as.map((a) => a.dataset.id));
const shownMessages = (page) =>
  page.$$eval('[data-testid=messages] li.msg:not(.pending)', (ls) => ls.map((l) => ({ id: l.dataset.id, body: l.querySelector('.bubble').textContent })));

/**
 * Holds back the next request of the mutation named op until the returned
 * promise's function is called (it resolves once the request is held).
 */
function hold(page, op) {
  return new Promise((held) => {
    page.route(
      '**/graphql',
      async (route) => {
        if (!(route.request().postDataJSON?.()?.query ?? '').startsWith(`mutation ${op}`)) return route.fallback();
        await new Promise((go) => held(go));
        await route.fallback();
      },
      { times: 1 },
    );
  });
}

function assertNoProblems(page, ignore = () => false) {
  assert.deepEqual(
    page.problems.filter((p) => !ignore(p)),
    [],
    'no console errors, page errors or failed requests',
  );
}

/** Layout and contrast of what the page shows now, named for the report. */
async function checkView(page, what) {
  assert.deepEqual(await layoutProblems(page), [], `${what}: layout`);
  assert.deepEqual(await contrastProblems(page), [], `${what}: contrast`);
}

/** The interaction with the richest customer: a profile of several contacts, with attributes. */
async function richTarget() {
  const d = await api(`{ interactions(first: 80) { edges { node { id
    contact { attributes { key } }
    profile { id contacts { id } links { contact { id } } identifiers { key } } } } } }`);
  const cands = d.interactions.edges.map((e) => e.node).filter((n) => n.profile);
  cands.sort((a, b) => b.profile.contacts.length - a.profile.contacts.length || b.contact.attributes.length - a.contact.attributes.length);
  assert.ok(cands.length > 0, 'the demo data has interactions with profiles');
  return cands[0].id;
}

describe('at every desk width', () => {
  for (const desk of DESKS) {
    it(`is usable at ${desk.width} px: nothing cut off, no squeezed text, AA contrast, nothing from other hosts`, async () => {
      const target = await richTarget();
      const page = await newPage(browser, desk);
      const hosts = new Set();
      page.on('request', (r) => hosts.add(new URL(r.url()).host));
      await page.goto(`${BASE}/`);
      await page.locator('form[data-testid=signin]').waitFor();
      await checkView(page, 'sign-in');
      await shot(page, `work-signin-${desk.width}`);
      await signIn(page);
      await waitLive(page);
      await checkView(page, 'inbox');
      await shot(page, `work-inbox-${desk.width}`);

      await openInteraction(page, target);
      await page.locator('[data-testid=messages] li.msg').first().waitFor();
      const mode = await page.getAttribute('.app', 'data-mode');
      assert.equal(mode, desk.width >= 1600 ? 'wide' : desk.width >= 1000 ? 'medium' : 'narrow');
      if (mode === 'wide') {
        // Everything side by side.
        await page.locator('[data-testid=related-rows]').waitFor();
        await page.locator('[data-testid=links]').waitFor();
        assert.equal(await page.locator('[role=tab]').count(), 0, 'no tabs on a wide desk');
        await checkView(page, 'interaction');
        await shot(page, `work-interaction-${desk.width}`);
      } else {
        // The panels collapse into tabs.
        const tabs = await page.$$eval('[role=tab]', (ts) => ts.map((t) => t.dataset.tab));
        assert.deepEqual(tabs, mode === 'narrow' ? ['conversation', 'related', 'customer'] : ['related', 'customer']);
        for (const t of tabs) {
          await page.click(`[role=tab][data-tab=${t}]`);
          assert.equal(await page.getAttribute(`[role=tab][data-tab=${t}]`, 'aria-selected'), 'true');
          if (t === 'related') await page.locator('[data-testid=related-rows]').waitFor();
          if (t === 'customer') await page.locator('[data-testid=links]').waitFor();
          if (t === 'conversation') await page.locator('[data-testid=messages]').waitFor();
          await checkView(page, `interaction, ${t} tab`);
          await shot(page, `work-interaction-${t}-${desk.width}`);
        }
      }
      // A customer with long everything, on top of the inbox and open.
      const open = await inbound(
        'Checking long words at every width: https://example.com/orders/1234567890/items?ref=abcdefghijklmnopqrstuvwxyz and a supercalifragilisticexpialidocious order.',
        {
          address: `maximilian.alexander.featherstonehaugh-worthington.${stamp}@a-rather-long-subdomain.example.com`,
          name: 'Maximilian Alexander Featherstonehaugh-Worthington III',
          queue: 'Complaints and Escalations (Priority Customers)',
        },
      );
      await openInteraction(page, open);
      await page.locator(`[data-testid=recent] a.item[data-id="${open}"]`).waitFor();
      await page.locator('[data-testid=contact-details]').waitFor({ state: 'attached' });
      await checkView(page, 'a long-named customer');
      await shot(page, `work-long-names-${desk.width}`);
      // The close menu, open.
      await page.click('[data-testid=close]');
      await page.locator('[data-testid=close-menu]').waitFor();
      await checkView(page, 'close menu');
      await shot(page, `work-close-menu-${desk.width}`);
      await page.keyboard.press('Escape');
      // The shortcuts.
      await page.keyboard.press('?');
      await page.locator('[data-testid=shortcut-help]').waitFor();
      await checkView(page, 'shortcut help');
      await shot(page, `work-shortcuts-${desk.width}`);
      await api(`mutation($id: ID!) { closeInteraction(input: { id: $id, state: IGNORED }) { userErrors { message } } }`, { id: open });

      assert.deepEqual([...hosts], [new URL(BASE).host], 'every request goes to the server itself');
      assertNoProblems(page);
      await page.context().close();
    });
  }
});

describe('the customer', () => {
  it("shows the contact's attributes, the profile's identifiers with their marks, and why each contact is linked", async () => {
    const target = await richTarget();
    const d = await api(
      `query($id: ID!) { interaction(id: $id) {
        contact { id name address attributes { key value source by } }
        profile { id name identifiers { key value } links { contact { id address } reason key value source } }
      } }`,
      { id: target },
    );
    const { contact, profile } = d.interaction;
    const page = await newPage(browser, { width: 1920, height: 1080 });
    await signIn(page);
    await openInteraction(page, target);
    await page.locator('[data-testid=links]').waitFor();

    assert.equal(await page.getAttribute('[data-testid=contact-details]', 'data-id'), contact.id);
    assert.equal(await page.textContent('[data-testid=contact-address]'), contact.address);
    const attrs = await page.$$eval('[data-testid=attributes] .fact', (fs) =>
      fs.map((f) => [
        f.dataset.key,
        f.querySelector('[data-testid=value]').textContent,
        f.querySelector('[data-testid=trust]').dataset.trust,
        f.querySelector('[data-testid=by]')?.textContent ?? null,
      ]),
    );
    assert.deepEqual(
      attrs,
      contact.attributes.map((a) => [a.key, a.value, a.source === 'ATTESTED' ? 'attested' : 'claimed', a.by ? ` by ${a.by}` : null]),
    );

    assert.equal(await page.getAttribute('[data-testid=profile-details]', 'data-id'), profile.id);
    const idents = await page.$$eval('[data-testid=identifiers] li', (ls) =>
      ls.map((l) => [l.dataset.key, l.dataset.value, l.querySelector('[data-testid=trust]')?.dataset.trust ?? null]),
    );
    const trust = (i) => {
      const by = profile.links.filter((l) => l.reason === 'RULE' && l.key === i.key && l.value === i.value);
      if (by.length === 0) return null;
      return by.some((l) => l.source === 'ATTESTED') ? 'attested' : 'claimed';
    };
    assert.deepEqual(idents, profile.identifiers.map((i) => [i.key, i.value, trust(i)]));
    assert.ok(idents.some(([, , t]) => t !== null), 'identifiers carry attested/claimed marks');

    const links = await page.$$eval('[data-testid=links] li', (ls) =>
      ls.map((l) => ({ contact: l.dataset.contact, reason: l.dataset.reason, source: l.dataset.source, why: l.querySelector('[data-testid=why]').textContent, mark: l.querySelector('[data-testid=trust]').dataset.trust })),
    );
    assert.equal(links.length, profile.links.length);
    profile.links.forEach((l, i) => {
      assert.equal(links[i].contact, l.contact.id);
      assert.equal(links[i].reason, l.reason);
      assert.equal(links[i].source, l.source ?? '');
      if (l.reason === 'RULE') {
        assert.ok(links[i].why.includes(`${l.key} ${l.value}`), `why names the identifier: ${links[i].why}`);
        assert.equal(links[i].mark, l.source === 'ATTESTED' ? 'attested' : 'claimed');
      } else {
        assert.equal(links[i].mark, 'manual');
      }
    });
    await shot(page, 'work-customer-1920', { fullPage: true });
    assertNoProblems(page);
    await page.context().close();
  });
});

describe('work on an interaction', () => {
  it('replies, closes as Spam and reopens, end to end, with the inbox following', async () => {
    const id = await inbound('Hello, my parcel never came.');
    const me = (await api(`{ viewer { name } }`, {}, AGENT_KEY)).viewer.name;
    const page = await newPage(browser);
    await signIn(page);
    await waitLive(page);
    await until('the new interaction in the inbox', async () => (await inboxIds(page))[0] === id);
    await openInteraction(page, id);
    await waitLive(page);

    // Reply: shown at once (the server's answer is held back here), then
    // stored as the agent's OUTBOUND message.
    const body = `Sorry about that: a new parcel leaves today (${stamp}).`;
    let release = hold(page, 'Reply');
    await page.fill('#reply-body', body);
    await page.press('#reply-body', 'Control+Enter');
    await page.locator('[data-testid=pending-reply][data-pending=sending]').waitFor();
    assert.equal(await page.textContent('[data-testid=pending-reply] .bubble'), body);
    await shot(page, 'work-reply-sending-1280');
    (await release)();
    await until('the stored reply', async () => (await shownMessages(page)).some((m) => m.body === body));
    assert.equal(await page.locator('[data-testid=pending-reply]').count(), 0, 'the pending copy gives way to the stored one');
    assert.equal(await page.inputValue('#reply-body'), '', 'the box is emptied');
    const it1 = await fetchInteraction(id);
    assert.equal(it1.lastMessage.body, body);
    assert.equal(it1.lastMessage.direction, 'OUTBOUND');
    assert.equal(it1.lastMessage.author, me, "the author is the agent's key name");
    const shown = await shownMessages(page);
    assert.equal(shown.filter((m) => m.body === body).length, 1, 'the reply shows once');
    assert.equal(shown.at(-1).id, it1.lastMessage.id);
    assert.match(await page.textContent(`[data-testid=messages] li.msg[data-id="${it1.lastMessage.id}"] .msg-meta`), new RegExp(`^${me}`));
    // The inbox shows the reply as the last message, on top.
    await until('the inbox row with the reply', async () => {
      const text = await page.textContent(`[data-testid=recent] a.item[data-id="${id}"] .item-preview`).catch(() => '');
      return text.startsWith('Sorry about that');
    });
    assert.equal((await inboxIds(page))[0], id);
    await shot(page, 'work-replied-1280');

    // Close as Spam: the state and the inbox change at once, before the
    // server answers.
    const countBefore = Number(await page.textContent('[data-testid=inbox-count]'));
    release = hold(page, 'Close');
    await page.click('[data-testid=close]');
    await page.click('[data-testid=close-menu] [data-state=SPAM]');
    await page.locator('[data-testid=interaction][data-status=CLOSED] [data-testid=state][data-state=SPAM]').waitFor();
    assert.match(await page.textContent('[data-testid=interaction] .conv-meta [data-testid=state]'), /saving/);
    await until('the interaction out of the inbox', async () => !(await inboxIds(page)).includes(id));
    assert.equal((await fetchInteraction(id)).status, 'OPEN', 'the server has not answered yet');
    (await release)();
    await until('the close confirmed', async () => !/saving/.test(await page.textContent('[data-testid=interaction] .conv-meta [data-testid=state]')));
    await page.locator('[data-testid=closed-note]').waitFor();
    assert.equal(await page.locator('[data-testid=composer]').count(), 0, 'no reply box on a closed interaction');
    await until('the count down by one', async () => Number(await page.textContent('[data-testid=inbox-count]')) === countBefore - 1);
    const it2 = await fetchInteraction(id);
    assert.equal(it2.status, 'CLOSED');
    assert.equal(it2.closedState, 'SPAM');
    await shot(page, 'work-closed-1280');

    // Reopen: back in the inbox, the reply box back.
    await page.click('[data-testid=reopen]');
    await page.locator('[data-testid=interaction][data-status=OPEN] [data-testid=state][data-state=OPEN]').waitFor();
    await page.locator('[data-testid=composer]').waitFor();
    await until('the interaction back in the inbox', async () => (await inboxIds(page)).includes(id));
    await until('the count back', async () => Number(await page.textContent('[data-testid=inbox-count]')) === countBefore);
    assert.equal((await fetchInteraction(id)).status, 'OPEN');
    assertNoProblems(page);
    await page.context().close();
  });

  it('shows what another client does, live: a message arrives, the inbox gains and loses interactions', async () => {
    const id = await inbound('First message, before the agent looks.', { thread: 'live-a' });
    const page = await newPage(browser, { width: 1920, height: 1080 });
    await signIn(page);
    await openInteraction(page, id);
    await waitLive(page);
    await page.waitForTimeout(500); // subscriptions register right after the connection
    const count = () => page.textContent('[data-testid=inbox-count]').then(Number);
    const before = await count();

    // Another client records the customer's next message on the same thread.
    await inbound('Second message, while the agent watches.', { thread: 'live-a' });
    await until('the message in the conversation', async () => (await shownMessages(page)).at(-1)?.body === 'Second message, while the agent watches.');
    // A new customer writes in: on top of the inbox.
    const other = await inbound('A brand new customer.', { thread: 'live-b', address: `new-${stamp}@example.com`, name: 'Nova New' });
    await until('the new interaction on top', async () => (await inboxIds(page))[0] === other);
    assert.equal(await count(), before + 1);
    await shot(page, 'work-live-1920');
    // Another client closes it: it leaves the inbox.
    await api(`mutation($id: ID!) { closeInteraction(input: { id: $id, state: CLOSED }) { userErrors { message } } }`, { id: other });
    await until('the closed interaction gone', async () => !(await inboxIds(page)).includes(other));
    assert.equal(await count(), before);
    // And closes the one on screen: its state follows.
    await api(`mutation($id: ID!) { closeInteraction(input: { id: $id, state: IGNORED }) { userErrors { message } } }`, { id });
    await page.locator('[data-testid=interaction][data-status=CLOSED] [data-testid=state][data-state=IGNORED]').waitFor();
    assertNoProblems(page);
    await page.context().close();
  });

  it('explains every refusal and failure, and rolls back what it showed', async () => {
    const id = await inbound('Testing refusals.');
    const page = await newPage(browser);
    await signIn(page);
    await openInteraction(page, id);
    await waitLive(page);
    // Answers the next operation named op with status and body, once.
    const refuse = (op, status, body, headers = {}) =>
      page.route(
        '**/graphql',
        async (route) => {
          const q = route.request().postDataJSON?.()?.query ?? '';
          if (!q.startsWith(`mutation ${op}`)) return route.fallback();
          await route.fulfill({ status, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
        },
        { times: 1 },
      );
    const actionError = () => page.textContent('[data-testid=action-error]');

    // Rate limited: the close is rolled back, and the wait is given.
    await refuse('Close', 429, { errors: [{ message: 'too many requests', extensions: { code: 'RATE_LIMITED' } }] }, { 'Retry-After': '7' });
    await page.click('[data-testid=close]');
    await page.click('[data-testid=close-menu] [data-state=CLOSED]');
    await page.locator('[data-testid=action-error]').waitFor();
    assert.match(await actionError(), /too many requests.*Try again in 7 s/);
    await page.locator('[data-testid=interaction][data-status=OPEN]').waitFor();
    assert.ok((await inboxIds(page)).includes(id), 'the inbox row is back');
    await shot(page, 'work-rate-limited-1280');

    // A userError, in the API's words.
    await refuse('Close', 200, {
      data: { closeInteraction: { interaction: null, userErrors: [{ field: ['input', 'id'], message: 'no such interaction', code: 'NOT_FOUND' }] } },
    });
    await page.click('[data-testid=close]');
    await page.click('[data-testid=close-menu] [data-state=IGNORED]');
    await until('the userError', async () => /no longer exists \(no such interaction\)/.test(await actionError()));
    await page.locator('[data-testid=interaction][data-status=OPEN]').waitFor();

    // Forbidden.
    await refuse('Close', 403, { errors: [{ message: 'the agent role may not run Mutation.closeInteraction', extensions: { code: 'FORBIDDEN' } }] });
    await page.click('[data-testid=close]');
    await page.click('[data-testid=close-menu] [data-state=SPAM]');
    await until('the refusal', async () => /your key may not do this/.test(await actionError()));

    // The network: the reply stays, marked, and a retry stores it once.
    await page.route('**/graphql', (route) => (route.request().postDataJSON?.()?.query ?? '').startsWith('mutation Reply') ? route.abort('internetdisconnected') : route.fallback(), { times: 1 });
    await page.fill('#reply-body', `A reply through a flaky network (${stamp}).`);
    await page.click('[data-testid=send]');
    await page.locator('[data-testid=pending-reply][data-pending=failed]').waitFor();
    assert.match(await page.textContent('[data-testid=pending-reply]'), /cannot be reached/);
    await shot(page, 'work-reply-failed-1280');
    await page.click('[data-testid=reply-retry]');
    await until('the retried reply stored', async () => (await shownMessages(page)).some((m) => m.body.startsWith('A reply through a flaky network')));
    const stored = await api(`query($id: ID!) { interaction(id: $id) { messages(first: 50) { edges { node { body } } } } }`, { id });
    assert.equal(stored.interaction.messages.edges.filter((e) => e.node.body.startsWith('A reply through a flaky network')).length, 1, 'stored once');

    // A reply the server refuses for what it says (over 256 KiB): back in
    // the reply box to be edited, with the reason, and no Retry that could
    // never succeed.
    const tooLong = `Too long (${stamp}). ` + 'x'.repeat(262_144);
    await page.fill('#reply-body', tooLong);
    await page.click('[data-testid=send]');
    await page.locator('[data-testid=reply-refused]').waitFor();
    assert.match(await page.textContent('[data-testid=reply-refused]'), /longer than 262144 bytes/);
    assert.equal(await page.inputValue('#reply-body'), tooLong, 'the refused reply is back in the box');
    assert.equal(await page.locator('[data-testid=pending-reply]').count(), 0, 'no pending copy with a Retry');
    await shot(page, 'work-reply-refused-1280');
    await page.fill('#reply-body', '');

    // A real userError from the server: a reply on a closed thread opened
    // a new interaction, so the old one cannot be reopened.
    const thread = `conflict-${stamp}`;
    const old = await inbound('An old thread.', { thread });
    await api(`mutation($id: ID!) { closeInteraction(input: { id: $id, state: CLOSED }) { userErrors { message } } }`, { id: old });
    await inbound('The customer writes on the closed thread.', { thread });
    await openInteraction(page, old);
    await page.click('[data-testid=reopen]');
    await until('the conflict explained', async () => /another interaction of this thread is open/.test(await actionError()));
    await page.locator('[data-testid=interaction][data-status=CLOSED]').waitFor();
    await shot(page, 'work-conflict-1280');

    // The key refused: the console signs out and says why.
    await refuse('Reopen', 401, { errors: [{ message: 'a valid API key is required', extensions: { code: 'UNAUTHENTICATED' } }] });
    await page.locator('[data-testid=reopen]').click();
    await page.locator('form[data-testid=signin] .notice').waitFor();
    assert.match(await page.textContent('form[data-testid=signin] .notice'), /no longer accepts your key/);
    assertNoProblems(page, (p) => /status of (401|403|429)|internetdisconnected|INTERNET_DISCONNECTED/i.test(p));
    await page.context().close();
  });

  it('works from the keyboard: j/k through the inbox, Enter opens, r toggles Related, c replies', async () => {
    const page = await newPage(browser);
    await signIn(page);
    const ids = await inboxIds(page);
    assert.ok(ids.length >= 3);
    const focused = () => page.evaluate(() => document.activeElement?.dataset?.id ?? null);
    await page.keyboard.press('j');
    assert.equal(await focused(), ids[0]);
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    assert.equal(await focused(), ids[2]);
    await page.keyboard.press('k');
    assert.equal(await focused(), ids[1]);
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(), ids[2]);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    await page.locator(`[data-testid=interaction][data-id="${ids[1]}"]`).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('interaction'), ids[1]);

    const related = await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed');
    await page.locator('body').click({ position: { x: 5, y: 300 } }).catch(() => {});
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press('r');
    await until('Related toggled', async () => (await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed')) !== related);
    await page.keyboard.press('r');
    await until('Related toggled back', async () => (await page.getAttribute('[data-testid=toggle-related]', 'aria-pressed')) === related);
    await until('the choice saved', async () => String((await api(`{ viewer { preferences { showRelated } } }`, {}, AGENT_KEY)).viewer.preferences.showRelated) === related);

    await page.keyboard.press('c');
    await until('the reply box focused', async () => (await page.evaluate(() => document.activeElement?.id)) === 'reply-body');
    await page.keyboard.type('j and k stay text here');
    assert.equal(await page.inputValue('#reply-body'), 'j and k stay text here');
    await page.keyboard.press('Escape');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search-value');
    assertNoProblems(page);
    await page.context().close();
  });
});

describe('a server restart', () => {
  it('shows the drop, recovers without a reload, and shows what happened meanwhile', { skip: !RELATED_BIN && 'RELATED_BIN unset' }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'related-restart-'));
    const port = await freePort();
    let srv = await startServer({ port, dataDir: dir, logName: 'restart-server-1' });
    try {
      const admin = srv.output().match(/rk_[A-Za-z0-9_-]+/)[0];
      const created = execFileSync(RELATED_BIN, ['keys', 'create', '--data-dir', dir, '--tenant', 'demo', '--role', 'agent', '--name', 'Restart agent']).toString();
      const agent = created.match(/rk_[A-Za-z0-9_-]+/)[0];
      const agentID = created.match(/key_[0-9a-f]+/)[0];
      const at = (s) => ({ base: s.url, key: admin });
      const id = await inbound('Before the restart.', { thread: 'restart', url: at(srv) });

      const page = await newPage(browser, { width: 1280, height: 800 });
      await page.goto(`${srv.url}/`);
      await page.locator('form[data-testid=signin]').waitFor();
      await page.fill('#api-key', agent);
      await page.click('form[data-testid=signin] button[type=submit]');
      await page.locator('[data-testid=recent] .item').first().waitFor();
      await page.goto(`${srv.url}/?interaction=${encodeURIComponent(id)}`);
      await page.locator(`[data-testid=interaction][data-id="${id}"]`).waitFor();
      await waitLive(page);
      await page.evaluate(() => (window.__sameDocument = true));

      // The server stops: the page says so.
      await srv.stop();
      await page.locator('[data-testid=reconnecting]').waitFor({ timeout: 15_000 });
      await shot(page, 'work-server-down-1280');

      // Meanwhile, writes the page cannot see: another server on the same
      // data, on another port, then gone again.
      const other = await startServer({ port: await freePort(), dataDir: dir, logName: 'restart-server-meanwhile' });
      await inbound('Written while the console was cut off.', { thread: 'restart', url: at(other) });
      const fresh = await inbound('A new customer while it was cut off.', { thread: 'restart-new', address: `meanwhile-${stamp}@example.com`, url: at(other) });
      await other.stop();

      // The server comes back on the same data directory and port.
      srv = await startServer({ port, dataDir: dir, logName: 'restart-server-2' });
      await waitLive(page);
      await until('the message written meanwhile', async () => (await shownMessages(page)).some((m) => m.body === 'Written while the console was cut off.'), 20_000);
      await until('the interaction opened meanwhile, in the inbox', async () => (await inboxIds(page)).includes(fresh), 20_000);
      assert.equal(await page.locator('[data-testid=reconnecting]').count(), 0);
      assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');

      // Live again: the subscriptions the restart ended were started again.
      await page.waitForTimeout(1000);
      await inbound('After the restart, live.', { thread: 'restart', url: at(srv) });
      await until('a live message after the restart', async () => (await shownMessages(page)).at(-1)?.body === 'After the restart, live.', 15_000);
      const next = await inbound('And a live inbox.', { thread: 'restart-next', address: `after-${stamp}@example.com`, url: at(srv) });
      await until('a live inbox row after the restart', async () => (await inboxIds(page))[0] === next, 15_000);
      await shot(page, 'work-server-back-1280');

      // The key is revoked while the agent only watches: the console signs
      // out on its own, saying why, once the live connection is refused.
      execFileSync(RELATED_BIN, ['keys', 'revoke', '--data-dir', dir, agentID]);
      await page.locator('form[data-testid=signin] .notice').waitFor({ timeout: 20_000 });
      assert.match(await page.textContent('form[data-testid=signin] .notice'), /no longer accepts your key/);
      // The browser logs the refused connections while the server was down,
      // and the revoked key's.
      assertNoProblems(page, (p) => /WebSocket|ERR_CONNECTION_REFUSED|Failed to fetch|status of (401|50\d)/i.test(p));
      await page.context().close();
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Who is who, in the console: a chat whose visitor only typed a customer's
// email is not merged into the customer's profile; the customer pane shows
// the suggestion, an admin confirms it in the browser and the two become one
// profile named after the person; an agent sees the suggestion but cannot
// act on it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_KEY, AGENT_KEY, api, BASE, launch, newPage, shot, signIn, until } from '../lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

async function record(channel, address, body, attributes = [], name = null) {
  const d = await api(
    `mutation R($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id contact { id } } userErrors { message } } }`,
    { in: { channel, threadRef: `${stamp}-${channel}`, direction: 'INBOUND', body, contact: { address, name, attributes } } },
  );
  assert.deepEqual(d.recordMessage.userErrors, []);
  return d.recordMessage.interaction;
}

const profileOf = (id) => api(`query($id: ID!) { interaction(id: $id) { profile { id name contacts { id } } } }`, { id }).then((d) => d.interaction.profile);

describe('suggestions in the customer pane', () => {
  it('an admin merges two profiles a typed email suggests; an agent only sees it', async () => {
    const email = `iris-${stamp}@example.com`;
    const byEmail = await record('EMAIL', email, 'Hello from my mailbox', [], 'Iris Vale');
    const chat = await record('WEBCHAT', `visitor-${stamp}`, 'Hello from the website', [{ key: 'email', value: email }]);
    const [pe, pc] = [await profileOf(byEmail.id), await profileOf(chat.id)];
    assert.notEqual(pe.id, pc.id, 'a typed email does not merge profiles on its own');
    assert.equal(pe.name, 'Iris Vale', "a profile is named after the person");

    // An agent sees the suggestion, without the buttons.
    const agent = await newPage(browser, { width: 1920, height: 1080 });
    await signIn(agent, AGENT_KEY);
    await agent.goto(`${BASE}/?interaction=${encodeURIComponent(chat.id)}`);
    await agent.locator('[data-testid=suggestions] li').first().waitFor();
    assert.equal(await agent.locator('[data-testid=suggestions] [data-testid=confirm]').count(), 0, 'an agent cannot confirm');
    await agent.context().close();

    const page = await newPage(browser, { width: 1920, height: 1080 });
    await signIn(page, ADMIN_KEY);
    await page.goto(`${BASE}/?interaction=${encodeURIComponent(chat.id)}`);
    const item = page.locator('[data-testid=suggestions] li').first();
    await item.waitFor();
    assert.equal(await item.getAttribute('data-reason'), 'CLAIMED');
    assert.match(await item.textContent(), /Iris Vale/);
    await shot(page, 'identity-suggestion', { fullPage: true });
    await item.locator('[data-testid=confirm]').click();
    await until('the two profiles are one', async () => {
      const [a, b] = [await profileOf(byEmail.id), await profileOf(chat.id)];
      return a.id === b.id && a.contacts.length === 2 ? a : null;
    });
    await page.locator('[data-testid=suggestions] li').waitFor({ state: 'detached' });
    assert.deepEqual(page.problems, [], 'no console errors, page errors or failed requests');
    await page.context().close();
  });
});

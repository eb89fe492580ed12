// desk.test.mjs -- the agent desk as an agent uses it all day (issue 14): a chatbot handoff and a
// web-chat bot transcript shown as the conversation they were (line by line, by author, local
// times, the customer's name on the offer and the card); a reload that restores what the desk
// showed (the conversation's duration, "the customer ended", the composer disabled after that);
// the customer history panel (names, subjects, no "null", not the open conversation itself).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

const cfg = uiConfig();
cfg.channels = [{ name: 'bot', plugin: 'chatbot', queue: 'algemeen', config: {} },
  { name: 'hook', plugin: 'webhook', queue: 'vergunningen', config: { token: 'desk-test-webhook-token-0123456789abcdef' } }];
const d = await new Daemon(cfg).start();
const tok = { agent1: d.token('agent', 'agent1'), agent2: d.token('agent', 'agent2'), agent3: d.token('agent', 'agent3') };
const WHO = {
  agent1: { role: 'agent', name: 'Anouk de Vries', agent: 'agent1' },
  agent2: { role: 'agent', name: 'Mohammed El Amrani', agent: 'agent2' },
  agent3: { role: 'agent', name: 'Sanne Jansen', agent: 'agent3' },
};
const browser = await launchBrowser();
after(async () => { await browser.close(); await d.stop(); });

async function desk(who, lang) {
  const o = await openSignedIn(browser, d.base, { token: tok[who], ...WHO[who] }, 'agent.html' + (lang ? '?lang=' + lang : ''));
  await o.page.locator('#my-state[data-state]').waitFor();
  return o;
}

/** Ready in exactly the queue named (title), through the desk. */
async function ready(page, agentId, title, queue, ready = 'Beschikbaar') {
  if (await page.locator('#btn-login').isVisible()) await page.locator('#btn-login').click();
  await page.getByRole('button', { name: ready, exact: true }).click();
  await page.locator('#my-state[data-state="ready"]').waitFor();
  for (const cb of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await cb.getAttribute('id')}"]`).textContent();
    await cb.setChecked(label === title);
  }
  await until(async () => {
    const a = (await d.request('GET', '/api/v1/agents')).json.agents.find((x) => x.id === agentId);
    return a.state === 'ready' && a.queues.every((q) => q.joined === (q.queue === queue));
  }, `${agentId} ready in ${queue} only`);
}

/** Completes bericht id on the desk (one topic), ends its wrap-up, logs the agent out of ACDM. */
async function finish(page, id) {
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.locator('[data-action=complete]').click();
  await page.getByRole('dialog').getByRole('checkbox').first().check();
  await page.getByRole('dialog').getByRole('button', { name: /Afronden|Complete/ }).click();
  await card.locator('[data-action=wrapup_end]').click();
  await card.waitFor({ state: 'detached' });
  await page.locator('#btn-logout').click();
  await page.locator('#my-state[data-state="logged_out"]').waitFor();
}

const localClock = (ms) => new Date(ms).toLocaleTimeString('nl-NL', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

test('desk: a chatbot handoff shows the conversation line by line, by author, in local time, with the customer\'s name', { timeout: 120_000 }, async (t) => {
  const { page, ctx, errors } = await desk('agent1');
  await ready(page, 'agent1', 'Algemene vragen', 'algemeen');
  const iso = '2026-11-22T09:00:00Z';
  const epoch = Date.parse('2026-11-22T09:00:30Z');
  const r = await d.request('POST', '/channels/bot/handoff', {
    conversation_id: 'desk-bot-1',
    customer: { id: 'klant-42', name: 'Fatima Bakker', address: '+31612345678', channel: 'whatsapp' },
    transcript: [{ text: 'Hoi, ik wil parkeren', author: 'customer', time: iso },
      { text: 'Waarmee kan ik helpen?', author: 'bot', time: epoch },
      { text: 'Een parkeervergunning', author: 'customer' }],
    summary: 'Klant wil een parkeervergunning', intent: 'parkeervergunning' });
  assert.equal(r.status, 201, r.text);
  const id = r.json.bericht;
  const offer = page.locator(`.offer[data-bericht="${id}"]`);
  await offer.getByText('Fatima Bakker').waitFor();
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.getByRole('heading', { name: /Fatima Bakker/ }).waitFor();
  const lines = card.locator('.transcript li');
  await until(async () => (await lines.count()) === 3, 'three transcript lines');
  const texts = await lines.allInnerTexts();
  assert.match(texts[0], /^Klant/);
  assert.match(texts[0], new RegExp(localClock(Date.parse(iso))));
  assert.match(texts[0], /Hoi, ik wil parkeren/);
  assert.match(texts[1], /^Chatbot/);
  assert.match(texts[1], new RegExp(localClock(epoch)));
  assert.match(texts[2], /^Klant/);
  const all = await card.locator('.thread').innerText();
  assert.doesNotMatch(all, /2026-11-22T|\d{13}|\bcustomer\b|\bbot\b/, 'no ISO/epoch times or raw author names');
  // the handoff is one bericht, not one bubble of raw lines labelled as the customer's
  assert.equal(await card.locator('.thread .msg.in').count(), 1);
  await page.screenshot({ path: path.join(ART, 'desk-handoff.png'), fullPage: true });
  const bad = await seriousAxe(page);
  for (const v of bad) t.diagnostic(v);
  assert.deepEqual(bad, []);
  // English
  await page.goto(d.base + '/agent.html?lang=en');
  const cardEn = page.locator(`.card[data-bericht="${id}"]`);
  await until(async () => (await cardEn.locator('.transcript li').count()) === 3, 'transcript after reload (en)');
  const en = await cardEn.locator('.transcript li').allInnerTexts();
  assert.match(en[0], /^Customer/);
  assert.match(en[1], /^Chatbot/);
  await finish(page, id);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: a web-chat bot transcript ({from, text, ts}) is shown by author, system lines apart', { timeout: 90_000 }, async () => {
  const { page, ctx, errors } = await desk('agent2');
  await ready(page, 'agent2', 'Algemene vragen', 'algemeen');
  const t0 = Date.parse('2026-12-01T08:15:00Z');
  // the payload the web chat instance submits on a bot handoff (channels/webchat do_handoff)
  const r = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'webchat:bezoeker-9',
    text: 'Klant: Wanneer is de afvalkalender?\nChatbot: Dat zoek ik op.\n', subject: 'Vraag over de afvalkalender',
    payload: { source: 'bot', summary: 'Vraag over de afvalkalender', transcript: [
      { from: 'visitor', text: 'Wanneer is de afvalkalender?', ts: t0 },
      { from: 'bot', text: 'Dat zoek ik op.', ts: t0 + 5000 },
      { from: 'system', text: 'U wordt doorverbonden met een medewerker.', ts: t0 + 6000 }] } }, 'desk-wc-1');
  assert.equal(r.status, 201, r.text);
  await page.locator(`.offer[data-bericht="${r.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
  const card = page.locator(`.card[data-bericht="${r.json.id}"]`);
  await until(async () => (await card.locator('.transcript li').count()) === 3, 'three lines');
  const texts = await card.locator('.transcript li').allInnerTexts();
  assert.match(texts[0], new RegExp('^Klant · ' + localClock(t0)));
  assert.match(texts[1], new RegExp('^Chatbot · ' + localClock(t0 + 5000)));
  assert.match(texts[2], /doorverbonden/);
  assert.doesNotMatch(texts[2], /^Klant/);
  await finish(page, r.json.id);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: a reload keeps the conversation\'s duration, "the customer ended" and the disabled composer', { timeout: 120_000 }, async () => {
  const { page, ctx, errors } = await desk('agent3');
  await ready(page, 'agent3', 'Vergunningen', 'vergunningen');
  const r = await d.request('POST', '/channels/hook/messages', { from: 'reload@example.nl', text: 'Hallo?', id: 'desk-reload-1' });
  assert.equal(r.status, 201, r.text);
  const id = r.json.bericht;
  await page.locator(`.offer[data-bericht="${id}"]`).getByRole('button', { name: /aannemen/ }).click();
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.locator('.thread .msg.in', { hasText: 'Hallo?' }).waitFor();
  // let the conversation run a while: 0:06 or more on the card
  await card.locator('p.muted', { hasText: /0:0[6-9]|0:[1-5]\d/ }).waitFor({ timeout: 20_000 });
  await page.reload();
  await card.locator('.thread .msg.in', { hasText: 'Hallo?' }).waitFor();
  const meta = await card.locator('p.muted', { hasText: /duur|\d:\d\d/ }).first().innerText();
  const m = /(\d+):(\d\d)/.exec(meta);
  assert.ok(m && Number(m[1]) * 60 + Number(m[2]) >= 6, `duration restored after reload, got "${meta}"`);
  // the customer leaves (the chat channel ends the bericht): the desk says so, and after a reload too
  const end = await d.request('POST', '/channels/hook/end', { bericht: id });
  assert.equal(end.status, 204, end.text);
  await card.getByText('De klant heeft het gesprek beëindigd').waitFor();
  await assert.doesNotReject(card.getByLabel(/Antwoord aan/).isDisabled().then((x) => assert.ok(x, 'composer disabled')));
  await page.reload();
  await card.getByText('De klant heeft het gesprek beëindigd').waitFor();
  assert.ok(await card.getByLabel(/Antwoord aan/).isDisabled(), 'composer disabled after reload');
  assert.ok(await card.getByRole('button', { name: 'Versturen' }).isDisabled(), 'send disabled after reload');
  assert.ok(await card.locator('[data-action=complete]').isEnabled(), 'complete still possible');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: customer history names the handler, shows the subject, never "null", not the open conversation', { timeout: 120_000 }, async () => {
  const { page, ctx, errors } = await desk('agent1');
  await ready(page, 'agent1', 'Algemene vragen', 'algemeen');
  // a first contact: the history is empty (the open conversation is not its own history)
  const a = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'historie@example.nl', subject: 'Afvalpas kwijt',
    text: 'Mijn afvalpas is kwijt.' }, 'desk-hist-1');
  await page.locator(`.offer[data-bericht="${a.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
  const cardA = page.locator(`.card[data-bericht="${a.json.id}"]`);
  await cardA.locator('summary', { hasText: 'Klanthistorie (0)' }).click();
  await cardA.locator('.history', { hasText: 'Geen eerdere contacten.' }).waitFor();
  assert.doesNotMatch(await cardA.locator('.history').innerText(), /null|undefined/);
  await finish(page, a.json.id);
  // the second contact lists the first: by the handler's name, with its subject and topic
  await ready(page, 'agent1', 'Algemene vragen', 'algemeen');
  const b = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'historie@example.nl', text: 'Nog een vraag.' }, 'desk-hist-2');
  await page.locator(`.offer[data-bericht="${b.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
  const cardB = page.locator(`.card[data-bericht="${b.json.id}"]`);
  await cardB.locator('summary', { hasText: 'Klanthistorie (1)' }).click();
  const rows = cardB.locator('.history tbody tr');
  await until(async () => (await rows.count()) === 1, 'one earlier contact');
  const row = await rows.first().innerText();
  assert.match(row, /Anouk de Vries/);
  assert.doesNotMatch(row, /\bagent1\b/);
  assert.match(row, /Afvalpas kwijt/);
  assert.doesNotMatch(await cardB.locator('.history').innerText(), /null|undefined/);
  await page.screenshot({ path: path.join(ART, 'desk-history.png'), fullPage: true });
  await finish(page, b.json.id);
  assert.deepEqual(errors, []);
  await ctx.close();
});

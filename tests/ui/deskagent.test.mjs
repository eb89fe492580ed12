// deskagent.test.mjs -- what agents expect of the desk (issue 14), as an agent sees it, by
// keyboard only: standard answers in the composer ("/" and Ctrl+Space, placeholders filled),
// the alerts on an offer (sound, tab title, browser notification, each switchable and
// remembered) with the first message and the customer's name in the offer, internal notes and
// the topics during wrap-up (kept over a reload, with the countdown), the delivery state on each
// reply (verzonden / afgeleverd / mislukt, also after a reload), escalation to the second line
// with a note (the second line sees the note and history; the first line what became of it),
// and asking a colleague (the colleague sees the question, views the conversation read-only,
// answers). axe-core clean on each screen.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

// the webhook channel's callback: replies with "FOUT" in them are refused (delivery failed)
const replies = [];
const cb = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let j = {};
    try { j = JSON.parse(body); } catch { /* */ }
    replies.push(j);
    res.writeHead(String(j.text || '').includes('FOUT') ? 500 : 200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
});
await new Promise((r) => cb.listen(0, '127.0.0.1', r));

const HOOK = 'deskagent-test-webhook-token-0123456789abcdef';
const cfg = uiConfig();
cfg.channels = [{ name: 'hook2', plugin: 'webhook', queue: 'algemeen',
  config: { token: HOOK, callback_url: `http://127.0.0.1:${cb.address().port}/reply`, retries: 1, retry_ms: 100 } }];
const d = await new Daemon(cfg).start();
const tok = { agent1: d.token('agent', 'agent1'), agent2: d.token('agent', 'agent2'), agent3: d.token('agent', 'agent3') };
const WHO = {
  agent1: { role: 'agent', name: 'Anouk de Vries', agent: 'agent1' },
  agent2: { role: 'agent', name: 'Mohammed El Amrani', agent: 'agent2' },
  agent3: { role: 'agent', name: 'Sanne Jansen', agent: 'agent3' },
};
const browser = await launchBrowser();
after(async () => { await browser.close(); await d.stop(); cb.close(); });

async function desk(who, { init } = {}) {
  const o = await openSignedIn(browser, d.base, { token: tok[who], ...WHO[who] }, 'agent.html');
  if (init) {
    await o.ctx.addInitScript(init);
    await o.page.reload();
  }
  await o.page.locator('#my-state[data-state]').waitFor();
  return o;
}

/** Keyboard only: focus the control and press the key (Enter for buttons, Space for boxes). */
async function press(loc, key = 'Enter') {
  await loc.focus();
  await loc.page().keyboard.press(key);
}

/** Ready in exactly the queue named (title), by keyboard. */
async function ready(page, agentId, title, queue) {
  if (await page.locator('#btn-login').isVisible()) await press(page.locator('#btn-login'));
  await page.locator('#btn-ready').waitFor({ state: 'visible' });
  await press(page.locator('#btn-ready'));
  await page.locator('#my-state[data-state="ready"]').waitFor();
  for (const box of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await box.getAttribute('id')}"]`).textContent();
    if ((await box.isChecked()) !== (label === title)) await press(box, 'Space');
  }
  await until(async () => {
    const a = (await d.request('GET', '/api/v1/agents')).json.agents.find((x) => x.id === agentId);
    return a.state === 'ready' && a.queues.every((q) => q.joined === (q.queue === queue));
  }, `${agentId} ready in ${queue} only`);
}

async function axeClean(t, page) {
  const bad = await seriousAxe(page);
  for (const v of bad) t.diagnostic(v);
  assert.deepEqual(bad, []);
}

/** Accepts the offer of bericht id (Enter on its Accept button); the card. */
async function accept(page, id) {
  const offer = page.locator(`.offer[data-bericht="${id}"]`);
  await press(offer.getByRole('button', { name: /aannemen/ }));
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.waitFor();
  return card;
}

async function completeAndEnd(page, id) {
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await press(card.locator('[data-action=complete]'));
  await press(page.getByRole('dialog').getByRole('checkbox').first(), 'Space');
  await press(page.getByRole('dialog').getByRole('button', { name: 'Afronden' }));
  await card.locator('[data-action=wrapup_end]').waitFor({ state: 'visible' });
  await press(card.locator('[data-action=wrapup_end]'));
  await card.waitFor({ state: 'detached' });
}

/** Logged out of ACDM (the next test's offers go to its own agent). */
async function logout(page) {
  await press(page.locator('#btn-logout'));
  await page.locator('#my-state[data-state="logged_out"]').waitFor();
}

const SPY = () => {
  window.__notes = [];
  window.__beeps = 0;
  const N = window.Notification;
  class Spy extends N {
    constructor(title, opts) {
      window.__notes.push({ title, body: opts && opts.body });
      super(title, opts);
    }
  }
  Object.defineProperty(Spy, 'permission', { get: () => N.permission });
  Spy.requestPermission = (...a) => N.requestPermission(...a);
  window.Notification = Spy;
  const osc = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function createOscillator() { window.__beeps++; return osc.call(this); };
};

test('desk: standard answers from "/" and Ctrl+Space, per queue and language, placeholders filled; delivery states', { timeout: 120_000 }, async (t) => {
  const add = async (body) => assert.equal((await d.request('POST', '/api/v1/snippets', body)).status, 201);
  await add({ id: 'paspoort', title: 'Paspoort aanvragen', queue: 'algemeen', language: 'nl',
    text: 'Beste {klant}, een paspoort vraagt u aan op het stadskantoor. Met vriendelijke groet, {agent} ({wachtrij})' });
  await add({ id: 'passport', title: 'Passport application', language: 'en', text: 'Dear {customer}, ...' });
  await add({ id: 'vergunning', title: 'Paspoort bij vergunning', queue: 'vergunningen', text: 'Alleen voor vergunningen' });
  await add({ id: 'groet', title: 'Afsluiten', text: 'Fijne dag nog, {klant}!' });
  const { page, ctx, errors } = await desk('agent1');
  await ready(page, 'agent1', 'Algemene vragen', 'algemeen');
  const r = await d.request('POST', '/channels/hook2/messages', { from: '+31655500011', text: 'Ik heb een nieuw paspoort nodig', id: 'da-snip-1' },
    { token: HOOK });
  assert.equal(r.status, 201, r.text);
  const id = r.json.bericht;
  await page.locator(`.offer[data-bericht="${id}"]`).getByText('Eerste bericht: „Ik heb een nieuw paspoort nodig”').waitFor();
  const card = await accept(page, id);
  const box = card.getByLabel(/Antwoord aan/);
  await box.focus();
  await page.keyboard.type('/pasp');
  const list = card.getByRole('listbox', { name: 'Standaardantwoorden' });
  await list.waitFor();
  // the queue's and every queue's, the desk's language: not the English one, not another queue's
  assert.deepEqual(await list.getByRole('option').locator('.snippet-title').allInnerTexts(), ['Paspoort aanvragen']);
  await axeClean(t, page);
  await page.keyboard.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await box.inputValue(), 'Beste heer/mevrouw, een paspoort vraagt u aan op het stadskantoor. ' +
    'Met vriendelijke groet, Anouk de Vries (Algemene vragen)');
  assert.equal(await card.locator('.thread .msg.out').count(), 0, 'Enter in the list inserts, it does not send');
  // Ctrl+Space at the end: filter by typing, arrows choose
  await page.keyboard.press('End');
  await page.keyboard.press('Control+Space');
  await list.waitFor();
  assert.ok((await list.getByRole('option').count()) >= 2);
  await page.keyboard.type('dag');
  await until(async () => (await list.getByRole('option').locator('.snippet-title').allInnerTexts()).join() === 'Afsluiten', 'filtered to one');
  await page.keyboard.press('Enter');
  assert.match(await box.inputValue(), /\(Algemene vragen\)Fijne dag nog, heer\/mevrouw!$/);
  // Escape closes without inserting
  await page.keyboard.press('Control+Space');
  await list.waitFor();
  await page.keyboard.press('Escape');
  await list.waitFor({ state: 'hidden' });
  await page.keyboard.press('Enter');   // now Enter sends
  const sent = card.locator('.thread .msg.out', { hasText: 'een paspoort vraagt u aan' });
  await sent.waitFor();
  await sent.filter({ hasText: /· afgeleverd/ }).waitFor();   // the webhook's callback answered 200
  assert.ok(replies.some((x) => String(x.text).startsWith('Beste heer/mevrouw')), 'the filled text reached the channel');
  // a reply the channel cannot deliver
  await box.fill('Dit gaat FOUT');
  await page.keyboard.press('Enter');
  await card.locator('.thread .msg.out', { hasText: 'Dit gaat FOUT' }).filter({ hasText: /aflevering mislukt/ }).waitFor();
  // the states are still on the messages after a reload
  await page.reload();
  await card.locator('.thread .msg.out', { hasText: 'een paspoort vraagt u aan' }).filter({ hasText: /· afgeleverd/ }).waitFor();
  await card.locator('.thread .msg.out', { hasText: 'Dit gaat FOUT' }).filter({ hasText: /aflevering mislukt/ }).waitFor();
  // English desk: the English snippet, "Sir/Madam"
  await page.goto(d.base + '/agent.html?lang=en');
  const boxEn = page.locator(`.card[data-bericht="${id}"]`).getByLabel(/Reply to/);
  await boxEn.focus();
  await page.keyboard.type('/pass');
  const listEn = page.getByRole('listbox', { name: 'Standard answers' });
  await until(async () => (await listEn.getByRole('option').locator('.snippet-title').allInnerTexts()).join() === 'Passport application', 'English snippet');
  await page.keyboard.press('Enter');
  assert.equal(await boxEn.inputValue(), 'Dear Sir/Madam, ...');
  await boxEn.fill('');
  await page.goto(d.base + '/agent.html');
  await page.screenshot({ path: path.join(ART, 'deskagent-snippets.png'), fullPage: true });
  await completeAndEnd(page, id);
  await logout(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: standard answers in the mail and SMS composers', { timeout: 90_000 }, async (t) => {
  assert.equal((await d.request('POST', '/api/v1/snippets', { id: 'mail-slot', title: 'Slot van een mail', queue: 'email',
    text: 'Met vriendelijke groet,\n{agent}\n{wachtrij}' })).status, 201);
  const { page, ctx, errors } = await desk('agent3');
  // a slow network: the snippets take 800 ms to come (the daemon's own answer, delivered late)
  await page.route('**/api/v1/snippets', async (route) => { await new Promise((r) => setTimeout(r, 800)); await route.continue(); });
  await ready(page, 'agent3', 'E-mail', 'email');
  const mail = await d.postBericht({ queue: 'email', kind: 'email', from: 'jan@example.nl', subject: 'Vraag over afval',
    text: 'Wanneer komt de kliko?', payload: { subject: 'Vraag over afval', from_name: 'Jan Jansen' } }, 'da-mail-1');
  assert.equal(mail.status, 201, mail.text);
  const sms = await d.postBericht({ queue: 'email', kind: 'sms', from: '+31655500033', text: 'Is het stadskantoor open?' }, 'da-sms-1');
  assert.equal(sms.status, 201, sms.text);
  // the mail: "/slot" and Enter at once, as a fast typist does, while the desk still fetches the
  // snippets over the slow network (the global "Afsluiten" matches the "s" typed first: it must not be the one inserted,
  // and Enter must not send); the SMS: Enter once the list shows the match
  for (const [id, label, look] of [[mail.json.id, /Antwoord aan Jan Jansen/, false], [sms.json.id, /Antwoord aan \+31655500033/, true]]) {
    const card = await accept(page, id);
    const box = card.getByLabel(label);
    await box.focus();
    await page.keyboard.type('Dank voor uw vraag.');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('/slot', { delay: look ? 0 : 60 });
    if (look) {
      const list = card.getByRole('listbox', { name: 'Standaardantwoorden' });
      await until(async () => (await list.getByRole('option').locator('.snippet-title').allInnerTexts()).join() === 'Slot van een mail',
        'the list filtered to "Slot van een mail"');
    }
    await page.keyboard.press('Enter');
    await until(async () => (await box.inputValue()) !== 'Dank voor uw vraag.\n/slot', 'the snippet inserted');
    assert.equal(await card.locator('.thread .msg.out').count(), 0, 'Enter inserted, it did not send');
    assert.equal(await box.inputValue(), 'Dank voor uw vraag.\nMet vriendelijke groet,\nSanne Jansen\nE-mail');
    await box.fill('');
  }
  await axeClean(t, page);
  await completeAndEnd(page, mail.json.id);
  await completeAndEnd(page, sms.json.id);
  await logout(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: an offer plays a sound, changes the title and notifies, each switchable and remembered; name and first message shown', { timeout: 120_000 }, async (t) => {
  const { page, ctx, errors } = await desk('agent2', { init: SPY });
  await ctx.grantPermissions(['notifications'], { origin: d.base });
  await ready(page, 'agent2', 'Algemene vragen', 'algemeen');
  const panel = page.getByRole('region', { name: 'Meldingen bij een aanbod' });
  assert.equal(await panel.getByLabel('Geluid').isChecked(), true);
  assert.equal(await panel.getByLabel('Titel van het tabblad').isChecked(), true);
  await press(panel.getByLabel('Browsermelding'), 'Space');
  assert.equal(await panel.getByLabel('Browsermelding').isChecked(), true);
  const r = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'web:fatima', text: 'Wanneer wordt mijn grofvuil opgehaald?',
    payload: { name: 'Fatima Bakker' } }, 'da-alert-1');
  assert.equal(r.status, 201, r.text);
  const offer = page.locator(`.offer[data-bericht="${r.json.id}"]`);
  await offer.getByText('Fatima Bakker').waitFor();
  await offer.getByText('Eerste bericht: „Wanneer wordt mijn grofvuil opgehaald?”').waitFor();
  await until(async () => (await page.title()) === '(1) Nieuw aanbod – acdm', 'the title');
  const notes = await until(async () => { const n = await page.evaluate(() => window.__notes); return n.length ? n : null; }, 'a notification');
  assert.equal(notes[0].title, 'Nieuw aanbod: Chat van Fatima Bakker (web:fatima)');
  assert.match(notes[0].body, /Wachtrij: Algemene vragen\nWanneer wordt mijn grofvuil opgehaald\?/);
  assert.ok(await page.evaluate(() => window.__beeps) > 0, 'a sound');
  await axeClean(t, page);
  const card = await accept(page, r.json.id);
  await card.getByRole('heading', { name: /Fatima Bakker/ }).waitFor();
  await until(async () => (await page.title()) === 'acdm — agentdesk', 'the title back');
  await completeAndEnd(page, r.json.id);
  // sound and title off: remembered after a reload; the notification stays on
  await press(panel.getByLabel('Geluid'), 'Space');
  await press(panel.getByLabel('Titel van het tabblad'), 'Space');
  await page.reload();
  await page.locator('#my-state[data-state]').waitFor();
  assert.equal(await panel.getByLabel('Geluid').isChecked(), false);
  assert.equal(await panel.getByLabel('Titel van het tabblad').isChecked(), false);
  assert.equal(await panel.getByLabel('Browsermelding').isChecked(), true);
  const r2 = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'web:piet', text: 'Nog een vraag' }, 'da-alert-2');
  await page.locator(`.offer[data-bericht="${r2.json.id}"]`).waitFor();
  await until(async () => (await page.evaluate(() => window.__notes.length)) === 1, 'the notification');
  assert.equal(await page.evaluate(() => window.__beeps), 0, 'no sound');
  assert.equal(await page.title(), 'acdm — agentdesk');
  await accept(page, r2.json.id);
  await completeAndEnd(page, r2.json.id);
  await logout(page);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('desk: notes and topics in wrap-up survive a reload with the countdown; escalation with a note; the first line sees what became of it', { timeout: 150_000 }, async (t) => {
  const { page, ctx, errors } = await desk('agent1');
  await ready(page, 'agent1', 'Algemene vragen', 'algemeen');
  const from = '+31655500022';
  const r = await d.request('POST', '/channels/hook2/messages', { from, text: 'Mijn rijbewijs is verlopen', id: 'da-note-1' }, { token: HOOK });
  const id = r.json.bericht;
  const card = await accept(page, id);
  // a note during the conversation
  await press(card.locator('.notes-box summary'));
  await card.getByLabel('Nieuwe notitie').fill('Klant belt vanuit het buitenland');
  await press(card.getByRole('button', { name: 'Notitie opslaan' }));
  await card.locator('.notes li', { hasText: 'Klant belt vanuit het buitenland' }).waitFor();
  // complete: topics and a note together
  await press(card.locator('[data-action=complete]'));
  const dlg = page.getByRole('dialog');
  await press(dlg.getByRole('checkbox', { name: 'Rijbewijs' }), 'Space');
  await dlg.getByLabel('Interne notitie (optioneel)').fill('Verwezen naar de RDW');
  await press(dlg.getByRole('button', { name: 'Afronden' }));
  await card.locator('.registered', { hasText: 'Onderwerpen: Rijbewijs' }).waitFor();
  await card.locator('.notes li', { hasText: 'Verwezen naar de RDW' }).waitFor();
  await axeClean(t, page);
  const left = async () => Number(/nog (\d+) s/.exec(await card.locator('.wrapbar').innerText())?.[1]);
  const before = await until(left, 'the wrap-up countdown');
  await page.waitForTimeout(2100);
  await page.reload();
  await card.locator('.registered', { hasText: 'Onderwerpen: Rijbewijs' }).waitFor();
  const afterReload = await until(left, 'the countdown after the reload');
  assert.ok(afterReload < before && afterReload > before - 20, `the countdown went on (${before} -> ${afterReload})`);
  await card.locator('.notes li', { hasText: 'Klant belt vanuit het buitenland' }).waitFor();
  await press(card.locator('[data-action=wrapup_end]'));
  await card.waitFor({ state: 'detached' });
  // the next contact of this customer: escalated to the second line (vergunningen) with a note
  const r2 = await d.request('POST', '/channels/hook2/messages', { from, text: 'Ik wil een ontheffing aanvragen', id: 'da-esc-1' }, { token: HOOK });
  const id2 = r2.json.bericht;
  const card2 = await accept(page, id2);
  await card2.locator('.history tbody tr').first().waitFor({ state: 'attached' });
  await press(card2.locator('.transfer summary'));
  await card2.getByLabel('Naar').selectOption({ label: 'Vergunningen' });
  await card2.getByLabel('Notitie voor de volgende behandelaar (optioneel)').fill('Ontheffing parkeren, stukken zijn compleet');
  await press(card2.getByRole('button', { name: 'Doorverbinden' }).last());
  await card2.waitFor({ state: 'detached' });
  const esc = page.getByRole('region', { name: 'Doorgezet' });
  await esc.locator(`li[data-bericht="${id2}"]`, { hasText: 'wacht in Vergunningen' }).waitFor();
  // the second line: the note and the customer's history come along
  const b = await desk('agent3');
  await ready(b.page, 'agent3', 'Vergunningen', 'vergunningen');
  const card3 = await accept(b.page, id2);
  await card3.locator('.notes li', { hasText: 'Ontheffing parkeren, stukken zijn compleet' }).waitFor();
  await card3.locator('.notes li', { hasText: 'doorgezet naar Vergunningen' }).waitFor();
  await press(card3.locator('.history summary'));
  const row = card3.locator('.history tbody tr', { hasText: 'Rijbewijs' });
  await row.waitFor();
  assert.match(await row.innerText(), /Verwezen naar de RDW/);
  await axeClean(t, b.page);
  // the first line sees who has it now, then that it was handled
  await esc.locator(`li[data-bericht="${id2}"]`, { hasText: 'in behandeling bij Sanne Jansen' }).waitFor({ timeout: 20_000 });
  await completeAndEnd(b.page, id2);
  await esc.locator(`li[data-bericht="${id2}"]`, { hasText: 'afgehandeld door Sanne Jansen' }).waitFor({ timeout: 20_000 });
  await page.reload();
  await esc.locator(`li[data-bericht="${id2}"]`, { hasText: 'afgehandeld door Sanne Jansen' }).waitFor();
  await page.screenshot({ path: path.join(ART, 'deskagent-escalation.png'), fullPage: true });
  // the new panels fit the 1366 px desk: no horizontal scrolling
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth),
    'no horizontal overflow at 1366 px');
  await logout(page);
  await logout(b.page);
  assert.deepEqual(errors, []);
  assert.deepEqual(b.errors, []);
  await b.ctx.close();
  await ctx.close();
});

test('desk: asking a colleague about a conversation without transferring it; read-only view and answer', { timeout: 120_000 }, async (t) => {
  const a = await desk('agent1');
  const m = await desk('agent2');
  await ready(a.page, 'agent1', 'Algemene vragen', 'algemeen');
  await ready(m.page, 'agent2', 'E-mail', 'email');
  // colleagues are pushed every 2 s
  await a.page.locator('#colleagues td', { hasText: 'Mohammed El Amrani' }).waitFor();
  const r = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'web:wmo', text: 'Kan ik een scootmobiel aanvragen?' }, 'da-cons-1');
  const id = r.json.id;
  const card = await accept(a.page, id);
  await press(card.locator('.consult summary'));
  await card.getByLabel('Collega').selectOption('agent2');
  await card.getByLabel('Vraag', { exact: true }).fill('Valt een scootmobiel onder de Wmo?');
  await press(card.getByRole('button', { name: 'Vraag versturen' }));
  const ov = m.page.getByRole('region', { name: 'Overleg' });
  const th = ov.locator(`.consult-thread[data-bericht="${id}"]`);
  await th.getByText('Valt een scootmobiel onder de Wmo?').waitFor();
  await th.getByText(/Anouk de Vries · /).waitFor();
  assert.equal(await m.page.locator(`.card[data-bericht="${id}"]`).count(), 0, 'not transferred');
  await axeClean(t, m.page);
  await press(th.getByRole('button', { name: 'Gesprek bekijken (alleen lezen)' }));
  const view = m.page.getByRole('dialog', { name: 'Gesprek (alleen lezen)' });
  await view.getByText('Kan ik een scootmobiel aanvragen?').waitFor();
  assert.equal(await view.locator('textarea, input').count(), 0, 'read-only');
  await axeClean(t, m.page);
  await m.page.keyboard.press('Escape');
  await view.waitFor({ state: 'hidden' });
  await th.getByLabel('Antwoord aan Anouk de Vries').fill('Ja, via het Wmo-loket');
  await press(th.getByRole('button', { name: 'Antwoorden' }));
  await a.page.getByRole('region', { name: 'Overleg' }).locator(`.consult-thread[data-bericht="${id}"]`)
    .getByText('Ja, via het Wmo-loket').waitFor();
  // both desks show the consultation again after a reload
  await m.page.reload();
  await th.getByText('Valt een scootmobiel onder de Wmo?').waitFor();
  await th.getByText('Ja, via het Wmo-loket').waitFor();
  await th.getByLabel('Antwoord aan Anouk de Vries').waitFor();
  assert.ok(await m.page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth),
    'no horizontal overflow at 1366 px');
  // still agent1's
  const ag = (await d.request('GET', '/api/v1/agents')).json.agents;
  assert.deepEqual(ag.find((x) => x.id === 'agent1').work.map((w) => w.bericht), [id]);
  assert.deepEqual(ag.find((x) => x.id === 'agent2').work, []);
  await completeAndEnd(a.page, id);
  await logout(a.page);
  await logout(m.page);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(m.errors, []);
  await a.ctx.close();
  await m.ctx.close();
});

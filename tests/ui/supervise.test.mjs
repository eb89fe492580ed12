// supervise.test.mjs -- the supervisor's work beside the figures (issue 14, "Supervisors"), in
// headless Chromium against the real acdmd, operated with the keyboard only on the dashboard:
// read along with a live chat and whisper to the agent (shown on the agent's desk, marked, also
// after a reload; never delivered to the citizen: the webhook channel's callback receiver gets the
// agent's replies and nothing else); reassign an offered and a waiting bericht, with refusals in
// Dutch; what each agent handles now; alarms in colour and words on dashboard and wallboard; why
// a queue is closed and what "Openen" does to the schedule; the messages left while closed.
// Run: tests/run-ui.sh --test-name-pattern=supervise
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

const TOKEN = 'wh-supervise-token-0123456789';

// the citizen's side of the webhook channel: every reply acdm delivers to the citizen lands here
const delivered = [];
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => { delivered.push(body); res.writeHead(200, { 'Content-Length': '0' }); res.end(); });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));

const cfg = uiConfig();
cfg.channels = [{ name: 'web1', plugin: 'webhook', queue: 'algemeen',
  config: { token: TOKEN, callback_url: `http://127.0.0.1:${receiver.address().port}/cb`, retry_ms: 100 } }];
cfg.schedules = [
  { name: 'hele-dag', week: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, ['00:00-23:59']])) },
  { name: 'dicht', week: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, []])) },
];
cfg.queues.push(
  { name: 'rooster', title: 'Met rooster', schedule: 'hele-dag', closed_text: { default: 'Gesloten.' } },
  { name: 'nacht', title: 'Nachtdienst', schedule: 'dicht', closed_text: { default: 'Gesloten.' } },
  // a norm of 1 s and no quick drops: one abandoned bericht breaks the service level
  { name: 'norm', title: 'Strenge norm', sl_target_pct: 80, sl_seconds: 1, quick_drop_s: 0,
    closed_text: { default: 'Gesloten.' } });
cfg.agents[1].capacity = { chat: 2, email: 0 };   // Mohammed takes no e-mail (a wrong-kind refusal)
const d = await new Daemon(cfg).start();
const tokens = { agent1: d.token('agent', 'agent1'), agent2: d.token('agent', 'agent2'), sup: d.token('supervisor', 'petra') };
const WHO = {
  agent1: { role: 'agent', name: 'Anouk de Vries', agent: 'agent1' },
  agent2: { role: 'agent', name: 'Mohammed El Amrani', agent: 'agent2' },
  sup: { role: 'supervisor', name: 'petra', agent: null },
};
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  receiver.close();
  await d.stop();
});

async function open(who, url) {
  const { page, errors } = await openSignedIn(browser, d.base, { token: tokens[who], ...WHO[who] }, url);
  page.errors = errors;
  return page;
}

/** Presses Tab (no mouse) until pred(activeElement) holds. */
async function tabTo(page, pred, arg, max = 150) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate(pred, arg)) return i;
    await page.keyboard.press('Tab');
  }
  throw new Error('keyboard focus never reached the element: ' + pred.toString());
}

async function citizen(text, id, from = '+31612345678', queue) {
  const r = await d.request('POST', '/channels/web1/messages', { from, text, id, conversation: 'c' + from, ...(queue ? { queue } : {}) },
    { token: TOKEN });
  assert.ok(r.status === 201 || r.status === 200, r.text);
  return r.json.bericht;
}

/** The desk's agent logged in to ACDM (ready unless ready=false), joined to Algemene vragen only. */
async function desk(who, { ready = true } = {}) {
  const page = await open(who, 'agent.html');
  await page.locator('#my-state[data-state]').waitFor();
  if (await page.locator('#btn-login').isVisible()) await page.locator('#btn-login').click();
  for (const cb of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await cb.getAttribute('id')}"]`).textContent();
    await cb.setChecked(label === 'Algemene vragen');
  }
  if (ready) await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  const id = WHO[who].agent;
  await until(async () => {
    const a = (await d.request('GET', '/api/v1/agents/' + id)).json;
    return a.state === (ready ? 'ready' : 'not_ready') && a.queues.every((q) => q.joined === (q.queue === 'algemeen'));
  }, `${id} logged in, in algemeen only`);
  return page;
}

async function keyboardClick(page, locator) {
  const handle = await locator.elementHandle();
  await tabTo(page, (el) => document.activeElement === el, handle);
  await page.keyboard.press('Enter');
}

test('supervise: read along with a live chat and whisper to the agent; the citizen never gets the whisper', { timeout: 150_000 }, async () => {
  const agent = await desk('agent1');
  const bid = await citizen('Hoe vraag ik een parkeervergunning aan?', 'ra-1');
  const offer = agent.locator(`.offer[data-bericht="${bid}"]`);
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = agent.locator(`.card[data-bericht="${bid}"]`);
  await card.getByLabel(/Antwoord aan/).fill('Goedemiddag, dat kan online.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await until(() => delivered.some((b) => b.includes('Goedemiddag, dat kan online.')), 'the reply reached the citizen');

  const sup = await open('sup', 'supervisor.html');
  const row = sup.locator('#agents tr[data-key="agent1"]');
  // what Anouk handles now: the customer, the channel, since when
  const now = row.locator('td.now-cell li', { hasText: '+31612345678' });
  await now.getByText(/^Chat · \+31612345678 · web1 · In gesprek sinds \d+:\d\d$/).waitFor();
  await keyboardClick(sup, now.getByRole('button', { name: 'Meelezen met het gesprek van Anouk de Vries met +31612345678' }));
  const dlg = sup.getByRole('dialog', { name: 'Meelezen: Anouk de Vries met +31612345678' });
  const log = dlg.getByRole('log');
  await log.locator('.msg.in', { hasText: 'Hoe vraag ik een parkeervergunning aan?' }).getByText(/^Klant · /).waitFor();
  await log.locator('.msg.out', { hasText: 'Goedemiddag, dat kan online.' }).getByText(/^Anouk de Vries \(agent\) · /).waitFor();
  // live: the citizen writes, the agent answers; both appear without any action
  await citizen('Wat kost dat?', 'ra-2');
  await log.locator('.msg.in', { hasText: 'Wat kost dat?' }).waitFor();
  await card.getByLabel(/Antwoord aan/).fill('Ongeveer 80 euro per jaar.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await log.locator('.msg.out', { hasText: 'Ongeveer 80 euro per jaar.' }).waitFor();
  assert.equal(await sup.evaluate(() => document.activeElement.id), 'sv-whisper');   // focus in the whisper box
  assert.deepEqual(await seriousAxe(sup), []);
  // whisper, by keyboard
  await sup.keyboard.type('Vraag ook naar het kenteken');
  await tabTo(sup, () => document.activeElement.textContent === 'Fluisteren');
  await sup.keyboard.press('Enter');
  await dlg.getByText('Gefluisterd naar Anouk de Vries.').waitFor();
  await log.locator('.msg.whisper', { hasText: 'Vraag ook naar het kenteken' }).getByText(/Fluistering van petra \(alleen voor de agent\)/).waitFor();
  await sup.screenshot({ path: path.join(ART, 'supervise-readalong.png'), fullPage: true });
  // the agent's desk: marked as the supervisor's, for the agent only
  const w = card.locator('.msg.whisper', { hasText: 'Vraag ook naar het kenteken' });
  await w.getByText(/^Supervisor petra fluistert \(alleen voor u\) · /).waitFor();
  // the next reply reaches the citizen; the whisper never did
  await card.getByLabel(/Antwoord aan/).fill('Wat is uw kenteken?');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await until(() => delivered.some((b) => b.includes('Wat is uw kenteken?')), 'the next reply reached the citizen');
  assert.equal(delivered.filter((b) => b.includes('kenteken') && !b.includes('Wat is uw kenteken?')).length, 0, delivered.join('\n'));
  assert.equal(delivered.length, 3, delivered.join('\n'));
  // after a reload the desk still shows the whisper, in its place
  await agent.reload();
  await agent.locator(`.card[data-bericht="${bid}"] .msg.whisper`, { hasText: 'Vraag ook naar het kenteken' }).waitFor();
  await agent.screenshot({ path: path.join(ART, 'supervise-whisper-desk.png'), fullPage: true });
  // Escape closes the read-along; focus goes back to its button
  await sup.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await sup.evaluate(() => document.activeElement.dataset.action), 'readalong');
  // no horizontal overflow at 1366 px with the new column
  assert.ok(await sup.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no horizontal scroll');
  assert.deepEqual(sup.errors, []);
  assert.deepEqual(agent.errors, []);
  await sup.context().close();
  await agent.context().close();
});

test('supervise: reassign an offered and a waiting bericht; refusals in Dutch; the queue time kept', { timeout: 150_000 }, async () => {
  const a1 = await desk('agent1');
  const a2 = await desk('agent2', { ready: false });
  const sup = await open('sup', 'supervisor.html');
  const bid = await citizen('Mijn paspoort is verlopen', 're-1', '+31600000011');
  await a1.locator(`.offer[data-bericht="${bid}"]`).waitFor();
  const queued = (await d.request('GET', '/api/v1/berichten/' + bid)).json.queued_ms;
  const li = sup.locator('#agents tr[data-key="agent1"] td.now-cell li', { hasText: '+31600000011' });
  await li.getByText(/Aangeboden sinds/).waitFor();
  await keyboardClick(sup, li.getByRole('button', { name: 'Bericht van +31600000011 (aangeboden aan Anouk de Vries) anders toewijzen' }));
  const dlg = sup.getByRole('dialog', { name: 'Bericht van +31600000011 toewijzen' });
  const sel = dlg.getByLabel('Aan agent');
  // Sanne is logged out: refused with a sentence, nothing moves
  await sel.focus();
  await sel.selectOption({ label: 'Sanne Jansen — afgemeld' });
  await tabTo(sup, () => document.activeElement.textContent === 'Toewijzen');
  await sup.keyboard.press('Enter');
  await dlg.getByRole('alert').getByText('Sanne Jansen is niet ingelogd. Een bericht kan alleen naar een ingelogde agent.').waitFor();
  assert.equal(await a1.locator(`.offer[data-bericht="${bid}"]`).count(), 1);
  assert.deepEqual(await seriousAxe(sup), []);
  // to Mohammed (logged in, not ready): Anouk's offer goes, Mohammed's desk gets it
  await sel.selectOption('agent2');
  await tabTo(sup, () => document.activeElement.textContent === 'Toewijzen');
  await sup.keyboard.press('Enter');
  await dlg.waitFor({ state: 'detached' });
  await sup.getByText('Het bericht van +31600000011 is aangeboden aan Mohammed El Amrani.').waitFor();
  await a1.locator(`.offer[data-bericht="${bid}"]`).waitFor({ state: 'detached' });
  await a2.locator(`.offer[data-bericht="${bid}"]`).waitFor();
  await sup.locator('#agents tr[data-key="agent2"] td.now-cell li', { hasText: '+31600000011' }).waitFor();
  const audit = (await d.request('GET', '/api/v1/audit')).json.items.filter((x) => x.action === 'reassign');
  assert.deepEqual(audit.map((x) => [x.actor, x.target, x.agent]), [['petra', bid, 'agent2']]);

  // a waiting e-mail (nobody is in that queue): Mohammed takes no e-mail; Anouk does
  const r = await d.postBericht({ queue: 'terugbellen', kind: 'email', from: 'els@example.nl', subject: 'Verhuizing', text: 'Ik ben verhuisd' });
  assert.equal(r.status, 201, r.text);
  const mailQueued = (await d.request('GET', '/api/v1/berichten/' + r.json.id)).json.queued_ms;
  const wrow = sup.locator(`#sup-waiting tr[data-key="${r.json.id}"]`);
  await wrow.getByText('els@example.nl').waitFor();
  await keyboardClick(sup, wrow.getByRole('button', { name: 'Bericht van els@example.nl in Terugbelverzoeken toewijzen aan een agent' }));
  const dlg2 = sup.getByRole('dialog', { name: 'Bericht van els@example.nl toewijzen' });
  await dlg2.getByLabel('Aan agent').selectOption('agent2');
  await tabTo(sup, () => document.activeElement.textContent === 'Toewijzen');
  await sup.keyboard.press('Enter');
  await dlg2.getByRole('alert').getByText('Mohammed El Amrani behandelt geen e-mail: daarvoor heeft Mohammed El Amrani geen capaciteit.').waitFor();
  await sup.screenshot({ path: path.join(ART, 'supervise-reassign-refused.png'), fullPage: true });
  await dlg2.getByLabel('Aan agent').selectOption('agent1');
  await tabTo(sup, () => document.activeElement.textContent === 'Toewijzen');
  await sup.keyboard.press('Enter');
  await dlg2.waitFor({ state: 'detached' });
  await a1.locator(`.offer[data-bericht="${r.json.id}"]`).waitFor();
  await wrow.waitFor({ state: 'detached' });
  assert.equal((await d.request('GET', '/api/v1/berichten/' + r.json.id)).json.queued_ms, mailQueued);
  assert.equal((await d.request('GET', '/api/v1/berichten/' + bid)).json.queued_ms, queued);   // the original queue time
  assert.deepEqual(sup.errors, []);
  for (const p of [sup, a1, a2]) await p.context().close();
});

test('supervise: alarms in colour and words on dashboard and wallboard (nobody logged in, longest wait, service level)', { timeout: 120_000 }, async () => {
  const sup = await open('sup', 'supervisor.html');
  const row = sup.locator('#queues tr[data-key="norm"]');
  await row.waitFor();
  assert.equal(await row.evaluate((tr) => tr.classList.contains('alarm')), false);
  const bid = await citizen('Is er iemand?', 'al-1', '+31600000021', 'norm');
  await row.locator('ul.alarms', { hasText: '1 wachtend en niemand ingelogd' }).waitFor();
  await row.locator('ul.alarms', { hasText: /langste wachttijd \d:\d\d boven de norm van 0:01/ }).waitFor();
  await sup.locator('#alarms li', { hasText: 'Strenge norm: 1 wachtend en niemand ingelogd' }).waitFor();
  // the citizen gives up: 0 % answered in time, under the norm of 80 %
  const e = await d.request('POST', '/channels/web1/end', { bericht: bid }, { token: TOKEN });
  assert.equal(e.status, 204, e.text);
  await row.locator('ul.alarms', { hasText: 'service level 0% onder de norm van 80%' }).waitFor();
  await until(async () => !(await row.locator('ul.alarms').textContent()).includes('niemand ingelogd'), 'the nobody alarm gone');
  // colour and a sign, and words for those who do not see the colour
  const look = await row.evaluate((tr) => ({ border: getComputedStyle(tr.cells[0]).borderLeftColor, text: tr.cells[0].textContent }));
  assert.equal(look.border, 'rgb(164, 0, 15)');
  assert.match(look.text, /⚠ Alarm: service level 0% onder de norm van 80%/);
  assert.deepEqual(await seriousAxe(sup), []);
  // no literal null, and the queues table fits 1366 px without scrolling sideways
  assert.doesNotMatch(await sup.locator('#queues').textContent(), /null|undefined/);
  const wrap = await sup.locator('#queues').evaluate((t) => { const w = t.closest('.table-wrap'); return [w.scrollWidth, w.clientWidth]; });
  assert.ok(wrap[0] <= wrap[1] + 1, `the queues table scrolls sideways at 1366 px: ${wrap}`);
  await sup.screenshot({ path: path.join(ART, 'supervise-alarms.png'), fullPage: true });
  // the wallboard says the same
  const wb = await open('sup', 'wallboard.html?tiles=q:norm,q:algemeen');
  const tile = wb.locator('section.tile[data-tile="q:norm"]');
  await tile.locator('ul.wb-alarms', { hasText: 'service level 0% onder de norm van 80%' }).waitFor();
  assert.equal(await tile.evaluate((el) => el.classList.contains('alarm-q')), true);
  assert.equal(await wb.locator('section.tile[data-tile="q:algemeen"]').evaluate((el) => el.classList.contains('alarm-q')), false);
  assert.deepEqual(await seriousAxe(wb), []);
  await wb.screenshot({ path: path.join(ART, 'supervise-wallboard-alarm.png'), fullPage: true });
  assert.deepEqual(sup.errors, []);
  assert.deepEqual(wb.errors, []);
  await sup.context().close();
  await wb.context().close();
});

test('supervise: closed by schedule vs by a person, and what Openen does, told truly (also after a reload)', { timeout: 120_000 }, async () => {
  const sup = await open('sup', 'supervisor.html');
  const rooster = sup.locator('#queues tr[data-key="rooster"]');
  const nacht = sup.locator('#queues tr[data-key="nacht"]');
  await rooster.locator('th .qstatus', { hasText: 'Open tot 23:59 volgens rooster' }).waitFor();
  await nacht.locator('th .qstatus', { hasText: 'Gesloten volgens rooster' }).waitFor();
  await sup.locator('#queues tr[data-key="algemeen"] th .qstatus', { hasText: 'Open (geen rooster)' }).waitFor();
  // closed by schedule: the action is a manual close, and the confirmation says what it means
  await keyboardClick(sup, nacht.getByRole('button', { name: 'Wachtrij Nachtdienst sluiten' }));
  await sup.getByRole('dialog').getByText(/blijft hij ook gesloten als het rooster opent, tot iemand hem opent/).waitFor();
  await sup.keyboard.press('Escape');
  // close "Met rooster" by hand, by keyboard
  await keyboardClick(sup, rooster.getByRole('button', { name: 'Wachtrij Met rooster sluiten' }));
  await sup.getByRole('dialog').getByRole('button', { name: 'Sluiten' }).waitFor();
  await tabTo(sup, () => document.activeElement.textContent === 'Sluiten' && !!document.activeElement.closest('dialog'));
  await sup.keyboard.press('Enter');
  const manual = /^Handmatig gesloten door petra om \d\d:\d\d — Openen heft dit op: dan open tot 23:59 volgens rooster$/;
  await rooster.locator('th .qstatus', { hasText: manual }).waitFor();
  // a config reload keeps the manual close, and who did it
  assert.equal((await d.request('POST', '/api/v1/reload')).status, 200);
  await sup.reload();
  await rooster.locator('th .qstatus', { hasText: manual }).waitFor();
  assert.deepEqual(await seriousAxe(sup), []);
  await sup.screenshot({ path: path.join(ART, 'supervise-queue-status.png'), fullPage: true });
  // Openen: the confirmation says the schedule rules afterwards; then open until 23:59
  await keyboardClick(sup, rooster.getByRole('button', { name: 'Wachtrij Met rooster openen' }));
  await sup.getByRole('dialog').getByText('Wachtrij Met rooster openen? Openen heft dit op: dan open tot 23:59 volgens rooster.').waitFor();
  await tabTo(sup, () => document.activeElement.textContent === 'Openen' && !!document.activeElement.closest('dialog'));
  await sup.keyboard.press('Enter');
  await rooster.locator('th .qstatus', { hasText: 'Open tot 23:59 volgens rooster' }).waitFor();
  assert.deepEqual(sup.errors, []);
  await sup.context().close();
});

test('supervise: the messages left while closed, with status and handler', { timeout: 90_000 }, async () => {
  const r = await d.postBericht({ queue: 'email', kind: 'email', from: 'jan@example.nl', subject: 'Bericht achtergelaten via de chat',
    text: 'Bel mij morgen terug', payload: { source: 'webchat-leave-message', name: 'Jan', email: 'jan@example.nl' } });
  assert.equal(r.status, 201, r.text);
  await d.postBericht({ queue: 'email', kind: 'email', from: 'kees@example.nl', subject: 'Gewone mail', text: 'Vraag' });
  const sup = await open('sup', 'supervisor.html');
  const list = sup.locator('#sup-left');
  const tr = list.locator(`tr[data-key="${r.json.id}"]`);
  await tr.getByText('jan@example.nl').waitFor();
  assert.equal(await tr.locator('td').nth(3).textContent(), 'wachtend');
  assert.equal(await tr.locator('td').nth(4).textContent(), 'nog niemand');
  assert.equal(await list.getByText('kees@example.nl').count(), 0);
  // an agent takes it: after "Vernieuwen" the list names the handler
  const agent = await open('agent1', 'agent.html');
  await agent.locator('#my-state[data-state]').waitFor();
  assert.equal((await d.request('POST', '/api/v1/agents/agent1/login')).status, 200);
  await until(async () => (await d.request('GET', '/api/v1/agents/agent1')).json.state !== 'logged_out', 'agent1 logged in');
  assert.equal((await d.request('POST', `/api/v1/berichten/${r.json.id}/reassign`, { agent: 'agent1' })).status, 200);
  await agent.locator(`.offer[data-bericht="${r.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
  await keyboardClick(sup, list.getByRole('button', { name: 'Vernieuwen' }));
  await tr.locator('td', { hasText: 'Anouk de Vries' }).waitFor();
  assert.equal(await tr.locator('td').nth(3).textContent(), 'in behandeling');
  assert.deepEqual(await seriousAxe(sup), []);
  await sup.screenshot({ path: path.join(ART, 'supervise-left-messages.png'), fullPage: true });
  assert.deepEqual(sup.errors, []);
  await sup.context().close();
  await agent.context().close();
});

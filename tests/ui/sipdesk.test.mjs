// sipdesk.test.mjs -- a real phone call on the agent desk (issue 10): the real acdmd with the sip
// channel (number 1000 -> queue "algemeen", agents' phones registering to its registrar), two
// baresip phones (agent1 plays 440 Hz, agent2 660 Hz, both auto-answer) and a SIPp caller
// (0612345678) whose received RTP is decoded -- the peers of tests/integration/siptest.py, driven
// through tests/integration/sipdriver.py. In headless Chromium (Dutch desk):
//  - the offer shows the caller's number, the number dialled and the queue's title; accepting it
//    rings agent1's phone, the card shows the call (no written reply field: it is spoken) and the
//    caller hears agent1's tone;
//  - "In de wacht": the card says the caller hears music, and the caller hears music, not agent1;
//  - "Hervatten": the caller hears agent1 again;
//  - "Doorverbinden" to agent2: agent1's card goes, agent1's phone is hung up (the caller waits
//    with music, never silence), agent2's desk gets the offer, accepting it rings agent2's phone
//    and the caller hears agent2's tone; agent1 is free for the next call;
//  - agent2 completes: the caller is hung up (acdm's BYE), agent2 is in wrap-up;
//  - the event log has the hold, the resume and the transfer; axe clean on the desk with the call.
// Fails (never skips) without sipp/baresip: scripts/deps.sh test installs them.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test sipdesk.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, REPO, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');
const { SipPeers } = require('./sip.js');

const T = 30_000;
const CLI = '0612345678';
const PASS1 = 'geheim-agent1';
const PASS2 = 'geheim-agent2';

let sip = null;
let d = null;
let browser = null;
after(async () => {
  // every process this file started ends here, also when the test failed half-way
  const errs = [];
  for (const f of [() => sip && sip.stop(), () => browser && browser.close(), () => d && d.stop()]) {
    try { await f(); } catch (e) { errs.push(e); }
  }
  if (errs.length) throw errs[0];
});

const plugin = path.join(REPO, 'plugins', 'sip.so');
if (!fs.existsSync(plugin)) throw new Error(`missing ${plugin}: make plugins/sip.so`);
sip = await SipPeers.start();          // throws "missing sipp ...: run scripts/deps.sh test"
const sipPort = await sip.port();

const cfg = uiConfig();
cfg.agents[0].capacity = { voice: 1, chat: 3, email: 5 };
// agent2 shares "algemeen" (so is agent1's colleague, a transfer target); the queue's strategy is
// linear (the configured order): the call goes to agent1 first
cfg.agents[1].capacity = { voice: 1, chat: 2, email: 8 };
assert.equal(cfg.queues[0].strategy, 'linear');
cfg.channels = [{ name: 'tel', plugin: 'sip', queue: 'algemeen', config: {
  listen: `udp:127.0.0.1:${sipPort}`,
  rtp_ports: await sip.rtpRange(),
  numbers: { 1000: 'algemeen' },
  registrar: { realm: 'acdm', users: { agent1: PASS1, agent2: PASS2 } },
  agents: { agent1: 'register', agent2: 'register' },
  rtp_timeout_s: 30,
} }];
d = await new Daemon(cfg).start();
browser = await launchBrowser();

const status = async () => {
  const r = await d.request('GET', '/channels/tel/status');
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const agent = async (id) => (await d.request('GET', '/api/v1/agents')).json.agents.find((x) => x.id === id);
const bericht = async (id) => (await d.request('GET', '/api/v1/berichten/' + id)).json;

const figures = [];   // what the caller heard in each window, reported as test diagnostics
/** What the caller heard from..to (s since its first RTP packet), once that much has come. */
async function heard(what, from, to) {
  await until(async () => (await sip.elapsed('c1')) >= to + 0.1, `${to.toFixed(1)} s of the caller's audio`, 60_000);
  const a = await sip.audio('c1', from, to, [440, 660]);
  figures.push(`${what} (${from.toFixed(1)}-${to.toFixed(1)} s): ${fmt(a)}`);
  return a;
}
const fmt = (a) => `ratio 440 Hz ${a.ratio['440'].toFixed(2)}, 660 Hz ${a.ratio['660'].toFixed(2)}, ` +
  `rms ${a.rms.toFixed(0)}, longest silence ${a.gap.toFixed(2)} s, ${a.samples} samples`;

async function desk(id, name) {
  const s = await openSignedIn(browser, d.base, { token: d.token('agent', id), role: 'agent', name, agent: id },
    'agent.html', T);
  await s.page.locator('#my-state[data-state]').waitFor();
  await s.page.locator('#btn-login').click();
  await s.page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  await s.page.locator('#my-state[data-state="ready"]').waitFor();
  return s;
}

test('agent desk with a real call: offer, hold, resume and transfer while baresip carries the audio', { timeout: 300_000 }, async (t) => {
  t.after(() => { for (const f of figures) t.diagnostic(f); });
  // the phones register to acdm's registrar (digest auth) before the agents sign in
  await sip.phone('a1', { user: 'agent1', password: PASS1, sip_port: sipPort, tone: 440 });
  await sip.phone('a2', { user: 'agent2', password: PASS2, sip_port: sipPort, tone: 660 });
  try {
    await until(async () => { const r = (await status()).registered; return r.includes('agent1') && r.includes('agent2'); },
      'both phones registered to acdm', 30_000);
  } catch (e) {
    throw new Error(`${e.message}\nagent1's baresip:\n${await sip.log('a1')}\nagent2's baresip:\n${await sip.log('a2')}`);
  }
  const a1 = await desk('agent1', 'Anouk de Vries');
  const a2 = await desk('agent2', 'Mohammed El Amrani');

  // ---- the call comes in: the offer on agent1's desk
  await sip.call('c1', { sip_port: sipPort, number: '1000', cli: CLI, tone: 1000, hangup: 'theirs', hold_ms: 240_000 });
  const offer = a1.page.locator('.offer');
  try {
    await offer.waitFor();
  } catch (e) {
    throw new Error(`${e.message}\nSIPp:\n${await sip.log('c1')}\nacdmd:\n${d.tail()}`);
  }
  const id = await offer.getAttribute('data-bericht');
  assert.equal(await a2.page.locator('.offer').count(), 0, 'the call was offered to agent2 too');
  assert.equal(await offer.locator('h3').textContent(), 'Telefoon via tel voor Algemene vragen');
  await offer.getByText(`Klant: ${CLI}`, { exact: true }).waitFor();
  await offer.getByText('Onderwerp: Gebeld naar 1000', { exact: true }).waitFor();
  const accept = offer.getByRole('button', { name: `Telefoon van ${CLI} aannemen` });
  // the caller was answered and waits with music before anyone takes the call
  const waiting = await heard('waiting', 0.2, 1.7);
  assert.ok(waiting.gap < 1.0 && waiting.samples > 8000, 'the waiting caller hears nothing: ' + fmt(waiting));
  await a1.page.screenshot({ path: path.join(ART, 'sipdesk-offer.png'), fullPage: true });

  // ---- accept: agent1's phone rings and answers, the card shows the call, the caller hears 440 Hz
  await accept.click();
  const card = a1.page.locator(`.card[data-bericht="${id}"]`);
  await card.waitFor();
  assert.equal(await card.locator('h3').textContent(), `Telefoon — ${CLI}`);
  assert.match(await card.locator('p.muted').first().textContent(), /^Wachtrij Algemene vragen · kanaal tel · /);
  // a call is spoken: no written reply field or "Versturen"; the keyboard lands on "In de wacht"
  assert.equal(await card.getByRole('textbox', { name: `Antwoord aan ${CLI}` }).count(), 0, 'a reply field on a phone call');
  assert.equal(await card.getByRole('button', { name: 'Versturen' }).count(), 0, 'a send button on a phone call');
  assert.equal(await a1.page.evaluate(() => document.activeElement?.dataset.action), 'hold');
  await until(async () => (await status()).bridged === 1, 'the caller bridged to agent1\'s phone', 30_000);
  const tBridge = await sip.elapsed('c1');
  const talk1 = await heard('agent1', tBridge + 1.0, tBridge + 3.0);
  assert.ok(talk1.ratio['440'] > 0.3, 'the caller does not hear agent1 (440 Hz) after the accept: ' + fmt(talk1));
  await a1.page.screenshot({ path: path.join(ART, 'sipdesk-call.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(a1.page), []);

  // ---- "In de wacht": the card says so, the caller hears music and not agent1
  const hold = card.getByRole('button', { name: `Gesprek met ${CLI} in de wacht zetten` });
  assert.equal(await hold.textContent(), 'In de wacht');
  await hold.click();
  await a1.page.locator(`.card[data-bericht="${id}"][data-held="true"]`).waitFor();
  await card.locator('.heldbar', { hasText: 'In de wacht: de beller hoort wachtmuziek.' }).waitFor();
  await a1.page.locator('#polite', { hasText: `Gesprek met ${CLI} staat in de wacht.` }).waitFor();
  const tHold = await sip.elapsed('c1');
  const held = await heard('on hold', tHold + 0.8, tHold + 3.8);
  assert.ok(held.ratio['440'] < 0.1, 'agent1 is still heard during the hold: ' + fmt(held));
  assert.ok(held.gap < 1.0 && held.samples > 16000, 'silence instead of music on hold: ' + fmt(held));
  await a1.page.screenshot({ path: path.join(ART, 'sipdesk-held.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(a1.page), []);

  // ---- "Hervatten": agent1 again
  const resume = card.getByRole('button', { name: `Gesprek met ${CLI} hervatten` });
  assert.equal(await resume.textContent(), 'Hervatten');
  await resume.click();
  await a1.page.locator(`.card[data-bericht="${id}"][data-held="false"]`).waitFor();
  assert.equal(await card.locator('.heldbar').isHidden(), true);
  const tRes = await sip.elapsed('c1');
  const talk2 = await heard('resumed', tRes + 1.0, tRes + 3.0);
  assert.ok(talk2.ratio['440'] > 0.3, 'the caller does not hear agent1 again after the resume: ' + fmt(talk2));

  // ---- "Doorverbinden" to agent2 (a colleague, signed in and ready)
  await card.locator('details.transfer > summary', { hasText: 'Doorverbinden' }).click();
  const to = card.getByLabel('Naar', { exact: true });
  // the list is filled when the form opens, from the colleagues pushed so far: reopen until agent2 is there
  await until(async () => {
    if ((await to.locator('option[value="agent:agent2"]').count()) === 1) return true;
    await card.locator('details.transfer > summary').click();
    await card.locator('details.transfer > summary').click();
    return false;
  }, 'agent2 among the transfer targets');
  assert.match(await to.locator('option[value="agent:agent2"]').textContent(), /^Mohammed El Amrani \(Beschikbaar\)$/);
  await to.selectOption('agent:agent2');
  const tTr = await sip.elapsed('c1');
  await card.locator('.transfer-form button[type=submit]', { hasText: 'Doorverbinden' }).click();
  await card.waitFor({ state: 'detached' });
  await a1.page.locator('#polite', { hasText: `Gesprek met ${CLI} is doorverbonden.` }).waitFor();
  // agent2's desk: the offer of the same call, with the number and the queue
  const offer2 = a2.page.locator(`.offer[data-bericht="${id}"]`);
  await offer2.waitFor();
  assert.equal(await offer2.locator('h3').textContent(), 'Telefoon via tel voor Algemene vragen');
  await offer2.getByText(`Klant: ${CLI}`, { exact: true }).waitFor();
  // meanwhile agent1's phone is hung up: the caller waits with music, not with agent1
  const between = await heard('transferring', tTr + 1.2, tTr + 2.7);
  assert.ok(between.ratio['440'] < 0.2, 'agent1 still heard after the transfer: ' + fmt(between));
  // agent1 is free again: nothing of this call left with agent1 (desk and server)
  await a1.page.locator('#my-state[data-state="ready"]').waitFor();
  await until(async () => { const a = await agent('agent1'); return a.state === 'ready' && !a.work.some((w) => w.bericht === id); },
    'agent1 free after the transfer');

  await offer2.getByRole('button', { name: `Telefoon van ${CLI} aannemen` }).click();
  const card2 = a2.page.locator(`.card[data-bericht="${id}"]`);
  await card2.waitFor();
  assert.equal(await card2.locator('h3').textContent(), `Telefoon — ${CLI}`);
  await until(async () => (await status()).bridged === 2, 'the caller bridged to agent2\'s phone', 30_000);
  const tB2 = await sip.elapsed('c1');
  const talk3 = await heard('agent2', tB2 + 1.0, tB2 + 3.0);
  assert.ok(talk3.ratio['660'] > 0.3, 'the caller does not hear agent2 (660 Hz) after the transfer: ' + fmt(talk3));
  assert.ok(talk3.ratio['440'] < 0.1, 'agent1 still heard after the transfer: ' + fmt(talk3));
  const through = await sip.audio('c1', tTr, tB2 + 3.0, [440, 660]);
  assert.ok(through.gap < 1.0, 'silence during the transfer: ' + fmt(through));
  await a2.page.screenshot({ path: path.join(ART, 'sipdesk-transferred.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(a2.page), []);
  assert.equal((await bericht(id)).agent, 'agent2');

  // ---- agent2 completes: acdm hangs up the caller, agent2 is in wrap-up
  await card2.locator('[data-action=complete]').click();
  await a2.page.getByRole('dialog').getByRole('checkbox').first().check();
  await a2.page.getByRole('dialog').getByRole('button', { name: 'Afronden' }).click();
  await card2.locator('.wrapbar', { hasText: /^Nawerk: nog \d+ s$/ }).waitFor();
  const rc = await sip.wait('c1', 60);
  assert.equal(rc, 0, 'the caller got no BYE after the complete:\n' + await sip.log('c1'));

  // ---- the event log: hold, resume, transfer (agent1 -> agent2), in that order
  const evs = await until(async () => {
    const e = (await bericht(id)).events;
    return e.some((x) => x.type === 'wrapup_start') && e;
  }, 'the wrap-up in the event log');
  const types = evs.map((e) => e.type).filter((x) => ['accepted', 'hold', 'resume', 'transferred', 'wrapup_start'].includes(x));
  assert.deepEqual(types, ['accepted', 'hold', 'resume', 'transferred', 'accepted', 'wrapup_start'], JSON.stringify(evs));
  const st = await status();
  assert.equal(st.bridged, 2, JSON.stringify(st));
  assert.equal(st.answered, 1, JSON.stringify(st));

  assert.deepEqual(a1.errors, []);
  assert.deepEqual(a2.errors, []);
  await a1.ctx.close();
  await a2.ctx.close();
});

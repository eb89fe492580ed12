// hold.test.mjs -- hold and resume a call from the agent desk (R18) in headless Chromium against
// the real acdmd: a voice bericht made through the REST API is offered, accepted on the desk,
// put on hold with "In de wacht" (the card says so, the server has it held), then taken back with
// "Hervatten" (the event log has the hold and the resume); the supervisor dashboard shows the
// agent's call on hold meanwhile; a chat has no hold button; axe clean.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test hold.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const { Daemon, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

const T = 20_000;

// agent1 takes calls as well (the shared config has no voice capacity)
const cfg = uiConfig();
cfg.agents[0].capacity = { voice: 1, chat: 3, email: 5 };
cfg.agents[0].voice_blocks = false;   // the chat below may come while the call is in progress
const d = await new Daemon(cfg).start();
const agentToken = d.token('agent', 'agent1');
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  await d.stop();
});

const workOf = async (id) => (await d.request('GET', '/api/v1/agents')).json.agents
  .find((x) => x.id === 'agent1').work.find((w) => w.bericht === id);
const bericht = async (id) => (await d.request('GET', '/api/v1/berichten/' + id)).json;

test('agent desk: put an accepted call on hold and resume it; a chat has no hold', { timeout: 120_000 }, async () => {
  const { ctx, page, errors } = await openSignedIn(browser, d.base,
    { token: agentToken, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html', T);
  await page.locator('#my-state[data-state]').waitFor();
  await page.locator('#btn-login').click();
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  await page.locator('#my-state[data-state="ready"]').waitFor();

  // a call through the REST API (as tests/integration/test_hold.py makes one)
  const r = await d.postBericht({ queue: 'algemeen', kind: 'voice', from: '+31612345678' }, 'ui-hold-1');
  assert.equal(r.status, 201, r.text);
  const id = r.json.id;
  const offer = page.locator(`.offer[data-bericht="${id}"]`);
  await offer.waitFor();
  await offer.locator('[data-action=accept]').click();
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.waitFor();

  // hold
  const hold = card.getByRole('button', { name: 'Gesprek met +31612345678 in de wacht zetten' });
  await hold.waitFor();
  assert.equal(await hold.textContent(), 'In de wacht');
  assert.equal(await hold.getAttribute('aria-pressed'), 'false');
  await hold.click();
  await page.locator(`.card[data-bericht="${id}"][data-held="true"]`).waitFor();
  await card.locator('.heldbar', { hasText: 'In de wacht' }).waitFor();
  const resume = card.getByRole('button', { name: 'Gesprek met +31612345678 hervatten' });
  assert.equal(await resume.textContent(), 'Hervatten');
  assert.equal(await resume.getAttribute('aria-pressed'), 'true');
  await until(async () => (await workOf(id))?.held === true, 'the call held on the server');
  await page.locator('#polite', { hasText: 'staat in de wacht' }).waitFor();
  await page.screenshot({ path: path.join(ART, 'agent-hold.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(page), []);

  // the supervisor sees the agent's call on hold (live stats, at most a tick late)
  const sup = await openSignedIn(browser, d.base,
    { token: d.token('supervisor', 'petra'), role: 'supervisor', name: 'petra', agent: null }, 'supervisor.html', T);
  const supWork = sup.page.locator('#agents tr[data-key="agent1"] td[data-held]');
  await sup.page.locator('#agents tr[data-key="agent1"] td[data-held="1"]').waitFor();
  assert.match(await supWork.textContent(), /1 in de wacht/);

  // a page reload while held: the hello's work item says held, the card comes back held
  await page.reload();
  await page.locator(`.card[data-bericht="${id}"][data-held="true"]`).waitFor();

  // resume
  await card.getByRole('button', { name: 'Gesprek met +31612345678 hervatten' }).click();
  await page.locator(`.card[data-bericht="${id}"][data-held="false"]`).waitFor();
  assert.equal(await card.locator('.heldbar').isHidden(), true);
  await card.getByRole('button', { name: 'Gesprek met +31612345678 in de wacht zetten' }).waitFor();
  await until(async () => (await workOf(id))?.held === false, 'the call resumed on the server');
  await sup.page.locator('#agents tr[data-key="agent1"] td[data-held="0"]').waitFor();
  assert.doesNotMatch(await supWork.textContent(), /wacht/);
  assert.deepEqual(sup.errors, []);
  await sup.ctx.close();
  const evs = await until(async () => {
    const e = (await bericht(id)).events.filter((x) => x.type === 'hold' || x.type === 'resume');
    return e.length === 2 && e;
  }, 'hold and resume in the event log');
  assert.deepEqual(evs.map((e) => e.type), ['hold', 'resume']);

  // a chat is not a call: no hold button on its card
  const c = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: 'jan@example.nl', text: 'Hallo' }, 'ui-hold-2');
  assert.equal(c.status, 201, c.text);
  const chatOffer = page.locator(`.offer[data-bericht="${c.json.id}"]`);
  await chatOffer.waitFor();
  await chatOffer.locator('[data-action=accept]').click();
  const chatCard = page.locator(`.card[data-bericht="${c.json.id}"]`);
  await chatCard.locator('[data-action=complete]').waitFor();
  assert.equal(await chatCard.locator('[data-action=hold]').isHidden(), true);

  assert.deepEqual(errors, []);
  await ctx.close();
});

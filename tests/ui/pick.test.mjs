// pick.test.mjs -- the agent desk's "Wachtrij" panel (R40) in headless Chromium against the real
// acdmd: an agent who is NOT ready sees two waiting berichten of a joined queue, picks the second
// one with the keyboard and gets it as a conversation while the first stays waiting; the desk with
// the panel has no serious/critical axe-core violations; once ready, the remaining one comes as an
// offer that shows its subject.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test pick.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const { Daemon, ART, uiConfig, sleep, until, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

const T = 20_000;

const d = await new Daemon(uiConfig()).start();
const agentToken = d.token('agent', 'agent1');
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  await d.stop();
});

const agent1 = async () => (await d.request('GET', '/api/v1/agents')).json.agents.find((x) => x.id === 'agent1');
const bericht = async (id) => (await d.request('GET', '/api/v1/berichten/' + id)).json;

test('agent desk: pick the second waiting bericht from the queue panel while not ready', { timeout: 120_000 }, async () => {
  const { ctx, page, errors } = await openSignedIn(browser, d.base,
    { token: agentToken, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html', T);

  // logged out: the panel says to log in first
  await page.locator('#my-state[data-state]').waitFor();
  await page.locator('#pick', { hasText: 'Meld u aan bij ACDM' }).waitFor();

  // log in (not ready) and take work from Vergunningen only
  await page.locator('#btn-login').click();
  await page.locator('#my-state', { hasText: 'Niet beschikbaar' }).waitFor();
  for (const cb of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await cb.getAttribute('id')}"]`).textContent();
    await cb.setChecked(label === 'Vergunningen');
  }
  await until(async () => {
    const a = await agent1();
    return a.state === 'not_ready' && a.queues.every((q) => q.joined === (q.queue === 'vergunningen'));
  }, 'agent1 not ready, in vergunningen only');

  // two chats wait in Vergunningen (nobody is ready)
  const post = async (from, subject) => {
    const r = await d.postBericht({ queue: 'vergunningen', kind: 'chat', from, subject, text: 'Goedemiddag' });
    assert.ok(r.status >= 200 && r.status < 300, JSON.stringify(r));
    return r.json.id;
  };
  const first = await post('+31611111111', 'Parkeervergunning aanvragen');
  await sleep(20);
  const second = await post('+31622222222', 'Dakkapel bouwen');

  const panel = page.getByRole('region', { name: 'Wachtrij' });
  const rows = panel.locator('tbody tr');
  await until(async () => (await rows.count()) === 2, 'two rows in the queue panel');
  assert.equal(await rows.nth(0).getAttribute('data-bericht'), first);
  assert.equal(await rows.nth(1).getAttribute('data-bericht'), second);
  await panel.getByRole('heading', { name: 'Vergunningen (2 wachtend)' }).waitFor();
  await panel.getByRole('cell', { name: 'Dakkapel bouwen', exact: true }).waitFor();
  const pickBtn = panel.getByRole('button', { name: 'Chat van +31622222222 pakken: Dakkapel bouwen' });
  await pickBtn.waitFor();

  const violations = await seriousAxe(page);
  await page.screenshot({ path: path.join(ART, 'agent-pick-panel.png'), fullPage: true });
  assert.deepEqual(violations, [], 'axe: serious/critical violations on the desk with the queue panel');

  // keyboard only: focus the second one's "Pakken" and press Enter
  await pickBtn.focus();
  await page.keyboard.press('Enter');
  const card = page.locator(`.card[data-bericht="${second}"]`);
  await card.waitFor();
  // like an accepted offer: the reply box has the focus, no offer card is left
  await until(() => page.evaluate((id) => document.activeElement && document.activeElement.id === 'reply-' + id,
    second.replace(/[^\w-]/g, '_')), 'focus in the picked conversation\'s reply box');
  assert.equal(await page.locator('.offer').count(), 0);
  await until(async () => (await rows.count()) === 1 && (await rows.nth(0).getAttribute('data-bericht')) === first,
    'only the first one left in the panel');
  await panel.getByRole('heading', { name: 'Vergunningen (1 wachtend)' }).waitFor();
  const b2 = await bericht(second);
  assert.equal(b2.state, 'active');
  assert.equal(b2.agent, 'agent1');
  assert.equal((await bericht(first)).state, 'queued');
  assert.equal((await agent1()).state, 'not_ready');
  await card.getByText('Onderwerp: Dakkapel bouwen').waitFor();
  await page.screenshot({ path: path.join(ART, 'agent-pick-done.png'), fullPage: true });

  // ready: the remaining one is offered, with its subject on the offer
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  const offer = page.locator(`.offer[data-bericht="${first}"]`);
  await offer.waitFor();
  await offer.getByText('Onderwerp: Parkeervergunning aanvragen').waitFor();
  await until(async () => (await rows.count()) === 0, 'the panel empty once the last one is offered');
  await panel.getByText('Niemand wacht.').waitFor();
  await page.screenshot({ path: path.join(ART, 'agent-pick-offer.png'), fullPage: true });

  // English
  await page.locator('#lang').click();
  await page.getByRole('region', { name: 'Queue' }).getByText('Nobody is waiting.').waitFor();
  await page.locator('#lang').click();

  await page.getByRole('button', { name: 'Afmelden uit ACDM', exact: true }).click();
  await page.locator('#my-state', { hasText: 'Afgemeld' }).waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});

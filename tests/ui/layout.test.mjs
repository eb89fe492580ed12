// layout.test.mjs -- the desk and the wallboard on the screens they are used on (issue 14,
// defect 5), in headless Chromium against the real acdmd:
//  - the agent desk at 1366x768 with long customer ids in "Deze sessie" and on the cards has no
//    horizontal overflow (document scrollWidth <= clientWidth, every list item fits);
//  - the wallboard at 1920x1080: each tile's title fits its tile, the tiles use the screen
//    (together they span it and fit without scrolling, big figures of at least 96 px), a
//    service level under its norm is flagged as on the dashboard, and the wallboard and the
//    dashboard count the same agents as available (one definition: ready, not in a
//    conversation, not in wrap-up).
// Run: tests/run-ui.sh --test-name-pattern=layout   (or: cd tests/ui && node --test layout.test.mjs)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, until, sleep, seriousAxe, openSignedIn, launchBrowser } = require('./acdm.js');

const cfg = uiConfig();
// a norm of one second: a chat accepted after a longer wait is answered outside it
cfg.queues.push({ name: 'norm', title: 'Klantcontactcentrum eerste lijn, algemene vragen en meldingen openbare ruimte',
  strategy: 'linear', wrapup_s: 60, offer_timeout_s: 60, sl_target_pct: 80, sl_seconds: 1,
  closed_text: { default: 'Gesloten.' } });
cfg.agents[0].queues.push('norm');
const d = await new Daemon(cfg).start();
const tokens = { agent1: d.token('agent', 'agent1'), sup: d.token('supervisor', 'petra') };
const browser = await launchBrowser();
after(async () => { await browser.close(); await d.stop(); });

const LONG = [
  'web:5f0c1e9a7b3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e',
  'heel.lange.naam.van.een.inwoner.met.een.dubbele.achternaam@gemeente-voorbeeldstad-aan-de-rijn.example.nl',
];

async function deskReady(page, queueTitle) {
  await page.locator('#my-state[data-state]').waitFor();
  if (await page.locator('#btn-login').isVisible()) await page.locator('#btn-login').click();
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  await page.locator('#my-state[data-state="ready"]').waitFor();
  for (const cb of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await cb.getAttribute('id')}"]`).textContent();
    await cb.setChecked(label === queueTitle);
  }
}

/** Elements (by selector) whose content is wider than their box, and the page's own overflow. */
async function overflow(page, selector) {
  return page.evaluate((sel) => ({
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    items: [...document.querySelectorAll(sel)].filter((e) => e.scrollWidth > e.clientWidth + 1)
      .map((e) => `${e.tagName}.${e.className} ${e.scrollWidth}>${e.clientWidth}: ${e.textContent.slice(0, 60)}`),
  }), selector);
}

test('layout: the agent desk at 1366x768 with long ids has no horizontal overflow', { timeout: 90_000 }, async () => {
  const { ctx, page, errors } = await openSignedIn(browser, d.base,
    { token: tokens.agent1, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html');
  await page.setViewportSize({ width: 1366, height: 768 });
  await deskReady(page, 'Algemene vragen');
  for (const [i, from] of LONG.entries()) {
    const r = await d.postBericht({ queue: 'algemeen', kind: i ? 'email' : 'chat', from, text: 'Een vraag met een lang adres',
      subject: i ? 'Aanvraag_parkeervergunning_bewoners_centrum_zone_A_2026_referentie_0000123456789' : undefined }, `layout-${i}`);
    assert.equal(r.status, 201, r.text);
    await page.locator(`.offer[data-bericht="${r.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
    await page.locator(`.card[data-bericht="${r.json.id}"]`).waitFor();
  }
  await page.locator('#session-lists').getByText('Ontvangen (2)').waitFor();
  const o = await overflow(page, '#session-lists li, .card, .card h2, .card h3, .side section');
  await page.screenshot({ path: path.join(ART, 'layout-desk-1366.png'), fullPage: true });
  assert.ok(o.page[0] <= o.page[1], `the desk scrolls sideways: scrollWidth ${o.page[0]} > clientWidth ${o.page[1]}`);
  assert.deepEqual(o.items, []);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('layout: the wallboard at 1920x1080 uses the screen; titles fit; a service level under its norm is flagged; available agents as on the dashboard', { timeout: 120_000 }, async (t) => {
  // a chat that waits longer than the one-second norm, then is answered: service level 0 %
  const r = await d.postBericht({ queue: 'norm', kind: 'chat', from: 'web:norm1', text: 'Te laat' }, 'layout-norm');
  assert.equal(r.status, 201);
  await sleep(1500);   // the bericht waits past the queue's 1 s norm before an agent is there
  const desk = await openSignedIn(browser, d.base,
    { token: tokens.agent1, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html');
  await deskReady(desk.page, cfg.queues.find((q) => q.name === 'norm').title);
  await desk.page.locator(`.offer[data-bericht="${r.json.id}"]`).getByRole('button', { name: /aannemen/ }).click();
  await desk.page.locator(`.card[data-bericht="${r.json.id}"]`).waitFor();

  // the dashboard: the queue's service level flagged, agent1 ready but busy
  const sup = await openSignedIn(browser, d.base, { token: tokens.sup, role: 'supervisor', name: 'petra', agent: null }, 'supervisor.html');
  const qrow = sup.page.locator('#queues tr[data-key="norm"]');
  await qrow.locator('td.sl .error', { hasText: '0%' }).waitFor();
  await sup.page.locator('#agents tr[data-key="agent1"] td.state', { hasText: 'Bezet' }).waitFor();
  const dashAgents = async () => {
    const rows = await sup.page.locator('#agents tbody tr td.state').evaluateAll((tds) => tds.map((td) => td.className));
    const n = (s) => String(rows.filter((c) => c.split(' ').includes('state-' + s)).length);
    return { ready: n('ready'), busy: n('busy'), wrapup: n('wrapup'), not_ready: n('not_ready'), logged_out: n('logged_out') };
  };
  const dq = (await qrow.evaluate((tr) => tr.cells[9].textContent)).split(' / ');   // logged_in / available / busy / wrapup / not_ready

  const wb = await openSignedIn(browser, d.base, { token: tokens.sup, role: 'supervisor', name: 'petra', agent: null },
    'wallboard.html?tiles=q:norm,q:algemeen,q:terugbellen,agents');
  await wb.page.setViewportSize({ width: 1920, height: 1080 });
  const tile = wb.page.locator('.tile[data-tile="q:norm"]');
  await tile.waitFor();
  // the norm is flagged in words and colour, as on the dashboard
  await tile.locator('.sl-below', { hasText: '0%' }).waitFor();
  await tile.locator('.sl-flag', { hasText: 'onder de norm' }).waitFor();   // beside the figure (the alarm list words it too)
  assert.equal(await wb.page.locator('.tile[data-tile="q:algemeen"] .sl-below').count(), 0, 'no flag without answered calls');
  // who is available: the same count on both screens
  const wbQueueReady = await tile.locator('[data-figure=ready]').textContent();
  assert.equal(wbQueueReady, dq[1], `queue norm: wallboard ${wbQueueReady} available, dashboard ${dq[1]}`);
  assert.equal(dq[1], '0');
  assert.equal(dq[2], '1');
  const agentsTile = wb.page.locator('.tile[data-tile="agents"]');
  const wbAgents = {};
  for (const s of ['ready', 'busy', 'wrapup', 'not_ready', 'logged_out'])
    wbAgents[s] = await agentsTile.locator(`[data-figure="${s}"]`).textContent();
  assert.deepEqual(wbAgents, await dashAgents());
  assert.equal(wbAgents.busy, '1');

  // the tiles use the screen: titles fit, big figures, all tiles visible together
  const geo = await wb.page.evaluate(() => {
    const tiles = [...document.querySelectorAll('.tile')].map((e) => e.getBoundingClientRect());
    const titles = [...document.querySelectorAll('.tile h2')].map((h) => {
      const r = h.getBoundingClientRect(), p = h.closest('.tile').getBoundingClientRect();
      return { sw: h.scrollWidth, cw: h.clientWidth, inside: r.left >= p.left && r.right <= p.right + 0.5 && r.bottom <= p.bottom + 0.5 };
    });
    const big = Math.min(...[...document.querySelectorAll('.tile .big')].map((e) => parseFloat(getComputedStyle(e).fontSize)));
    return { tiles, titles, big, vw: innerWidth, vh: innerHeight, sw: document.documentElement.scrollWidth,
      sh: document.documentElement.scrollHeight, cw: document.documentElement.clientWidth, ch: document.documentElement.clientHeight };
  });
  await wb.page.screenshot({ path: path.join(ART, 'layout-wallboard-1920.png') });
  t.diagnostic(JSON.stringify({ big: geo.big, tiles: geo.tiles.map((r) => [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)]) }));
  for (const [i, x] of geo.titles.entries()) {
    assert.ok(x.sw <= x.cw + 1, `tile ${i}: title ${x.sw} px wide in ${x.cw} px`);
    assert.ok(x.inside, `tile ${i}: title inside its tile`);
  }
  assert.ok(geo.sw <= geo.cw && geo.sh <= geo.ch, `no scrolling: ${geo.sw}x${geo.sh} in ${geo.cw}x${geo.ch}`);
  const left = Math.min(...geo.tiles.map((r) => r.left)), right = Math.max(...geo.tiles.map((r) => r.right));
  const top = Math.min(...geo.tiles.map((r) => r.top)), bottom = Math.max(...geo.tiles.map((r) => r.bottom));
  const area = geo.tiles.reduce((a, r) => a + r.width * r.height, 0);
  assert.ok((right - left) / geo.vw >= 0.9, `tiles span ${Math.round((right - left) / geo.vw * 100)} % of the width`);
  assert.ok((bottom - top) / geo.vh >= 0.7, `tiles span ${Math.round((bottom - top) / geo.vh * 100)} % of the height`);
  assert.ok(area / (geo.vw * geo.vh) >= 0.6, `tiles cover ${Math.round(area / (geo.vw * geo.vh) * 100)} % of the screen`);
  assert.ok(geo.big >= 96, `big figures ${geo.big} px`);
  const bad = await seriousAxe(wb.page);
  for (const v of bad) t.diagnostic(v);
  assert.deepEqual(bad, []);
  assert.deepEqual([...wb.errors, ...sup.errors, ...desk.errors], []);
  await wb.ctx.close();
  await sup.ctx.close();
  await desk.ctx.close();
});

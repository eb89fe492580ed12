// device.test.mjs -- the agent desk and the agent's phone, in headless Chromium against the real
// acdmd with the test plugin "testphone" (tests/plugins/device_phone.c) as the voice channel: an
// agent whose phone must register reads why no calls come; once the channel reports the
// registration the note goes and a call is offered (the offer also rings the phone); the phone
// being busy withdraws the offer with the channel's reason; an outbound contact that fails is
// announced with its reason; the agent starts it from the desk's "Nieuw contact" panel. axe clean.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test device.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, until, seriousAxe, openSignedIn, launchBrowser, testPluginDir } = require('./acdm.js');

const T = 20_000;

const plugins = testPluginDir('device_phone');
const cfg = uiConfig();
cfg.plugin_dir = plugins.dir;
cfg.agents[0].capacity = { voice: 1, chat: 3, email: 5, sms: 3 };
cfg.agents[0].phone = 'register';
cfg.channels = [{ name: 'tel1', plugin: 'testphone', queue: 'algemeen', config: {} }];
const d = await new Daemon(cfg).start();
const agentToken = d.token('agent', 'agent1');
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  await d.stop();
  plugins.remove();
});

const phone = (route, q) => d.request('POST', `/channels/tel1/${route}?${new URLSearchParams(q)}`, undefined, { token: null });

test('agent desk: phone not registered, then a call rung on the phone, busy, a failed outbound contact', { timeout: 120_000 }, async () => {
  const { ctx, page, errors } = await openSignedIn(browser, d.base,
    { token: agentToken, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html', T);
  await page.locator('#my-state[data-state]').waitFor();
  // why no calls come
  const note = page.locator('#my-device');
  await note.waitFor();
  assert.equal(await note.textContent(),
    'Telefoon: u krijgt nu niets aangeboden, want uw telefoon is niet aangemeld (geregistreerd).');
  await page.screenshot({ path: path.join(ART, 'agent-phone-unregistered.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(page), []);

  await page.locator('#btn-login').click();
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  await page.locator('#my-state[data-state="ready"]').waitFor();

  // the softphone registers: the note goes
  const reg = await phone('reachable', { agent: 'agent1', kind: 'voice', up: '1' });
  assert.equal(reg.json.rc, 0, reg.text);
  await note.waitFor({ state: 'hidden' });

  // a call: offered on the desk and rung on the phone; the phone is busy
  const call = await phone('call', { from: '+31612345678' });
  assert.equal(call.json.outcome, 'queued', call.text);
  const id = call.json.bericht;
  await page.locator(`.offer[data-bericht="${id}"]`).waitFor();
  await until(async () => (await d.request('GET', '/channels/tel1/log', undefined, { token: null }))
    .json.offers.some((o) => o.bericht === id && o.agent === 'agent1'), 'the offer rung on the phone');
  const busy = await phone('result', { bericht: id, agent: 'agent1', outcome: 'busy', reason: '486 Busy Here' });
  assert.equal(busy.json.rc, 0, busy.text);
  await page.locator(`.offer[data-bericht="${id}"]`).waitFor({ state: 'detached' });
  await page.locator('#polite', { hasText: 'uw telefoon was in gesprek (486 Busy Here)' }).waitFor();

  // an outbound SMS the channel cannot deliver: the agent reads why
  // from the "Nieuw contact" panel: the channel's kinds (a call has no text and says "Bellen")
  const panel = page.locator('#out-panel');
  await panel.waitFor();
  const channel = page.getByLabel('Kanaal');
  assert.deepEqual(await channel.locator('option').allTextContents(), ['Telefoon (tel1)', 'SMS (tel1)']);
  assert.equal(await page.locator('#out-submit').textContent(), 'Bellen');
  assert.equal(await page.locator('#out-text-row').isHidden(), true);
  await channel.selectOption('tel1|sms');
  assert.equal(await page.locator('#out-submit').textContent(), 'Versturen');
  await page.getByRole('button', { name: 'Versturen' }).click();
  await page.locator('#out-error', { hasText: 'Vul in aan wie' }).waitFor();     // no address yet
  await page.getByLabel('Aan (nummer of adres)').fill('+31687654321');
  await page.getByLabel('Bericht').fill('Uw paspoort ligt klaar');
  await page.getByRole('button', { name: 'Versturen' }).click();
  const orig = await until(async () => (await d.request('GET', '/channels/tel1/log', undefined, { token: null }))
    .json.originates.find((o) => o.to === '+31687654321'), 'the originate');
  assert.equal(orig.kind, 'sms');
  assert.equal(orig.text, 'Uw paspoort ligt klaar');
  assert.equal(orig.agent, 'agent1');
  const out = orig.bericht;
  await page.locator(`.card[data-bericht="${out}"]`).waitFor();
  assert.equal(await page.getByLabel('Aan (nummer of adres)').inputValue(), '');
  assert.deepEqual(await seriousAxe(page), []);
  const failed = await phone('orig_result', { bericht: out, outcome: 'failed', reason: 'nummer onbereikbaar' });
  assert.equal(failed.json.rc, 0, failed.text);
  await page.locator('#polite', { hasText: 'Contact met +31687654321 mislukt: nummer onbereikbaar' }).waitFor();

  // calls that fail: the voice channel's English reason reads Dutch on the desk
  for (const [to, reason, shown] of [
    ['+31687654322', 'the number did not answer in 30 s', 'Contact met +31687654322 mislukt: neemt niet op (na 30 s)'],
    ['+31687654323', 'the number answered 486 Busy Here', 'Contact met +31687654323 mislukt: in gesprek (486 Busy Here)']]) {
    await channel.selectOption('tel1|voice');
    await page.getByLabel('Aan (nummer of adres)').fill(to);
    await page.getByRole('button', { name: 'Bellen' }).click();
    const o = await until(async () => (await d.request('GET', '/channels/tel1/log', undefined, { token: null }))
      .json.originates.find((x) => x.to === to), 'the call ' + to);
    assert.equal(o.kind, 'voice');
    const r = await phone('orig_result', { bericht: o.bericht, outcome: 'failed', reason });
    assert.equal(r.json.rc, 0, r.text);
    await page.locator('#polite', { hasText: shown }).waitFor();
  }

  assert.deepEqual(errors, []);
  await ctx.close();
});

// xfernumber.test.mjs -- the desk's blind transfer of a call to an outside phone number, in
// headless Chromium against the real acdmd with the test plugin "testphone"
// (tests/plugins/device_phone.c, ABI 1.2 transfer_out: a number starting 0900 is refused, any
// other ends the bericht "transferred to <number>" as the SIP channel does once it dials): a chat's
// transfer form has no "Extern nummer"; a call's has it, with a phone number field; an empty or
// malformed number is refused in Dutch on the card without asking the server; the channel's
// refusal is shown on the card; a good number (written with spaces) is announced, the card says
// where the call went and goes to wrap-up; the event log says "transferred to 0201234567". axe clean.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test xfernumber.test.mjs
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
cfg.agents[0].capacity = { voice: 1, chat: 3, email: 5 };
cfg.agents[0].voice_blocks = false;   // the chat stays open while the call comes
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
const transfers = async () => (await d.request('GET', '/channels/tel1/log', undefined, { token: null })).json.transfers;

test('agent desk: transfer a call to an external number; validated in Dutch; a chat has no such choice', { timeout: 120_000 }, async () => {
  const { ctx, page, errors } = await openSignedIn(browser, d.base,
    { token: agentToken, role: 'agent', name: 'Anouk de Vries', agent: 'agent1' }, 'agent.html', T);
  await page.locator('#my-state[data-state]').waitFor();
  await page.locator('#btn-login').click();
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  await page.locator('#my-state[data-state="ready"]').waitFor();

  // a chat: its transfer form offers queues and colleagues only
  const chat = await d.postBericht({ queue: 'algemeen', kind: 'chat', from: '+31687654321', text: 'Hallo?' }, 'ui-xfer-chat');
  assert.equal(chat.status, 201, chat.text);
  await page.locator(`.offer[data-bericht="${chat.json.id}"] [data-action=accept]`).click();
  const chatCard = page.locator(`.card[data-bericht="${chat.json.id}"]`);
  await chatCard.waitFor();
  await chatCard.locator('.transfer summary').click();
  await chatCard.getByLabel('Naar').locator('option').first().waitFor({ state: 'attached' });
  assert.equal(await chatCard.getByLabel('Naar').locator('option', { hasText: 'Extern nummer' }).count(), 0);

  // a call
  const call = await phone('call', { from: '+31612345678' });
  assert.equal(call.json.outcome, 'queued', call.text);
  const id = call.json.bericht;
  await page.locator(`.offer[data-bericht="${id}"] [data-action=accept]`).click();
  const card = page.locator(`.card[data-bericht="${id}"]`);
  await card.waitFor();
  await card.locator('.transfer summary', { hasText: 'Doorverbinden' }).click();
  const num = card.getByLabel('Telefoonnummer');
  assert.equal(await num.isVisible(), false, 'the number field shows before "Extern nummer" is chosen');
  await card.getByLabel('Naar').selectOption({ label: 'Extern nummer' });
  await num.waitFor();
  assert.equal(await num.getAttribute('type'), 'tel');
  const submit = card.locator('.transfer-form button[type=submit]');
  const err = card.locator(':scope > p.error[role=alert]');   // the card's own, not the notes' or consult's

  // empty, then malformed: refused on the card in Dutch, the server not asked
  await submit.click();
  await err.filter({ hasText: 'Vul het telefoonnummer in waarnaar u wilt doorverbinden.' }).waitFor();
  await num.fill('06-12ab');
  await submit.click();
  await err.filter({ hasText: 'Dit is geen geldig telefoonnummer' }).waitFor();
  assert.equal(await num.getAttribute('aria-invalid'), 'true');
  assert.deepEqual(await transfers(), []);

  // the channel refuses the number: its sentence on the card, the call stays
  await num.fill('0900 1234');
  await submit.click();
  await err.filter({ hasText: 'testphone does not dial 09001234' }).waitFor();
  assert.equal((await d.request('GET', '/api/v1/berichten/' + id)).json.state, 'active');
  await page.screenshot({ path: path.join(ART, 'agent-transfer-number-refused.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(page), []);

  // a good number, written as people write it: dialled without the spaces
  await num.fill('020 123 45 67');
  await submit.click();
  await page.locator('#polite', { hasText: 'Gesprek met +31612345678 wordt doorverbonden met 0201234567.' }).waitFor();
  assert.equal(await err.textContent(), '');
  await card.locator('.ok', { hasText: 'Doorverbonden met 0201234567' }).waitFor();
  await page.locator(`.card.wrapup[data-bericht="${id}"]`).waitFor();
  assert.equal(await card.locator('.transfer').isVisible(), false, 'the transfer form still shows');
  assert.deepEqual((await transfers()).map((x) => [x.bericht, x.number]), [[id, '0201234567']]);
  const b = await until(async () => {
    const x = (await d.request('GET', '/api/v1/berichten/' + id)).json;
    return JSON.stringify(x.events || []).includes('transferred to 0201234567') ? x : null;
  }, 'the event log names the number');
  assert.ok(['wrapup', 'done'].includes(b.state), b.state);
  await page.screenshot({ path: path.join(ART, 'agent-transfer-number.png'), fullPage: true });
  assert.deepEqual(await seriousAxe(page), []);

  assert.deepEqual(errors, []);
  await ctx.close();
});

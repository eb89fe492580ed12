// sms.test.mjs -- the agent desk with an SMS conversation (channels/sms, provider kannel) in
// headless Chromium against the real acdmd: a citizen's SMS comes in at the MO route, the agent
// takes it; while typing, the composer shows the encoding and the number of SMS parts and warns
// when one character (an emoji) turns the whole text into UCS-2; the sent reply's delivery
// states (accepted by the gateway, then delivered by the DLR) show on the message, and a
// failure shows its reason. The "gateway" is a small sendsms stand-in that answers like Kannel
// (202 "0: Accepted for delivery"); the Kannel path itself is tested against a real Kannel in
// tests/integration/test_sms_kannel.py.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test sms.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const { Daemon, ART, uiConfig, until, launchBrowser, chatPages } = require('./acdm.js');

const T = 20_000;
const TOKEN = 'ui-mo-token-0123456789';

// the sendsms stand-in: records every request, answers as Kannel does
const got = [];
const gw = http.createServer((req, res) => {
  got.push(new URL(req.url, 'http://x'));
  res.writeHead(202, { 'Content-Type': 'text/plain' });
  res.end('0: Accepted for delivery');
});
await new Promise((resolve) => gw.listen(0, '127.0.0.1', resolve));

const cfg = uiConfig();
const d0 = new Daemon(cfg);
fs.writeFileSync(path.join(d0.dir, 'token'), TOKEN + '\n');
fs.writeFileSync(path.join(d0.dir, 'pw'), 'pw\n');
const conf = { provider: 'kannel', from: '4930555', public_url: 'http://127.0.0.1:1/channels/sms1',
  sendsms_url: `http://127.0.0.1:${gw.address().port}/cgi-bin/sendsms`, username: 'acdm',
  password_file: path.join(d0.dir, 'pw'), token_file: path.join(d0.dir, 'token') };
cfg.channels = [{ name: 'sms1', plugin: 'sms', queue: 'algemeen', config: conf }];
fs.writeFileSync(d0.config, JSON.stringify(cfg, null, 2));
const d = await d0.start();
conf.public_url = `${d.base}/channels/sms1`;           // the dlr-url names the daemon's port
fs.writeFileSync(d.config, JSON.stringify(cfg, null, 2));
assert.ok([200, 204].includes((await d.request('POST', '/api/v1/reload')).status));
const browser = await launchBrowser();
const { agentDesk } = chatPages(d, browser, { timeout: T });   // agent1, ready in algemeen only

after(async () => {
  await browser.close();
  gw.close();
  await d.stop();
});

async function mo(from, text, id) {
  const q = `token=${TOKEN}&from=${encodeURIComponent(from)}&to=4930555&id=${id}&coding=0&charset=UTF-8`;
  const r = await fetch(`${d.base}/channels/sms1/mo?${q}`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: text });
  assert.equal(r.status, 200);
}

test('SMS reply: segment counter, UCS-2 warning, delivery states on the message', { timeout: 120_000 }, async () => {
  const agent = await agentDesk();
  await mo('+31612345678', 'Wanneer wordt het oud papier opgehaald?', '00000000-0000-4000-8000-000000000001');
  const offer = agent.locator('.offer').first();
  await offer.waitFor();
  const bid = await offer.getAttribute('data-bericht');
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = agent.locator(`.card[data-bericht="${bid}"]`);
  await card.locator('.thread').getByText('Wanneer wordt het oud papier opgehaald?').waitFor();
  const info = card.locator('.composer-info');
  const box = card.getByLabel(/Antwoord aan/);

  await box.fill('Elke tweede dinsdag van de maand.');
  await info.getByText('GSM-7 · 33 tekens · 1 sms (max. 160 per sms)').waitFor();
  assert.equal(await info.getAttribute('class'), 'muted composer-info');
  await box.fill('a'.repeat(161));
  await info.getByText('GSM-7 · 161 tekens · 2 sms (max. 153 per sms)').waitFor();
  const text = 'Elke tweede dinsdag van de maand, vanaf 7.30 uur 😀';
  await box.fill(text);
  await info.getByText(/^UCS-2 · 51 tekens · 1 sms \(max\. 70 per sms\) Let op: „😀” zit niet in GSM-7/).waitFor();
  assert.match(await info.getAttribute('class'), /warn/);
  await agent.screenshot({ path: path.join(ART, 'sms-composer.png') });

  await card.getByRole('button', { name: 'Versturen' }).click();
  await until(async () => got.length >= 1, 'the reply at the sendsms stand-in');
  const u = got[0];
  assert.equal(u.searchParams.get('text'), text);
  assert.equal(u.searchParams.get('coding'), '2');
  const msg = card.locator('.msg.out', { hasText: 'vanaf 7.30 uur' });
  await msg.getByText('aangenomen door de provider').waitFor();
  // Kannel's DLR for the part: delivered
  const dlr = u.searchParams.get('dlr-url').replace('%d', '1').replace('%A', '');
  assert.equal((await fetch(dlr)).status, 200);
  await msg.getByText('afgeleverd').waitFor();

  // the citizen opts out; the next reply is refused and the agent reads why
  await mo('+31612345678', 'STOP', '00000000-0000-4000-8000-000000000002');
  await card.locator('.msg.in', { hasText: 'STOP' }).waitFor();
  await box.fill('Dat is genoteerd.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await card.locator('.msg.out', { hasText: 'Dat is genoteerd.' }).getByText(/aflevering mislukt: .*opted out.*START/).waitFor();
  assert.equal(got.length, 1);
  await agent.screenshot({ path: path.join(ART, 'sms-delivery.png') });
  assert.deepEqual(agent.errors, []);
});

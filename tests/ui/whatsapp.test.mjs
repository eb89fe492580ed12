// whatsapp.test.mjs -- the agent desk with WhatsApp conversations (channels/whatsapp) in headless
// Chromium against the real acdmd and a small stand-in of Meta's Graph API (the contract fake
// the integration tests use is tests/integration/fake_graph.py; this one serves just what the
// desk test needs: messages and one image). Signed webhooks (X-Hub-Signature-256) bring a
// citizen's text, an image (fetched in two steps, shown as an attachment) and a reaction; the
// card shows how long the 24-hour window stays open; for a citizen who wrote 25 hours ago the
// window is closed, the template picker opens, checks its parameters and sends the template.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test whatsapp.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const { Daemon, ART, uiConfig, until, seriousAxe, launchBrowser, chatPages } = require('./acdm.js');

const T = 20_000;
const SECRET = 'ui-app-secret';
const ACCESS = 'ui-access-token';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

// the Graph API stand-in
const sent = [];
let n = 0;
const graph = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const json = (status, o) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (req.headers.authorization !== 'Bearer ' + ACCESS) return json(401, { error: { code: 190, message: 'Invalid OAuth access token' } });
    if (req.method === 'POST' && req.url.endsWith('/messages')) {
      const m = JSON.parse(body);
      sent.push(m);
      return json(200, { messaging_product: 'whatsapp', contacts: [{ input: m.to, wa_id: m.to }], messages: [{ id: `wamid.OUT${++n}` }] });
    }
    if (req.method === 'GET' && req.url.startsWith('/v21.0/IMG1')) {
      return json(200, { messaging_product: 'whatsapp', url: `http://127.0.0.1:${graph.address().port}/file/IMG1`, mime_type: 'image/png',
        sha256: crypto.createHash('sha256').update(PNG).digest('hex'), file_size: PNG.length, id: 'IMG1' });
    }
    if (req.method === 'GET' && req.url === '/file/IMG1') { res.writeHead(200, { 'Content-Type': 'image/png' }); return res.end(PNG); }
    return json(400, { error: { code: 100, message: 'unsupported' } });
  });
});
await new Promise((resolve) => graph.listen(0, '127.0.0.1', resolve));

const cfg = uiConfig();
const d0 = new Daemon(cfg);
for (const [f, v] of [['secret', SECRET], ['access', ACCESS], ['verify', 'ui-verify']]) fs.writeFileSync(path.join(d0.dir, f), v + '\n');
cfg.channels = [{ name: 'wa1', plugin: 'whatsapp', queue: 'algemeen', config: {
  phone_number_id: '1234567890', graph_url: `http://127.0.0.1:${graph.address().port}`, api_version: 'v21.0',
  access_token_file: path.join(d0.dir, 'access'), app_secret_file: path.join(d0.dir, 'secret'),
  verify_token_file: path.join(d0.dir, 'verify'), pair_interval_ms: 0,
  templates: [{ name: 'vraag_beantwoord', language: 'nl', params: 1, label: 'Uw vraag is beantwoord' }] } }];
fs.writeFileSync(d0.config, JSON.stringify(cfg, null, 2));
const d = await d0.start();
const browser = await launchBrowser();
const { agentDesk } = chatPages(d, browser, { timeout: T });   // agent1, ready in algemeen only

after(async () => {
  await browser.close();
  graph.close();
  await d.stop();
});

async function webhook(waId, name, messages) {
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: {
    messaging_product: 'whatsapp', metadata: { display_phone_number: '31850000000', phone_number_id: '1234567890' },
    contacts: [{ profile: { name }, wa_id: waId }], messages } }] }] });
  const sig = 'sha256=' + crypto.createHmac('sha256', SECRET).update(body).digest('hex');
  const r = await fetch(`${d.base}/channels/wa1/webhook`, { method: 'POST', body,
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig } });
  assert.equal(r.status, 200);
}

async function take(agent) {
  const offer = agent.locator('.offer').first();
  await offer.waitFor();
  const bid = await offer.getAttribute('data-bericht');
  await offer.getByRole('button', { name: /aannemen/ }).click();
  return agent.locator(`.card[data-bericht="${bid}"]`);
}

test('WhatsApp: image and reaction, window countdown, a template outside the window', { timeout: 150_000 }, async () => {
  const agent = await agentDesk();
  const now = Math.floor(Date.now() / 1000);
  await webhook('31611112222', 'Fatima', [{ from: '31611112222', id: 'wamid.UI1', timestamp: String(now), type: 'text',
    text: { body: 'De lantaarnpaal in mijn straat is kapot.' } }]);
  const card = await take(agent);
  await card.locator('.msg.in', { hasText: 'De lantaarnpaal in mijn straat is kapot.' }).waitFor();
  await card.locator('.composer-info', { hasText: /WhatsApp-venster nog 2[34]:\d\d open/ }).waitFor();
  await card.getByLabel(/Antwoord aan/).fill('Kunt u een foto sturen?');
  await card.getByRole('button', { name: 'Versturen', exact: true }).click();
  await card.locator('.msg.out', { hasText: 'Kunt u een foto sturen?' }).getByText('aangenomen door de provider').waitFor();
  assert.equal(sent[0].text.body, 'Kunt u een foto sturen?');
  await webhook('31611112222', 'Fatima', [
    { from: '31611112222', id: 'wamid.UI2', timestamp: String(now), type: 'image',
      image: { id: 'IMG1', mime_type: 'image/png', sha256: crypto.createHash('sha256').update(PNG).digest('hex'), caption: 'Hier is hij' } },
    { from: '31611112222', id: 'wamid.UI3', timestamp: String(now), type: 'reaction', reaction: { message_id: 'wamid.OUT1', emoji: '👍' } }]);
  await card.locator('.msg.in', { hasText: '[Afbeelding] Hier is hij' }).waitFor();
  await card.locator('.msg.in', { hasText: '[Reactie 👍]' }).waitFor();
  await card.locator('.msg.in .files button', { hasText: /Afbeelding/ }).waitFor();   // the file, fetched and stored
  await agent.screenshot({ path: path.join(ART, 'whatsapp-image-reaction.png') });

  // a citizen who wrote 25 hours ago: the window is closed, the template picker is open
  await webhook('31633334444', 'Jan', [{ from: '31633334444', id: 'wamid.UI4', timestamp: String(now - 25 * 3600),
    type: 'text', text: { body: 'Is mijn vraag al bekeken?' } }]);
  const late = await take(agent);
  await late.locator('.msg.in', { hasText: 'Is mijn vraag al bekeken?' }).waitFor();
  const box = late.locator('details.templates');
  await box.locator('summary', { hasText: 'Sjabloon versturen' }).waitFor();
  await until(async () => (await box.getAttribute('open')) !== null, 'the template picker opened');
  await late.locator('.composer-info.warn', { hasText: 'Het 24-uursvenster is dicht' }).waitFor();
  await box.getByRole('button', { name: 'Sjabloon versturen' }).click();
  await box.getByText('Vul alle parameters in.').waitFor();                        // checked before sending
  await box.getByLabel('Parameter 1').fill('uw melding over de lantaarnpaal');
  await box.getByRole('button', { name: 'Sjabloon versturen' }).click();
  await late.locator('.msg.out', { hasText: '[Uw vraag is beantwoord] uw melding over de lantaarnpaal' })
    .getByText('aangenomen door de provider').waitFor();
  const tpl = sent.find((m) => m.type === 'template');
  assert.equal(tpl.to, '31633334444');
  assert.equal(tpl.template.name, 'vraag_beantwoord');
  assert.deepEqual(tpl.template.components[0].parameters, [{ type: 'text', text: 'uw melding over de lantaarnpaal' }]);
  // free text outside the window is refused with the reason on the message
  await late.getByLabel(/Antwoord aan/).fill('Nog even dit');
  await late.getByRole('button', { name: 'Versturen', exact: true }).click();
  await late.locator('.msg.out', { hasText: 'Nog even dit' }).getByText(/aflevering mislukt: .*24-hour window/).waitFor();
  await agent.screenshot({ path: path.join(ART, 'whatsapp-template.png') });
  assert.deepEqual(await seriousAxe(agent), []);
  assert.deepEqual(agent.errors, []);
});

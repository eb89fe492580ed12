// webchat.test.mjs -- the web chat widget in headless Chromium against the real acdmd: a visitor
// page on another origin embeds the widget with one script tag and chats with an agent who uses
// the agent desk (core/ui/agent.html) in a second browser context; the visitor reloads the page
// mid-chat and the conversation continues; a page on a foreign origin gets no chat; the open
// widget has no serious/critical axe-core violations; the transcript downloads; with the shipped
// web chat settings a message left while the chat is closed reaches an agent.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test webchat.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, REPO, ART, AXE_WCAG, uiConfig, sleep, seriousAxe, launchBrowser, chatPages } = require('./acdm.js');

// two small "websites": one allowed to embed the chat, one not
function site() {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Gemeente Voorbeeld</title></head>
<body><header><h1>Gemeente Voorbeeld</h1></header><main><p>Welkom op onze website.</p></main>
<script src="${srv.daemonBase}/channels/${new URL(req.url, 'http://x').searchParams.get('ch') || 'website'}/widget.js" async></script></body></html>`);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}
const shop = await site();
const evil = await site();
const shopOrigin = `http://127.0.0.1:${shop.address().port}`;

// a small bot speaking the Rasa REST contract: answers the first message, hands off at the second
const botGot = [];
const bot = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const m = JSON.parse(body);
    botGot.push(m);
    const reply = botGot.length === 1 ? [{ recipient_id: m.sender, text: 'Hallo! Ik ben de gemeentebot.' }]
      : [{ recipient_id: m.sender, text: 'Ik verbind u door met een medewerker.' },
         { recipient_id: m.sender, custom: { handoff: true, summary: 'Vraag over de afvalkalender' } }];
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(reply));
  });
});
await new Promise((resolve) => bot.listen(0, '127.0.0.1', resolve));

const shippedWebchat = JSON.parse(fs.readFileSync(path.join(REPO, 'conf', 'acdm.json'), 'utf8'))
  .channels.find((c) => c.name === 'website').config;
const cfg = uiConfig();
cfg.channels = [{ name: 'website', plugin: 'webchat', queue: 'algemeen',
  config: { allowed_origins: [shopOrigin], title: 'Chat met de gemeente' } },
{ name: 'stil', plugin: 'webchat', queue: 'algemeen',
  config: { allowed_origins: [shopOrigin], title: 'Chat met de gemeente', inactivity_s: 5 } },
// the shipped config's web chat settings (conf/acdm.json, instance "website"), on another queue
{ name: 'gesloten', plugin: 'webchat', queue: 'vergunningen',
  config: { ...shippedWebchat, allowed_origins: [shopOrigin] } },
{ name: 'botsite', plugin: 'webchat', queue: 'algemeen',
  config: { allowed_origins: [shopOrigin], title: 'Chat met de gemeente',
    bot: { url: `http://127.0.0.1:${bot.address().port}/webhooks/rest/webhook`, timeout_ms: 3000 } } }];
const d = await new Daemon(cfg).start();
shop.daemonBase = evil.daemonBase = d.base;
const browser = await launchBrowser();
const { newPage, agentDesk, widgetConnected } = chatPages(d, browser, { page: { acceptDownloads: true } });

after(async () => {
  await browser.close();
  shop.close();
  evil.close();
  bot.close();
  await d.stop();
});

test('visitor widget chats with the agent desk; a reload mid-chat keeps the conversation', { timeout: 150_000 }, async () => {
  const agent = await agentDesk();
  const visitor = await newPage();
  await visitor.goto(shopOrigin + '/');
  await visitor.getByRole('button', { name: 'Chat openen' }).click();
  const dialog = visitor.getByRole('dialog', { name: 'Chat met de gemeente' });
  await dialog.waitFor();
  await dialog.getByText('Welkom! Stel hier uw vraag').waitFor();
  const input = dialog.getByLabel('Uw bericht');
  await input.fill('Hoe vraag ik een parkeervergunning aan?');
  await input.press('Enter');
  await dialog.locator('.acdm-wc-from-visitor', { hasText: 'Hoe vraag ik een parkeervergunning aan?' }).waitFor();
  await dialog.getByText(/U bent nummer \d+ in de wachtrij|U bent aan de beurt|Een medewerker is nu bij u/).waitFor();
  await visitor.screenshot({ path: path.join(ART, 'webchat-visitor-waiting.png') });

  // the agent desk gets the offer and takes it
  const offer = agent.locator('.offer').first();
  await offer.waitFor();
  const bid = await offer.getAttribute('data-bericht');
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = agent.locator(`.card[data-bericht="${bid}"]`);
  await card.locator('.thread').getByText('Hoe vraag ik een parkeervergunning aan?').waitFor();
  await dialog.getByText('Een medewerker is nu bij u.').first().waitFor();
  await card.getByLabel(/Antwoord aan/).fill('Dat kan via het formulier op onze website.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await dialog.locator('.acdm-wc-from-agent', { hasText: 'Dat kan via het formulier op onze website.' }).waitFor();
  await agent.screenshot({ path: path.join(ART, 'webchat-agent.png') });
  await visitor.screenshot({ path: path.join(ART, 'webchat-visitor-chat.png') });

  // reload mid-chat: the widget comes back open with the whole conversation, and goes on
  await visitor.reload();
  const dialog2 = visitor.getByRole('dialog', { name: 'Chat met de gemeente' });
  await dialog2.locator('.acdm-wc-from-agent', { hasText: 'Dat kan via het formulier op onze website.' }).waitFor();
  await dialog2.locator('.acdm-wc-from-visitor', { hasText: 'Hoe vraag ik een parkeervergunning aan?' }).waitFor();
  const input2 = dialog2.getByLabel('Uw bericht');
  await input2.fill('Dank u, en wat kost het?');
  await dialog2.getByRole('button', { name: 'Versturen' }).click();
  await card.locator('.thread').getByText('Dank u, en wat kost het?').waitFor();
  await card.getByLabel(/Antwoord aan/).fill('Ongeveer 80 euro per jaar.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await dialog2.locator('.acdm-wc-from-agent', { hasText: 'Ongeveer 80 euro per jaar.' }).waitFor();

  // the visitor downloads the transcript
  const [download] = await Promise.all([visitor.waitForEvent('download'),
    dialog2.getByRole('button', { name: 'Gesprek downloaden' }).click()]);
  const file = path.join(ART, 'webchat-transcript.txt');
  await download.saveAs(file);
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /U: Hoe vraag ik een parkeervergunning aan\?/);
  assert.match(text, /Medewerker: Ongeveer 80 euro per jaar\./);

  // accessibility of the open widget with a conversation in it
  assert.deepEqual(await seriousAxe(visitor, AXE_WCAG), []);

  // the visitor ends the chat
  await dialog2.getByRole('button', { name: 'Chat beëindigen' }).click();
  await dialog2.getByText('U heeft het gesprek beëindigd.').waitFor();
  assert.deepEqual(visitor.errors, []);
  await agent.context().close();
  await visitor.context().close();
});

test('a page on a foreign origin gets no chat', { timeout: 60_000 }, async () => {
  const page = await newPage();
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  await page.getByRole('button', { name: 'Chat openen' }).click();
  await page.getByText('De verbinding is verbroken. Opnieuw verbinden…').waitFor();
  assert.equal(await page.locator('.acdm-wc-msg').count(), 0);
  await page.context().close();
});

test('bot first: the bot answers, hands off with a summary; the agent desk shows summary and transcript; the bot hears no more', { timeout: 150_000 }, async () => {
  const agent = await agentDesk();
  const visitor = await newPage();
  await visitor.goto(shopOrigin + '/?ch=botsite');
  await visitor.getByRole('button', { name: 'Chat openen' }).click();
  const dialog = visitor.getByRole('dialog', { name: 'Chat met de gemeente' });
  await widgetConnected(visitor);
  const input = dialog.getByLabel('Uw bericht');
  await input.fill('Hoi');
  await input.press('Enter');
  await dialog.locator('.acdm-wc-from-bot', { hasText: 'Hallo! Ik ben de gemeentebot.' }).waitFor();
  await input.fill('Wanneer wordt het papier opgehaald? Ik wil een mens spreken.');
  await input.press('Enter');
  await dialog.locator('.acdm-wc-from-bot', { hasText: 'Ik verbind u door met een medewerker.' }).waitFor();
  await dialog.getByText('Een ogenblik, u wordt doorverbonden met een medewerker.').waitFor();
  const offer = agent.locator('.offer').first();
  await offer.waitFor();
  const bid = await offer.getAttribute('data-bericht');
  await agent.screenshot({ path: path.join(ART, 'webchat-bot-offer.png') });
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = agent.locator(`.card[data-bericht="${bid}"]`);
  // the bot's summary is the bericht's subject (the offer push carries it as bericht.subject too;
  // the desk shows it on the conversation card)
  await card.getByText('Onderwerp: Vraag over de afvalkalender').waitFor();
  // the transcript line by line, by author and in local time (not one bubble of raw lines)
  const botLine = card.locator('.transcript li', { hasText: 'Hallo! Ik ben de gemeentebot.' });
  assert.match(await botLine.innerText(), /^Chatbot · \d\d:\d\d:\d\d /);
  const custLine = card.locator('.transcript li', { hasText: /^Klant · \d\d:\d\d:\d\d Hoi/ });
  await custLine.first().waitFor();
  await dialog.getByText('Een medewerker is nu bij u.').first().waitFor();
  await dialog.getByLabel('Uw bericht').fill('Fijn, dank u.');
  await dialog.getByRole('button', { name: 'Versturen' }).click();
  await card.locator('.thread').getByText('Fijn, dank u.').waitFor();
  await agent.screenshot({ path: path.join(ART, 'webchat-bot-transcript.png') });
  assert.equal(botGot.length, 2, JSON.stringify(botGot));                 // nothing after the handoff
  assert.deepEqual(visitor.errors, []);
  await agent.context().close();
  await visitor.context().close();
});

test('inactivity ends the chat; the conversation stays on screen and a new message starts a new chat', { timeout: 90_000 }, async () => {
  const visitor = await newPage();
  await visitor.goto(shopOrigin + '/?ch=stil');
  await visitor.getByRole('button', { name: 'Chat openen' }).click();
  const dialog = visitor.getByRole('dialog', { name: 'Chat met de gemeente' });
  await widgetConnected(visitor);
  const input = dialog.getByLabel('Uw bericht');
  await input.fill('Is er iemand?');
  await input.press('Enter');
  await dialog.getByText('Het gesprek is beëindigd omdat het een tijd stil was.').waitFor();
  await sleep(1500);                                   // the server closed the session: no reconnect loop
  await dialog.locator('.acdm-wc-from-visitor', { hasText: 'Is er iemand?' }).waitFor();
  assert.equal(await dialog.getByText(/Opnieuw verbinden/).count(), 0);
  await input.fill('Toch nog een vraag');
  await input.press('Enter');
  await dialog.locator('.acdm-wc-from-visitor', { hasText: 'Toch nog een vraag' }).waitFor();
  assert.deepEqual(visitor.errors, []);
  await visitor.context().close();
});

test('chat closed: the visitor leaves a message, is thanked, and an agent of the leave_message_queue gets it', { timeout: 120_000 }, async () => {
  assert.equal((await d.request('POST', '/api/v1/queues/vergunningen/close')).status, 200);
  try {
    const agent = await agentDesk({ id: 'agent2', queue: 'email' });
    const visitor = await newPage();
    await visitor.goto(shopOrigin + '/?ch=gesloten');
    await visitor.getByRole('button', { name: 'Chat openen' }).click();
    const dialog = visitor.getByRole('dialog', { name: shippedWebchat.title });
    // closed: the form is there as the chat opens, before anything is typed (widget.test.mjs)
    await dialog.getByText('Laat een bericht achter, dan nemen wij contact met u op.').waitFor();
    await dialog.getByLabel('E-mailadres').fill('piet@example.nl');
    await dialog.locator('#acdm-wc-leave-text').fill('Graag een reactie over het verlengen van mijn vergunning.');
    await dialog.getByRole('button', { name: 'Bericht versturen' }).click();
    await dialog.getByText('Bedankt voor uw bericht. Wij nemen zo snel mogelijk contact met u op.').waitFor();
    await visitor.screenshot({ path: path.join(ART, 'webchat-left-message.png') });
    // the agent desk is offered it in the e-mail queue, with the visitor's text
    const offer = agent.locator('.offer').first();
    await offer.waitFor();
    const bid = await offer.getAttribute('data-bericht');
    await offer.getByRole('button', { name: /aannemen/ }).click();
    const card = agent.locator(`.card[data-bericht="${bid}"]`);
    await card.locator('.thread').getByText('Graag een reactie over het verlengen van mijn vergunning.').waitFor();
    const b = (await d.request('GET', `/api/v1/berichten/${bid}`)).json;
    assert.equal(b.queue, 'email');
    assert.equal(b.from, 'piet@example.nl');
    await agent.screenshot({ path: path.join(ART, 'webchat-left-message-agent.png') });
    assert.deepEqual(visitor.errors, []);
    await agent.context().close();
    await visitor.context().close();
  } finally {
    await d.request('POST', '/api/v1/queues/vergunningen/open');
  }
});

// demo.test.mjs -- what someone following the README meets (issue 14, defect 9): the demo chat
// page of the shipped web chat instance works on whatever port acdmd listens on (its
// allowed_origins "{listen}"), while a page on another origin still gets no chat; the demo page
// has a Dutch title; every page has a favicon; the sign-in page says "1 bericht", not
// "1 berichten"; the README shows only `bin/acdmctl reload` and how to run on another port.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, REPO, uiConfig, until, seriousAxe, launchBrowser } = require('./acdm.js');

const shipped = JSON.parse(fs.readFileSync(path.join(REPO, 'conf', 'acdm.json'), 'utf8'));
const website = shipped.channels.find((c) => c.name === 'website');
const cfg = uiConfig();
cfg.channels = [{ ...website }];   // the shipped instance as is: its origins, texts, queue
const d = await new Daemon(cfg).start();   // on a random port, not 8080
const browser = await launchBrowser();

// a page on another origin that embeds the same widget
const other = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Elders</title></head><body><main><h1>Elders</h1></main>
<script src="${d.base}/channels/website/widget.js" async></script></body></html>`);
});
await new Promise((r) => other.listen(0, '127.0.0.1', r));
after(async () => { await browser.close(); other.close(); await d.stop(); });

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'nl-NL' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

test('README: reload only through acdmctl; another port documented and in the Makefile', () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  assert.doesNotMatch(readme, /pgrep acdmd|pidof acdmd|killall/, 'no command that signals every acdmd on the host');
  assert.match(readme, /bin\/acdmctl reload/);
  assert.match(readme, /make run PORT=\d+/);
  const dry = execFileSync('make', ['-n', '-C', REPO, 'run', 'PORT=8091'], { encoding: 'utf8' });
  assert.match(dry, /acdmd -c conf\/acdm\.json --listen 127\.0\.0\.1:8091/);
});

test('demo chat on another port: the shipped instance\'s demo page chats; a foreign origin does not; Dutch title; favicon', { timeout: 90_000 }, async (t) => {
  assert.notEqual(d.port, 8080);
  const page = await newPage();
  await page.goto(d.base + '/channels/website/demo');
  assert.match(await page.title(), /^Voorbeeldpagina webchat website/);
  assert.doesNotMatch(await page.title(), /web chat|Demo:/);
  const icon = await page.locator('link[rel="icon"]').getAttribute('href');
  const ir = await page.request.get(new URL(icon, page.url()).href);
  assert.equal(ir.status(), 200);
  assert.match(ir.headers()['content-type'], /^image\/svg\+xml/);
  await page.getByRole('button', { name: 'Chat openen' }).click();
  const dialog = page.getByRole('dialog', { name: website.config.title });
  await dialog.waitFor();
  const input = dialog.getByLabel('Uw bericht');
  await input.fill('Werkt de chat ook op deze poort?');
  await input.press('Enter');
  await dialog.getByText(/U bent nummer \d+ in de wachtrij|U bent aan de beurt/).waitFor();
  const live = await until(async () => {
    const r = await d.request('GET', '/api/v1/queues/algemeen/waiting');
    return r.json && (r.json.berichten || []).length === 1 && r.json;
  }, 'the demo chat\'s bericht waiting in algemeen');
  assert.equal(live.berichten.length, 1);
  const bad = await seriousAxe(page);
  for (const v of bad) t.diagnostic(v);
  assert.deepEqual(bad, []);
  await page.context().close();

  // the same widget on a page of another origin is refused at the websocket
  const foreign = await newPage();
  const refused = [];
  foreign.on('websocket', (ws) => ws.on('socketerror', () => refused.push(ws.url())).on('close', () => refused.push(ws.url())));
  await foreign.goto(`http://127.0.0.1:${other.address().port}/`);
  const opened = await foreign.getByRole('button', { name: 'Chat openen' }).isVisible().catch(() => false);
  if (opened) {
    await foreign.getByRole('button', { name: 'Chat openen' }).click();
    await until(() => refused.length > 0, 'the foreign page\'s chat socket refused');
  }
  const waiting = (await d.request('GET', '/api/v1/queues/algemeen/waiting')).json;
  assert.equal(waiting.berichten.length, 1, 'no bericht from the foreign page');
  await foreign.context().close();
});

test('sign-in page: "1 bericht in behandeling", with a favicon, 2 berichten with two', { timeout: 60_000 }, async () => {
  // the demo chat above left one bericht waiting
  const page = await newPage();
  await page.goto(d.base + '/index.html');
  await page.getByText(/draait \(1 bericht in behandeling\)/).waitFor();
  assert.equal(await page.getByText(/1 berichten/).count(), 0);
  assert.equal(await page.locator('link[rel="icon"]').count(), 1);
  await d.postBericht({ queue: 'terugbellen', kind: 'callback', from: '+31201234567', text: 'Bel mij terug' }, 'demo-two');
  await page.reload();
  await page.getByText(/draait \(2 berichten in behandeling\)/).waitFor();
  await page.context().close();
});

// email.test.mjs -- a hostile e-mail in the agent desk, in headless Chromium against the real
// acdmd with the email channel reading a real Dovecot inbox (tests/integration/mailfix.py
// serve): the mail's HTML carries a script, an onerror handler, a javascript: link, a tracking
// pixel and a CSS background on a local "tracker" server, an inline cid: image and a PDF
// attachment. The desk shows the sanitised HTML in a sandboxed frame: nothing executes (no
// dialog, no flag set), nothing remote loads (the tracker sees no request), the inline image
// shows from the stored attachment, the attachment and "show original" are offered; the agent's
// reply is delivered.
// Run: cd tests/ui && CHROMIUM_PATH=/usr/bin/chromium node --test email.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, REPO, ART, uiConfig, until, launchBrowser } = require('./acdm.js');

const T = 30_000;

// the "tracker": any request here is a privacy leak
const hits = [];
const tracker = http.createServer((req, res) => { hits.push(req.url); res.writeHead(200); res.end('x'); });
await new Promise((resolve) => tracker.listen(0, '127.0.0.1', resolve));
const TR = `http://127.0.0.1:${tracker.address().port}`;

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const hostile = [
  'From: Kwaadwillend <boef@example.com>', 'To: kcc@example.nl', 'Subject: Factuur',
  'Message-ID: <hostile1@example.com>', 'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="M"', '',
  '--M', 'Content-Type: multipart/related; boundary="R"', '',
  '--R', 'Content-Type: text/html; charset=utf-8', '',
  '<p>Geachte heer,</p><script>parent.__pwned=1;window.top.__pwned=1;alert("script")</script>',
  `<img src="${TR}/pixel.gif" width="1" height="1">`,
  '<img src="x" onerror="alert(\'onerror\')">',
  '<a href="javascript:alert(\'js\')">klik hier</a>',
  `<p style="background:url(${TR}/bg.png)">stijl</p>`,
  `<link rel="stylesheet" href="${TR}/s.css"><iframe src="${TR}/frame"></iframe>`,
  '<img src="cid:logo@acdm" alt="logo">',
  '--R', 'Content-Type: image/png', 'Content-ID: <logo@acdm>', 'Content-Transfer-Encoding: base64',
  'Content-Disposition: inline; filename="logo.png"', '', PNG,
  '--R--', '',
  '--M', 'Content-Type: application/pdf; name="brief.pdf"', 'Content-Disposition: attachment; filename="brief.pdf"',
  'Content-Transfer-Encoding: base64', '', Buffer.from('%PDF-1.4 test').toString('base64'),
  '--M--', ''].join('\r\n');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'acdm-ui-mail-'));
const mailFile = path.join(tmp, 'hostile.eml');
fs.writeFileSync(mailFile, hostile);
const mailSrv = spawn('python3', [path.join(REPO, 'tests', 'integration', 'mailfix.py'), 'serve', tmp, mailFile],
  { stdio: ['pipe', 'pipe', 'inherit'] });
const info = await new Promise((resolve, reject) => {
  let buf = '';
  mailSrv.stdout.on('data', (c) => {
    buf += c;
    const nl = buf.indexOf('\n');
    if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
  });
  mailSrv.on('exit', (code) => reject(new Error('mailfix exited ' + code)));
});

const cfg = uiConfig();
cfg.channels = [{ name: 'mail1', plugin: 'email', queue: 'algemeen',
  config: { imap: { url: info.imap_url, user: 'kcc@example.nl', password_file: info.password_file },
    smtp: { url: info.smtp_url }, address: 'kcc@example.nl', poll_s: 2 } }];
const d = await new Daemon(cfg).start();
const agentToken = d.token('agent', 'agent1');
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  await d.stop();
  tracker.close();
  mailSrv.stdin.end();
  await new Promise((resolve) => mailSrv.on('exit', resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a hostile mail in the desk: nothing runs, nothing remote loads, inline image and attachment shown', { timeout: 150_000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'nl-NL' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  const dialogs = [];
  page.on('dialog', (dl) => { dialogs.push(dl.message()); dl.dismiss().catch(() => {}); });
  const remote = [];
  page.on('request', (r) => { if (r.url().startsWith(TR)) remote.push(r.url()); });
  await page.goto(d.base + '/index.html');
  await page.locator('#token').fill(agentToken);
  await page.locator('#signin button[type=submit]').click();
  await page.waitForURL(/agent\.html/);
  await page.locator('#my-state[data-state]').waitFor();
  if (await page.locator('#btn-login').isVisible()) await page.locator('#btn-login').click();
  await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
  for (const cb of await page.locator('#queues input[type=checkbox]').all()) {
    const label = await page.locator(`label[for="${await cb.getAttribute('id')}"]`).textContent();
    await cb.setChecked(label === 'Algemene vragen');
  }
  const offer = page.locator('.offer').first();
  await offer.waitFor();
  const bid = await offer.getAttribute('data-bericht');
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = page.locator(`.card[data-bericht="${bid}"]`);
  const frameEl = card.locator('iframe.mail-html');
  await frameEl.waitFor();
  assert.equal(await frameEl.getAttribute('sandbox'), '', 'the frame may run no script');
  // the attachments arrive as the thread's parts message
  await card.getByRole('button', { name: /brief\.pdf/ }).waitFor();
  await card.getByRole('button', { name: 'Origineel tonen' }).waitFor();
  const frame = await (await frameEl.elementHandle()).contentFrame();
  await frame.getByText('Geachte heer').waitFor();
  await until(async () => frame.evaluate(() => {
    const img = document.querySelector('img[data-cid]');
    return img && img.src.startsWith('data:image/png') && img.complete && img.naturalWidth === 1;
  }), 'the inline cid: image shown from the stored attachment');
  const inside = await frame.evaluate(() => ({
    scripts: document.querySelectorAll('script').length,
    handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    jsLinks: [...document.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') || '')).length,
    iframes: document.querySelectorAll('iframe').length,
    images: [...document.images].map((i) => i.src),
  }));
  assert.equal(inside.scripts, 0);
  assert.equal(inside.handlers, 0);
  assert.equal(inside.jsLinks, 0);
  assert.equal(inside.iframes, 0);
  assert.ok(inside.images.every((s) => s.startsWith('data:')), inside.images.join(' '));
  await page.locator('a', { hasText: 'klik hier' }).count();
  await frame.getByText('klik hier').click();            // a link without a safe href does nothing
  await page.waitForTimeout(1000);
  assert.deepEqual(dialogs, [], 'nothing in the mail executed');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(remote, [], 'the desk loaded nothing from the tracker');
  assert.deepEqual(hits, [], 'the tracker saw no request');
  await page.screenshot({ path: path.join(ART, 'email-hostile.png') });
  // the agent answers: delivered over SMTP
  await card.getByLabel(/Antwoord aan/).fill('Wij hebben uw factuur ontvangen.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await card.getByText(/afgeleverd/).waitFor({ timeout: 30_000 });
  await ctx.close();
});

test('the supervisor dashboard shows the mailbox health', { timeout: 60_000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'nl-NL' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  await page.goto(d.base + '/index.html');
  await page.locator('#token').fill(d.token('supervisor', 'petra'));
  await page.locator('#signin button[type=submit]').click();
  await page.waitForURL(/supervisor\.html/);
  const row = page.locator('#mailboxes tbody tr', { hasText: 'mail1 (kcc@example.nl)' });
  await row.waitFor();
  assert.match(await row.textContent(), /ja/);
  await ctx.close();
});

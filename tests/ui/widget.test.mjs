// widget.test.mjs -- the web chat widget as a citizen meets it (issue 14, defect 4 and the
// citizens' expectations), in headless Chromium against the real acdmd, keyboard only:
//  - the launcher says "Chat minimaliseren" while the chat is open (aria-expanded true);
//  - a chat closed by its schedule is shown closed as soon as it opens, before the citizen
//    types, with the opening hours and when it opens again; the leave-message form leaves the
//    conversation its room, keeps the question already typed (also when a supervisor closes
//    the queue while the citizen is typing), never says "contactformulier", and validates in
//    Dutch (no browser bubble);
//  - with nobody logged in to the queue, no waiting estimate: the widget says nobody is
//    available and offers to leave a message (while with an agent logged in, the estimate is
//    shown: the same page with one difference);
//  - on a 390 px phone the launcher and the open chat are on the screen of the demo page;
//  - after the conversation, one satisfaction question (1-5, "Bent u geholpen?"), answered
//    once, stored on the bericht and counted in the reports per queue, channel and agent;
//    "Nieuw gesprek" starts a fresh conversation (a new bericht).
// Run: tests/run-ui.sh --test-name-pattern=widget   (or: cd tests/ui && node --test widget.test.mjs)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, STEP_MS, uiConfig, until, sleep, seriousAxe, openSignedIn, launchBrowser, chatPages } = require('./acdm.js');

// a schedule closed today, open tomorrow 09:00-12:00 and the day after 13:00-17:00
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const DUTCH = { sun: 'zondag', mon: 'maandag', tue: 'dinsdag', wed: 'woensdag', thu: 'donderdag', fri: 'vrijdag', sat: 'zaterdag' };
const today = new Date().getDay();
const tomorrow = DAYS[(today + 1) % 7];
const dayAfter = DAYS[(today + 2) % 7];
const week = Object.fromEntries(DAYS.map((d) => [d, []]));
week[tomorrow] = ['09:00-12:00'];
week[dayAfter] = ['13:00-17:00'];

const cfg = uiConfig();
cfg.schedules = [{ name: 'avond', week, holidays: [] }];
cfg.queues.push(
  { name: 'avond', title: 'Avondchat', strategy: 'linear', schedule: 'avond', wrapup_s: 10, offer_timeout_s: 60,
    closed_text: { default: 'Wij zijn gesloten.', chat: 'De chat is op dit moment gesloten.' } },
  { name: 'stil', title: 'Stille lijn', strategy: 'linear', wrapup_s: 10, offer_timeout_s: 60,
    closed_text: { default: 'Gesloten.', chat: 'De chat is op dit moment gesloten.' } });
cfg.agents[0].queues.push('stil');
const web = (name, queue, extra = {}) => ({ name, plugin: 'webchat', queue,
  config: { allowed_origins: ['{listen}'], title: 'Chat met de gemeente', leave_message_queue: 'email', ...extra } });
cfg.channels = [web('website', 'algemeen'), web('avond', 'avond'), web('stil', 'stil'), web('dicht', 'vergunningen'),
  web('evening', 'avond', { lang: 'en', title: 'Chat with the council' })];
const d = await new Daemon(cfg).start();
const supToken = d.token('supervisor', 'petra');
const browser = await launchBrowser();
after(async () => { await browser.close(); await d.stop(); });
const { newPage, agentDesk, widgetConnected } = chatPages(d, browser, { desk: { viewport: { width: 1366, height: 900 } } });

/** The demo page of instance ch with the chat opened from the keyboard. */
async function openChat(ch, opts) {
  const page = await newPage(opts);
  await page.goto(`${d.base}/channels/${ch}/demo`);
  const launcher = page.locator('#acdm-wc-open');
  await launcher.waitFor();
  assert.equal(await launcher.textContent(), 'Chat openen');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  await launcher.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Chat met de gemeente' });
  await dialog.waitFor();
  await widgetConnected(page);      // what is typed before is not sent
  return { page, dialog, launcher };
}

/** The id of a bericht of web chat instance ch that is waiting or offered (not `not`). */
async function waitingFrom(ch, not) {
  return until(async () => {
    const r = await d.request('GET', '/api/v1/berichten?limit=50');
    const b = ((r.json && r.json.items) || [])
      .find((x) => x.channel === ch && x.id !== not && (x.state === 'queued' || x.state === 'offered'));
    return b && b.id;
  }, `a waiting bericht of ${ch}`);
}

/** The rectangle of a locator is inside the viewport, and the page does not scroll sideways. */
async function onScreen(page, locator, what) {
  const vp = await page.evaluate(() => ({ w: window.innerWidth, h: window.innerHeight,
    sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
  const r = await locator.boundingBox();
  assert.ok(r, `${what} has a box`);
  assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= vp.w + 0.5 && r.y + r.height <= vp.h + 0.5,
    `${what} ${JSON.stringify(r)} within the ${vp.w}x${vp.h} viewport`);
  assert.ok(vp.sw <= vp.cw, `no horizontal scroll (scrollWidth ${vp.sw} > clientWidth ${vp.cw})`);
}

test('widget closed by its schedule: shown closed before typing, with the hours; the form keeps room and validates in Dutch', { timeout: 90_000 }, async (t) => {
  const { page, dialog, launcher } = await openChat('avond');
  assert.equal(await launcher.textContent(), 'Chat minimaliseren');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'true');
  // closed at once, nothing typed: the queue's text, when it opens, the opening hours
  await dialog.getByRole('status').filter({ hasText: 'De chat is op dit moment gesloten.' }).waitFor();
  await dialog.getByText('De chat is weer open morgen om 09:00 uur.').waitFor();
  const hours = dialog.locator('.acdm-wc-hours li');
  const lines = await hours.allTextContents();
  const cap = (s) => s[0].toUpperCase() + s.slice(1);
  assert.ok(lines.includes(`${cap(DUTCH[tomorrow])}: 09:00–12:00`), lines.join(' | '));
  assert.ok(lines.includes(`${cap(DUTCH[dayAfter])}: 13:00–17:00`), lines.join(' | '));
  assert.ok(lines.some((l) => /gesloten$/.test(l)), lines.join(' | '));
  assert.equal(await dialog.locator('.acdm-wc-from-visitor').count(), 0);
  assert.doesNotMatch(await dialog.innerText(), /contactformulier/i);
  // the form is there, and the conversation keeps its room (never a 25 px strip)
  const leave = dialog.locator('#acdm-wc-leave');
  await leave.waitFor();
  assert.ok((await dialog.locator('#acdm-wc-log').evaluate((e) => e.clientHeight)) >= 140);
  assert.equal(await leave.evaluate((f) => f.noValidate), true, 'no browser validation bubble');
  await page.screenshot({ path: path.join(ART, 'widget-closed-schedule.png') });
  const bad = await seriousAxe(page);
  for (const v of bad) t.diagnostic(v);
  assert.deepEqual(bad, []);
  // keyboard only: send the empty form, then a wrong address: our Dutch messages, focus on the field
  await dialog.locator('#acdm-wc-leave-send').focus();
  await page.keyboard.press('Enter');
  await dialog.getByText('Vul uw e-mailadres in, zodat wij u kunnen antwoorden.').waitFor();
  await dialog.getByText('Vul uw bericht in.').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'acdm-wc-leave-email');
  assert.equal(await dialog.locator('#acdm-wc-leave-email').getAttribute('aria-invalid'), 'true');
  await page.keyboard.type('piet@');
  await dialog.locator('#acdm-wc-leave-text').focus();
  await page.keyboard.type('Wanneer kan ik mijn paspoort ophalen?');
  await dialog.locator('#acdm-wc-leave-send').focus();
  await page.keyboard.press('Enter');
  await dialog.getByText('Vul een geldig e-mailadres in, bijvoorbeeld naam@voorbeeld.nl.').waitFor();
  await dialog.locator('#acdm-wc-leave-email').focus();
  await page.keyboard.type('voorbeeld.nl');
  await dialog.locator('#acdm-wc-leave-send').focus();
  await page.keyboard.press('Enter');
  await dialog.getByText('Bedankt voor uw bericht. Wij nemen zo snel mogelijk contact met u op.').waitFor();
  const left = await until(async () => {
    const r = await d.request('GET', '/api/v1/queues/email/waiting');
    return (r.json.berichten || []).find((b) => b.from === 'piet@voorbeeld.nl');
  }, 'the left message waiting in the e-mail queue');
  assert.equal(left.kind, 'email');
  // closing the chat with the launcher: its label follows
  await launcher.focus();
  await page.keyboard.press('Enter');
  assert.equal(await launcher.textContent(), 'Chat openen');
  assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('widget in English (lang "en"): launcher, opening hours and validation in English', { timeout: 60_000 }, async () => {
  const page = await newPage({ locale: 'en-GB' });
  await page.goto(`${d.base}/channels/evening/demo`);
  const launcher = page.locator('#acdm-wc-open');
  await launcher.waitFor();
  await launcher.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Chat with the council' });
  await dialog.getByText('The chat opens again tomorrow at 09:00.').waitFor();
  assert.equal(await launcher.textContent(), 'Minimise chat');
  assert.equal(await page.locator('#acdm-wc-root').getAttribute('lang'), 'en');
  const lines = await dialog.locator('.acdm-wc-hours li').allTextContents();
  const EN = { sun: 'Sunday', mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday' };
  assert.ok(lines.includes(`${EN[tomorrow]}: 09:00–12:00`), lines.join(' | '));
  await dialog.locator('#acdm-wc-leave-send').focus();
  await page.keyboard.press('Enter');
  await dialog.getByText('Enter your e-mail address so that we can answer you.').waitFor();
  assert.doesNotMatch(await dialog.innerText(), /Uw bericht|Versturen|Openingstijden/);
  await page.context().close();
});

test('widget: a supervisor closes the queue while the citizen types: the form appears with the question kept', { timeout: 60_000 }, async () => {
  const { page, dialog } = await openChat('dicht');
  const input = dialog.getByLabel('Uw bericht');
  await input.focus();
  await page.keyboard.type('Mag ik een dakkapel plaatsen zonder vergunning?');
  assert.equal((await d.request('POST', '/api/v1/queues/vergunningen/close')).status, 200);
  try {
    await dialog.locator('#acdm-wc-leave').waitFor();
    assert.equal(await dialog.locator('#acdm-wc-leave-text').inputValue(), 'Mag ik een dakkapel plaatsen zonder vergunning?');
    await dialog.getByRole('status').filter({ hasText: /gesloten/ }).waitFor();
    assert.ok((await dialog.locator('#acdm-wc-log').evaluate((e) => e.clientHeight)) >= 140);
  } finally {
    await d.request('POST', '/api/v1/queues/vergunningen/open');
  }
  // open again: the form goes, the chat is back
  await dialog.locator('#acdm-wc-leave').waitFor({ state: 'hidden' });
  await input.waitFor();
  await page.context().close();
});

test('widget on a 390 px phone: the launcher and the open chat are on the screen of the demo page', { timeout: 60_000 }, async () => {
  const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };
  const page = await newPage(phone);
  await page.goto(`${d.base}/channels/website/demo`);
  const launcher = page.locator('#acdm-wc-open');
  await launcher.waitFor();
  await onScreen(page, launcher, 'the launcher');
  await launcher.focus();
  await page.keyboard.press('Enter');
  const panel = page.locator('#acdm-wc-panel');
  await panel.getByText(/Welkom/).waitFor();
  await onScreen(page, panel, 'the open chat');
  await onScreen(page, launcher, 'the launcher of the open chat');
  await page.screenshot({ path: path.join(ART, 'widget-phone.png') });
  await page.context().close();
});

test('widget: after the conversation one satisfaction question, stored on the bericht and in the reports; "Nieuw gesprek" starts afresh', { timeout: 150_000 }, async () => {
  const agent = await agentDesk();
  const { page, dialog } = await openChat('website');
  const input = dialog.getByLabel('Uw bericht');
  await input.focus();
  await page.keyboard.type('Hoe verleng ik mijn rijbewijs?');
  await page.keyboard.press('Enter');
  const bid = await waitingFrom('website');
  const offer = agent.locator(`.offer[data-bericht="${bid}"]`);
  await offer.waitFor();
  await offer.getByRole('button', { name: /aannemen/ }).click();
  const card = agent.locator(`.card[data-bericht="${bid}"]`);
  await card.getByLabel(/Antwoord aan/).fill('Dat kan online met DigiD.');
  await card.getByRole('button', { name: 'Versturen' }).click();
  await dialog.locator('.acdm-wc-from-agent', { hasText: 'Dat kan online met DigiD.' }).waitFor();
  assert.equal(await dialog.locator('#acdm-wc-csat').isVisible(), false, 'no question during the conversation');
  await card.locator('[data-action=complete]').click();
  await agent.getByRole('dialog').getByLabel('Rijbewijs').check();
  await agent.getByRole('dialog').getByRole('button', { name: 'Afronden' }).click();
  await dialog.getByText('De medewerker heeft het gesprek beëindigd.').waitFor();
  const form = dialog.locator('#acdm-wc-csat');
  await form.getByRole('group', { name: 'Hoe tevreden bent u over dit gesprek?' }).waitFor();
  await form.getByRole('group', { name: 'Bent u geholpen?' }).waitFor();
  await page.screenshot({ path: path.join(ART, 'widget-csat.png') });
  assert.deepEqual(await seriousAxe(page), []);
  // nothing chosen: our own message
  await form.getByRole('button', { name: 'Beoordeling versturen' }).focus();
  await page.keyboard.press('Enter');
  await form.getByText('Kies een cijfer of beantwoord de vraag "Bent u geholpen?".').waitFor();
  // keyboard: 3 -> arrow right = 4; Tab to the next group, "Ja"; Tab to the button
  await form.getByRole('radio', { name: '3' }).focus();
  await page.keyboard.press('Space');
  await page.keyboard.press('ArrowRight');
  assert.equal(await form.getByRole('radio', { name: '4' }).isChecked(), true);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'acdm-wc-helped-yes');
  await page.keyboard.press('Space');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'acdm-wc-csat-send');
  await page.keyboard.press('Enter');
  await form.getByText('Bedankt voor uw beoordeling.').waitFor();
  // durable, on the bericht
  const b = await until(async () => {
    const r = (await d.request('GET', `/api/v1/berichten/${bid}`)).json;
    return r && r.payload && r.payload.csat && r;
  }, 'the rating on the bericht');
  assert.equal(b.payload.csat.score, 4);
  assert.equal(b.payload.csat.helped, true);
  assert.equal(b.events.filter((e) => e.type === 'csat').length, 1);
  // at most once: after a reload the question is not asked again
  await page.reload();
  const dialog2 = page.getByRole('dialog', { name: 'Chat met de gemeente' });
  await dialog2.locator('.acdm-wc-from-agent', { hasText: 'Dat kan online met DigiD.' }).waitFor();
  assert.equal(await dialog2.locator('#acdm-wc-csat').isVisible(), false);
  // in the reports: per agent, queue and channel
  const report = async (kind, key, col) => {
    const r = (await d.request('GET', `/api/v1/reports?kind=${kind}&period=day`)).json;
    const row = r.totals.find((x) => x[col] === key);
    return row && row;
  };
  // the row of agent1 is there from the sign-in on: wait for the rating in it, then check it
  const rated = (kind, key, col) => until(async () => {
    const row = await report(kind, key, col);
    return row && row.csat_count > 0 && row;
  }, `the rating in the ${kind} report (${key})`);
  const ag = await rated('agents', 'agent1', 'agent');
  assert.equal(ag.csat_count, 1);
  assert.equal(ag.csat_avg, 4);
  assert.equal(ag.csat_helped_pct, 100);
  assert.equal((await rated('queues', 'algemeen', 'queue')).csat_count, 1);
  assert.equal((await rated('channels', 'website', 'channel')).csat_avg, 4);
  // ... and on the Rapportages page, per agent, as people read it
  const sup = await openSignedIn(browser, d.base, { token: supToken, role: 'supervisor', name: 'petra', agent: null }, 'reports.html', STEP_MS);
  // the page shows a report as it opens: ask for ours once that one is on screen (else the two
  // answers race, and the one that comes last is the table)
  await sup.page.locator('#rep-status', { hasText: /^Rapport van / }).waitFor();
  await sup.page.locator('#rep-kind').selectOption('agents');
  await sup.page.locator('#rep-show').focus();
  await sup.page.keyboard.press('Enter');
  const totals = sup.page.locator('#rep-totals');
  // the agents report, not the queues report shown before (it has Beoordelingen too)
  await totals.locator('thead th').first().filter({ hasText: /^Agent$/ }).waitFor();
  await totals.locator('th', { hasText: 'Beoordelingen' }).waitFor();
  const cols = await totals.locator('thead th').allTextContents();
  const row = totals.locator('tbody tr', { hasText: 'Anouk de Vries' });
  await row.waitFor();
  const cells = await row.locator('td, th').allTextContents();
  assert.equal(cells[cols.indexOf('Beoordelingen')], '1', JSON.stringify({ cols, cells }));
  assert.equal(cells[cols.indexOf('Gem. tevredenheid (1–5)')], '4,0');
  assert.equal(cells[cols.indexOf('Geholpen')], '100%');
  await sup.ctx.close();
  // "Nieuw gesprek": a fresh conversation, a new bericht
  const fresh = dialog2.getByRole('button', { name: 'Nieuw gesprek' });
  await fresh.focus();
  await page.keyboard.press('Enter');
  await dialog2.getByText(/Welkom/).waitFor();
  await dialog2.locator('.acdm-wc-from-agent').waitFor({ state: 'detached' });
  assert.equal(await dialog2.locator('.acdm-wc-msg').count(), 1, 'only the greeting');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'acdm-wc-input');
  await page.keyboard.type('Nog een vraag over mijn paspoort.');
  await page.keyboard.press('Enter');
  const bid2 = await waitingFrom('website', bid);
  assert.notEqual(bid2, bid);
  await page.reload();
  await page.getByRole('dialog', { name: 'Chat met de gemeente' }).locator('.acdm-wc-from-visitor', { hasText: 'Nog een vraag' }).waitFor();
  assert.equal(await page.locator('.acdm-wc-from-agent').count(), 0, 'the old conversation is not shown again');
  assert.deepEqual(page.errors, []);
  // leave nothing behind for the next test: the visitor ends, the agent ends the wrap-up and logs out
  await page.locator('#acdm-wc-end').focus();
  await page.keyboard.press('Enter');
  await until(async () => (await d.request('GET', `/api/v1/berichten/${bid2}`)).json.state === 'abandoned', 'the second chat ended');
  await card.getByRole('button', { name: 'Nawerk beëindigen' }).click();
  await card.waitFor({ state: 'detached' });
  await agent.getByRole('button', { name: 'Afmelden uit ACDM', exact: true }).click();
  await agent.locator('#my-state', { hasText: 'Afgemeld' }).waitFor();
  await page.context().close();
  await agent.context().close();
});

test('widget with nobody logged in: no waiting estimate, says so and offers to leave a message', { timeout: 120_000 }, async () => {
  // history for the estimate: two chats accepted in "stil" a moment apart
  const agent = await agentDesk({ queue: 'stil' });
  for (const n of [1, 2]) {
    if (n === 2) await sleep(1500);   // the queue's pace: a gap between acceptances that rounds to seconds
    assert.equal((await d.postBericht({ queue: 'stil', kind: 'chat', from: `web:hist${n}`, text: `Vraag ${n}` }, `hist-${n}`)).status, 201);
    const offer = agent.locator('.offer').first();
    await offer.waitFor();
    await offer.getByRole('button', { name: /aannemen/ }).click();
    await agent.locator('.card').nth(n - 1).waitFor();
  }
  // logged in but not ready: the visitor waits, with an estimate
  await agent.getByLabel('Reden').selectOption('pauze');
  await agent.getByRole('button', { name: 'Niet beschikbaar' }).click();
  await agent.locator('#my-state', { hasText: 'Niet beschikbaar' }).waitFor();
  const { page, dialog } = await openChat('stil');
  const input = dialog.getByLabel('Uw bericht');
  await input.focus();
  await page.keyboard.type('Is er iemand die mij kan helpen?');
  await page.keyboard.press('Enter');
  const status = dialog.getByRole('status').first();
  await status.filter({ hasText: /U bent nummer 1 in de wachtrij\. Geschatte wachttijd: ongeveer \d+ minuten\./ }).waitFor();
  // the agent logs out: nobody is logged in any more
  assert.equal((await d.request('POST', '/api/v1/agents/agent1/logout')).status, 200);
  await status.filter({ hasText: 'Er is op dit moment geen medewerker beschikbaar.' }).waitFor();
  assert.doesNotMatch(await status.textContent(), /Geschatte wachttijd|minuten/);
  await page.screenshot({ path: path.join(ART, 'widget-nobody.png') });
  const offer = dialog.getByRole('button', { name: 'Bericht achterlaten' });
  await offer.focus();
  await page.keyboard.press('Enter');
  assert.equal(await dialog.locator('#acdm-wc-leave-text').inputValue(), 'Is er iemand die mij kan helpen?');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'acdm-wc-leave-email');
  await page.keyboard.type('anna@voorbeeld.nl');
  await dialog.locator('#acdm-wc-leave-send').focus();
  await page.keyboard.press('Enter');
  await dialog.getByText('Bedankt voor uw bericht. Wij nemen zo snel mogelijk contact met u op.').waitFor();
  // the waiting chat ended (nobody will be offered it); the message waits in the e-mail queue
  await until(async () => !((await d.request('GET', '/api/v1/queues/stil/waiting')).json.berichten || [])
    .some((b) => b.channel === 'stil'), 'the chat no longer waiting in stil');
  await until(async () => ((await d.request('GET', '/api/v1/queues/email/waiting')).json.berichten || [])
    .some((b) => b.from === 'anna@voorbeeld.nl'), 'the left message in the e-mail queue');
  assert.deepEqual(page.errors, []);
  await page.context().close();
  await agent.context().close();
});

test('widget: a question typed while the chat still connects is shown as being sent, then reaches the agent', { timeout: 90_000 }, async () => {
  const agent = await agentDesk();
  const page = await newPage();
  // a slow network: the chat's websocket reaches acdmd 3 s late (the real server behind it)
  let connected = false;
  await page.routeWebSocket(/\/channels\/website\/ws/, async (ws) => {
    await sleep(3000);
    ws.connectToServer();
    connected = true;
  });
  await page.goto(`${d.base}/channels/website/demo`);
  await page.locator('#acdm-wc-open').click();
  const dialog = page.locator('#acdm-wc-panel');   // its title comes with the server's hello
  await dialog.getByText('Verbinden…').waitFor();
  await dialog.getByLabel('Uw bericht').fill('Mijn container is niet geleegd');
  await page.keyboard.press('Enter');
  // not left in the box as if it went, not lost: on screen as being sent
  assert.equal(connected, false, 'the test needs the message typed before the connection');
  assert.equal(await dialog.getByLabel('Uw bericht').inputValue(), '');
  const line = dialog.locator('.acdm-wc-from-visitor', { hasText: 'Mijn container is niet geleegd' });
  await line.filter({ hasText: 'wordt verzonden…' }).waitFor();
  // once connected it is sent: the server's line replaces it, and the agent is offered it
  await line.filter({ hasNotText: 'wordt verzonden…' }).waitFor();
  assert.equal(await line.count(), 1, 'shown once');
  const bid = await waitingFrom('website');
  await agent.locator(`.offer[data-bericht="${bid}"]`).getByText('Eerste bericht: „Mijn container is niet geleegd”').waitFor();
  assert.deepEqual(await seriousAxe(page), []);
  assert.deepEqual(page.errors, []);
  await page.context().close();
  await agent.getByRole('button', { name: 'Afmelden uit ACDM', exact: true }).click();
  await agent.locator('#my-state[data-state="logged_out"]').waitFor();
  await agent.context().close();
});

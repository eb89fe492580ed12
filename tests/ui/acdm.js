'use strict';
// acdm.js -- runs the real acdmd for the browser tests (as tests/integration/acdmtest.py does):
// the sanitizer build (or $ACDM_BIN) on 127.0.0.1:0 with a temporary data folder and a config
// written here; the port comes from its "listening on" log line. stop() sends SIGTERM and
// checks for a clean exit (code 0, no sanitizer report).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const ACDMD = process.env.ACDM_BIN ? path.resolve(process.env.ACDM_BIN) : path.join(REPO, 'build', 'san', 'acdmd');
const ACDMCTL = process.env.ACDM_CTL ? path.resolve(process.env.ACDM_CTL)
  : process.env.ACDM_BIN ? path.join(REPO, 'bin', 'acdmctl') : path.join(REPO, 'build', 'san', 'acdmctl');
const SAN_ENV = {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};
const SANITIZER = ['ERROR: AddressSanitizer', 'runtime error', 'LeakSanitizer', 'AddressSanitizer:'];
// screenshots and downloads of the browser tests
const ART = path.join(REPO, 'tests', 'artifacts');
fs.mkdirSync(ART, { recursive: true });
// a page step's time-out: a bound, not a target (an ASan daemon and Chromium on a loaded 2-core
// machine, two test files at a time, make a step that takes 1 s alone take many)
const STEP_MS = Number(process.env.ACDM_UI_STEP_MS) || 30_000;

function uiConfig() {
  return {
    ui_dir: path.join(REPO, 'core', 'ui'),
    plugin_dir: path.join(REPO, 'plugins'),
    log_level: 'info',
    group_commit_ms: 2,
    queues: [
      { name: 'algemeen', title: 'Algemene vragen', strategy: 'linear', wrapup_s: 120, offer_timeout_s: 60,
        sl_target_pct: 80, sl_seconds: 20,
        closed_text: { default: 'Wij zijn gesloten.', chat: 'De chat is gesloten, probeer het later.' } },
      { name: 'vergunningen', title: 'Vergunningen', strategy: 'round-robin', wrapup_s: 60, offer_timeout_s: 60,
        closed_text: { default: 'Het team Vergunningen is gesloten.' } },
      { name: 'email', title: 'E-mail', strategy: 'least-occupied', wrapup_s: 60, offer_timeout_s: 60,
        closed_text: { default: 'Wij beantwoorden uw e-mail binnen twee werkdagen.' } },
      // a short offer timeout: the missed-offer test lets one run out
      { name: 'kort', title: 'Korte aanbieding', strategy: 'linear', wrapup_s: 10, offer_timeout_s: 3,
        closed_text: { default: 'Gesloten.' } },
      // no agent is a member: what is queued here waits (supervisor and wallboard tests)
      { name: 'terugbellen', title: 'Terugbelverzoeken', strategy: 'fewest-handled', wrapup_s: 60,
        sl_target_pct: 80, sl_seconds: 14400,
        closed_text: { default: 'Terugbelverzoeken kunnen nu niet worden aangenomen.' } },
    ],
    agents: [
      { id: 'agent1', name: 'Anouk de Vries', queues: ['algemeen', 'vergunningen'], capacity: { chat: 3, email: 5 } },
      { id: 'agent2', name: 'Mohammed El Amrani', queues: ['algemeen', 'email'], capacity: { chat: 2, email: 8 } },
      { id: 'agent3', name: 'Sanne Jansen', queues: ['vergunningen', 'email', 'kort'], capacity: { chat: 2, email: 5 } },
    ],
    channels: [],
    topics: ['Paspoort', 'Rijbewijs', 'Afval', 'Parkeren', 'Belastingen', 'Vergunning'],
    reason_codes: [{ code: 'pauze', label: 'Pauze' }, { code: 'lunch', label: 'Lunch' },
      { code: 'overleg', label: 'Overleg' }, { code: 'training', label: 'Training' },
      { code: 'ander-werk', label: 'Ander werk' }, { code: 'no-answer', label: 'Niet beantwoord' }],
  };
}

class Daemon {
  constructor(config = uiConfig()) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdm-ui-'));
    this.config = path.join(this.dir, 'acdmd.json');
    this.data = path.join(this.dir, 'data');
    this.log = path.join(this.dir, 'acdmd.stderr');
    fs.writeFileSync(this.config, JSON.stringify(config, null, 2));
    this.proc = null;
    this.port = null;
  }

  async start() {
    const out = fs.openSync(this.log, 'w');
    this.proc = spawn(ACDMD, ['-c', this.config, '--data-dir', this.data, '--listen', '127.0.0.1:0'],
      { cwd: REPO, stdio: ['ignore', out, out], env: { ...SAN_ENV, ...process.env } });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    const deadline = Date.now() + 30000;
    for (;;) {
      const m = /listening on http:\/\/([0-9.]+):(\d+)\//.exec(this.stderr());
      if (m) { this.port = Number(m[2]); break; }
      if (this.proc.exitCode !== null) throw new Error('acdmd exited during start-up:\n' + this.tail());
      if (Date.now() > deadline) throw new Error('acdmd did not log "listening on" in 30 s:\n' + this.tail());
      await sleep(30);
    }
    this.base = `http://127.0.0.1:${this.port}`;
    for (;;) {
      try { if ((await fetch(this.base + '/api/v1/health')).ok) break; } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error('GET /api/v1/health never answered 200');
      await sleep(50);
    }
    this.adminToken = fs.readFileSync(path.join(this.data, 'admin.token'), 'utf8').trim();
    return this;
  }

  stderr() { try { return fs.readFileSync(this.log, 'utf8'); } catch { return ''; } }
  tail(n = 40) { return this.stderr().split('\n').slice(-n).join('\n'); }

  /** The API token of agent id (one per agent, made through acdmctl the first time). */
  agentToken(id) {
    if (!this.agentTokens) this.agentTokens = new Map();
    if (!this.agentTokens.has(id)) this.agentTokens.set(id, this.token('agent', id));
    return this.agentTokens.get(id);
  }

  /** A new API token through acdmctl (documented form, else options before "create"). */
  token(role, name) {
    const base = ['-c', this.config, '--data-dir', this.data];
    const env = { ...SAN_ENV, ...process.env };
    delete env.ACDM_TOKEN;
    const run = (args) => execFileSync(ACDMCTL, base.concat(args), { cwd: REPO, env, encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    try {
      return run(['token', 'create', '--role', role, '--name', name]);
    } catch (e) {
      return run(['token', '--role', role, '--name', name, 'create']);
    }
  }

  async request(method, p, body, { token = this.adminToken, headers = {} } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = 'Bearer ' + token;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(this.base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json, text };
  }

  postBericht(body, key) {
    return this.request('POST', '/api/v1/berichten', body, { headers: key ? { 'Idempotency-Key': key } : {} });
  }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    if (p.exitCode === null) p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    const { code, sig } = await this.exited;
    clearTimeout(timer);
    const err = this.stderr();
    for (const pat of SANITIZER) {
      if (err.includes(pat)) throw new Error(`acdmd stderr has "${pat}":\n` + err.slice(Math.max(0, err.indexOf(pat) - 1500), err.indexOf(pat) + 3000));
    }
    if (code !== 0) throw new Error(`acdmd did not exit cleanly after SIGTERM (code ${code}, signal ${sig}):\n` + this.tail());
    if (!process.env.ACDM_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Polls fn every 150 ms until it returns something truthy (that value), or throws after ms. */
async function until(fn, what, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(150);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const AXE_WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
/** axe-core on the page: its serious and critical violations of the rules tagged `tags` (by
 *  default WCAG 2.1 A/AA and best practice). */
async function seriousAxe(page, tags = [...AXE_WCAG, 'best-practice']) {
  // evaluated through the devtools protocol, not as a <script> tag: the pages' CSP (script-src
  // 'self', no inline script) would refuse an injected tag, and must stay on while tested
  await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const res = await page.evaluate((runOnly) => axe.run({ runOnly }), tags);
  return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} -> ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * A new browser context with a page already signed in (the session the sign-in page would store:
 * {token, role, name, agent}) and opened at url. Returns {ctx, page, errors} (errors: page errors).
 */
async function openSignedIn(browser, base, session, url, timeout = 20_000) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 1000 }, locale: 'nl-NL' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base + '/index.html');
  await page.evaluate((s) => sessionStorage.setItem('acdm.session', s), JSON.stringify(session));
  await page.goto(base + '/' + url);
  return { ctx, page, errors };
}

/** Debian's chromium (or $CHROMIUM_PATH) through playwright-core. */
/** A plugin folder of its own (a temp dir) holding the test plugins named (build/testplugins/
 *  <name>.so, e.g. 'device_phone'): the config's plugin_dir. remove() deletes it. */
function testPluginDir(...names) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdm-ui-plugins-'));
  for (const n of names) fs.copyFileSync(path.join(REPO, 'build', 'testplugins', n + '.so'), path.join(dir, n + '.so'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium' });
}

/**
 * The pages of the web chat tests (webchat.test.mjs, widget.test.mjs) against daemon d in browser:
 *  - newPage(opts): a page in a new context (1280x900, nl-NL, then `page` options, then opts),
 *    the step time-out, page.errors collecting its page errors;
 *  - agentDesk({id, queue}): agent id's desk, signed in on the sign-in page with the agent's
 *    token, logged in to ACDM, "Beschikbaar" and a member of queue only (its box on the desk);
 *    returned once the server has the agent ready and joined in queue alone (`desk`: the desk's
 *    page options);
 *  - widgetConnected(page): resolves once the widget on page has its conversation state from the
 *    server (its hello): until then it shows "Verbinden…" (a message typed meanwhile is shown
 *    "wordt verzonden…" and sent after the hello).
 */
function chatPages(d, browser, { page: pageOpts = {}, desk: deskOpts = {}, timeout = STEP_MS } = {}) {
  async function newPage(opts = {}) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'nl-NL', ...pageOpts, ...opts });
    const page = await ctx.newPage();
    page.setDefaultTimeout(timeout);
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    return page;
  }

  async function agentDesk({ id = 'agent1', queue = 'algemeen' } = {}) {
    const page = await newPage(deskOpts);
    await page.goto(d.base + '/index.html');
    await page.locator('#token').fill(d.agentToken(id));
    await page.locator('#signin button[type=submit]').click();
    await page.waitForURL(/agent\.html/);
    await page.locator('#my-state[data-state]').waitFor();
    if (await page.locator('#btn-login').isVisible()) await page.locator('#btn-login').click();
    await page.getByRole('button', { name: 'Beschikbaar', exact: true }).click();
    await page.locator('#my-state', { hasText: 'Beschikbaar sinds' }).waitFor();
    // only `queue` joined, as the server has it. Toggled on the desk, by the queue's name: its
    // label is the queue's name until the desk has the titles (a request of its own), and the desk
    // re-renders a box from every push, so a push still on its way may undo a click on screen
    // before the server has it: the server's answer is what counts.
    await until(async () => {
      const a = (await d.request('GET', '/api/v1/agents')).json.agents.find((x) => x.id === id);
      const off = a.queues.filter((q) => q.joined !== (q.queue === queue));
      for (const q of off) {
        const cb = page.locator(`#queues li[data-queue="${q.queue}"] input[type=checkbox]`);
        if ((await cb.isChecked()) === q.joined) await cb.click();   // in step with the server: toggle it
      }
      return a.state === 'ready' && !off.length;
    }, `${id} ready in ${queue} only`, timeout);
    return page;
  }

  function widgetConnected(page) {
    return page.locator('#acdm-wc-panel[data-state]').waitFor();
  }

  return { newPage, agentDesk, widgetConnected };
}

module.exports = { Daemon, uiConfig, sleep, until, seriousAxe, AXE_WCAG, openSignedIn, launchBrowser, chatPages, testPluginDir,
  ART, STEP_MS, REPO };

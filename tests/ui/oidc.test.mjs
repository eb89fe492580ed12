// oidc.test.mjs -- "Inloggen met de organisatie-account": the sign-in page's OpenID Connect
// authorization-code flow with PKCE against a fake IdP started here (node http: /authorize
// redirects back with a code and the state, /token checks the PKCE verifier and answers an
// id_token signed RS256 with a key made here), and a real acdmd whose oidc.jwks_file holds
// the public key. The server validates the id_token as it does a pasted JWT.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Daemon, ART, uiConfig, seriousAxe, launchBrowser } = require('./acdm.js');

const T = 20_000;
const CLIENT_ID = 'acdm-spa-test';

// ------------------------------------------------------------------ the fake IdP

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const KID = 'test-key-1';

const idp = {
  mode: 'ok',          // ok | wrong-state | error | token-fail | unknown-user
  codes: new Map(),    // code -> {challenge, nonce, redirect}
  tokenCalls: [],      // what /token got (form fields and the Origin)
  lifetime: 3600,      // seconds an id_token is valid
  refresh: false,      // answer a refresh_token (and accept grant_type=refresh_token)
  refreshTokens: new Set(),
};

function signJwt(claims) {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KID }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(head + '.' + body), privateKey);
  return head + '.' + body + '.' + b64url(sig);
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://idp');
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': 'POST',
    'Access-Control-Allow-Headers': 'Content-Type' };
  if (req.method === 'GET' && u.pathname === '/authorize') {
    const q = u.searchParams;
    const back = new URL(q.get('redirect_uri'));
    if (idp.mode === 'error') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user cancelled the sign-in.');
    } else if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' ||
               q.get('client_id') !== CLIENT_ID || !q.get('code_challenge') || !q.get('state')) {
      back.searchParams.set('error', 'invalid_request');
    } else {
      const code = crypto.randomBytes(16).toString('hex');
      idp.codes.set(code, { challenge: q.get('code_challenge'), nonce: q.get('nonce'), redirect: q.get('redirect_uri'),
        scope: q.get('scope') });
      back.searchParams.set('code', code);
      back.searchParams.set('state', idp.mode === 'wrong-state' ? 'forged-state' : q.get('state'));
    }
    res.writeHead(302, { Location: back.href });
    res.end();
    return;
  }
  if (req.method === 'OPTIONS') { res.writeHead(204, cors); res.end(); return; }
  if (req.method === 'POST' && u.pathname === '/token') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const f = new URLSearchParams(body);
      idp.tokenCalls.push({ type: req.headers['content-type'], origin: req.headers.origin, ...Object.fromEntries(f) });
      const reply = (status, j) => { res.writeHead(status, { ...cors, 'Content-Type': 'application/json' }); res.end(JSON.stringify(j)); };
      const now = Math.floor(Date.now() / 1000);
      const idTokenFor = (nonce) => signJwt({ iss: idp.issuer, aud: CLIENT_ID, sub: 'sub-anouk', iat: now, nbf: now,
        exp: now + idp.lifetime, nonce, name: 'Anouk de Vries', roles: ['ACDM.Agent'],
        preferred_username: idp.mode === 'unknown-user' ? 'nobody@example.nl' : 'agent1' });
      const newRefresh = () => {
        if (!idp.refresh) return {};
        const rt = 'rt-' + crypto.randomBytes(8).toString('hex');
        idp.refreshTokens.add(rt);
        return { refresh_token: rt };
      };
      if (f.get('grant_type') === 'refresh_token') {   // rotated: each refresh token works once
        if (!idp.refreshTokens.delete(f.get('refresh_token')) || f.get('client_id') !== CLIENT_ID)
          return reply(400, { error: 'invalid_grant', error_description: 'unknown refresh token' });
        return reply(200, { token_type: 'Bearer', expires_in: idp.lifetime, id_token: idTokenFor(undefined),
          access_token: 'opaque-graph-token', ...newRefresh() });
      }
      const c = idp.codes.get(f.get('code'));
      idp.codes.delete(f.get('code'));
      if (idp.mode === 'token-fail') return reply(400, { error: 'invalid_grant', error_description: 'AADSTS70008: the code has expired' });
      if (!c || f.get('grant_type') !== 'authorization_code' || f.get('client_id') !== CLIENT_ID ||
          f.get('redirect_uri') !== c.redirect ||
          b64url(crypto.createHash('sha256').update(f.get('code_verifier') || '').digest()) !== c.challenge)
        return reply(400, { error: 'invalid_grant', error_description: 'code, redirect_uri or code_verifier do not match' });
      return reply(200, { token_type: 'Bearer', expires_in: idp.lifetime, scope: c.scope, id_token: idTokenFor(c.nonce),
        access_token: 'opaque-graph-token', ...newRefresh() });
    });
    return;
  }
  res.writeHead(404); res.end();
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const IDP = `http://127.0.0.1:${server.address().port}`;
idp.issuer = IDP + '/v2.0';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdm-oidc-ui-'));
const jwksFile = path.join(keyDir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: KID, use: 'sig', alg: 'RS256' }] }));

const cfg = uiConfig();
cfg.oidc = {
  issuer: idp.issuer, audience: CLIENT_ID, jwks_file: jwksFile,
  role_claim: 'roles', agent_claim: 'preferred_username', role_map: { 'ACDM.Agent': 'agent', 'ACDM.Supervisor': 'supervisor' },
  authorization_endpoint: IDP + '/authorize', token_endpoint: IDP + '/token', client_id: CLIENT_ID,
  leeway_s: 0,   // sessions end right at the token's exp (the expiry tests use tokens of a few seconds)
};
const d = await new Daemon(cfg).start();
const browser = await launchBrowser();

after(async () => {
  await browser.close();
  server.close();
  await d.stop();
  fs.rmSync(keyDir, { recursive: true, force: true });
});

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'nl-NL' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, name + '.png'), fullPage: true });
}

const session = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('acdm.session') || 'null'));

/** Opens the sign-in page and waits for the organisation-account button. */
async function signinPage(page) {
  await page.goto(d.base + '/index.html');
  const btn = page.getByRole('button', { name: 'Inloggen met de organisatie-account' });
  await btn.waitFor();
  return btn;
}

// ------------------------------------------------------------------ tests

test('GET /api/v1/auth/config names the IdP for the browser, without a token', async () => {
  const r = await d.request('GET', '/api/v1/auth/config', undefined, { token: null });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { oidc: { authorization_endpoint: IDP + '/authorize', token_endpoint: IDP + '/token',
    client_id: CLIENT_ID, scope: 'openid profile', issuer: idp.issuer, use_token: 'id_token' } });
});

test('sign-in page with the organisation-account button: no serious axe violations', { timeout: 120_000 }, async () => {
  const page = await newPage();
  await signinPage(page);
  await shot(page, 'oidc-signin');
  assert.deepEqual(await seriousAxe(page), []);
  await page.locator('#lang').click();
  await page.getByRole('button', { name: 'Sign in with the organisation account' }).waitFor();
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the button signs in through the IdP (code + PKCE) and lands on the desk as the mapped agent', { timeout: 120_000 }, async () => {
  idp.mode = 'ok';
  idp.tokenCalls.length = 0;
  const page = await newPage();
  const btn = await signinPage(page);
  await btn.click();
  await page.waitForURL(/\/agent\.html/);
  await page.locator('#who', { hasText: 'Anouk de Vries' }).waitFor();
  const s = await session(page);
  assert.equal(s.role, 'agent');
  assert.equal(s.agent, 'agent1');
  assert.equal(s.token.split('.').length, 3, 'the id_token is the bearer token');
  assert.equal(idp.tokenCalls.length, 1);
  const call = idp.tokenCalls[0];
  assert.match(call.type, /^application\/x-www-form-urlencoded/);
  assert.equal(call.origin, d.base);
  assert.equal(call.redirect_uri, d.base + '/index.html');
  assert.ok(call.code_verifier.length >= 43, 'a 43+ character code_verifier');
  // the REST API takes the same token
  assert.equal((await d.request('GET', '/api/v1/topics', undefined, { token: s.token })).status, 200);
  await page.locator('#my-state[data-state]').waitFor();
  await shot(page, 'oidc-desk');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('an answer with the wrong state is refused with a message', { timeout: 120_000 }, async () => {
  idp.mode = 'wrong-state';
  idp.tokenCalls.length = 0;
  const page = await newPage();
  const btn = await signinPage(page);
  await btn.click();
  const alert = page.locator('#sso-msg[role=alert]');
  await alert.filter({ hasText: 'state klopt niet' }).waitFor();
  await shot(page, 'oidc-wrong-state');
  assert.match(page.url(), /\/index\.html$/, 'the code is taken out of the address');
  assert.equal(await session(page), null);
  assert.equal(idp.tokenCalls.length, 0, 'the code is not redeemed');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('IdP error, token endpoint failure and a token acdm refuses: messages (English too)', { timeout: 120_000 }, async () => {
  const page = await newPage();
  const alert = page.locator('#sso-msg[role=alert]');
  idp.mode = 'error';
  await (await signinPage(page)).click();
  await alert.filter({ hasText: 'De identiteitsprovider meldt een fout: access_denied' }).waitFor();
  await page.locator('#lang').click();   // English from here on (kept in localStorage)
  idp.mode = 'token-fail';
  await page.goto(d.base + '/index.html');
  await page.getByRole('button', { name: 'Sign in with the organisation account' }).click();
  await alert.filter({ hasText: 'Could not get the token from the identity provider (AADSTS70008' }).waitFor();
  idp.mode = 'unknown-user';
  await page.goto(d.base + '/index.html');
  await page.getByRole('button', { name: 'Sign in with the organisation account' }).click();
  await alert.filter({ hasText: 'acdm does not accept your organisation\'s token' }).waitFor();
  assert.equal(await session(page), null);
  assert.match(d.stderr(), /oidc: token refused \(agent\)/);
  // the pasted-token path stays: the admin token still signs in
  await page.locator('#token').fill(d.adminToken);
  await page.locator('#signin button[type=submit]').click();
  await page.waitForURL(/\/supervisor\.html/);
  assert.deepEqual(page.errors, []);
  idp.mode = 'ok';
  await page.context().close();
});

test('a session whose token expires goes back to the sign-in page, in the same language', { timeout: 120_000 }, async () => {
  idp.mode = 'ok';
  idp.lifetime = 5;
  idp.refresh = false;
  const page = await newPage();
  await signinPage(page);
  await page.locator('#lang').click();   // English
  await page.getByRole('button', { name: 'Sign in with the organisation account' }).click();
  await page.waitForURL(/\/agent\.html/);
  await page.locator('#my-state[data-state]').waitFor();
  // the server ends the socket at exp (error token_expired, close 4001): back to the sign-in page
  await page.waitForURL(/\/index\.html\?.*expired=session/, { timeout: 15_000 });
  assert.match(page.url(), /lang=en/);
  assert.match(page.url(), /next=agent\.html/);
  await page.locator('#signin-msg', { hasText: 'Your session has expired' }).waitFor();
  await page.getByRole('heading', { name: 'Sign in to acdm' }).waitFor();
  assert.equal(await session(page), null);
  assert.match(d.stderr(), /session of agent agent1: the token expired, closing/);
  await shot(page, 'oidc-session-expired');
  assert.deepEqual(page.errors, []);
  idp.lifetime = 3600;
  await page.context().close();
});

test('with a refresh token the desk renews the token before it expires and stays connected (reauth)', { timeout: 120_000 }, async () => {
  idp.mode = 'ok';
  idp.lifetime = 6;
  idp.refresh = true;
  idp.tokenCalls.length = 0;
  const page = await newPage();
  const btn = await signinPage(page);
  await btn.click();
  await page.waitForURL(/\/agent\.html/);
  await page.locator('#my-state[data-state]').waitFor();
  const first = (await session(page)).token;
  assert.ok((await session(page)).refresh, 'the refresh token is kept in the session');
  await page.locator('#btn-login').click();
  await page.locator('#my-state[data-state="not_ready"]').waitFor();
  // three token lifetimes: renewed (at least) twice, never sent back to the sign-in page
  const t0 = Date.now();
  while (Date.now() - t0 < 15_000) {
    assert.match(page.url(), /\/agent\.html/, 'still on the desk');
    await new Promise((r) => setTimeout(r, 500));
  }
  const refreshes = idp.tokenCalls.filter((c) => c.grant_type === 'refresh_token');
  assert.ok(refreshes.length >= 2, `renewed at least twice (got ${refreshes.length})`);
  const s = await session(page);
  assert.notEqual(s.token, first, 'the session holds the renewed token');
  assert.equal((await d.request('GET', '/api/v1/topics', undefined, { token: s.token })).status, 200);
  assert.doesNotMatch(d.stderr(), /reauth with a token of .* refused/);
  // the socket never closed: the same session, still logged in, no "expired" for it
  await page.locator('#conn', { hasText: 'Verbonden' }).waitFor();
  await page.locator('#my-state[data-state="not_ready"]').waitFor();
  const agent = (await d.request('GET', '/api/v1/agents')).json.agents.find((a) => a.id === 'agent1');
  assert.equal(agent.state, 'not_ready');
  assert.deepEqual(page.errors, []);
  idp.lifetime = 3600;
  idp.refresh = false;
  await page.context().close();
});

// signin.js -- the sign-in page: a pasted API token (or an OIDC JWT, validated by the server),
// or "Inloggen met de organisatie-account": the OpenID Connect authorization-code flow with PKCE
// as a public SPA client (GET /api/v1/auth/config names the IdP), whose id_token (or
// access_token) is then used exactly like a pasted token. The token is kept in sessionStorage;
// the role comes from the websocket's hello; then on to the right page.
import { t, tn, onLang } from './i18n.js';
import { api, session, saveSession, pageFor, initHeader, jwtClaims } from './common.js';

const params = new URLSearchParams(location.search);
let next = params.get('next');
const msg = document.getElementById('signin-msg');
const ssoMsg = document.getElementById('sso-msg');
const PENDING = 'acdm.oidc';   // sessionStorage: {state, verifier, nonce, redirect, next, wallboard}
let health = null;

function renderHealth() {
  const el = document.getElementById('health');
  if (health === false) el.textContent = t('signin.unreachable');
  else if (health) el.textContent = tn('signin.health', health.berichten_live, { version: health.version, live: health.berichten_live });
}

/** Opens /ws with the token and waits for the hello: {role, name, agent} or null. */
function hello(token) {
  return new Promise((resolve) => {
    let done = false;
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/ws?token=' + encodeURIComponent(token));
    const finish = (v) => { if (done) return; done = true; clearTimeout(timer); try { ws.close(); } catch { /* */ } resolve(v); };
    const timer = setTimeout(() => finish(null), 8000);
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type !== 'hello') return;
      if (m.agent) finish({ role: 'agent', name: m.agent.name || m.agent.id, agent: m.agent.id });
      else finish({ role: m.role, name: m.name });
    };
    ws.onerror = () => finish(null);
    ws.onclose = () => finish(null);
  });
}

function nextPage(role, wantWallboard) {
  // ?next= only for a page of the same kind (agents to the desk, supervisors to their pages)
  if (next && /^(agent|supervisor|wallboard)\.html(\?|$)/.test(next)) {
    const isAgentPage = next.startsWith('agent.html');
    if ((role === 'agent') === isAgentPage) return next;
  }
  return pageFor(role, wantWallboard);
}

function renderCurrent() {
  const s = session();
  const box = document.getElementById('current');
  if (!s) { box.hidden = true; return; }
  box.hidden = false;
  document.getElementById('current-text').textContent =
    t('signin.signed_in', { name: s.name, role: t('role.' + s.role) });
  const page = nextPage(s.role, false);
  const a = document.getElementById('continue');
  a.href = page;
  a.textContent = t('signin.continue', { page: t(page.startsWith('agent') ? 'nav.desk'
    : page.startsWith('wallboard') ? 'nav.wallboard' : 'nav.dashboard') });
}

/**
 * Checks token with the server (the websocket's hello) and signs in with it; on refusal writes
 * why into out (sso: the token came from the organisation's IdP). Used by both ways in.
 */
async function useToken(token, wantWallboard, out, sso, renewal = {}) {
  out.className = '';
  out.textContent = t(sso ? 'signin.sso.busy' : 'signin.checking');
  const who = await hello(token);
  if (!who) {
    // refused upgrade: tell an unknown token from a token without access
    let r = null;
    try { r = await api('/api/v1/queues', { token }); } catch { /* unreachable */ }
    out.className = 'error';
    if (!r) out.textContent = t('signin.unreachable');
    else if (r.status === 401) out.textContent = t(sso ? 'signin.sso.refused' : 'signin.bad');
    else if (r.status === 429) out.textContent = t('signin.ratelimited', { s: r.headers.get('Retry-After') || '60' });
    else out.textContent = t('signin.forbidden', { role: '?' });
    return;
  }
  const page = nextPage(who.role, wantWallboard);
  if (!page) {
    out.className = 'error';
    out.textContent = t('signin.forbidden', { role: who.role });
    return;
  }
  saveSession({ token, role: who.role, name: who.name, agent: who.agent || null, ...renewal });
  location.href = page;
}

document.getElementById('signin').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = document.getElementById('token').value.trim();
  const wantWallboard = document.getElementById('wallboard').checked;
  if (!token) { msg.className = 'error'; msg.textContent = t('signin.bad'); return; }
  await useToken(token, wantWallboard, msg, false);
});

// ------------------------------------------------------------------ OpenID Connect (PKCE)

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

/** The sign-in page's own address, without query or fragment: the registered redirect URI. */
function redirectUri() {
  const u = new URL('index.html', location.href);
  u.search = ''; u.hash = '';
  return u.href;
}

function ssoError(key, vars) {
  ssoMsg.className = 'error';
  ssoMsg.textContent = t(key, vars);
}

async function ssoStart(oidc) {
  if (!window.isSecureContext || !crypto.subtle) { ssoError('signin.sso.insecure'); return; }
  const verifier = random(32);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const pending = { state: random(16), nonce: random(16), verifier, redirect: redirectUri(), next,
    wallboard: document.getElementById('wallboard').checked };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const u = new URL(oidc.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: oidc.client_id, response_type: 'code',
    redirect_uri: pending.redirect, scope: oidc.scope, state: pending.state, nonce: pending.nonce,
    code_challenge: challenge, code_challenge_method: 'S256', response_mode: 'query' })) u.searchParams.set(k, v);
  ssoMsg.className = '';
  ssoMsg.textContent = t('signin.sso.redirecting');
  location.assign(u.href);
}

/** Back from the IdP (?code=&state= or ?error=): redeem the code, then sign in with the token. */
async function ssoReturn(oidc) {
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null'); } catch { /* none */ }
  sessionStorage.removeItem(PENDING);   // one attempt per redirect
  history.replaceState(null, '', location.pathname);   // the code must not stay in the address
  if (pending) next = pending.next || null;
  if (params.get('error')) {
    ssoError('signin.sso.idp_error', { error: params.get('error'), description: params.get('error_description') || '' });
    return;
  }
  if (!pending || !params.get('state') || params.get('state') !== pending.state) { ssoError('signin.sso.state'); return; }
  if (!oidc) { ssoError('signin.sso.token_failed', { detail: '/api/v1/auth/config' }); return; }
  ssoMsg.className = '';
  ssoMsg.textContent = t('signin.sso.busy');
  let r, j = null;
  try {
    r = await fetch(oidc.token_endpoint, { method: 'POST', body: new URLSearchParams({
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: pending.redirect,
      client_id: oidc.client_id, code_verifier: pending.verifier }) });
    try { j = await r.json(); } catch { /* not JSON */ }
  } catch (e) { ssoError('signin.sso.token_failed', { detail: e.message || String(e) }); return; }
  if (!r.ok || !j) {
    ssoError('signin.sso.token_failed', { detail: (j && (j.error_description || j.error)) || 'HTTP ' + r.status });
    return;
  }
  const kind = oidc.use_token === 'access_token' ? 'access_token' : 'id_token';
  const token = j[kind];
  if (!token) { ssoError('signin.sso.no_token', { kind }); return; }
  const idc = j.id_token ? jwtClaims(j.id_token) : null;
  if (idc && idc.nonce !== undefined && idc.nonce !== pending.nonce) { ssoError('signin.sso.nonce'); return; }
  // with a refresh token the pages renew the token before it expires (common.js Socket.renew)
  const renewal = j.refresh_token ? { refresh: j.refresh_token, oidc: { token_endpoint: oidc.token_endpoint,
    client_id: oidc.client_id, use_token: kind, scope: oidc.scope } } : {};
  await useToken(token, !!pending.wallboard, ssoMsg, true, renewal);
}

initHeader({ s: null });
if (params.get('signed_out')) msg.textContent = t('signin.signed_out');
const why = params.get('expired');
if (why) msg.textContent = t(why === 'session' ? 'signin.expired.session' : why === 'removed' ? 'signin.removed' : 'signin.expired');
if (next && next.startsWith('wallboard')) document.getElementById('wallboard').checked = true;
onLang(() => { renderHealth(); renderCurrent(); });
renderCurrent();
const returning = params.has('code') || params.has('error');
fetch('/api/v1/auth/config').then((r) => (r.ok ? r.json() : null)).catch(() => null).then((c) => {
  const oidc = c && c.oidc && c.oidc.authorization_endpoint ? c.oidc : null;
  if (oidc) {
    document.getElementById('sso').hidden = false;
    document.getElementById('sso-button').addEventListener('click', () => ssoStart(oidc));
  }
  if (returning) {
    document.getElementById('sso').hidden = false;
    document.getElementById('sso-button').hidden = !oidc;
    ssoReturn(oidc);
  }
});
fetch('/api/v1/health').then((r) => r.json()).then((j) => { health = j; renderHealth(); })
  .catch(() => { health = false; renderHealth(); });

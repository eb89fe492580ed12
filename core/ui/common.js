// common.js -- shared by the acdm pages: the session (token in sessionStorage), REST calls,
// the websocket with request/reply matching, the page header, a confirm dialog, formatting.
import { t, lang, applyI18n, toggleLang, onLang } from './i18n.js';

const SESSION = 'acdm.session';

/** {token, role, name, agent} or null. */
export function session() {
  try { return JSON.parse(sessionStorage.getItem(SESSION) || 'null'); } catch { return null; }
}
export function saveSession(s) { sessionStorage.setItem(SESSION, JSON.stringify(s)); }
export function clearSession() { sessionStorage.removeItem(SESSION); }

/**
 * The session is over: back to the sign-in page, in the same language, and from there back to
 * this page. why: '1' (the token is no longer accepted: revoked, or an expired JWT), 'session'
 * (the websocket said token_expired), 'removed' (agent_removed).
 */
export function expired(why = '1') {
  clearSession();
  const here = location.pathname.replace(/^.*\//, '') + location.search;
  const q = new URLSearchParams({ expired: why, lang: lang() });
  if (/^(agent|supervisor|wallboard)\.html/.test(here)) q.set('next', here);
  location.replace('index.html?' + q);
}

/** The claims of a JWT (not verified here: acdmd checks the signature), or null (an API token). */
export function jwtClaims(jwt) {
  try {
    const p = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(p + '='.repeat((4 - (p.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch { return null; }
}

/** The page for a role: agent desk, dashboard or wallboard. */
export function pageFor(role, wantWallboard) {
  if (role === 'agent') return 'agent.html';
  if (role === 'supervisor' || role === 'admin') return wantWallboard ? 'wallboard.html' : 'supervisor.html';
  return null;
}

/** Sends the visitor to the sign-in page unless signed in with one of roles; returns the session. */
export function requireSession(roles) {
  const s = session();
  if (!s || !s.token || (roles && !roles.includes(s.role))) {
    const next = location.pathname.replace(/^.*\//, '') + location.search;
    location.replace('index.html?next=' + encodeURIComponent(next));
    return null;
  }
  return s;
}

/** fetch with the session's bearer token; resolves to {status, ok, json} (json null when none). */
export async function api(path, { method = 'GET', body, token } = {}) {
  const s = session();
  const headers = {};
  const tok = token || (s && s.token);
  if (tok) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && !token && s) expired();
  let json = null;
  try { json = await r.json(); } catch { /* not JSON */ }
  return { status: r.status, ok: r.ok, json, headers: r.headers };
}

/**
 * The /ws websocket. Every client message gets one reply (`ack` or `error`); send() returns
 * a promise for it. Replies are matched by `re` when the server names it, else in order.
 * Reconnects with a back-off until close() is called. When the server ends the session
 * (`token_expired`, `agent_removed`; close codes 4001, 4004) it goes back to the sign-in page.
 * A session signed in through the organisation's IdP that got a refresh token renews its token
 * shortly before it expires and sends `reauth`, so the socket (and the work) carries on.
 */
export class Socket {
  constructor(token, { onMessage, onStatus } = {}) {
    this.token = token;
    this.onMessage = onMessage || (() => {});
    this.onStatus = onStatus || (() => {});
    this.pending = [];
    this.waiting = [];   // requests made while the socket was still connecting: sent on open
    this.ws = null;
    this.stopped = false;
    this.retry = 0;
    this.opened = false;
  }

  url() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?token=' +
      encodeURIComponent(this.token);
  }

  connect() {
    this.onStatus('connecting');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true; this.retry = 0; this.opened = true; this.onStatus('open'); this.planRenew();
      for (const w of this.waiting.splice(0)) w.go();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'error' && !m.re && ENDS[m.code]) this.end(ENDS[m.code]);
      else if (m.type === 'ack' || m.type === 'error') this.reply(m);
      else this.onMessage(m);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (ev && CLOSES[ev.code]) this.end(CLOSES[ev.code]);   // the error before it got lost
      for (const p of [...this.pending.splice(0), ...this.waiting.splice(0)]) p.reject({ code: 'closed', text: t('conn.closed') });
      this.onStatus('closed');
      if (this.stopped) return;
      if (!opened) {
        // upgrade refused: is the token still good? (a 401 ends the session instead of retrying)
        fetch('/api/v1/queues', { headers: { Authorization: 'Bearer ' + this.token } })
          .then((r) => { if (r.status === 401) { this.stopped = true; expired(); } }, () => {});
      }
      const delay = Math.min(10000, 1000 * 2 ** this.retry++);
      setTimeout(() => { if (!this.stopped) this.connect(); }, delay);
    };
  }

  reply(m) {
    let i = -1;
    if (m.re) {
      i = this.pending.findIndex((p) => p.type === m.re && (!m.bericht || !p.bericht || p.bericht === m.bericht));
      if (i < 0) i = this.pending.findIndex((p) => p.type === m.re);
    } else {
      i = this.pending.length ? 0 : -1;
    }
    if (i < 0) return;
    // requests before the matched one that never get a reply (e.g. `typing`) are dropped
    const before = this.pending.splice(0, i);
    const p = this.pending.shift();
    for (const b of before) b.resolve(null);
    if (m.type === 'ack') p.resolve(m);
    else p.reject(m);
  }

  /** Sends msg; resolves with its ack, rejects with its error. A request made while the socket
   *  is still connecting (a click in the first moment after the page loaded) goes out when it
   *  opens; one made while the connection is lost is refused ("Verbinding verbroken"). */
  send(msg) {
    return new Promise((resolve, reject) => {
      const go = () => {
        this.pending.push({ type: msg.type, bericht: msg.bericht, resolve, reject });
        this.ws.send(JSON.stringify(msg));
      };
      if (this.ws && this.ws.readyState === WebSocket.CONNECTING) this.waiting.push({ go, reject });
      else if (!this.ws || this.ws.readyState !== WebSocket.OPEN) reject({ code: 'closed', text: t('conn.closed') });
      else go();
    });
  }

  close() {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    if (this.ws) this.ws.close();
  }

  /** The server ended the session: no reconnect, back to the sign-in page. */
  end(why) {
    if (this.ended) return;
    this.ended = true;
    this.stopped = true;
    clearTimeout(this.renewTimer);
    expired(why);
  }

  /** Plans the silent renewal of an OIDC session with a refresh token (see renew). */
  planRenew() {
    clearTimeout(this.renewTimer);
    const s = session();
    const c = s && s.refresh && s.oidc ? jwtClaims(this.token) : null;
    if (!c || typeof c.exp !== 'number') return;   // an API token, or no refresh token: nothing to do
    const left = c.exp * 1000 - Date.now();
    const margin = Math.min(60000, Math.max(1000, left / 3));   // a minute early, a third for short tokens
    this.renewTimer = setTimeout(() => this.renew(), Math.max(0, left - margin));
  }

  /**
   * Asks the IdP's token endpoint for a new token with the refresh token (public client, no
   * secret) and sends it as `reauth`; the new token is also used for REST and reconnects. When
   * that fails the session simply ends at the old token's expiry (sign in again).
   */
  async renew() {
    const s = session();
    if (this.stopped || !s || !s.refresh || !s.oidc) return;
    let j = null;
    try {
      const form = { grant_type: 'refresh_token', refresh_token: s.refresh, client_id: s.oidc.client_id };
      if (s.oidc.scope) form.scope = s.oidc.scope;
      const r = await fetch(s.oidc.token_endpoint, { method: 'POST', body: new URLSearchParams(form) });
      if (r.ok) j = await r.json();
    } catch { j = null; }
    const tok = j && j[s.oidc.use_token === 'access_token' ? 'access_token' : 'id_token'];
    if (!tok || this.stopped) return;
    saveSession({ ...s, token: tok, refresh: j.refresh_token || s.refresh });
    this.token = tok;
    try { await this.send({ type: 'reauth', token: tok }); } catch { /* closed: the reconnect uses the new token */ }
    this.planRenew();
  }
}

/** How the server ends a session: error code / close code -> the sign-in page's ?expired=. */
const ENDS = { token_expired: 'session', agent_removed: 'removed' };
const CLOSES = { 4001: 'session', 4004: 'removed' };

/** A readable text for an `error` reply. */
export function errorText(e) {
  if (!e) return '';
  if (e.code === 'unknown_type') return t('error.unknown_type');
  return serverText(e.text) || e.code || String(e);
}

// The server's sentences are the API's, in English; these, which a desk meets on calls (a
// transfer refused, an outbound call that failed: core/engine and channels/sip), are shown in
// the desk's language. Any other sentence is shown as the server wrote it.
const SIP_WHY = { 486: 'srv.busy', 600: 'srv.busy', 603: 'srv.declined', 404: 'srv.no_number', 410: 'srv.no_number', 484: 'srv.no_number' };
const SERVER_TEXTS = [
  [/^the number did not answer in (\d+) s$/, (m) => t('srv.no_answer', { s: m[1] })],
  [/^the number (?:did not ring within \d+ s|could not be reached\b.*|could not be dialled)$/, () => t('srv.unreachable')],
  [/^the number answered ((\d{3})\b.*)$/, (m) => t(SIP_WHY[m[2]] || 'srv.refused', { code: m[1] })],
  [/^this channel has no outbound gateway\b/, () => t('srv.no_gateway')],
  [/^the call is not in conversation with you$/, () => t('srv.not_yours')],
];
/** text (a server's sentence) in the desk's language when it is one of SERVER_TEXTS. */
export function serverText(text) {
  if (typeof text !== 'string') return text;
  for (const [re, f] of SERVER_TEXTS) {
    const m = re.exec(text);
    if (m) return f(m);
  }
  return text;
}

/** Element helper: h('button', {class: 'x', onclick: fn}, 'text', child...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** 75000 -> "1:15", 3725000 -> "1:02:05". */
export function dur(ms) {
  if (ms == null || Number.isNaN(ms)) return t('dash');
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const p = (n) => String(n).padStart(2, '0');
  return hh ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString(lang() === 'en' ? 'en-GB' : 'nl-NL',
    { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(ms) {
  return new Date(ms).toLocaleString(lang() === 'en' ? 'en-GB' : 'nl-NL',
    { dateStyle: 'short', timeStyle: 'short' });
}

export function kindLabel(k) { const s = t('kind.' + k); return s === 'kind.' + k ? k : s; }
export function stateLabel(s) { return t('state.' + s); }

/** Reason code -> label, from a list of {code,label}; built-in reasons are translated. */
export function reasonLabel(code, codes) {
  if (!code) return '';
  const builtin = t('reason.' + code);
  if (builtin !== 'reason.' + code) return builtin;
  const c = (codes || []).find((r) => r.code === code);
  return c ? c.label : code;
}

/** Normalises a reason-code list: strings or {code,label} / {name,label}; or {reason_codes:[...]}. */
export function normReasons(x) {
  const list = Array.isArray(x) ? x : (x && (x.reason_codes || x.reasons || x.items)) || null;
  if (!Array.isArray(list)) return null;
  return list.map((r) => (typeof r === 'string' ? { code: r, label: r }
    : { code: r.code || r.name, label: r.label || r.title || r.code || r.name })).filter((r) => r.code);
}

/** Normalises a topic list: strings or {name}/{topic}/{label}; or {topics:[...]}. */
export function normTopics(x) {
  const list = Array.isArray(x) ? x : (x && (x.topics || x.items)) || null;
  if (!Array.isArray(list)) return null;
  return list.map((r) => (typeof r === 'string' ? r : r.name || r.topic || r.label || r.code)).filter(Boolean);
}

/** The page's configured data: <script type="application/json" id="acdm-config">. */
export function pageData() {
  const el = document.getElementById('acdm-config');
  try { return el ? JSON.parse(el.textContent) : {}; } catch { return {}; }
}

/** Writes text into a live region (cleared first so the same text is announced again). */
export function announce(el, text) {
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50);
}

let dialogSeq = 0;
/** A modal confirmation (native <dialog>, so focus is trapped and Escape cancels). */
export function confirmDialog(text, { okLabel } = {}) {
  return new Promise((resolve) => {
    const id = 'confirm-' + (++dialogSeq);
    const ok = h('button', { type: 'button', class: 'primary' }, okLabel || t('confirm'));
    const cancel = h('button', { type: 'button' }, t('cancel'));
    const d = h('dialog', { 'aria-labelledby': id, class: 'confirm' },
      h('p', { id }, text), h('div', { class: 'actions' }, cancel, ok));
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    d.addEventListener('cancel', (ev) => { ev.preventDefault(); done(false); });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}

/**
 * The shared header: app name, page links for the role, connection status, language toggle,
 * sign out. onSignOut (optional, may be async) runs before the session is cleared.
 */
export function initHeader({ s, onSignOut } = {}) {
  const langBtn = document.getElementById('lang');
  if (langBtn) langBtn.addEventListener('click', () => toggleLang());
  const out = document.getElementById('signout');
  if (out) {
    out.addEventListener('click', async () => {
      try { if (onSignOut) await onSignOut(); } catch { /* sign out anyway */ }
      clearSession();
      location.href = 'index.html?signed_out=1';
    });
  }
  const who = document.getElementById('who');
  const renderWho = () => { if (who && s) who.textContent = `${s.name || ''} (${t('role.' + s.role)})`; };
  renderWho();
  onLang(renderWho);
  applyI18n();
}

/** Shows the connection state in #conn. */
export function showConn(state) {
  const el = document.getElementById('conn');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = t({ connecting: 'conn.connecting', open: 'conn.live', closed: 'conn.closed',
    polling: 'conn.polling', stats: 'conn.live.stats' }[state] || 'conn.connecting');
}

// signin.js -- the sign-in page: a pasted API token (or an OIDC JWT, validated by the server),
// kept in sessionStorage; the role comes from the websocket's hello; then on to the right page.
import { t, onLang } from './i18n.js';
import { api, session, saveSession, pageFor, initHeader } from './common.js';

const params = new URLSearchParams(location.search);
const next = params.get('next');
const msg = document.getElementById('signin-msg');
let health = null;

function renderHealth() {
  const el = document.getElementById('health');
  if (health === false) el.textContent = t('signin.unreachable');
  else if (health) el.textContent = t('signin.health', { version: health.version, live: health.berichten_live });
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

document.getElementById('signin').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = document.getElementById('token').value.trim();
  const wantWallboard = document.getElementById('wallboard').checked;
  if (!token) { msg.textContent = t('signin.bad'); return; }
  msg.className = '';
  msg.textContent = t('signin.checking');
  const who = await hello(token);
  if (!who) {
    // refused upgrade: tell an unknown token from a token without access
    let r = null;
    try { r = await api('/api/v1/queues', { token }); } catch { /* unreachable */ }
    msg.className = 'error';
    if (!r) msg.textContent = t('signin.unreachable');
    else if (r.status === 401) msg.textContent = t('signin.bad');
    else if (r.status === 429) msg.textContent = t('signin.ratelimited', { s: r.headers.get('Retry-After') || '60' });
    else msg.textContent = t('signin.forbidden', { role: '?' });
    return;
  }
  const page = nextPage(who.role, wantWallboard);
  if (!page) {
    msg.className = 'error';
    msg.textContent = t('signin.forbidden', { role: who.role });
    return;
  }
  saveSession({ token, role: who.role, name: who.name, agent: who.agent || null });
  location.href = page;
});

initHeader({ s: null });
if (params.get('signed_out')) msg.textContent = t('signin.signed_out');
if (params.get('expired')) msg.textContent = t('signin.expired');
if (next && next.startsWith('wallboard')) document.getElementById('wallboard').checked = true;
onLang(() => { renderHealth(); renderCurrent(); });
renderCurrent();
fetch('/api/v1/health').then((r) => r.json()).then((j) => { health = j; renderHealth(); })
  .catch(() => { health = false; renderHealth(); });

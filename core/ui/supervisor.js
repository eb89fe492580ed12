// supervisor.js -- the supervisor dashboard (R31, R32): per queue and per channel the live
// figures, agents by state with reasons and durations; open/close a queue (confirmed), log an
// agent in/out or set them not ready. Figures from live.js (websocket `stats`, else polling).
import { t, onLang } from './i18n.js';
import {
  api, requireSession, initHeader, showConn, h, dur, clock, stateLabel, reasonLabel, normReasons,
  pageData, confirmDialog, errorText, announce,
} from './common.js';
import { LiveFigures, shownState } from './live.js';
import { startMailHealth } from './mailhealth.js';
import { renderStaffing, setIntradayQueues, startIntraday } from './staffing.js';
import {
  initSupervise, manualClosed, queueConfirm, stillClosedText, renderQueueHead, renderAlarmSummary,
  renderHandling, createWaitingPanel, createLeftMessages,
} from './supervise.js';

const s = requireSession(['supervisor', 'admin']);
const $ = (id) => document.getElementById(id);
let reasons = normReasons(pageData().reason_codes) || [];
let model = null;
let live = null;

const num = (v) => (v == null ? t('dash') : String(v));
/** Berichten of an agent in a state: from `work` when there, else the busy/wrapup field (count or boolean). */
const count = (a, state, v) => (Array.isArray(a.work) ? a.work.filter((w) => w.state === state).length
  : typeof v === 'boolean' ? (v ? 1 : 0) : (v ?? 0));

/** The row for key in tbody, made by make(tr) the first time (cells stay, so focus stays). */
function row(tbody, key, ncells, make) {
  let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
  if (!tr) {
    tr = h('tr', { dataset: { key } });
    for (let i = 0; i < ncells; i++) tr.append(h(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : {}));
    if (make) make(tr);
    tbody.append(tr);
  }
  return tr;
}

function prune(tbody, keys) {
  for (const tr of [...tbody.children]) if (!keys.has(tr.dataset.key)) tr.remove();
}

function setCell(td, text, cls) {
  if (td.textContent !== text) td.textContent = text;
  if (cls !== undefined && td.className !== cls) td.className = cls;
}

// ------------------------------------------------------------------ queues

async function queueAction(q) {
  const closing = !manualClosed(q);   // supervise.js: "Openen" lifts a manual close only
  const title = q.title || q.name;
  const ok = await confirmDialog(queueConfirm(q, closing,
    t(closing ? 'sup.queue.confirm.close' : 'sup.queue.confirm.open', { queue: title })),
  { okLabel: t(closing ? 'sup.queue.close' : 'sup.queue.open') });
  const btn = $('queues').querySelector(`tr[data-key="${CSS.escape(q.name)}"] button`);
  if (btn) btn.focus();
  if (!ok) return;
  try {
    const r = await live.command({ type: closing ? 'queue_close' : 'queue_open', queue: q.name });
    $('sup-error').textContent = '';
    const stillClosed = !closing && r && r.open === false;
    announce($('feedback'), (stillClosed && stillClosedText(q)) ||
      t(stillClosed ? 'sup.queue.still_closed' : closing ? 'sup.queue.done.close' : 'sup.queue.done.open', { queue: title }));
  } catch (e) {
    $('sup-error').textContent = t('error.prefix', { text: errorText(e) });
  }
}

function renderQueues() {
  const tb = $('queues').querySelector('tbody');
  const keys = new Set();
  $('today-note').hidden = !!model.live;
  for (const q of model.queues || []) {
    keys.add(q.name);
    const tr = row(tb, q.name, 11, (tr) => {
      const btn = h('button', { type: 'button' });
      btn.addEventListener('click', () => {
        const cur = (model.queues || []).find((x) => x.name === q.name);
        if (cur) queueAction(cur);
      });
      tr.cells[10].append(btn);
    });
    const c = tr.cells;
    const title = q.title || q.name;
    const today = q.today || {};
    renderQueueHead(c[0], q, !!model.live);   // supervise.js: title, why open/closed, alarms
    setCell(c[1], t(q.open ? 'sup.open' : 'sup.closed'), q.open ? 'open' : 'closed');
    setCell(c[2], num(q.waiting), 'num');
    setCell(c[3], q.longest_wait_ms != null ? dur(q.longest_wait_ms) : t('dash'), 'num');
    setCell(c[4], today.avg_wait_ms != null ? dur(today.avg_wait_ms) : t('dash'), 'num');
    setCell(c[5], num(today.offered), 'num');
    setCell(c[6], num(today.answered), 'num');
    setCell(c[7], num(today.abandoned), 'num');
    const sl = today.service_level_pct;
    const slText = sl != null ? Math.round(sl) + '%' : t('dash');
    const norm = q.sl_target_pct != null ? t('sup.sl.norm', { target: q.sl_target_pct, secs: dur((q.sl_seconds || 0) * 1000) }) : '';
    if (c[8].dataset.v !== slText + norm) {
      c[8].dataset.v = slText + norm;
      c[8].replaceChildren(h('span', { class: sl != null && q.sl_target_pct != null ? (sl >= q.sl_target_pct ? 'ok' : 'error') : '' }, slText),
        norm ? h('br') : null, norm ? h('small', { class: 'muted' }, norm) : null);
    }
    c[8].className = 'num sl';
    const a = q.agents || {};
    setCell(c[9], [a.logged_in, a.ready, a.busy, a.wrapup, a.not_ready].map(num).join(' / '), 'num');
    const btn = c[10].querySelector('button');
    const closes = !manualClosed(q);
    setCell(btn, t(closes ? 'sup.queue.close' : 'sup.queue.open'));
    btn.className = closes ? 'danger' : 'primary';
    btn.setAttribute('aria-label', t(closes ? 'sup.queue.close.label' : 'sup.queue.open.label', { queue: title }));
  }
  prune(tb, keys);
}

// ------------------------------------------------------------------ channels

function renderChannels() {
  const tb = $('channels').querySelector('tbody');
  const keys = new Set();
  $('channels-note').hidden = !!model.channels;
  $('channels').hidden = !model.channels;
  for (const ch of model.channels || []) {
    keys.add(ch.channel);
    const tr = row(tb, ch.channel, 6);
    const today = ch.today || {};
    const c = tr.cells;
    setCell(c[0], ch.channel);
    setCell(c[1], num(ch.waiting), 'num');
    setCell(c[2], num(ch.active), 'num');
    setCell(c[3], num(today.offered), 'num');
    setCell(c[4], num(today.answered), 'num');
    setCell(c[5], num(today.abandoned), 'num');
  }
  prune(tb, keys);
}

// ------------------------------------------------------------------ agents

async function agentCommand(a, msg, confirmText) {
  const ok = await confirmDialog(confirmText);
  const tr = $('agents').querySelector(`tr[data-key="${CSS.escape(a.id)}"]`);
  if (tr) (tr.querySelector(`[data-action="${msg.type}"]`) || tr.querySelector('button'))?.focus();
  if (!ok) return;
  try {
    await live.command(msg);
    $('sup-error').textContent = '';
    announce($('feedback'), t('sup.agent.done', { what: `${msg.type} ${a.name || a.id}` }));
  } catch (e) {
    $('sup-error').textContent = t('error.prefix', { text: errorText(e) });
  }
}

function reasonOptions(sel) {
  const keep = sel.value;
  sel.replaceChildren(...reasons.filter((r) => r.code !== 'no-answer').map((r) => h('option', { value: r.code }, r.label)));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

function renderAgents() {
  const tb = $('agents').querySelector('tbody');
  const keys = new Set();
  for (const a of model.agents || []) {
    keys.add(a.id);
    const tr = row(tb, a.id, 8, (tr) => {
      const cur = () => (model.agents || []).find((x) => x.id === a.id) || a;
      const name = () => cur().name || a.id;
      const login = h('button', { type: 'button', class: 'primary', dataset: { action: 'agent_login' } });
      const logout = h('button', { type: 'button', class: 'danger', dataset: { action: 'agent_logout' } });
      const selId = 'nr-' + a.id.replace(/[^\w-]/g, '_');
      const sel = h('select', { id: selId });
      const lab = h('label', { for: selId, class: 'visually-hidden' });
      const nr = h('button', { type: 'submit', dataset: { action: 'agent_not_ready' } });
      const form = h('form', {}, lab, sel, nr);
      reasonOptions(sel);
      login.addEventListener('click', () => agentCommand(cur(), { type: 'agent_login', agent: a.id },
        t('sup.agent.login.label', { agent: name() }) + '?'));
      logout.addEventListener('click', () => agentCommand(cur(), { type: 'agent_logout', agent: a.id },
        t('sup.agent.confirm.logout', { agent: name() })));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        agentCommand(cur(), { type: 'agent_not_ready', agent: a.id, reason: sel.value },
          t('sup.agent.confirm.not_ready', { agent: name(), reason: reasonLabel(sel.value, reasons) }));
      });
      tr.cells[6].className = 'sup-actions';
      tr.cells[7].className = 'now-cell';
      tr.cells[6].append(h('div', { class: 'row' }, login, logout, form));
    });
    const c = tr.cells;
    const name = a.name || a.id;
    const out = a.state === 'logged_out';
    const shown = shownState(a);   // live.js: the wallboard counts the same way
    setCell(c[0], name);
    setCell(c[1], stateLabel(a.state) + (shown !== a.state ? ' · ' + stateLabel(shown) : ''), 'state state-' + shown);
    setCell(c[2], out ? '' : reasonLabel(a.reason, reasons));
    c[3].dataset.since = a.since > 0 ? a.since : '';   // null: no state change since acdmd started
    setCell(c[3], a.since > 0 ? dur(Date.now() - a.since) : t('dash'), 'num');
    const held = Array.isArray(a.work) ? a.work.filter((w) => w.held).length : 0;   // calls on hold
    setCell(c[4], `${count(a, 'active', a.busy)} / ${count(a, 'wrapup', a.wrapup)}` +
      (held ? ' · ' + t('sup.held', { n: held }) : ''), 'num');
    c[4].dataset.held = String(held);
    setCell(c[5], num(a.handled), 'num');
    const [login, logout] = c[6].querySelectorAll('button');
    const form = c[6].querySelector('form');
    login.hidden = !out;
    logout.hidden = out;
    form.hidden = out;
    setCell(login, t('sup.agent.login'));
    login.setAttribute('aria-label', t('sup.agent.login.label', { agent: name }));
    setCell(logout, t('sup.agent.logout'));
    logout.setAttribute('aria-label', t('sup.agent.logout.label', { agent: name }));
    const nr = form.querySelector('button');
    setCell(nr, t('sup.agent.not_ready'));
    nr.setAttribute('aria-label', t('sup.agent.not_ready.label', { agent: name }));
    setCell(form.querySelector('label'), t('sup.agent.reason.label', { agent: name }));
    renderHandling(c[7], a);   // supervise.js: customer, channel, since when; read along, reassign
  }
  prune(tb, keys);
}

function render() {
  if (!model) return;
  renderQueues();
  renderChannels();
  renderAgents();
  renderStaffing(model); setIntradayQueues(model);   // staffing.js
  renderAlarmSummary($('alarms'), model);
  $('updated').textContent = t('sup.updated', { time: clock(model.ts || Date.now()) });
}

function extra(m) {
  const l = normReasons(m.reason_codes);
  if (l && l.length) setReasons(l);
}

function setReasons(l) {
  reasons = l;
  for (const sel of $('agents').querySelectorAll('select')) reasonOptions(sel);
}

if (s) {
  initHeader({ s, onSignOut: () => live && live.sock.close() });
  let connState = 'connecting';
  live = new LiveFigures(s.token, {
    onModel: (m) => { model = m; render(); },
    onConn: (st) => { connState = st; showConn(st); },
    onExtra: extra,
  });
  onLang(() => { render(); showConn(connState); });
  initSupervise({ command: (m) => live.command(m), model: () => model, token: s.token, feedback: $('feedback') });
  createWaitingPanel($('sup-waiting'));
  createLeftMessages($('sup-left'));
  api('/api/v1/reason-codes').then((r) => { const l = r.ok && normReasons(r.json); if (l && l.length) setReasons(l); }, () => {});
  live.start();
  setInterval(() => {
    for (const td of $('agents').querySelectorAll('td[data-since]')) {
      if (Number(td.dataset.since)) td.textContent = dur(Date.now() - Number(td.dataset.since));
    }
  }, 1000);
}

startMailHealth($('channels').closest('.table-wrap'));
if (s) startIntraday();   // staffing.js: offered/answered per 15 minutes today   // mailhealth.js: e-mail channels' health

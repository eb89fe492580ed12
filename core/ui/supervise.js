// supervise.js -- what a supervisor does beside the figures (issue 14, "Supervisors"), kept out of
// supervisor.js so that file stays the dashboard's frame:
//  - queue status: why a queue is open or closed (schedule, by hand: who and when, emergency) and
//    what "Openen" does to the schedule, from the queue's `status` (stats / GET /api/v1/queues);
//  - alarms (service level under its norm, longest wait over the norm's seconds, berichten waiting
//    while nobody is logged in for the queue), shown in colour and in words on the dashboard and
//    the wallboard;
//  - what each agent is handling now (customer, channel, since when), with "Meelezen" (read
//    along: the thread from GET /api/v1/berichten/{id}, refreshed every 1.5 s, and whispering to
//    the agent with the websocket's `whisper`) and "Anders toewijzen" (`reassign`);
//  - the waiting berichten of every queue (GET /api/v1/queues/{name}/waiting), each assignable;
//  - the messages left while closed (GET /api/v1/berichten?source=webchat-leave-message).
import './i18n_supervise.js';
import { t, tn, lang } from './i18n.js';
import { api, h, dur, clock, dateTime, kindLabel, stateLabel, errorText, announce } from './common.js';

const READ_ALONG_MS = 1500;
const WAITING_MS = 3000;
const LEFT_MS = 15000;
const LEFT_DAYS = 30;
export const LEFT_SOURCE = 'webchat-leave-message';

let ctx = { command: async () => { throw new Error('not ready'); }, model: () => null, token: null, feedback: null };

/** command(msg): the dashboard's LiveFigures.command; model(): the latest stats model. */
export function initSupervise(c) { ctx = { ...ctx, ...c }; }

// ------------------------------------------------------------------ queue status

/** Closed by hand (what "Openen" lifts); without a server `status`, closed means by hand. */
export function manualClosed(q) { return q.status ? !!q.status.manual_closed : !q.open; }

function locale() { return lang() === 'en' ? 'en-GB' : 'nl-NL'; }

/** "17:00" today, else "ma 08:00" (within a week), else a date and time. */
export function whenText(ms) {
  const d = new Date(ms), now = new Date();
  const time = d.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === now.toDateString()) return time;
  if (ms - Date.now() < 6.5 * 86400000 && ms > Date.now())
    return t('sup.st.day.at', { day: d.toLocaleDateString(locale(), { weekday: 'short' }), time });
  return dateTime(ms);
}

function afterOpen(st) {
  const until = st.until_ms ? whenText(st.until_ms) : null;
  if (!st.schedule) return t('sup.st.after.always');
  if (st.schedule_open) return until ? t('sup.st.after.open_until', { until }) : t('sup.st.after.open');
  return until ? t('sup.st.after.closed_until', { until }) : t('sup.st.after.closed');
}

/** The sentence under a queue's name: why it is open or closed now and what "Openen" would do. */
export function statusLine(q) {
  const st = q.status;
  if (!st) return '';
  const until = st.until_ms ? whenText(st.until_ms) : null;
  if (q.open) {
    if (!st.schedule) return t('sup.st.open.always');
    return until ? t('sup.st.open.until', { until }) : t('sup.st.open.schedule');
  }
  if (st.why === 'emergency') return t('sup.st.emergency');
  if (st.why === 'manual') {
    const who = st.by ? t('sup.st.manual.by', { by: st.by, at: st.at_ms ? whenText(st.at_ms) : '?' })
      : t('sup.st.manual.config');
    return `${who} — ${afterOpen(st)}`;
  }
  return until ? t('sup.st.schedule.until', { until }) : t('sup.st.schedule');
}

/** The confirmation for the queue's action (closing: a manual close). */
export function queueConfirm(q, closing, fallback) {
  const title = q.title || q.name;
  const st = q.status;
  if (!st) return fallback;
  if (!closing) return t('sup.st.confirm.open', { queue: title, after: afterOpen(st) });
  if (!q.open && st.why === 'schedule') {
    return st.until_ms ? t('sup.st.confirm.close.schedule', { queue: title, until: whenText(st.until_ms) })
      : t('sup.st.confirm.close.schedule.nountil', { queue: title });
  }
  return fallback;
}

/** After "Openen" left the queue closed: why (the schedule, or an emergency close), from the
 *  status it had before. */
export function stillClosedText(q) {
  if (!q || !q.status) return null;
  const st = q.status;
  const line = st.why === 'emergency' ? t('sup.st.emergency')
    : st.until_ms && !st.schedule_open ? t('sup.st.schedule.until', { until: whenText(st.until_ms) }) : t('sup.st.schedule');
  return t('sup.st.still_closed', { queue: q.title || q.name, line });
}

// ------------------------------------------------------------------ alarms

/** The alarm sentences of a queue (empty: within the norms). */
export function queueAlarms(q, live = true) {
  const out = [];
  const today = q.today || {};
  const sl = today.service_level_pct;
  if (live && sl != null && q.sl_target_pct != null && sl < q.sl_target_pct)
    out.push(t('sup.alarm.sl', { sl: Math.round(sl * 10) / 10, target: q.sl_target_pct }));
  if (q.waiting > 0 && q.sl_seconds > 0 && (q.longest_wait_ms || 0) > q.sl_seconds * 1000)
    out.push(t('sup.alarm.wait', { wait: dur(q.longest_wait_ms), norm: dur(q.sl_seconds * 1000) }));
  if (q.waiting > 0 && q.agents && q.agents.logged_in === 0) out.push(tn('sup.alarm.nobody', q.waiting));
  return out;
}

/** A list of alarms in words with a warning sign (the sign alone is not the message). */
export function alarmList(texts, cls = 'alarms') {
  if (!texts.length) return null;
  return h('ul', { class: cls }, texts.map((x) => h('li', {},
    h('span', { class: 'alarm-icon', 'aria-hidden': 'true' }, '⚠ '),
    h('span', { class: 'visually-hidden' }, t('sup.alarm.prefix') + ': '), x)));
}

/** The queue's name cell: title, status sentence, alarms; the row is marked when in alarm. */
export function renderQueueHead(th, q, live) {
  const title = q.title || q.name;
  const line = statusLine(q);
  const alarms = queueAlarms(q, live);
  const key = JSON.stringify([title, line, alarms]);
  if (th.dataset.v === key) return;
  th.dataset.v = key;
  th.replaceChildren(...[h('span', { class: 'qtitle' }, title),
    line ? h('small', { class: 'qstatus' + (q.open ? '' : ' closed-why') }, line) : null,
    alarmList(alarms)].filter(Boolean));
  const tr = th.closest('tr');
  if (tr) tr.classList.toggle('alarm', alarms.length > 0);
}

/** The page's alarm summary: one line per alarm over every queue. */
export function renderAlarmSummary(el, model) {
  if (!el || !model) return;
  const lines = [];
  for (const q of model.queues || []) {
    for (const a of queueAlarms(q, !!model.live)) lines.push(t('sup.alarm.line', { queue: q.title || q.name, text: a }));
  }
  const key = JSON.stringify(lines) + lang();
  if (el.dataset.v === key) return;
  el.dataset.v = key;
  el.classList.toggle('in-alarm', lines.length > 0);
  el.replaceChildren(h('h2', { id: 'alarms-h' }, t('sup.alarms')),
    lines.length ? alarmList(lines) : h('p', { class: 'ok' }, t('sup.alarms.none')));
}

// ------------------------------------------------------------------ what each agent handles now

function kindWord(k) {
  const s = kindLabel(k);
  return s.length > 1 && s[1] === s[1].toLowerCase() ? s[0].toLowerCase() + s.slice(1) : s;
}

function workText(w) {
  const vars = { kind: kindLabel(w.kind), from: w.from || '?', channel: w.channel || '?', state: stateLabel(w.state) };
  return w.since_ms ? t('sup.now.item', { ...vars, since: dur(Date.now() - w.since_ms) }) : t('sup.now.item.nosince', vars);
}

/** The "Nu in behandeling" cell of agent a: one line per work item, with its actions. */
export function renderHandling(td, a) {
  const work = Array.isArray(a.work) ? a.work : [];
  let ul = td.querySelector('ul.now');
  if (!ul) { ul = h('ul', { class: 'now' }); td.replaceChildren(ul); }
  const keep = new Set(work.map((w) => w.bericht));
  for (const li of [...ul.children]) if (!keep.has(li.dataset.bericht)) li.remove();
  const agent = a.name || a.id;
  for (const w of work) {
    let li = ul.querySelector(`li[data-bericht="${CSS.escape(w.bericht)}"]`);
    if (!li) {
      li = h('li', { dataset: { bericht: w.bericht } }, h('span', { class: 'what' }));
      const ra = h('button', { type: 'button', class: 'link', dataset: { action: 'readalong' } });
      ra.addEventListener('click', () => openReadAlong(w.bericht, { agent: li.dataset.agent, from: li.dataset.from, back: ra }));
      const re = h('button', { type: 'button', class: 'link', dataset: { action: 'reassign' } });
      re.addEventListener('click', () => openReassign({ id: w.bericht, from: li.dataset.from, kind: li.dataset.kind, offeredTo: li.dataset.agentId }, re));
      li.append(' ', ra, re);
      ul.append(li);
    }
    Object.assign(li.dataset, { agent, agentId: a.id, from: w.from || '?', kind: w.kind, state: w.state });
    const text = workText(w);
    const span = li.querySelector('.what');
    if (span.textContent !== text) span.textContent = text;
    const [ra, re] = li.querySelectorAll('button');
    ra.hidden = w.state === 'offered';
    re.hidden = w.state !== 'offered';
    const vars = { agent, from: w.from || '?' };
    if (ra.textContent !== t('sup.now.readalong')) ra.textContent = t('sup.now.readalong');
    ra.setAttribute('aria-label', t('sup.now.readalong.label', vars));
    if (re.textContent !== t('sup.now.reassign')) re.textContent = t('sup.now.reassign');
    re.setAttribute('aria-label', t('sup.now.reassign.label', vars));
  }
  let none = td.querySelector('.none');
  if (!work.length && !none) td.append(none = h('span', { class: 'muted none' }));
  if (none) { none.hidden = work.length > 0; none.textContent = t('sup.now.none'); }
}

/** Ticks the "since" of every handling line (the stats come every second; polling every 2 s). */
export function tickHandling(root) {
  const m = ctx.model();
  if (!m) return;
  for (const a of m.agents || []) {
    const tr = root.querySelector(`tr[data-key="${CSS.escape(a.id)}"]`);
    const td = tr && tr.querySelector('td.now-cell');
    if (td) renderHandling(td, a);
  }
}

// ------------------------------------------------------------------ dialogs

let dialogSeq = 0;

function modal(title, body, { onClose } = {}) {
  const id = 'sv-dlg-' + (++dialogSeq);
  const close = h('button', { type: 'button' }, t('sup.ra.close'));
  const d = h('dialog', { 'aria-labelledby': id, class: 'supervise' }, h('h2', { id }, title), ...body,
    h('div', { class: 'actions' }, close));
  const done = () => { if (!d.open) return; d.close(); d.remove(); if (onClose) onClose(); };
  close.addEventListener('click', done);
  d.addEventListener('cancel', (ev) => { ev.preventDefault(); done(); });
  document.body.append(d);
  d.showModal();
  return { d, done, close };
}

/** The Dutch (or English) sentence for a refused reassign. */
function reassignRefusal(e, agentName, kind) {
  const why = e && (e.why || (e.code === 'not_found' ? 'not_live' : null));
  const key = 'sup.re.why.' + why;
  const s = t(key, { agent: agentName, kind: kindWord(kind) });
  return s !== key ? s : t('sup.re.why.other', { text: errorText(e) });
}

/** Offers bericht {id, from, kind, offeredTo} to an agent chosen in a dialog. */
export function openReassign(b, back) {
  const m = ctx.model() || {};
  const sel = h('select', { id: 'sv-re-agent' });
  const agents = [...(m.agents || [])].sort((x, y) => (x.state === 'logged_out') - (y.state === 'logged_out'));
  for (const a of agents) {
    if (a.id === b.offeredTo) continue;
    const busy = Array.isArray(a.work) ? a.work.filter((w) => w.state !== 'offered').length : 0;
    sel.append(h('option', { value: a.id }, a.state === 'logged_out' ? t('sup.re.option.out', { name: a.name || a.id })
      : t('sup.re.option', { name: a.name || a.id, state: stateLabel(a.state), busy })));
  }
  const err = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('sup.re.submit'));
  const form = h('form', {}, h('label', { for: 'sv-re-agent' }, t('sup.re.agent')), ' ', sel, ' ', submit);
  const dlg = modal(t('sup.re.title', { from: b.from || '?' }), [form, err], { onClose: () => back && back.isConnected && back.focus() });
  sel.focus();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const a = agents.find((x) => x.id === sel.value);
    const name = a ? a.name || a.id : sel.value;
    submit.disabled = true;
    try {
      await ctx.command({ type: 'reassign', bericht: b.id, agent: sel.value });
      dlg.done();
      if (ctx.feedback) announce(ctx.feedback, t('sup.re.done', { from: b.from || '?', agent: name }));
    } catch (e) {
      err.textContent = reassignRefusal(e, name, b.kind);
      sel.focus();
    } finally {
      submit.disabled = false;
    }
  });
}

function threadLines(b, agentName) {
  const lines = (b.messages || []).map((x) => ({
    ts: x.ts, cls: x.direction === 'out' ? 'out' : 'in',
    who: x.direction === 'out' ? t('sup.ra.agent', { agent: agentName }) : t('sup.ra.customer'),
    text: x.text != null ? x.text : t('sup.ra.payload'),
  }));
  for (const e of b.events || []) {
    if (e.type === 'whisper' && e.detail)
      lines.push({ ts: e.ts, cls: 'whisper', who: t('sup.ra.whisper.from', { by: e.detail.by }), text: e.detail.text });
  }
  return lines.sort((x, y) => x.ts - y.ts);
}

/** Read along with a live conversation and whisper to its agent. */
export function openReadAlong(id, { agent, from, back } = {}) {
  const log = h('div', { class: 'thread readalong', role: 'log', tabindex: '0', 'aria-label': t('sup.ra.thread', { agent, from }) },
    h('p', { class: 'muted' }, t('sup.ra.loading')));
  const ended = h('p', { class: 'muted', hidden: true }, t('sup.ra.ended'));
  const ta = h('textarea', { id: 'sv-whisper', rows: '2' });
  const send = h('button', { type: 'submit', class: 'primary' }, t('sup.ra.whisper.send'));
  const status = h('p', { role: 'status' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'whisper-form' }, h('label', { for: 'sv-whisper' }, t('sup.ra.whisper', { agent })), ta,
    h('div', { class: 'row' }, send));
  let timer = null, shown = '';
  const dlg = modal(t('sup.ra.title', { agent, from }), [log, ended, form, status, err], {
    onClose: () => { clearInterval(timer); if (back && back.isConnected) back.focus(); },
  });
  ta.focus();
  const load = async () => {
    try {
      const r = await api('/api/v1/berichten/' + encodeURIComponent(id), { token: ctx.token });
      if (!r.ok || !r.json) return;
      const lines = threadLines(r.json, agent);
      const key = JSON.stringify(lines.map((l) => [l.ts, l.cls, l.text])) + lang();
      const over = ['done', 'abandoned', 'closed'].includes(r.json.state);
      ended.hidden = !over;
      if (key === shown) return;
      shown = key;
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.replaceChildren(...lines.map((l) => h('div', { class: 'msg ' + l.cls },
        h('span', { class: 'who' }, `${l.who} · ${clock(l.ts)}`), l.text)));
      if (atEnd || log.scrollTop === 0) log.scrollTop = log.scrollHeight;
    } catch { /* the next round */ }
  };
  load();
  timer = setInterval(() => { if (dlg.d.open) load(); else clearInterval(timer); }, READ_ALONG_MS);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = ta.value.trim();
    err.textContent = '';
    if (!text) { err.textContent = t('sup.ra.whisper.empty'); ta.focus(); return; }
    send.disabled = true;
    try {
      await ctx.command({ type: 'whisper', bericht: id, text });
      ta.value = '';
      announce(status, t('sup.ra.whisper.sent', { agent }));
      load();
    } catch (e) {
      err.textContent = e && e.why === 'not_with_agent' ? t('sup.ra.whisper.not_with_agent') : t('error.prefix', { text: errorText(e) });
    } finally {
      send.disabled = false;
      ta.focus();
    }
  });
}

// ------------------------------------------------------------------ waiting berichten

/** The waiting berichten of every queue with any, each with "Toewijzen…". */
export function createWaitingPanel(section) {
  const tbody = section.querySelector('tbody');
  const none = section.querySelector('.none');
  let busy = false;
  const refresh = async () => {
    const m = ctx.model();
    if (busy || !m) return;
    busy = true;
    try {
      const qs = (m.queues || []).filter((q) => q.waiting > 0);
      const lists = await Promise.all(qs.map((q) => api(`/api/v1/queues/${encodeURIComponent(q.name)}/waiting?limit=50`,
        { token: ctx.token }).then((r) => (r.ok ? (r.json.berichten || []).map((b) => ({ ...b, q })) : []), () => [])));
      const rows = lists.flat();
      const keys = new Set(rows.map((b) => b.id));
      for (const tr of [...tbody.children]) if (!keys.has(tr.dataset.key)) tr.remove();
      for (const b of rows) {
        let tr = tbody.querySelector(`tr[data-key="${CSS.escape(b.id)}"]`);
        if (!tr) {
          const btn = h('button', { type: 'button' });
          btn.addEventListener('click', () => openReassign({ id: b.id, from: tr.dataset.from, kind: tr.dataset.kind }, btn));
          tr = h('tr', { dataset: { key: b.id } }, h('th', { scope: 'row' }), h('td'), h('td'), h('td'), h('td', { class: 'num' }), h('td', {}, btn));
          tbody.append(tr);
        }
        Object.assign(tr.dataset, { from: b.from || '?', kind: b.kind });
        const c = tr.cells;
        c[0].textContent = b.q.title || b.q.name;
        c[1].textContent = kindLabel(b.kind);
        c[2].textContent = b.from || '?';
        c[3].textContent = b.subject || '';
        c[4].textContent = dur(b.wait_ms);
        const btn = c[5].querySelector('button');
        btn.textContent = t('sup.waiting.assign');
        btn.setAttribute('aria-label', t('sup.waiting.assign.label', { from: b.from || '?', queue: b.q.title || b.q.name }));
      }
      none.hidden = rows.length > 0;
      section.querySelector('table').hidden = !rows.length;
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, WAITING_MS);
  return { refresh };
}

// ------------------------------------------------------------------ messages left while closed

/** Messages left with the web chat's form while closed: when, from, subject, queue, status, handler. */
export function createLeftMessages(section) {
  const tbody = section.querySelector('tbody');
  const none = section.querySelector('.none');
  const err = section.querySelector('.error');
  const name = (id) => {
    const a = ((ctx.model() || {}).agents || []).find((x) => x.id === id);
    return a ? a.name || a.id : id;
  };
  let items = [];
  const render = () => {
    tbody.replaceChildren(...items.map((b) => h('tr', { dataset: { key: b.id } },
      h('td', {}, dateTime(b.created_ms)), h('th', { scope: 'row' }, b.from || '?'), h('td', {}, b.subject || ''),
      h('td', {}, b.queue || ''), h('td', { class: 'bstate bstate-' + b.state }, t('bstate.' + b.state)),
      h('td', {}, b.agent ? name(b.agent) : h('span', { class: 'muted' }, t('sup.left.nobody'))))));
    none.hidden = items.length > 0;
    section.querySelector('table').hidden = !items.length;
  };
  const refresh = async () => {
    try {
      // the last 30 days (the search then reads only those berichten, not the whole table)
      const since = Date.now() - LEFT_DAYS * 86400000;
      const r = await api(`/api/v1/berichten?source=${LEFT_SOURCE}&since=${since}&limit=50`, { token: ctx.token });
      if (!r.ok) throw new Error((r.json && (r.json.detail || r.json.title)) || String(r.status));
      items = r.json.items || [];
      err.textContent = '';
      render();
    } catch (e) {
      err.textContent = t('sup.left.failed', { text: e.message || String(e) });
    }
  };
  section.querySelector('button.refresh').addEventListener('click', refresh);
  refresh();
  setInterval(refresh, LEFT_MS);
  return { refresh, render };
}

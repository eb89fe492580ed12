// desk_extras.js -- what an agent uses beside the conversation itself (issue 14), kept out of
// agent.js:
//  - standard answers (snippets, GET /api/v1/snippets) in the composer: "/" at the start of a
//    line or Ctrl+Space opens a list filtered by what is typed after it; arrows choose, Enter
//    inserts the text with {klant} {agent} {wachtrij} filled in, Escape closes;
//  - the alerts on an offer (sound, the tab title, a browser notification), each switchable in
//    "Meldingen" and remembered in localStorage;
//  - internal notes (`note`; in the customer history, never to the citizen), the transfer note
//    (an escalation) and what became of escalated berichten (GET /api/v1/escalations);
//  - asking a colleague (`consult`): the question about a conversation, the colleague's
//    "Overleg" panel with a read-only view of the conversation and an answer form.
import { t, lang } from './i18n.js';
import { h, clock, dateTime, kindLabel, stateLabel, announce } from './common.js';

// ------------------------------------------------------------------ snippets

let snippetCache = null;   // {at, list}
let snippetLoad = null;    // the one request in flight
const SNIPPET_TTL_MS = 60000;

/** The snippet list: GET /api/v1/snippets at most once at a time, kept SNIPPET_TTL_MS. */
async function snippets(api) {
  if (snippetCache && Date.now() - snippetCache.at < SNIPPET_TTL_MS) return snippetCache.list;
  if (!snippetLoad) {
    snippetLoad = (async () => {
      try {
        const r = await api('/api/v1/snippets');
        if (r.ok && r.json && Array.isArray(r.json.snippets)) snippetCache = { at: Date.now(), list: r.json.snippets };
      } catch { /* the last list, or none */ }
      snippetLoad = null;
    })();
  }
  await snippetLoad;
  return snippetCache ? snippetCache.list : [];
}

/** The snippet's text with its placeholders filled: {klant} / {customer} / {customer name},
 *  {agent}, {wachtrij} / {queue}. */
export function fillSnippet(text, { customer, agent, queue }) {
  const who = customer || t('snippet.customer.unknown');
  return text.replace(/\{(klant|klantnaam|customer|customer name|agent|medewerker|wachtrij|queue)\}/gi, (m, k) => {
    const key = k.toLowerCase();
    if (key === 'agent' || key === 'medewerker') return agent || '';
    if (key === 'wachtrij' || key === 'queue') return queue || '';
    return who;
  });
}

function norm(s) { return s.toLocaleLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, ''); }

/** Those usable for this conversation (its queue or every queue, the desk's language or every
 *  language), filtered by every word of query; title matches first. */
export function matchSnippets(list, { queue, language, query }) {
  const words = norm(query || '').split(/\s+/).filter(Boolean);
  const ok = list.filter((s) => (!s.queue || s.queue === queue) && (!s.language || s.language === language));
  const scored = [];
  for (const s of ok) {
    const title = norm(s.title);
    const all = title + ' ' + norm(s.text);
    if (!words.every((w) => all.includes(w))) continue;
    scored.push({ s, score: words.filter((w) => title.includes(w)).length });
  }
  return scored.sort((a, z) => z.score - a.score || a.s.title.localeCompare(z.s.title)).map((x) => x.s);
}

/**
 * The snippet list under a conversation's composer. ctx: {api, agentName(), queueTitle(), customer()}.
 * The textarea keeps the focus; the list is a listbox named by aria-activedescendant.
 */
export function attachSnippets(c, form, ctx) {
  const safe = c.brief.id.replace(/[^\w-]/g, '_');
  const listId = `snip-${safe}`;
  const box = h('div', { class: 'snippets', id: listId, role: 'listbox', 'aria-label': t('snippet.list'), hidden: true });
  const status = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  c.input.after(box, status);
  c.input.setAttribute('aria-controls', listId);
  // the open list: where "/" began (start), where the query begins (qStart), the query the items
  // were matched for (q; null while the first list loads), the selection, an Enter pressed
  // before the list had caught up with the typing (pending)
  let st = null;   // {start, qStart, q, items, sel, pending}

  const close = () => {
    st = null;
    box.hidden = true;
    box.replaceChildren();
    c.input.removeAttribute('aria-activedescendant');
  };
  const show = () => {
    const opts = st.items.map((s, i) => h('div', {
      role: 'option', id: `${listId}-${i}`, class: 'snippet' + (i === st.sel ? ' sel' : ''),
      'aria-selected': String(i === st.sel), dataset: { snippet: s.id },
      onmousedown: (ev) => { ev.preventDefault(); st.sel = i; insert(); },
    }, h('span', { class: 'snippet-title' }, s.title), ' ', h('span', { class: 'muted' }, preview(s.text))));
    box.replaceChildren(...(opts.length ? opts : [h('div', { role: 'option', 'aria-disabled': 'true', 'aria-selected': 'false',
      id: `${listId}-none`, class: 'muted' }, t('snippet.none'))]));
    box.hidden = false;
    if (st.items.length) c.input.setAttribute('aria-activedescendant', `${listId}-${st.sel}`);
    else c.input.removeAttribute('aria-activedescendant');
    status.textContent = st.items.length ? t('snippet.count', { n: st.items.length, title: st.items[st.sel].title }) : t('snippet.none');
  };
  /** The query typed after "/" now, or null when the caret left it (the list closes). */
  const query = () => {
    const caret = c.input.selectionStart;
    const q = c.input.value.slice(st.qStart, caret);
    return caret < st.qStart || /\n/.test(q) ? null : q;
  };
  const apply = (list, q) => {
    if (st.q !== q) st.sel = 0;
    st.q = q;
    st.items = matchSnippets(list, { queue: c.brief.queue, language: lang(), query: q }).slice(0, 8);
    st.sel = Math.min(st.sel, Math.max(0, st.items.length - 1));
    show();
  };
  // The list follows every key at once from the cached snippets (typing "/slot" and Enter
  // inserts what matches "slot", never the match of an earlier "s"); only the first list waits
  // for the server, and an Enter meanwhile inserts once it is there.
  const refresh = async () => {
    if (!st) return;
    const q = query();
    if (q === null) { close(); return; }
    if (snippetCache) {
      apply(snippetCache.list, q);
      if (Date.now() - snippetCache.at >= SNIPPET_TTL_MS) snippets(ctx.api);   // renewed for the next key
      return;
    }
    const list = await snippets(ctx.api);
    if (!st) return;
    const now = query();
    if (now === null) { close(); return; }
    apply(list, now);
    if (st.pending) { st.pending = false; insert(); }
  };
  const open = (start, qStart) => { st = { start, qStart, q: null, items: [], sel: 0, pending: false }; refresh(); };
  const insert = () => {
    const s = st && st.items[st.sel];
    if (!s) return;
    const text = fillSnippet(s.text, { customer: ctx.customer(), agent: ctx.agentName(), queue: ctx.queueTitle() });
    const v = c.input.value;
    const end = c.input.selectionStart;
    c.input.value = v.slice(0, st.start) + text + v.slice(end);
    const pos = st.start + text.length;
    c.input.setSelectionRange(pos, pos);
    close();
    c.input.dispatchEvent(new Event('input', { bubbles: true }));
    announce(status, t('snippet.inserted', { title: s.title }));
  };

  c.input.addEventListener('input', (ev) => {
    if (st) { refresh(); return; }
    if (ev && ev.inputType && !ev.inputType.startsWith('insert')) return;
    const caret = c.input.selectionStart;
    const v = c.input.value;
    // "/" typed at the start of the text or of a line
    if (caret > 0 && v[caret - 1] === '/' && (caret === 1 || v[caret - 2] === '\n')) open(caret - 1, caret);
  });
  // capture on the form: before the textarea's own Enter-sends handler (agent.js)
  form.addEventListener('keydown', (ev) => {
    if (ev.target !== c.input) return;
    if (ev.key === ' ' && ev.ctrlKey) {
      ev.preventDefault();
      const caret = c.input.selectionStart;
      open(caret, caret);
      return;
    }
    if (!st) return;
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); close(); return; }
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      if (!st.items.length) return;
      ev.preventDefault();
      st.sel = (st.sel + (ev.key === 'ArrowDown' ? 1 : st.items.length - 1)) % st.items.length;
      show();
      return;
    }
    if ((ev.key === 'Enter' || ev.key === 'Tab') && !ev.isComposing) {
      if (st.q === null) {   // the first list is still on its way: insert when it comes
        ev.preventDefault();
        ev.stopPropagation();
        st.pending = true;
        return;
      }
      const q = query();
      if (q !== null && q !== st.q) apply(snippetCache ? snippetCache.list : [], q);
      if (!st.items.length) return;
      ev.preventDefault();
      ev.stopPropagation();
      insert();
    }
  }, true);
  c.input.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== c.input) close(); }, 150));
}

function preview(text, n = 80) { return text.length > n ? text.slice(0, n - 1) + '…' : text; }

// ------------------------------------------------------------------ alerts on an offer

const ALERTS_KEY = 'acdm.desk.alerts';
const DEFAULT_ALERTS = { sound: true, title: true, notify: false };

export function alertSettings() {
  try { return { ...DEFAULT_ALERTS, ...JSON.parse(localStorage.getItem(ALERTS_KEY) || '{}') }; } catch { return { ...DEFAULT_ALERTS }; }
}
function saveAlerts(a) { try { localStorage.setItem(ALERTS_KEY, JSON.stringify(a)); } catch { /* private mode */ } }

/** The "Meldingen" panel: three switches, remembered. */
export function renderAlertSettings(root, onChange) {
  const a = alertSettings();
  const err = h('p', { class: 'error', role: 'alert' });
  const box = (key) => {
    const id = 'alert-' + key;
    const cb = h('input', { type: 'checkbox', id, checked: !!a[key] });
    cb.addEventListener('change', async () => {
      err.textContent = '';
      const cur = alertSettings();
      cur[key] = cb.checked;
      if (key === 'notify' && cb.checked) {
        const ok = typeof Notification !== 'undefined' &&
          (Notification.permission === 'granted' || (await Notification.requestPermission()) === 'granted');
        if (!ok) { cb.checked = false; cur.notify = false; err.textContent = t('alert.notify.denied'); }
      }
      saveAlerts(cur);
      if (onChange) onChange(cur);
    });
    return h('li', {}, cb, ' ', h('label', { for: id }, t({ sound: 'alert.sound', title: 'alert.title.label', notify: 'alert.notify' }[key])));
  };
  root.replaceChildren(h('ul', { class: 'queues-list' }, box('sound'), box('title'), box('notify')), err);
}

let audioCtx = null;
function beep() {
  try {
    audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    const t0 = audioCtx.currentTime;
    for (const [f, at] of [[880, 0], [660, 0.18]]) {
      const o = audioCtx.createOscillator();
      const g = audioCtx.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.15, t0 + at);
      g.gain.exponentialRampToValueAtTime(0.001, t0 + at + 0.16);
      o.connect(g).connect(audioCtx.destination);
      o.start(t0 + at);
      o.stop(t0 + at + 0.17);
    }
  } catch { /* no audio */ }
}

/** A new offer: the sound and the notification as switched on (the title: offerTitle). */
export function alertOffer({ id, kind, from, queue, preview: pv, onClick }) {
  const a = alertSettings();
  if (a.sound) beep();
  if (a.notify && typeof Notification !== 'undefined' && Notification.permission === 'granted') {
    try {
      const n = new Notification(t('alert.notify.title', { kind: kindLabel(kind), from }), {
        body: [t('alert.notify.body', { queue }), pv].filter(Boolean).join('\n'), tag: 'acdm-offer-' + id,
      });
      n.onclick = () => { window.focus(); if (onClick) onClick(); n.close(); };
    } catch { /* the notification is optional */ }
  }
}

/** The tab's title: "(2) Nieuw aanbod – acdm" while offers wait and the switch is on. */
export function offerTitle(n) {
  document.title = n > 0 && alertSettings().title ? t('alert.tab', { n }) : t('agent.title');
}

// ------------------------------------------------------------------ notes and escalations

/** The notes of a bericht from its event log (GET /api/v1/berichten/{id}): [{ts, by, text, to}]. */
export function notesOf(b) {
  return (b.events || []).filter((e) => e.type === 'note').map((e) => {
    let d = e.detail;
    if (typeof d === 'string') { try { d = JSON.parse(d); } catch { d = {}; } }
    d = d || {};
    return { ts: e.ts, by: d.author_name || e.agent || '', text: d.text || '', toQueue: d.to_queue || null, toAgent: d.to_agent || null };
  });
}

/** The topics last registered for a bericht (its `topics` events), or []. */
export function topicsOf(b) {
  const ev = (b.events || []).filter((e) => e.type === 'topics').pop();
  if (!ev) return [];
  let d = ev.detail;
  if (typeof d === 'string') { try { d = JSON.parse(d); } catch { d = null; } }
  return d && Array.isArray(d.topics) ? d.topics : [];
}

/** The notes block of a card: the list, and a form to add one (`note`). */
export function attachNotes(c, { send, queueTitle }) {
  const safe = c.brief.id.replace(/[^\w-]/g, '_');
  c.notes = [];
  const list = h('ul', { class: 'notes', 'aria-labelledby': `notes-${safe}-h` });
  const input = h('textarea', { id: `note-${safe}`, rows: '2', 'aria-describedby': `note-${safe}-hint` });
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { type: 'submit' }, t('note.add'));
  const form = h('form', { class: 'note-form' },
    h('label', { for: `note-${safe}` }, t('note.label')), input,
    h('p', { id: `note-${safe}-hint`, class: 'muted' }, t('note.hint')), btn, err);
  const head = h('summary', { id: `notes-${safe}-h` });
  c.notesBox = h('details', { class: 'notes-box' }, head, list, form);
  const render = () => {
    head.textContent = c.notes.length ? t('note.title.n', { n: c.notes.length }) : t('note.title');
    list.replaceChildren(...c.notes.map((n) => h('li', {}, h('span', { class: 'who' },
      `${n.by} · ${dateTime(n.ts)}` + (n.toQueue ? ' · ' + t('note.escalated', { queue: queueTitle(n.toQueue) }) : '')), ' ', n.text)));
    if (c.notes.length) c.notesBox.open = true;
  };
  c.renderNotes = render;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) { err.textContent = t('note.required'); input.focus(); return; }
    err.textContent = '';
    send({ type: 'note', bericht: c.brief.id, text }, err).then(() => {
      c.notes.push({ ts: Date.now(), by: t('note.me'), text });
      input.value = '';
      render();
    }, () => {});
  });
  render();
  return c.notesBox;
}

function escalationStatus(x, queueTitle) {
  const who = x.handler_name || x.handler || '';
  switch (x.state) {
    case 'queued': return t('esc.state.queued', { queue: queueTitle(x.queue) });
    case 'offered': return t('esc.state.offered', { queue: queueTitle(x.queue) });
    case 'active': return t('esc.state.active', { who, queue: queueTitle(x.queue) });
    case 'wrapup': return t('esc.state.wrapup', { who });
    case 'done': return who ? t('esc.state.done', { who }) : t('esc.state.done.nobody');
    case 'abandoned': return t('esc.state.abandoned');
    default: return x.state ? stateLabel(x.state) : t('dash');
  }
}

/** The "Doorgezet" panel: what became of the berichten this agent handed on with a note. */
export function createEscalations(root, { api, queueTitle, pollMs = 10000 }) {
  let items = [];
  let failed = false;
  const render = () => {
    if (failed && !items.length) { root.replaceChildren(h('p', { class: 'muted' }, t('esc.unavailable'))); return; }
    if (!items.length) { root.replaceChildren(h('p', { class: 'muted' }, t('esc.none'))); return; }
    root.replaceChildren(h('ul', { class: 'escalations' }, items.slice(0, 20).map((x) => h('li', { dataset: { bericht: x.bericht, state: x.state || '' } },
      h('span', { class: 'who' }, `${clock(x.ts)} · ${kindLabel(x.kind)} · ${x.from || '?'}` +
        (x.to_queue ? ' → ' + queueTitle(x.to_queue) : x.to_agent ? ' → ' + x.to_agent : '')),
      h('strong', { class: 'esc-state' }, escalationStatus(x, queueTitle)),
      x.note ? h('span', { class: 'muted esc-note' }, t('esc.note', { text: x.note })) : null))));
  };
  const load = async () => {
    try {
      const r = await api('/api/v1/escalations');
      if (r.ok && r.json) { items = r.json.items || []; failed = false; } else failed = true;
    } catch { failed = true; }
    render();
  };
  load();
  setInterval(load, pollMs);
  return { load, render };
}

// ------------------------------------------------------------------ consults

/** The "Collega raadplegen" block of a card: choose a colleague, write, send (`consult`). */
export function attachConsultForm(c, { send, colleagues, me, onSent }) {
  const safe = c.brief.id.replace(/[^\w-]/g, '_');
  const sel = h('select', { id: `cons-to-${safe}` });
  const text = h('textarea', { id: `cons-text-${safe}`, rows: '2' });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'consult-form' },
    h('p', {}, h('label', { for: `cons-to-${safe}` }, t('consult.to')), ' ', sel),
    h('p', {}, h('label', { for: `cons-text-${safe}` }, t('consult.text')), text),
    h('button', { type: 'submit' }, t('consult.send')), err);
  const box = h('details', { class: 'consult' }, h('summary', {}, t('consult.title')), form);
  box.addEventListener('toggle', () => {
    if (!box.open) return;
    const keep = sel.value;
    const others = (colleagues() || []).filter((x) => !me() || x.id !== me().id);
    sel.replaceChildren(...others.map((x) => h('option', { value: x.id }, `${x.name || x.id} (${stateLabel(x.state)})`)));
    if (keep && others.some((x) => x.id === keep)) sel.value = keep;
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = sel.value;
    const body = text.value.trim();
    if (!to) { err.textContent = t('consult.noone'); return; }
    if (!body) { err.textContent = t('consult.required'); text.focus(); return; }
    err.textContent = '';
    send({ type: 'consult', bericht: c.brief.id, to, text: body }, err).then(() => {
      text.value = '';
      const name = sel.selectedOptions[0] ? sel.selectedOptions[0].textContent.replace(/ \(.*\)$/, '') : to;
      onSent({ bericht: c.brief.id, to, toName: name, text: body, ts: Date.now(), customer: c.brief.from, kind: c.brief.kind });
    }, () => {});
  });
  return box;
}

/** The "Overleg" panel: consults received and sent, each with the conversation (read-only) and
 *  an answer form. */
export function createConsultPanel(root, { api, send, polite, viewDialog, me }) {
  const threads = new Map();   // bericht id -> {bericht, customer, kind, peer, peerName, msgs: [...]}
  const thread = (x) => {
    let th = threads.get(x.bericht);
    if (!th) { th = { bericht: x.bericht, customer: x.customer, kind: x.kind, msgs: [] }; threads.set(x.bericht, th); }
    return th;
  };
  const render = () => {
    if (!threads.size) { root.replaceChildren(h('p', { class: 'muted' }, t('consult.none'))); return; }
    root.replaceChildren(...[...threads.values()].reverse().map((th) => {
      const safe = th.bericht.replace(/[^\w-]/g, '_');
      const ta = h('textarea', { id: `cons-ans-${safe}`, rows: '2' });
      const err = h('p', { class: 'error', role: 'alert' });
      const form = h('form', { class: 'consult-answer' }, h('label', { for: `cons-ans-${safe}` },
        t('consult.answer.label', { who: th.peerName || th.peer })), ta, h('button', { type: 'submit' }, t('consult.answer')), err);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const body = ta.value.trim();
        if (!body) { err.textContent = t('consult.required'); ta.focus(); return; }
        send({ type: 'consult', bericht: th.bericht, to: th.peer, text: body }, err).then(() => {
          th.msgs.push({ mine: true, who: t('note.me'), text: body, ts: Date.now() });
          render();
          root.querySelector(`#cons-ans-${CSS.escape(safe)}`)?.focus();
        }, () => {});
      });
      const hid = `cons-${safe}-h`;
      return h('article', { class: 'consult-thread', dataset: { bericht: th.bericht }, 'aria-labelledby': hid },
        h('h3', { id: hid }, t('consult.about', { kind: kindLabel(th.kind), from: th.customer || '?' })),
        h('ul', {}, th.msgs.map((m) => h('li', { class: m.mine ? 'mine' : 'theirs' },
          h('span', { class: 'who' }, `${m.who} · ${clock(m.ts)}`), ' ', m.text))),
        h('button', { type: 'button', class: 'link', onclick: () => viewDialog(th.bericht) }, t('consult.view')),
        form);
    }));
  };
  const seen = new Set();   // consult ids shown (a push during the first load comes once)
  const add = (m, mine) => {
    if (m.id) { if (seen.has(m.id)) return false; seen.add(m.id); }
    const th = thread({ bericht: m.bericht, customer: m.customer, kind: m.kind });
    th.peer = mine ? m.to : m.from;
    th.peerName = mine ? (m.to_name || m.to) : (m.from_name || m.from);
    th.msgs.push({ mine, who: mine ? t('note.me') : th.peerName, text: m.text, ts: m.ts || Date.now() });
    return true;
  };
  render();
  // what the panel showed before a reload: the last week's consults from and to this desk's user
  (async () => {
    try {
      const r = await api('/api/v1/consults');
      if (!r.ok || !r.json) return;
      for (const m of r.json.items || []) add(m, m.from === me());
      render();
    } catch { /* live ones only */ }
  })();
  return {
    received(m) {
      if (!add(m, false)) return;
      render();
      const th = threads.get(m.bericht);
      announce(polite, t('consult.announce', { who: th.peerName, text: m.text }));
    },
    sent(x) {
      const th = thread(x);
      th.peer = x.to;
      th.peerName = x.toName;
      th.msgs.push({ mine: true, who: t('note.me'), text: x.text, ts: x.ts });
      render();
    },
    render,
  };
}

/** The read-only view of a conversation a colleague asked about (or one handed on). */
export async function viewBericht(dialog, api, id, { msgLabel, stateText }) {
  const body = dialog.querySelector('.view-body');
  body.replaceChildren(h('p', { class: 'muted' }, t('agent.history.loading')));
  dialog.showModal();
  dialog.querySelector('button').focus();
  const r = await api('/api/v1/berichten/' + encodeURIComponent(id));
  if (!r.ok || !r.json) { body.replaceChildren(h('p', { class: 'error' }, t('consult.view.failed'))); return; }
  const b = r.json;
  const notes = notesOf(b);
  body.replaceChildren(
    h('p', {}, t('consult.view.meta', { kind: kindLabel(b.kind), from: b.from || '?', state: stateText(b.state) })),
    h('ol', { class: 'thread view-thread', 'aria-label': t('consult.view.thread') }, (b.messages || []).map((m) =>
      h('li', { class: 'msg ' + (m.direction === 'out' ? 'out' : 'in') }, h('span', { class: 'who' },
        `${msgLabel(m)} · ${clock(m.ts)}`), m.text ?? t('agent.msg.payload')))),
    notes.length ? h('ul', { class: 'notes' }, notes.map((n) => h('li', {}, h('span', { class: 'who' }, `${n.by} · ${dateTime(n.ts)}`), ' ', n.text))) : null);
}

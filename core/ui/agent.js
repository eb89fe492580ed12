// agent.js -- the agent desk: own state and reason, queue memberships, offers with a countdown,
// conversations side by side (thread, reply, typing, topics on complete, wrap-up end/extend),
// customer history, queue info, colleagues and this session's received/missed/handled lists.
// Protocol: docs/websocket.md (plus the agreed `queue_stats`, `colleagues` and `typing` pushes).
import { t, onLang } from './i18n.js';
import {
  api, requireSession, Socket, initHeader, showConn, h, dur, clock, dateTime, kindLabel,
  stateLabel, reasonLabel, normReasons, normTopics, pageData, announce, errorText, serverText,
} from './common.js';
import { createPickPanel } from './pick.js';
import { attachComposerExtras, attachTemplatePicker, deliveryLabel, deliveryReason } from './composer_extras.js';
import { createMailPanel } from './email.js';
import { handoffLines, customerName, transcriptBlock } from './transcript.js';
import { whisperItem, whispersOf } from './whisper.js';
import {
  attachSnippets, renderAlertSettings, alertOffer, offerTitle, notesOf, topicsOf, attachNotes,
  createEscalations, attachConsultForm, createConsultPanel, viewBericht,
} from './desk_extras.js';

const s = requireSession(['agent']);
const cfg = pageData();
const $ = (id) => document.getElementById(id);

let me = null;                     // the agent (hello / state)
let reasons = normReasons(cfg.reason_codes) || [];
let topics = normTopics(cfg.topics) || [];
const queueInfo = new Map();       // name -> {title, open, waiting, longest_wait_ms, at}
let queueStatsLive = false;
let allQueues = [];                // every queue (transfer targets), from GET /api/v1/queues        // the server pushes queue_stats (no polling then)
let colleagues = null;             // from `colleagues` pushes
const offers = new Map();          // bericht id -> {brief, title, expiresAt}
const work = new Map();            // bericht id -> conversation (see newCard)
const lists = { received: [], missed: [], handled: [], transferred: [] };
const screenPops = new Map();     // bericht id -> screen_pop message (R50)
let typingSupported = true;
let sock = null;
let pickPanel = null;              // the "Wachtrij" panel (pick.js)
let outbound = [];                 // channels an agent may start a contact with (hello: outbound)
let escalations = null;            // the "Doorgezet" panel (desk_extras.js)
let consults = null;               // the "Overleg" panel (desk_extras.js)

// ------------------------------------------------------------------ helpers

function queueTitle(name, fallback) {
  const q = queueInfo.get(name);
  return (q && q.title) || fallback || name;
}

function fail(where, e) {
  const el = where || $('state-error');
  el.textContent = t('error.prefix', { text: errorText(e) });
}

function send(msg, errEl) {
  return sock.send(msg).then((ack) => { if (errEl) errEl.textContent = ''; return ack; },
    (e) => { fail(errEl, e); throw e; });
}

// ------------------------------------------------------------------ my state and queues

/** The own-state line: "Beschikbaar sinds 3 min", or without a duration while the server does
 *  not know since when (no state change since acdmd started: `since` null, or 0 from an older one). */
function ownStateLine() {
  const reason = reasonLabel(me.reason, reasons);
  const state = stateLabel(me.state);
  if (!(me.since > 0)) return reason ? t('agent.state.reason.nosince', { state, reason }) : state;
  return t(reason ? 'agent.state.reason' : 'agent.state.line', { state, reason, since: dur(Date.now() - me.since) });
}

function renderMe() {
  if (!me) return;
  const st = $('my-state');
  st.className = 'state state-' + me.state;
  st.dataset.state = me.state;   // for scripts and tests: the text may or may not carry a duration
  st.textContent = ownStateLine();
  const out = me.state === 'logged_out';
  $('btn-login').hidden = !out;
  $('btn-ready').hidden = out;
  $('nr-form').hidden = out;
  $('btn-logout').hidden = out;
  $('btn-ready').setAttribute('aria-pressed', String(me.state === 'ready'));
  $('handled').textContent = t('agent.handled', { n: me.handled ?? 0 });
  renderDevice();
  renderQueues();
  if (pickPanel) pickPanel.refresh();
}

/** Why the agent gets no calls now: their phone is not reachable (a softphone not registered).
 *  The server's reason in the agent's words when it is the usual one. */
function renderDevice() {
  const el = $('my-device');
  const un = (me && me.unreachable) || {};
  const kinds = Object.keys(un).filter((k) => k !== 'callback' || !un.voice);
  el.hidden = !kinds.length;
  el.textContent = kinds.map((k) => t('agent.unreachable', {
    kind: t('kind.' + k),
    reason: un[k] === 'phone not registered' ? t('agent.unreachable.unregistered') : un[k],
  })).join(' ');
}

/** The "Nieuw contact" panel: one option per (channel, kind) a channel can start; a call has no
 *  text. Hidden when no channel can start contacts. */
function renderOutbound() {
  const opts = [];
  for (const o of outbound) for (const k of o.kinds || []) opts.push({ channel: o.channel, kind: k });
  $('out-panel').hidden = !opts.length;
  const sel = $('out-channel');
  const keep = sel.value;
  sel.replaceChildren(...opts.map((o) => h('option', { value: o.channel + '|' + o.kind },
    `${t('kind.' + o.kind)} (${o.channel})`)));
  if (keep && opts.some((o) => o.channel + '|' + o.kind === keep)) sel.value = keep;
  outKindChanged();
}

function outKindChanged() {
  const kind = ($('out-channel').value || '|').split('|')[1];
  $('out-text-row').hidden = kind === 'voice';
  $('out-submit').textContent = t(kind === 'voice' ? 'agent.out.call' : 'agent.out.send');
}

function renderReasons() {
  const sel = $('reason');
  const keep = sel.value;
  sel.replaceChildren(h('option', { value: '' }, t('agent.reason.none')),
    ...reasons.filter((r) => r.code !== 'no-answer').map((r) => h('option', { value: r.code }, r.label)));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

function renderQueues() {
  const ul = $('queues');
  const mine = (me && me.queues) || [];
  // update in place so focus stays on a checkbox while toggling
  const seen = new Set();
  for (const mq of mine) {
    seen.add(mq.queue);
    let li = ul.querySelector(`li[data-queue="${CSS.escape(mq.queue)}"]`);
    if (!li) {
      const id = 'q-' + mq.queue.replace(/[^\w-]/g, '_');
      const cb = h('input', { type: 'checkbox', id, 'aria-describedby': id + '-info' });
      cb.addEventListener('change', () => {
        send({ type: cb.checked ? 'join' : 'leave', queue: mq.queue }).catch(() => { cb.checked = !cb.checked; });
      });
      li = h('li', { dataset: { queue: mq.queue } }, cb, ' ', h('label', { for: id }),
        h('div', { id: id + '-info', class: 'muted' }));
      ul.append(li);
    }
    const info = queueInfo.get(mq.queue);
    li.querySelector('input').checked = !!mq.joined;
    li.querySelector('label').textContent = queueTitle(mq.queue);
    const parts = [];
    if (info) {
      if (info.open === false) parts.push(t('agent.queue.closed'));
      const longest = info.longest_wait_ms ? info.longest_wait_ms + (info.waiting ? Date.now() - info.at : 0) : 0;
      parts.push(t('agent.queue.info', { waiting: info.waiting ?? 0, longest: dur(longest) }));
    }
    li.querySelector('div').textContent = parts.join(' · ');
  }
  for (const li of [...ul.children]) if (!seen.has(li.dataset.queue)) li.remove();
}

function setQueues(list) {
  const now = Date.now();
  for (const q of list || []) {
    queueInfo.set(q.name, { title: q.title || q.name, open: q.open, waiting: q.waiting,
      longest_wait_ms: q.longest_wait_ms, at: now });
  }
  renderQueues();
}

async function pollQueues() {
  if (queueStatsLive && allQueues.length) return;
  try {
    const r = await api('/api/v1/queues');
    if (r.ok && r.json) allQueues = r.json.queues.map((q) => ({ name: q.name, title: q.title || q.name }));
    if (r.ok && r.json && !queueStatsLive) setQueues(r.json.queues);
  } catch { /* next time */ }
}

// ------------------------------------------------------------------ colleagues

/** busy/wrapup: a count or a boolean, depending on the server. */
function yesNo(v) { return typeof v === 'boolean' ? t(v ? 'yes' : 'no') : String(v ?? 0); }

const startedAt = Date.now();

function renderColleagues() {
  const box = $('colleagues');
  if (!colleagues) {
    // the server pushes `colleagues` every 2 s; only after a while without one is it "not available"
    const waiting = Date.now() - startedAt < 4500;
    box.replaceChildren(h('p', { class: 'muted' }, t(waiting ? 'agent.colleagues.loading' : 'agent.colleagues.unavailable')));
    if (waiting) setTimeout(() => { if (!colleagues) renderColleagues(); }, 4600 - (Date.now() - startedAt));
    return;
  }
  const rows = colleagues.filter((c) => !me || c.id !== me.id).map((c) => {
    const state = c.state !== 'logged_out' && c.busy ? 'busy' : c.state !== 'logged_out' && c.wrapup ? 'wrapup' : c.state;
    const reason = c.state === 'not_ready' ? reasonLabel(c.reason, reasons) : '';
    return h('tr', {},
      h('td', {}, c.name || c.id),
      h('td', { class: 'state state-' + state }, stateLabel(state) + (reason ? ` (${reason})` : '')),
      h('td', { class: 'num', dataset: { since: c.since > 0 ? c.since : '' } }, c.since > 0 ? dur(Date.now() - c.since) : t('dash')),
      h('td', {}, `${yesNo(c.busy)} / ${yesNo(c.wrapup)}`));
  });
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('agent.colleague.name')), h('th', { scope: 'col' }, t('agent.colleague.state')),
      h('th', { scope: 'col' }, t('agent.colleague.since')), h('th', { scope: 'col' }, t('agent.colleague.work')))),
    h('tbody', {}, rows)));
}

// ------------------------------------------------------------------ session lists (R15f)

function listItem(entry) {
  return t('agent.session.item', { time: clock(entry.ts), kind: kindLabel(entry.kind), from: entry.from,
    queue: queueTitle(entry.queue, entry.title) });
}

function renderLists() {
  const box = $('session-lists');
  const block = (key, arr) => {
    const id = 'list-' + key;
    return h('div', {}, h('h3', { id }, `${t('agent.session.' + key)} (${arr.length})`),
      arr.length ? h('ul', { 'aria-labelledby': id }, arr.slice(-20).reverse().map((e) => h('li', {}, listItem(e))))
        : h('p', { class: 'muted' }, t('agent.session.none')));
  };
  box.replaceChildren(h('div', { class: 'session-lists' },
    block('received', lists.received), block('missed', lists.missed), block('handled', lists.handled),
    lists.transferred.length ? block('transferred', lists.transferred) : null));
}

function record(list, brief, title) {
  lists[list].push({ ts: Date.now(), kind: brief.kind, from: brief.from, queue: brief.queue, title, id: brief.id });
  renderLists();
}

// ------------------------------------------------------------------ offers

function offerText(o) {
  const b = o.brief;
  return {
    kind: kindLabel(b.kind), from: whoLabel(b.from, o.customerName), channel: b.channel || '?',
    queue: queueTitle(b.queue, o.title),
  };
}

function renderOffers() {
  const box = $('offers');
  const active = document.activeElement;
  const focusId = active && active.closest && active.closest('.offer') ? active.dataset.action + ':' +
    active.closest('.offer').dataset.bericht : null;
  offerTitle(offers.size);
  if (!offers.size) {
    box.replaceChildren(h('p', { class: 'muted' }, t('agent.offers.none')));
    return;
  }
  const cards = [...offers.values()].map((o) => {
    const v = offerText(o);
    const hid = 'offer-' + o.brief.id + '-h';
    const accept = h('button', { type: 'button', class: 'primary', dataset: { action: 'accept' },
      'aria-label': t('agent.offer.accept.label', v) }, t('agent.offer.accept'));
    const reject = h('button', { type: 'button', dataset: { action: 'reject' },
      'aria-label': t('agent.offer.reject.label', v) }, t('agent.offer.reject'));
    const err = h('p', { class: 'error', role: 'alert' });
    accept.addEventListener('click', () => {
      o.accepting = true;
      send({ type: 'accept', bericht: o.brief.id }, err).catch(() => { o.accepting = false; });
    });
    reject.addEventListener('click', () => {
      send({ type: 'reject', bericht: o.brief.id }, err).then(() => {
        offers.delete(o.brief.id);
        renderOffers();
        $('offers-h').focus();
      }, () => {});
    });
    return h('article', { class: 'offer', dataset: { bericht: o.brief.id }, 'aria-labelledby': hid },
      h('h3', { id: hid }, t('agent.offer.label', v)),
      h('p', {}, t('agent.offer.from', v)),
      o.subject ? h('p', {}, t('agent.work.subject', { subject: o.subject })) : null,
      o.preview ? h('p', { class: 'preview' }, t('agent.offer.preview', { text: o.preview })) : null,
      h('p', { class: 'countdown' }, countdownText(o)),
      screenPopBlock(o.brief.id),
      h('div', { class: 'row' }, accept, reject), err);
  });
  box.replaceChildren(...cards);
  if (focusId) {
    const [action, id] = focusId.split(':');
    const el = box.querySelector(`.offer[data-bericht="${CSS.escape(id)}"] [data-action="${action}"]`);
    if (el) el.focus();
  }
}

function countdownText(o) {
  if (!o.expiresAt) return '';
  const left = Math.ceil((o.expiresAt - Date.now()) / 1000);
  return left > 0 ? t('agent.offer.expires', { s: left }) : t('agent.offer.expired');
}

function addOffer(brief, expiresIn, title, { live = true } = {}) {
  const o = { brief, title, subject: brief.subject || null,
             expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null };
  offers.set(brief.id, o);
  const enriched = enrichOffer(o);
  record('received', brief, title);
  renderOffers();
  const v = offerText(o);
  announce($('announcer'), t('agent.offer.announce', v));
  // sound and browser notification (each switchable in "Meldingen"), once the preview is known
  if (live) {
    enriched.then(() => {
      if (offers.get(brief.id) !== o) return;
      const w = offerText(o);
      alertOffer({ id: brief.id, kind: brief.kind, from: w.from, queue: w.queue, preview: o.preview,
        onClick: () => $('offers').querySelector(`.offer[data-bericht="${CSS.escape(brief.id)}"] [data-action=accept]`)?.focus() });
    });
  }
  // nothing focused (the agent is not typing elsewhere): go straight to the new offer's Accept
  const ae = document.activeElement;
  if (!ae || ae === document.body) {
    const btn = $('offers').querySelector(`.offer[data-bericht="${CSS.escape(brief.id)}"] [data-action=accept]`);
    if (btn) btn.focus();
  }
}

// ------------------------------------------------------------------ conversations

/** Calls (voice, callback) can be put on hold (R18). */
const isCall = (kind) => kind === 'voice' || kind === 'callback';

function newCard(brief, { state = 'active', title, focus = false, held = false } = {}) {
  const id = brief.id;
  const safe = id.replace(/[^\w-]/g, '_');
  const c = {
    brief, title, state, since: Date.now(), messages: [], loaded: false, wrapUntil: null,
    ended: false, typingUntil: 0, subject: null, lastTyping: 0, held,
  };
  const hid = `w-${safe}-h`;
  c.el = h('article', { class: 'card', dataset: { bericht: id }, 'aria-labelledby': hid });
  c.head = h('h3', { id: hid });
  c.meta = h('p', { class: 'muted' });
  c.subj = h('p', { hidden: true });
  c.endedEl = h('p', { class: 'ok', hidden: true });
  c.thread = h('div', { class: 'thread', role: 'log', tabindex: '0' });
  c.typing = h('p', { class: 'typing', 'aria-live': 'polite' });
  c.wrapbar = h('p', { class: 'wrapbar', hidden: true });
  c.heldEl = h('p', { class: 'heldbar', hidden: true });
  c.input = h('textarea', { id: `reply-${safe}`, rows: '3', 'aria-describedby': `hint-${safe}` });
  c.label = h('label', { for: `reply-${safe}` });
  c.hint = h('p', { id: `hint-${safe}`, class: 'muted' });
  c.sendBtn = h('button', { type: 'submit', class: 'primary' });
  c.holdBtn = h('button', { type: 'button', hidden: true, dataset: { action: 'hold' } });
  c.completeBtn = h('button', { type: 'button', dataset: { action: 'complete' } });
  c.endBtn = h('button', { type: 'button', class: 'primary', hidden: true, dataset: { action: 'wrapup_end' } });
  c.extendBtn = h('button', { type: 'button', hidden: true, dataset: { action: 'wrapup_extend' } });
  c.err = h('p', { class: 'error', role: 'alert' });
  c.trSummary = h('summary', {});
  c.trSelect = h('select', { id: `tr-${safe}` });
  c.trLabel = h('label', { for: `tr-${safe}` });
  c.trBtn = h('button', { type: 'submit' });
  c.trNote = h('textarea', { id: `tr-note-${safe}`, rows: '2' });
  c.trNoteLabel = h('label', { for: `tr-note-${safe}` });
  // a call also goes to an outside number (the channel dials it; the caller hears ringback)
  c.trNum = h('input', { id: `tr-num-${safe}`, type: 'tel', inputmode: 'tel', autocomplete: 'off', maxlength: '40' });
  c.trNumLabel = h('label', { for: `tr-num-${safe}` });
  c.trNumBox = h('p', { class: 'tr-number', hidden: true }, c.trNumLabel, c.trNum);
  c.trSelect.addEventListener('change', () => {
    c.trNumBox.hidden = c.trSelect.value !== 'number:';
    if (!c.trNumBox.hidden) c.trNum.focus();
  });
  const trForm = h('form', { class: 'row transfer-form' }, c.trLabel, c.trSelect, c.trNumBox,
    h('p', { class: 'tr-note' }, c.trNoteLabel, c.trNote), c.trBtn);
  c.transfer = h('details', { class: 'transfer' }, c.trSummary, trForm);
  c.transfer.addEventListener('toggle', () => { if (c.transfer.open) fillTransfer(c); });
  trForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    let [kind, target] = c.trSelect.value.split(':');
    if (kind === 'number') {
      // spaces, dashes, dots and brackets are how people write numbers: dialled without them
      target = c.trNum.value.replace(/[\s\-().]/g, '');
      const ok = /^\+?[0-9]{2,31}$/.test(target);
      c.trNum.setAttribute('aria-invalid', String(!ok));
      if (!ok) {
        c.err.textContent = t(target ? 'agent.transfer.number.invalid' : 'agent.transfer.number.required');
        c.trNum.focus();
        return;
      }
    }
    if (!target) return;
    const note = c.trNote.value.trim();
    send({ type: 'transfer', bericht: id, [kind]: target, ...(note ? { note } : {}) }, c.err).then(() => {
      record('transferred', c.brief, c.title);
      if (kind === 'number') {
        // the call leaves acdm: the card stays for the wrap-up that follows
        c.transferredTo = target;
        c.transfer.open = false;
        updateCard(c);
        announce($('polite'), t('agent.transfer.number.done', { from: c.brief.from, number: target }));
      } else {
        removeCard(id);
        announce($('polite'), t('agent.transfer.done', { from: c.brief.from }));
      }
      if (note && escalations) escalations.load();
    }, () => {});
  });
  c.histSummary = h('summary', {});
  c.histBody = h('div', {}, t('agent.history.loading'));
  c.history = h('details', { class: 'history' }, c.histSummary, c.histBody);
  const form = h('form', { class: 'composer' }, c.label, c.input, c.hint,
    h('div', { class: 'row' }, c.sendBtn, c.holdBtn, c.completeBtn, c.endBtn, c.extendBtn));
  c.regEl = h('p', { class: 'registered', hidden: true });   // the chosen topics, during wrap-up
  const notesBox = attachNotes(c, { send, queueTitle: (n) => queueTitle(n) });
  const consultBox = attachConsultForm(c, { send, colleagues: () => colleagues, me: () => me,
    onSent: (x) => consults && consults.sent(x) });
  c.el.append(c.head, c.meta, c.subj, c.endedEl, c.heldEl, c.thread, c.typing, c.wrapbar, c.regEl, form, c.err, c.transfer,
    consultBox, notesBox, c.history);
  attachSnippets(c, form, { api, agentName: () => (me && me.name) || s.name || '',
    queueTitle: () => queueTitle(c.brief.queue, c.title), customer: () => c.customerName || null });
  if (brief.kind === 'email') {              // email.js: subject, sanitised HTML, original
    c.mail = createMailPanel(c, s.token);
    c.thread.before(c.mail.panel);
    c.input.before(c.mail.composer);
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); sendReply(c); });
  c.input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || ev.isComposing) return;
    // chat-like kinds: Enter sends (Shift+Enter new line); e-mail: Ctrl+Enter sends
    const go = brief.kind === 'email' ? (ev.ctrlKey || ev.metaKey) : !ev.shiftKey;
    if (go) { ev.preventDefault(); sendReply(c); }
  });
  c.input.addEventListener('input', () => sendTyping(c));
  // hold / resume a call: the server pushes `hold` / `resume` (handled in onMessage) before the ack
  c.holdBtn.addEventListener('click', () => send({ type: c.held ? 'resume' : 'hold', bericht: id }, c.err).catch(() => {}));
  c.completeBtn.addEventListener('click', () => openTopics(c));
  c.endBtn.addEventListener('click', () => send({ type: 'wrapup_end', bericht: id }, c.err).catch(() => {}));
  c.extendBtn.addEventListener('click', () => send({ type: 'wrapup_extend', bericht: id,
    seconds: cfg.wrapup_extend_s || 60 }, c.err).catch(() => {}));

  attachComposerExtras(c);
  attachTemplatePicker(c, api, (text, payload) => sendReply(c, { text, payload }));
  work.set(id, c);
  $('work').querySelector('.none')?.remove();
  $('work').append(c.el);
  updateCard(c);
  loadBericht(c);
  loadHistory(c);
  showScreenPop(c);
  if (focus) (brief.kind === 'voice' ? c.holdBtn : c.input).focus();
  return c;
}

function showScreenPop(c) {
  const block = screenPopBlock(c.brief.id);
  if (!block) return;
  if (c.popEl) c.popEl.replaceWith(block);
  else c.meta.after(block);
  c.popEl = block;
}

function updateCard(c) {
  const b = c.brief;
  const from = whoLabel(b.from, c.customerName);
  c.head.textContent = t('agent.work.title', { kind: kindLabel(b.kind), from });
  c.meta.textContent = t('agent.work.meta', { queue: queueTitle(b.queue, c.title), channel: b.channel || '?',
    duration: dur(Date.now() - c.since) });
  c.subj.hidden = !c.subject;
  c.subj.textContent = c.subject ? t('agent.work.subject', { subject: c.subject }) : '';
  c.endedEl.hidden = !c.ended && !c.transferredTo;
  c.endedEl.textContent = c.transferredTo ? t('agent.transfer.number.card', { number: c.transferredTo }) : t('agent.customer_ended');
  c.thread.setAttribute('aria-label', t('agent.thread', { from }));
  c.label.textContent = t('agent.reply', { from });
  c.hint.textContent = t(b.kind === 'email' ? 'agent.reply.hint.email' : 'agent.reply.hint') + ' ' +
    t('agent.reply.hint.snippets');
  composerAfterEnd(c);
  // a phone call is spoken: no written reply field (the voice channel drops one)
  const spoken = b.kind === 'voice';
  c.label.hidden = c.input.hidden = c.hint.hidden = c.sendBtn.hidden = spoken;
  c.sendBtn.textContent = t('agent.send');
  c.completeBtn.textContent = t('agent.complete');
  c.completeBtn.setAttribute('aria-label', t('agent.complete.label', { from }));
  const call = isCall(b.kind);
  c.holdBtn.hidden = !call || c.state === 'wrapup' || c.ended;
  c.holdBtn.textContent = t(c.held ? 'agent.resume' : 'agent.hold');
  c.holdBtn.setAttribute('aria-label', t(c.held ? 'agent.resume.label' : 'agent.hold.label', { from }));
  c.holdBtn.setAttribute('aria-pressed', String(!!c.held));
  c.heldEl.hidden = !(call && c.held);
  c.heldEl.textContent = t('agent.held');
  c.el.classList.toggle('held', !!(call && c.held));
  c.el.dataset.held = String(!!(call && c.held));
  c.endBtn.textContent = t('agent.wrapup.end');
  c.extendBtn.textContent = t('agent.wrapup.extend', { s: cfg.wrapup_extend_s || 60 });
  const wrap = c.state === 'wrapup';
  c.el.classList.toggle('wrapup', wrap);
  c.wrapbar.hidden = !wrap;
  c.completeBtn.hidden = wrap;
  c.endBtn.hidden = !wrap;
  c.extendBtn.hidden = !wrap;
  updateWrapbar(c);
  c.typing.textContent = c.typingUntil > Date.now() ? t('agent.typing') : '';
  c.transfer.hidden = wrap || !!c.transferredTo;
  c.regEl.hidden = !(wrap && c.topicsChosen && c.topicsChosen.length);
  c.regEl.textContent = c.topicsChosen && c.topicsChosen.length ? t('agent.wrapup.topics', { topics: c.topicsChosen.join(', ') }) : '';
  c.trNoteLabel.textContent = t('agent.transfer.note');
  c.trSummary.textContent = t('agent.transfer');
  c.trLabel.textContent = t('agent.transfer.to');
  c.trBtn.textContent = t('agent.transfer.submit');
  c.trNumLabel.textContent = t('agent.transfer.number.label');
  c.trNum.placeholder = t('agent.transfer.number.placeholder');
  c.histSummary.textContent = c.histCount != null ? `${t('agent.history')} (${c.histCount})`
    : c.histUnavailable ? t('agent.history.unavailable') : t('agent.history');
}

function fillTransfer(c) {
  const keep = c.trSelect.value;
  const others = (colleagues || []).filter((x) => (!me || x.id !== me.id) && x.state !== 'logged_out');
  c.trSelect.replaceChildren(...[   // no "null" text node without colleagues
    h('optgroup', { label: t('agent.transfer.queues') },
      (allQueues.length ? allQueues : [...queueInfo.entries()].map(([name, q]) => ({ name, title: q.title })))
        .map((q) => h('option', { value: 'queue:' + q.name }, q.title || q.name))),
    others.length ? h('optgroup', { label: t('agent.transfer.agents') },
      others.map((x) => h('option', { value: 'agent:' + x.id }, `${x.name || x.id} (${stateLabel(x.state)})`))) : null,
    c.brief.kind === 'voice' ? h('optgroup', { label: t('agent.transfer.outside') },
      h('option', { value: 'number:' }, t('agent.transfer.number'))) : null].filter(Boolean));
  if ([...c.trSelect.options].some((o) => o.value === keep)) c.trSelect.value = keep;
  c.trNumBox.hidden = c.trSelect.value !== 'number:';
}

function updateWrapbar(c) {
  if (c.state !== 'wrapup') return;
  c.wrapbar.textContent = c.wrapUntil
    ? t('agent.wrapup', { s: Math.max(0, Math.ceil((c.wrapUntil - Date.now()) / 1000)) })
    : t('agent.wrapup.nolimit');
}

function msgItem(m) {
  if (m.direction === 'whisper') return whisperItem(m);   // whisper.js: a supervisor's, for the agent only
  const handoff = handoffLines(m.payload);
  if (handoff) return handoffItem(m, handoff);
  const files = (m.payload && Array.isArray(m.payload.attachments)) ? m.payload.attachments : [];
  const li = h('div', { class: 'msg ' + (m.direction === 'out' ? 'out' : 'in') },
    h('span', { class: 'who' }, `${m.direction === 'out' ? t('agent.msg.out') : t('agent.msg.in')} · ${clock(m.ts)}` +
      (m.status && m.status() ? ' · ' + m.status() : '')),
    m.text != null ? m.text : (files.length ? null : t('agent.msg.payload')),
    files.length ? h('ul', { class: 'files' }, files.map((f) => h('li', {},
      h('button', { type: 'button', class: 'link', onclick: () => download(f) },
        t('agent.attachment', { name: f.filename || f.id, size: size(f.size) }))))) : null);
  m.li = li;
  return li;
}

function size(n) {
  if (n == null) return '?';
  return n < 1024 ? `${n} B` : n < 1048576 ? `${Math.round(n / 1024)} kB` : `${(n / 1048576).toFixed(1)} MB`;
}

/** Attachments need the bearer token: fetched, then saved through a temporary object URL. */
async function download(f) {
  try {
    const r = await fetch('/api/v1/attachments/' + encodeURIComponent(f.id), { headers: { Authorization: 'Bearer ' + s.token } });
    if (!r.ok) throw new Error(String(r.status));
    const url = URL.createObjectURL(await r.blob());
    const a = h('a', { href: url, download: f.filename || t('agent.attachment.file') });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    announce($('polite'), t('error.prefix', { text: e.message }));
  }
}

/** The case system's answer for a bericht (screen_pop), as a details block. */
function screenPopBlock(id) {
  const p = screenPops.get(id);
  if (!p) return null;
  let body;
  if (p.status == null || p.status >= 400) {
    body = h('p', { class: 'muted' }, t('agent.screenpop.failed', { why: p.error || p.status }));
  } else if (p.body && typeof p.body === 'object') {
    body = h('dl', { class: 'screenpop' }, Object.entries(p.body).flatMap(([k, v]) => [
      h('dt', {}, k), h('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v, null, 1) : String(v))]));
  } else {
    body = h('p', {}, p.body == null ? t('none') : String(p.body));
  }
  return h('details', { class: 'screenpop-box', open: true }, h('summary', {}, t('agent.screenpop')), body);
}

function renderThread(c) {
  c.thread.replaceChildren(...c.messages.map(msgItem));
  c.thread.scrollTop = c.thread.scrollHeight;
  if (c.updateExtras) c.updateExtras();
}

function addMessage(c, m) {
  c.messages.push(m);
  c.thread.append(msgItem(m));
  c.thread.scrollTop = c.thread.scrollHeight;
  if (c.updateExtras) c.updateExtras();
}

function refreshMessage(m) {
  const old = m.li;
  if (!old) return;
  old.replaceWith(msgItem(m));   // msgItem sets m.li to the new element
}

async function loadBericht(c) {
  try {
    const r = await api('/api/v1/berichten/' + encodeURIComponent(c.brief.id));
    if (!r.ok || !r.json) return;
    const b = r.json;
    if (b.payload && b.payload.subject) c.subject = b.payload.subject;
    restoreCardState(c, b);
    const stored = (b.messages || []).map((m) => ({ ts: m.ts, direction: m.direction, text: m.text, payload: m.payload, id: m.id }));
    const deliveries = (b.events || []).filter((e) => e.type === 'delivery');
    for (const m of stored) if (m.direction === 'out') storedDelivery(m, deliveries);
    c.notes = notesOf(b);
    if (c.renderNotes) c.renderNotes();
    const reg = topicsOf(b);
    if (reg.length) c.topicsChosen = reg;
    attachHandoff(stored, b.payload);
    stored.push(...whispersOf(b));   // whisper.js
    // keep live messages the stored copy does not have yet (pushes may beat the fetch)
    const key = (m) => `${m.direction}|${m.text ?? ''}`;
    const have = new Set(stored.map(key));
    const extra = c.messages.filter((m) => !have.has(key(m)));
    c.messages = stored.concat(extra).sort((a, z) => a.ts - z.ts);
    c.loaded = true;
    if (c.mail) c.mail.render(b);
    renderThread(c);
    updateCard(c);
  } catch { /* the thread stays as pushed */ }
}

function historyRow(x) {
  const ts = x.ts ?? x.created_ms ?? x.queued_ms ?? x.date;
  const topics = Array.isArray(x.topics) ? x.topics.join(', ') : (x.topic || '');
  return h('tr', {},
    h('td', {}, typeof ts === 'number' ? dateTime(ts) : (ts || '')),
    h('td', {}, [x.kind ? kindLabel(x.kind) : '', x.channel || ''].filter(Boolean).join(' · ')),
    h('td', {}, x.state ? stateText(x.state) : (x.status || x.outcome || '')),
    h('td', {}, x.handler_name || x.agent_name || x.handler || x.agent || ''),
    h('td', {}, x.subject || ''),
    h('td', {}, topics),
    h('td', {}, (Array.isArray(x.notes) ? x.notes : []).map((n) => n.text).join(' · ')));
}

function stateText(st) {
  const k = 'bstate.' + st;
  const v = t(k);
  return v === k ? st : v;
}

async function loadHistory(c) {
  let r = null;
  try { r = await api('/api/v1/customers/' + encodeURIComponent(c.brief.from || '') + '/history'); } catch { /* */ }
  if (!r || !r.ok || !r.json) {
    c.histUnavailable = true;
    c.histBody.replaceChildren(h('p', { class: 'muted' }, t('agent.history.unavailable')));
    updateCard(c);
    return;
  }
  const j = r.json;
  const rows = historyRows(j, c.brief.id);
  const top = j.top_topics || j.topics || [];
  c.histCount = rows.length;
  const topText = (Array.isArray(top) ? top : []).map((x) => (typeof x === 'string' ? x
    : `${x.topic || x.name} (${x.count ?? x.n ?? ''})`)).join(', ');
  c.histBody.replaceChildren(...[   // replaceChildren writes a null child as the text "null"
    rows.length ? h('table', {},
      h('thead', {}, h('tr', {}, ['date', 'channel', 'status', 'handler', 'subject', 'topic', 'notes']
        .map((k) => h('th', { scope: 'col' }, t('agent.history.' + k))))),
      h('tbody', {}, rows.slice(0, 50).map(historyRow)))
      : h('p', { class: 'muted' }, t('agent.history.empty')),
    topText ? h('p', {}, t('agent.history.topics', { topics: topText })) : null].filter(Boolean));
  updateCard(c);
}

function sendReply(c, extra) {
  const text = extra ? extra.text : c.input.value.trim();
  if (!text || (c.ended && !extra)) return;   // the customer left: nobody would read a reply
  const m = { ts: Date.now(), direction: 'out', text, state: 'sending' };
  m.status = outStatus(m);
  addMessage(c, m);
  if (!extra) c.input.value = '';
  const msg = { type: 'message', bericht: c.brief.id, text, ...(c.mail ? c.mail.extras() : {}) };
  if (extra && extra.payload) msg.payload = extra.payload;   // e.g. a WhatsApp template
  sock.send(msg).then((ack) => {
    if (ack && ack.message) m.id = ack.message;   // the thread message id delivery states name
    if (m.state === 'sending') m.state = 'sent';   // a delivery state may have come first
    refreshMessage(m);
  }, (e) => {
    m.state = 'failed';
    m.error = errorText(e);
    refreshMessage(m);
    if (!extra && !c.input.value) c.input.value = text;
  });
}

/** An agent's reply's state as shown on it: wordt verzonden, verzonden, afgeleverd, gelezen,
 *  (aflevering) mislukt. */
function outStatus(m) {
  return () => (m.state === 'sending' ? t('agent.msg.sending')
    : m.state === 'sent' ? t('delivery.sent')
    : m.state === 'failed' ? t('agent.msg.failed', { text: m.error })
      : m.state === 'delivered' ? (m.progress || t('agent.msg.delivered'))
        : m.state === 'transit' ? m.progress
          : m.state === 'delivery_failed'
            ? (m.error ? t('agent.msg.delivery_failed.why', { text: m.error }) : t('agent.msg.delivery_failed')) : '');
}

/** A stored reply's state from the bericht's delivery events (after a reload). */
function storedDelivery(m, events) {
  m.state = 'sent';
  for (const e of events) {
    let d = e.detail;
    if (typeof d === 'string') { try { d = JSON.parse(d); } catch { d = null; } }
    if (!d || !d.message || d.message !== m.id) continue;
    const st = d.delivery;
    if (st === 'delivered') { m.state = 'delivered'; m.progress = null; }
    else if (st === 'read') { m.state = 'delivered'; m.progress = t('delivery.read'); }
    else if (st === 'failed') { m.state = 'delivery_failed'; m.error = d.error || null; }
    else if (st === 'sent' || st === 'accepted' || st === 'queued') { if (m.state === 'sent') { m.state = 'transit'; m.progress = t('delivery.' + (st === 'queued' ? 'accepted' : st)); } }
  }
  m.status = outStatus(m);
}

function sendTyping(c) {
  if (!typingSupported || !c.input.value || Date.now() - c.lastTyping < 3000) return;
  c.lastTyping = Date.now();
  sock.send({ type: 'typing', bericht: c.brief.id }).catch((e) => {
    if (e && e.code === 'unknown_type') typingSupported = false;
  });
}

// ------------------------------------------------------------------ handoff, restore (issue 14)

/** "Fatima Bakker (+31612345678)" when the channel knows the customer's name, else the address. */
function whoLabel(from, name) {
  if (!name) return from || '?';
  return from && from !== name ? t('agent.customer.named', { name, from }) : name;
}

/** The offer card gets the customer's name from the stored payload (a bot handoff has it). */
async function enrichOffer(o) {
  try {
    const r = await api('/api/v1/berichten/' + encodeURIComponent(o.brief.id));
    if (!r.ok || !r.json || offers.get(o.brief.id) !== o) return;
    const name = customerName(r.json.payload);
    if (name) o.customerName = name;
    o.preview = firstMessage(r.json);
    if (name || o.preview) renderOffers();
  } catch { /* the address is shown */ }
}

/** The customer's first message (a handoff: the customer's first line), shortened for the offer. */
function firstMessage(b) {
  const lines = handoffLines(b.payload);
  const first = lines ? lines.find((l) => l.role === 'customer') : null;
  const m = (b.messages || []).find((x) => x.direction === 'in' && typeof x.text === 'string' && x.text.trim());
  const text = first ? first.text : m ? m.text : (b.payload && typeof b.payload.text === 'string' ? b.payload.text : '');
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? one.slice(0, 159) + '…' : one || null;
}

/** A handed-off conversation: one bericht, its lines by author (transcript.js). */
function handoffItem(m, lines) {
  const li = h('div', { class: 'msg in handoff-msg' },
    h('span', { class: 'who' }, `${t('agent.msg.handoff')} · ${clock(m.ts)}`),
    transcriptBlock(lines, m.payload));
  m.li = li;
  return li;
}

/** The bericht's payload carries the transcript; its first inbound message is the handoff. */
function attachHandoff(stored, payload) {
  if (!handoffLines(payload) || stored.some((m) => handoffLines(m.payload))) return;
  const first = stored.find((m) => m.direction === 'in');
  if (first) first.payload = { ...(first.payload || {}), ...payload };
}

/** What the server knows and the desk showed before a reload: since when the agent has it,
 *  that the customer left, the customer's name (GET /api/v1/berichten/{id} or a hello work item). */
function restoreCardState(c, b) {
  if (b.accepted_ms > 0) c.since = b.accepted_ms;
  if (b.customer_ended === true) c.ended = true;
  // the wrap-up's end as the server has it (after extensions): the countdown goes on after a reload
  if (b.wrapup_until_ms > 0) c.wrapUntil = b.wrapup_until_ms;
  const name = customerName(b.payload);
  if (name) c.customerName = name;
}

/** After the customer left, replies go nowhere: the composer is off, completing stays. */
function composerAfterEnd(c) {
  const off = !!c.ended;
  c.input.disabled = off;
  c.sendBtn.disabled = off;
  if (off) c.hint.textContent = t('agent.reply.ended');
}

/** The history rows without the open conversation itself. */
function historyRows(j, openId) {
  const rows = Array.isArray(j) ? j : (j.items || j.contacts || j.history || []);
  return rows.filter((x) => x && x.id !== openId);
}

function removeCard(id) {
  const c = work.get(id);
  if (!c) return;
  const hadFocus = c.el.contains(document.activeElement);
  work.delete(id);
  c.el.remove();
  if (!work.size) $('work').append(h('p', { class: 'muted none' }, t('agent.work.none')));
  if (hadFocus) $('work-h').focus();
}

// ------------------------------------------------------------------ topics dialog (R41)

let topicsFor = null;

function openTopics(c) {
  topicsFor = c;
  const list = $('topics-list');
  list.replaceChildren(...topics.map((name, i) => h('div', { class: 'topic' },
    h('input', { type: 'checkbox', id: 'topic-' + i, value: name,
      onchange: () => { $('topics-error').textContent = ''; } }), ' ',
    h('label', { for: 'topic-' + i }, name))));
  $('topics-error').textContent = '';
  $('topics-note').value = '';
  $('topics-dialog').showModal();
  const first = list.querySelector('input');
  (first || $('topics-submit')).focus();
}

$('topics-cancel').addEventListener('click', () => {
  $('topics-dialog').close();
  if (topicsFor) topicsFor.completeBtn.focus();
});

$('topics-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const c = topicsFor;
  const chosen = [...$('topics-list').querySelectorAll('input:checked')].map((i) => i.value);
  if (topics.length && !chosen.length) {
    $('topics-error').textContent = t('agent.topics.required');
    $('topics-list').querySelector('input')?.focus();
    return;
  }
  $('topics-dialog').close();
  if (!c) return;
  const note = $('topics-note').value.trim();
  send({ type: 'complete', bericht: c.brief.id, topics: chosen, ...(note ? { note } : {}) }, c.err).then(() => {
    c.topicsChosen = chosen;
    if (note) { c.notes.push({ ts: Date.now(), by: t('note.me'), text: note }); c.renderNotes(); }
    updateCard(c);
    if (work.has(c.brief.id) && !c.endBtn.hidden) c.endBtn.focus();
  }, () => { c.completeBtn.focus(); });
});

// ------------------------------------------------------------------ websocket

async function restoreWork(items) {
  // after a reconnect: drop what the server no longer has for us
  const live = new Set((items || []).map((w) => w.bericht));
  let changed = false;
  for (const id of [...offers.keys()]) if (!live.has(id)) { offers.delete(id); changed = true; }
  if (changed) renderOffers();
  for (const id of [...work.keys()]) if (!live.has(id)) removeCard(id);
  for (const w of items || []) {
    if (work.has(w.bericht) || offers.has(w.bericht)) continue;
    let brief = { id: w.bericht, kind: w.kind, queue: w.queue, channel: null, from: null };
    try {
      const r = await api('/api/v1/berichten/' + encodeURIComponent(w.bericht));
      if (r.ok && r.json) brief = { ...brief, ...r.json, id: w.bericht };
    } catch { /* the brief is enough */ }
    if (w.state === 'offered') addOffer(brief, null, null, { live: false });
    else {
      const c = newCard(brief, { state: w.state === 'wrapup' ? 'wrapup' : 'active', held: !!w.held });
      restoreCardState(c, w);
      updateCard(c);
    }
  }
}

function onMessage(m) {
  switch (m.type) {
    case 'hello':
      if (m.agent) { me = m.agent; renderMe(); restoreWork(me.work); }
      if (Array.isArray(m.outbound)) { outbound = m.outbound; renderOutbound(); }
      if (m.reason_codes) { reasons = normReasons(m.reason_codes) || reasons; renderReasons(); renderMe(); }
      if (m.topics) topics = normTopics(m.topics) || topics;
      break;
    case 'state':
      me = m.agent;
      renderMe();
      break;
    case 'offer':
      if (m.bericht && m.bericht.id) {
        if (m.queue_title && m.bericht.queue && !queueInfo.has(m.bericht.queue)) {
          queueInfo.set(m.bericht.queue, { title: m.queue_title });
        }
        // a bericht we picked: the `assigned` right behind this opens it; no offer card
        if (pickPanel && pickPanel.isPicking(m.bericht.id)) record('received', m.bericht, m.queue_title);
        else addOffer(m.bericht, m.expires_in, m.queue_title);
      }
      break;
    case 'offer_cancelled': {
      const o = offers.get(m.bericht);
      offers.delete(m.bericht);
      if (o) {
        if (m.reason === 'timeout') record('missed', o.brief, o.title);
        const why = t('cancel.' + m.reason);
        announce($('polite'), t('agent.offer.cancelled', { from: o.brief.from,
          reason: m.text ? why + ' (' + m.text + ')' : why }));
      }
      renderOffers();
      break;
    }
    case 'originate_result': {
      const c = work.get(m.bericht);
      const to = c ? c.brief.from : '';
      announce($('polite'), m.outcome === 'connected' ? t('agent.originate.connected', { to })
        : t('agent.originate.failed', { to, reason: serverText(m.reason || '') }));
      break;
    }
    case 'assigned': {
      const b = m.bericht;
      const o = offers.get(b.id);
      offers.delete(b.id);
      renderOffers();
      const picked = !!(pickPanel && pickPanel.assigned(b.id));
      if (!work.has(b.id)) newCard(b, { title: o && o.title, focus: !!(o && o.accepting) || picked });
      break;
    }
    case 'message': {
      const c = work.get(m.bericht);
      if (c) {
        c.typingUntil = 0;
        addMessage(c, { ts: m.ts || Date.now(), direction: m.direction || 'in', text: m.text ?? null, payload: m.payload });
        updateCard(c);
        if (m.text == null && !m.payload) loadBericht(c);   // attachments are in the stored payload
      }
      break;
    }
    case 'whisper': {   // whisper.js: from a supervisor, never sent to the customer
      const c = work.get(m.bericht);
      if (c) addMessage(c, { ts: m.ts || Date.now(), direction: 'whisper', text: m.text, from: m.from });
      break;
    }
    case 'delivery': {
      const c = work.get(m.bericht);
      if (c) {
        // the channel names the reply (message id) when it can; else the latest one on its way
        const out = (m.message && c.messages.find((x) => x.id === m.message))
          || [...c.messages].reverse().find((x) => x.direction === 'out' &&
            (x.state === 'sending' || x.state === 'sent' || x.state === 'transit' ||
              (x.state === 'delivered' && m.status === 'read')));
        if (out) {
          // SMS and WhatsApp report steps (accepted, sent, delivered, read) before the end state
          const step = m.status !== 'delivered' && m.status !== 'failed' ? deliveryLabel(m.status) : null;
          if (m.status === 'read') { out.state = 'delivered'; out.progress = step; }
          else if (step) { out.state = 'transit'; out.progress = step; }
          else { out.state = m.status === 'delivered' ? 'delivered' : 'delivery_failed'; out.progress = null; }
          refreshMessage(out);
          if (out.state === 'delivery_failed') {
            deliveryReason(api, m.bericht).then((why) => { if (why) { out.error = why; refreshMessage(out); } },
              () => {});
          }
        }
      }
      break;
    }
    case 'typing': {
      const c = work.get(m.bericht);
      if (c) { c.typingUntil = Date.now() + 5000; updateCard(c); }
      break;
    }
    case 'hold':
    case 'resume': {
      const c = work.get(m.bericht);
      if (c) {
        c.held = m.type === 'hold';
        updateCard(c);
        announce($('polite'), t(c.held ? 'agent.held.announce' : 'agent.resumed.announce', { from: c.brief.from || '?' }));
      }
      break;
    }
    case 'customer_ended': {
      const c = work.get(m.bericht);
      if (c) { c.ended = true; updateCard(c); }
      break;
    }
    case 'wrapup': {
      const c = work.get(m.bericht);
      if (c) {
        c.state = 'wrapup';
        c.wrapUntil = m.seconds ? Date.now() + m.seconds * 1000 : null;
        updateCard(c);
      }
      break;
    }
    case 'done': {
      const c = work.get(m.bericht);
      if (c && !c.transferredTo) record('handled', c.brief, c.title);   // a call out: counted as transferred
      removeCard(m.bericht);
      screenPops.delete(m.bericht);
      // the server counts it too; its next `state` push carries the real figure
      if (c && me) { me.handled = (me.handled || 0) + 1; renderMe(); }
      break;
    }
    case 'screen_pop': {
      screenPops.set(m.bericht, m);
      if (offers.has(m.bericht)) renderOffers();
      const c = work.get(m.bericht);
      if (c) showScreenPop(c);
      break;
    }
    case 'queue_stats':
      queueStatsLive = true;
      setQueues(m.queues);
      if (pickPanel) pickPanel.onQueueStats(m.queues);
      break;
    case 'colleagues':
      colleagues = m.agents || [];
      renderColleagues();
      break;
    case 'consult':
      if (consults) consults.received(m);
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ start

function tick() {
  if (me) $('my-state').textContent = ownStateLine();
  for (const o of offers.values()) {
    const el = $('offers').querySelector(`.offer[data-bericht="${CSS.escape(o.brief.id)}"] .countdown`);
    if (el) el.textContent = countdownText(o);
  }
  for (const c of work.values()) {
    c.meta.textContent = t('agent.work.meta', { queue: queueTitle(c.brief.queue, c.title),
      channel: c.brief.channel || '?', duration: dur(Date.now() - c.since) });
    updateWrapbar(c);
    if (c.typingUntil && c.typingUntil < Date.now()) { c.typingUntil = 0; c.typing.textContent = ''; }
  }
  if (pickPanel) pickPanel.tick();
  if (colleagues) {
    for (const td of $('colleagues').querySelectorAll('td[data-since]')) {
      if (Number(td.dataset.since)) td.textContent = dur(Date.now() - Number(td.dataset.since));
    }
  }
}

async function loadLists() {
  try {
    const r = await api('/api/v1/reason-codes');
    const l = r.ok && normReasons(r.json);
    if (l && l.length) { reasons = l; renderReasons(); renderMe(); }
  } catch { /* page data */ }
  try {
    const r = await api('/api/v1/topics');
    const l = r.ok && normTopics(r.json);
    if (l && l.length) topics = l;
  } catch { /* page data */ }
}

if (s) {
  initHeader({
    s,
    onSignOut: async () => {
      if (me && me.state !== 'logged_out') {
        await Promise.race([sock.send({ type: 'logout' }).catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      }
      sock.close();
    },
  });
  $('btn-login').addEventListener('click', () => send({ type: 'login' }).then(() => $('btn-ready').focus(), () => {}));
  $('btn-ready').addEventListener('click', () => send({ type: 'ready' }).catch(() => {}));
  $('btn-logout').addEventListener('click', () => send({ type: 'logout' }).then(() => $('btn-login').focus(), () => {}));
  $('nr-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const reason = $('reason').value;
    send(reason ? { type: 'not_ready', reason } : { type: 'not_ready' }).catch(() => {});
  });
  $('out-channel').addEventListener('change', outKindChanged);
  $('out-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const [channel, kind] = $('out-channel').value.split('|');
    const to = $('out-to').value.trim();
    const err = $('out-error');
    if (!to) { err.textContent = t('agent.out.to.required'); $('out-to').focus(); return; }
    const msg = { type: 'originate', channel, kind, to };
    const text = $('out-text').value.trim();
    if (kind !== 'voice' && text) msg.text = text;
    send(msg, err).then(() => { $('out-to').value = ''; $('out-text').value = ''; }, () => {});
  });
  $('offers-h').setAttribute('tabindex', '-1');
  $('work-h').setAttribute('tabindex', '-1');
  renderReasons();
  renderOffers();
  $('work').append(h('p', { class: 'muted none' }, t('agent.work.none')));
  renderColleagues();
  renderLists();
  pickPanel = createPickPanel({ root: $('pick'), send, queueTitle: (n) => queueTitle(n), me: () => me,
    pollMs: cfg.pick_poll_ms || 3000, polite: $('polite') });
  pickPanel.render();
  renderAlertSettings($('alerts'), () => offerTitle(offers.size));
  escalations = createEscalations($('escalations'), { api, queueTitle: (n) => queueTitle(n) });
  consults = createConsultPanel($('consults'), { api, send, polite: $('polite'), me: () => s.agent || (me && me.id),
    viewDialog: (id) => viewBericht($('view-dialog'), api, id, {
      msgLabel: (m) => (m.direction === 'out' ? t('consult.view.agent') : t('agent.msg.in')), stateText }) });
  $('view-close').addEventListener('click', () => $('view-dialog').close());
  onLang(() => {
    renderAlertSettings($('alerts'), () => offerTitle(offers.size)); escalations.render(); consults.render(); offerTitle(offers.size);
    renderReasons(); renderMe(); renderOffers(); renderColleagues(); renderLists(); renderOutbound();
    if (pickPanel) pickPanel.render();
    for (const c of work.values()) { renderThread(c); updateCard(c); showScreenPop(c); }
    const none = $('work').querySelector('.none');
    if (none) none.textContent = t('agent.work.none');
    if (sock) showConn(sock.ws && sock.ws.readyState === WebSocket.OPEN ? 'open' : 'closed');
  });
  loadLists();
  sock = new Socket(s.token, { onMessage, onStatus: (st) => showConn(st) });
  sock.connect();
  pollQueues();
  setInterval(pollQueues, cfg.queue_poll_ms || 5000);
  setInterval(tick, 1000);
}

// wallboard.js -- large live tiles for a TV (R30, R38). The tiles are chosen with checkboxes,
// kept in localStorage and in the address (?tiles=q:algemeen,agents) so the page can be
// bookmarked. Figures from live.js (websocket `stats`, else polling).
import { t, onLang } from './i18n.js';
import { requireSession, initHeader, showConn, h, dur, clock } from './common.js';
import { LiveFigures, shownState } from './live.js';
import { queueAlarms, alarmList } from './supervise.js';

const s = requireSession(['supervisor', 'admin']);
const $ = (id) => document.getElementById(id);
const STORE = 'acdm.wallboard.tiles';
let model = null;
let chosen = null;            // array of tile ids, null = default (every queue + agents)

function loadChoice() {
  const q = new URLSearchParams(location.search).get('tiles');
  if (q !== null) return q.split(',').map((x) => x.trim()).filter(Boolean);
  try { const v = JSON.parse(localStorage.getItem(STORE) || 'null'); if (Array.isArray(v)) return v; } catch { /* */ }
  return null;
}

function allTiles() {
  if (!model) return [];
  return [...(model.queues || []).map((q) => ({ id: 'q:' + q.name, label: q.title || q.name })),
    { id: 'agents', label: t('wb.tile.agents') },
    ...(model.channels || []).map((c) => ({ id: 'ch:' + c.channel, label: t('wb.tile.channel', { channel: c.channel }) }))];
}

function selected() {
  return chosen || [...(model.queues || []).map((q) => 'q:' + q.name), 'agents'];
}

function bookmarkUrl(ids) {
  const u = new URL(location.href);
  u.searchParams.set('tiles', ids.join(','));
  return u.pathname.replace(/^.*\//, '') + u.search;
}

function saveChoice(ids) {
  chosen = ids;
  try { localStorage.setItem(STORE, JSON.stringify(ids)); } catch { /* */ }
  history.replaceState(null, '', bookmarkUrl(ids));
  render();
}

function renderPicker() {
  const fs = $('picker');
  const sel = new Set(selected());
  for (const tile of allTiles()) {
    const id = 'tile-' + tile.id.replace(/[^\w-]/g, '_');
    let cb = document.getElementById(id);
    if (!cb) {
      cb = h('input', { type: 'checkbox', id, value: tile.id });
      cb.addEventListener('change', () => {
        saveChoice([...fs.querySelectorAll('input:checked')].map((i) => i.value));
      });
      fs.append(h('span', {}, cb, ' ', h('label', { for: id })));
    }
    cb.checked = sel.has(tile.id);
    fs.querySelector(`label[for="${id}"]`).textContent = tile.label;
  }
  $('bookmark').href = bookmarkUrl(selected());
}

function stat(label, value, cls, figure) {
  const dd = { ...(cls ? { class: cls } : {}), ...(figure ? { dataset: { figure } } : {}) };
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', dd, value));
}

/** The service level against the queue's norm, flagged (colour and words) when under it, as
 * the dashboard does. */
function slStat(q, sl) {
  if (q.sl_target_pct == null && sl == null) return null;
  const below = sl != null && q.sl_target_pct != null && sl < q.sl_target_pct;
  const text = (sl != null ? Math.round(sl) + '%' : t('dash')) + (q.sl_target_pct != null ? ` / ${q.sl_target_pct}%` : '');
  const dd = h('dd', { dataset: { figure: 'sl' } },
    h('span', { class: below ? 'sl-below' : sl != null ? 'sl-ok' : '' }, text),
    below ? h('span', { class: 'sl-flag' }, ' ' + t('wb.tile.sl.below')) : null);
  return h('div', { class: 'stat' + (below ? ' below' : '') }, h('dt', {}, t('wb.tile.sl')), dd);
}

function queueTile(q) {
  const today = q.today || {};
  const a = q.agents || {};
  const id = 'wb-' + q.name.replace(/[^\w-]/g, '_');
  const sl = today.service_level_pct;
  const below = sl != null && q.sl_target_pct != null && sl < q.sl_target_pct;
  const alarms = queueAlarms(q, !!model.live);   // supervise.js: in colour and in words
  return h('section', { class: 'tile' + (q.open ? '' : ' closed-q') + (below ? ' sl-alarm' : '') + (alarms.length ? ' alarm-q' : ''),
    'aria-labelledby': id, dataset: { tile: 'q:' + q.name } },
    h('h2', { id }, t('wb.tile.queue', { queue: q.title || q.name })),
    q.open ? null : h('p', { class: 'closedflag' }, t('wb.tile.closed')),
    alarmList(alarms, 'alarms wb-alarms'),
    h('p', {}, h('span', { class: 'big' + (q.waiting ? ' alert' : ''), dataset: { figure: 'waiting' } }, String(q.waiting ?? 0)),
      ' ', h('span', {}, t('wb.tile.waiting'))),
    h('dl', {},
      stat(t('wb.tile.longest'), dur(q.longest_wait_ms || 0)),
      stat(t('wb.tile.ready'), String(a.ready ?? 0), null, 'ready'),
      model.live ? stat(t('wb.tile.answered'), String(today.answered ?? 0)) : null,
      model.live ? stat(t('wb.tile.abandoned'), String(today.abandoned ?? 0)) : null,
      slStat(q, sl)));
}

function agentsTile() {
  // one state per agent, as the dashboard's agents table shows it (live.js shownState)
  const ag = (model.agents || []).map(shownState);
  const count = (s) => String(ag.filter((x) => x === s).length);
  return h('section', { class: 'tile', 'aria-labelledby': 'wb-agents', dataset: { tile: 'agents' } },
    h('h2', { id: 'wb-agents' }, t('wb.tile.agents.label')),
    h('dl', {}, ['ready', 'busy', 'wrapup', 'not_ready', 'logged_out']
      .map((st) => stat(t('state.' + st), count(st), null, st))));
}

function channelTile(c) {
  const id = 'wb-ch-' + c.channel.replace(/[^\w-]/g, '_');
  const today = c.today || {};
  return h('section', { class: 'tile', 'aria-labelledby': id, dataset: { tile: 'ch:' + c.channel } },
    h('h2', { id }, t('wb.tile.channel', { channel: c.channel })),
    h('p', {}, h('span', { class: 'big' + (c.waiting ? ' alert' : '') }, String(c.waiting ?? 0)), ' ', t('wb.tile.waiting')),
    h('dl', {}, stat(t('wb.tile.active'), String(c.active ?? 0)),
      stat(t('wb.tile.answered'), String(today.answered ?? 0)),
      stat(t('wb.tile.abandoned'), String(today.abandoned ?? 0))));
}

function render() {
  $('clock').textContent = clock(Date.now());
  if (!model) return;
  renderPicker();
  const tiles = [];
  for (const id of selected()) {
    if (id === 'agents') tiles.push(agentsTile());
    else if (id.startsWith('q:')) {
      const q = (model.queues || []).find((x) => x.name === id.slice(2));
      if (q) tiles.push(queueTile(q));
    } else if (id.startsWith('ch:')) {
      const c = (model.channels || []).find((x) => x.channel === id.slice(3));
      if (c) tiles.push(channelTile(c));
    }
  }
  $('tiles').replaceChildren(...(tiles.length ? tiles : [h('p', {}, t('wb.none'))]));
  layout(tiles.length);
}

/** The grid that gives n tiles the largest size on this screen (a TV: every tile visible at
 * once, as big as the screen allows; the figures scale with the tile, style.css). */
function layout(n) {
  const box = $('tiles');
  if (!n) { box.style.gridTemplateColumns = box.style.gridTemplateRows = ''; return; }
  const W = box.clientWidth || innerWidth, H = box.clientHeight || innerHeight;
  let best = 1, score = 0;
  for (let c = 1; c <= n; c++) {
    const r = Math.ceil(n / c);
    const w = W / c, hh = H / r;
    const sc = Math.min(w / 1.5, hh);     // a tile reads best about 3:2
    if (sc > score) { score = sc; best = c; }
  }
  box.style.gridTemplateColumns = `repeat(${best}, minmax(0, 1fr))`;
  box.style.gridTemplateRows = `repeat(${Math.ceil(n / best)}, minmax(0, 1fr))`;
}
addEventListener('resize', () => { if (model) render(); });

if (s) {
  chosen = loadChoice();
  let connState = 'connecting';
  const live = new LiveFigures(s.token, {
    onModel: (m) => { model = m; render(); },
    onConn: (st) => { connState = st; showConn(st); },
  });
  initHeader({ s, onSignOut: () => live.sock.close() });
  onLang(() => { render(); showConn(connState); });
  live.start();
  setInterval(() => { $('clock').textContent = clock(Date.now()); }, 1000);
}

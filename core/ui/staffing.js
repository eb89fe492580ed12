// staffing.js -- on the supervisor dashboard: the staffing advice per queue (Erlang C, computed
// by acdmd: the agents needed this quarter for the queue's service-level norm at the arrivals
// of the last 15 minutes and today's average handling time, beside the agents logged in) and
// the intraday graph (offered and answered per 15 minutes today, from GET /api/v1/reports,
// drawn as plain SVG with the norm's service level beside it). Own module: supervisor.js only
// calls renderStaffing(model) and startIntraday().
import { t } from './i18n.js';
import { api, h, dur } from './common.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const num = (v) => (v == null ? t('dash') : String(v));
const hhmm = (ms) => new Date(ms).toLocaleTimeString('nl-NL', { hour: '2-digit', minute: '2-digit' });

/** The advice table: one row per queue, rebuilt when the figures change. */
export function renderStaffing(model) {
  const table = $('staffing');
  if (!table || !model) return;
  const rows = (model.queues || []).filter((q) => q.staffing).map((q) => {
    const st = q.staffing;
    const need = st.agents_needed, have = st.agents_logged_in;
    const short = need != null && have < need;
    const adv = need == null ? t('sup.staff.unknown') : String(need);
    return h('tr', { dataset: { key: q.name } },
      h('th', { scope: 'row' }, q.title || q.name),
      h('td', { class: 'num' }, hhmm(st.interval_start)),
      h('td', { class: 'num' }, String(st.arrivals_15m).replace('.', ',')),
      h('td', { class: 'num' }, st.aht_s != null ? dur(st.aht_s * 1000) : t('dash')),
      h('td', { class: 'num' }, t('sup.sl.norm', { target: q.sl_target_pct, secs: dur((q.sl_seconds || 0) * 1000) })),
      h('td', { class: 'num', dataset: { need: need == null ? '' : String(need) } }, adv),
      h('td', { class: 'num ' + (short ? 'error' : 'ok') }, num(have),
        short ? h('span', { class: 'short' }, ' ' + t('sup.staff.short', { n: need - have })) : null));
  });
  if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 7 }, t('sup.staff.none'))));
  const sig = JSON.stringify((model.queues || []).map((q) => q.staffing)) + document.documentElement.lang;
  if (table.dataset.sig === sig) return;
  table.dataset.sig = sig;
  table.tBodies[0].replaceChildren(...rows);
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

/** Draws one queue's day: bars offered (light) and answered (dark) per quarter, the service
 * level per quarter as a line against the norm (dashed), axis labels in Dutch. */
function drawQueue(q, rows, norm) {
  const W = 720, H = 180, L = 34, R = 34, T = 10, B = 24;
  const iw = (W - L - R) / Math.max(rows.length, 1);
  const max = Math.max(1, ...rows.map((r) => r.offered || 0));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const ys = (p) => T + (H - T - B) * (1 - p / 100);
  const title = t('sup.intraday.graph', { queue: q.title || q.queue });
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'intraday', width: '100%' });
  svg.append(el('title', {}, title));
  svg.append(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: 'currentColor' }));
  svg.append(el('text', { x: 2, y: T + 8, 'font-size': 10, fill: 'currentColor' }, String(max)));
  svg.append(el('text', { x: W - R + 2, y: ys(100) + 8, 'font-size': 10, fill: 'currentColor' }, '100%'));
  if (norm != null) {
    svg.append(el('line', { x1: L, y1: ys(norm), x2: W - R, y2: ys(norm), stroke: '#b35c00', 'stroke-dasharray': '4 3' }));
    svg.append(el('text', { x: W - R + 2, y: ys(norm) + 3, 'font-size': 10, fill: '#b35c00' }, t('sup.intraday.norm', { pct: norm })));
  }
  let path = '';
  rows.forEach((r, i) => {
    const x = L + i * iw;
    const g = el('g', { class: 'q' });
    g.append(el('title', {}, t('sup.intraday.bar', { time: hhmm(Date.parse(r.interval_start)), offered: r.offered, answered: r.answered,
      sl: r.service_level_pct == null ? t('dash') : r.service_level_pct + '%' })));
    g.append(el('rect', { x: x + 1, y: y(r.offered || 0), width: Math.max(iw - 2, 1), height: H - B - y(r.offered || 0), fill: '#9ec5e8', class: 'offered' }));
    g.append(el('rect', { x: x + 1 + iw * 0.25, y: y(r.answered || 0), width: Math.max(iw * 0.5 - 2, 1), height: H - B - y(r.answered || 0), fill: '#1f5f99', class: 'answered' }));
    svg.append(g);
    if (r.service_level_pct != null) path += `${path ? 'L' : 'M'}${(x + iw / 2).toFixed(1)},${ys(r.service_level_pct).toFixed(1)}`;
    if (i % 8 === 0) svg.append(el('text', { x, y: H - 8, 'font-size': 10, fill: 'currentColor' }, hhmm(Date.parse(r.interval_start))));
  });
  if (path) svg.append(el('path', { d: path, fill: 'none', stroke: '#b35c00', 'stroke-width': 1.5, class: 'sl' }));
  return svg;
}

let queuesMeta = {};
export function setIntradayQueues(model) {
  for (const q of (model && model.queues) || []) queuesMeta[q.name] = q;
}

async function loadIntraday() {
  const box = $('intraday');
  if (!box) return;
  const r = await api('/api/v1/reports?kind=queues&period=day&interval=15m');
  if (!r.ok || !r.json) { box.replaceChildren(h('p', { class: 'error' }, t('sup.intraday.error'))); return; }
  const now = Date.now();
  const by = {};
  for (const row of r.json.rows) {
    if (Date.parse(row.interval_start) > now) continue;   // the rest of the day has not happened
    (by[row.queue] = by[row.queue] || { title: row.title, queue: row.queue, rows: [] }).rows.push(row);
  }
  const parts = [];
  for (const q of Object.values(by)) {
    const first = q.rows.findIndex((x) => x.offered > 0);
    const rows = first < 0 ? q.rows.slice(-8) : q.rows.slice(Math.max(0, first - 1));
    const norm = queuesMeta[q.queue] ? queuesMeta[q.queue].sl_target_pct : null;
    const table = h('table', { class: 'visually-hidden intraday-table' },
      h('caption', {}, t('sup.intraday.graph', { queue: q.title || q.queue })),
      h('thead', {}, h('tr', {}, [t('sup.intraday.col.time'), t('rep.col.offered'), t('rep.col.answered'), t('rep.col.service_level_pct')]
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((x) => h('tr', {}, h('th', { scope: 'row' }, hhmm(Date.parse(x.interval_start))),
        h('td', {}, String(x.offered)), h('td', {}, String(x.answered)),
        h('td', {}, x.service_level_pct == null ? t('dash') : x.service_level_pct + '%')))));
    parts.push(h('figure', { dataset: { queue: q.queue } }, drawQueue(q, rows, norm),
      h('figcaption', {}, h('span', { class: 'swatch offered' }), ' ', t('rep.col.offered'), ' ',
        h('span', { class: 'swatch answered' }), ' ', t('rep.col.answered'), ' — ', t('sup.intraday.legend')), table));
  }
  box.replaceChildren(...parts);
}

/** Loads the graph now and every minute. */
export function startIntraday() {
  if (!$('intraday')) return;
  loadIntraday().catch(() => {});
  setInterval(() => loadIntraday().catch(() => {}), 60000);
}

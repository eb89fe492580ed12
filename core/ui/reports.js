// reports.js -- the supervisors' reports page (R28): choose a report (per queue, channel, agent
// or topic), a period and an interval; the figures come from GET /api/v1/reports and are shown
// as two tables (totals, per interval); CSV, Excel, PDF and JSON are downloaded from the same route.
import { t, onLang, lang } from './i18n.js';
import { api, requireSession, initHeader, h, dur, reasonLabel, normReasons, session, expired } from './common.js';

const s = requireSession(['supervisor', 'admin']);
const $ = (id) => document.getElementById(id);
let report = null;
let reasons = [];

/** yyyy-mm-dd of a local Date. */
const ymd = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

/** The query for the form's choice (without format), or null with the problem shown. */
function query() {
  const p = new URLSearchParams();
  p.set('kind', $('rep-kind').value);
  const from = $('rep-from').value;
  if (!from) { $('rep-error').textContent = t('rep.error.from'); $('rep-from').focus(); return null; }
  const period = $('rep-period').value;
  p.set('from', from);
  if (period === 'custom') {
    const until = $('rep-until').value;
    if (!until || until < from) { $('rep-error').textContent = t('rep.error.until'); $('rep-until').focus(); return null; }
    const end = new Date(until + 'T12:00:00');
    end.setDate(end.getDate() + 1);           // "up to and including": the next local midnight
    p.set('until', ymd(end));
  } else {
    p.set('period', period);
  }
  if ($('rep-interval').value) p.set('interval', $('rep-interval').value);
  return p;
}

function columnLabel(c) {
  const m = /^not_ready_(.+)_s$/.exec(c);
  if (m) return t('rep.col.not_ready_reason', { reason: m[1] === 'none' ? t('rep.reason.none') : reasonLabel(m[1], reasons) });
  const l = t('rep.col.' + c);
  return l === 'rep.col.' + c ? c : l;
}

/** Local ISO time with offset -> "20-11-2026 08:00" (dates only for daily intervals). */
function when(iso, daily) {
  const [d, tm] = iso.split('T');
  const [y, mo, da] = d.split('-');
  return daily ? `${da}-${mo}-${y}` : `${da}-${mo}-${y} ${tm.slice(0, 5)}`;
}

function cellText(col, v, daily) {
  if (v == null) return t('dash');
  if (col === 'interval_start' || col === 'interval_end') return when(v, daily);
  if (col === 'csat_helped_pct') return v.toLocaleString(t('rep.locale'), { maximumFractionDigits: 1 }) + '%';
  if (col === 'csat_avg') return v.toLocaleString(t('rep.locale'), { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  if (col === 'service_level_pct') return v.toLocaleString(t('rep.locale'), { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + '%';
  if (col.endsWith('_s')) return dur(v * 1000);
  return typeof v === 'number' ? v.toLocaleString(t('rep.locale')) : String(v);
}

function fillTable(table, columns, rows, { skipInterval } = {}) {
  const daily = report && report.interval === '1d';
  const cols = skipInterval ? columns.filter((c) => c !== 'interval_start' && c !== 'interval_end') : columns;
  table.tHead.replaceChildren(h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, columnLabel(c)))));
  const body = rows.map((r) => h('tr', {}, cols.map((c, i) => {
    const text = cellText(c, r[c], daily);
    const num = typeof r[c] === 'number';
    // the row's key (queue, channel, agent, topic) heads the row
    return i === (skipInterval ? 0 : 2) ? h('th', { scope: 'row' }, text) : h('td', { class: num ? 'num' : undefined }, text);
  })));
  if (!body.length) body.push(h('tr', {}, h('td', { colspan: cols.length }, t('rep.empty'))));
  table.tBodies[0].replaceChildren(...body);
}

function render() {
  if (!report) return;
  fillTable($('rep-totals'), report.columns, report.totals, { skipInterval: true });
  fillTable($('rep-rows'), report.columns, report.rows);
  $('rep-totals').setAttribute('aria-describedby', 'rep-status');
}

async function show(ev) {
  if (ev) ev.preventDefault();
  $('rep-error').textContent = '';
  const p = query();
  if (!p) return;
  $('rep-status').textContent = t('rep.loading');
  $('rep-show').disabled = true;
  try {
    const r = await api('/api/v1/reports?' + p.toString());
    if (!r.ok) {
      $('rep-status').textContent = '';
      $('rep-error').textContent = t('error.prefix', { text: (r.json && r.json.detail) || r.status });
      return;
    }
    report = r.json;
    render();
    $('rep-status').textContent = t('rep.shown', { from: when(report.from, false), until: when(report.until, false),
      rows: report.rows.length });
  } catch (e) {
    $('rep-status').textContent = '';
    $('rep-error').textContent = t('error.prefix', { text: String(e) });
  } finally {
    $('rep-show').disabled = false;
  }
}

/** Downloads the report in format (the route needs the bearer token, so no plain link). */
async function download(format) {
  $('rep-error').textContent = '';
  const p = query();
  if (!p) return;
  p.set('format', format);
  p.set('lang', lang());   // CSV and PDF as this page shows them (Dutch: Excel's ';' and BOM)
  $('rep-status').textContent = t('rep.loading');
  try {
    const r = await fetch('/api/v1/reports?' + p.toString(), { headers: { Authorization: 'Bearer ' + session().token } });
    if (r.status === 401) { expired(); return; }
    if (!r.ok) {
      let detail = r.status;
      try { detail = (await r.json()).detail || detail; } catch { /* not JSON */ }
      $('rep-status').textContent = '';
      $('rep-error').textContent = t('error.prefix', { text: detail });
      return;
    }
    const blob = await r.blob();
    const cd = r.headers.get('Content-Disposition') || '';
    const name = (/filename="([^"]+)"/.exec(cd) || [])[1] || `acdm-report.${format}`;
    const a = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    $('rep-status').textContent = t('rep.downloaded', { name });
  } catch (e) {
    $('rep-status').textContent = '';
    $('rep-error').textContent = t('error.prefix', { text: String(e) });
  }
}

function periodChanged() {
  const custom = $('rep-period').value === 'custom';
  $('rep-until-p').hidden = !custom;
  $('rep-until').required = custom;
  document.querySelector('label[for="rep-from"]').textContent = t(custom ? 'rep.from.custom' : 'rep.from');
}

async function init() {
  if (!s) return;
  initHeader({ s });
  const today = ymd(new Date());
  $('rep-from').value = today;
  $('rep-until').value = today;
  $('rep-period').addEventListener('change', periodChanged);
  $('rep-form').addEventListener('submit', show);
  for (const id of ['rep-csv', 'rep-xlsx', 'rep-pdf', 'rep-json']) $(id).addEventListener('click', () => download($(id).dataset.format));
  onLang(() => { periodChanged(); render(); });
  periodChanged();
  const rc = await api('/api/v1/reason-codes');
  reasons = (rc.ok && normReasons(rc.json)) || [];
  show();
}

init();

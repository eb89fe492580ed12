// pick.js -- the agent desk's "Wachtrij" panel (R40): per joined queue the berichten waiting in it
// (GET /api/v1/queues/{name}/waiting, best first), each with a "Pakken" button that sends the
// websocket's `pick`; the server then pushes `offer` and `assigned` and agent.js opens the
// conversation. Refreshed every few seconds and at once when `queue_stats` shows a changed count.
import { t } from './i18n.js';
import { api, h, dur, kindLabel, announce } from './common.js';

/**
 * opts: root (the panel's container), send(msg, errEl) -> Promise (agent.js), queueTitle(name),
 * me() -> the agent or null, pollMs, polite (the aria-live element for short news).
 */
export function createPickPanel({ root, send, queueTitle, me, pollMs = 3000, polite }) {
  const lists = new Map();   // queue name -> {rows, total, at, error}
  const counts = new Map();  // queue name -> waiting count from the last queue_stats
  const picking = new Set(); // bericht ids we sent `pick` for and did not get `assigned` yet
  let unavailable = false;   // the server has no such route (an older acdmd)
  let busy = false;

  const joined = () => ((me() && me().queues) || []).filter((q) => q.joined).map((q) => q.queue);
  const loggedIn = () => me() && me().state !== 'logged_out';
  const safe = (s) => s.replace(/[^\w-]/g, '_');

  async function load(name) {
    let r = null;
    try { r = await api('/api/v1/queues/' + encodeURIComponent(name) + '/waiting?limit=50'); } catch { /* below */ }
    // a joined queue exists: a 404 means this acdmd has no such route
    if (r && r.status === 404) unavailable = true;
    if (!r || !r.ok || !r.json) {
      lists.set(name, { rows: [], total: 0, at: Date.now(), error: true });
      return;
    }
    lists.set(name, { rows: r.json.berichten || [], total: r.json.total ?? 0, at: Date.now(), error: false });
  }

  let again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const names = loggedIn() ? joined() : [];
        for (const n of [...lists.keys()]) if (!names.includes(n)) lists.delete(n);
        await Promise.all(names.map(load));
      } while (again);
    } finally {
      busy = false;
    }
    render();
  }

  function rowLabel(b) {
    return { kind: kindLabel(b.kind), from: b.from || '?', subject: b.subject || '' };
  }

  function pick(name, b, errEl) {
    picking.add(b.id);
    errEl.textContent = '';
    send({ type: 'pick', bericht: b.id }, errEl).then(() => {
      const l = lists.get(name);
      if (l) { l.rows = l.rows.filter((x) => x.id !== b.id); l.total = Math.max(0, l.total - 1); }
      render();
      refresh();
    }, () => {
      picking.delete(b.id);
      refresh();
    });
  }

  function render() {
    const active = document.activeElement;
    const inside = active && root.contains(active);
    const focusId = inside && active.dataset && active.dataset.pick;
    const focusQueue = inside && active.closest('[data-queue]') && active.closest('[data-queue]').dataset.queue;
    const names = loggedIn() ? joined() : [];
    if (!loggedIn()) {
      root.replaceChildren(h('p', { class: 'muted' }, t('agent.pick.logged_out')));
      return;
    }
    if (unavailable) {
      root.replaceChildren(h('p', { class: 'muted' }, t('agent.pick.unavailable')));
      return;
    }
    if (!names.length) {
      root.replaceChildren(h('p', { class: 'muted' }, t('agent.pick.no_queues')));
      return;
    }
    const blocks = names.map((name) => {
      const l = lists.get(name);
      const hid = 'pick-' + safe(name) + '-h';
      const err = h('p', { class: 'error', role: 'alert' });
      let body;
      if (!l) body = h('p', { class: 'muted' }, t('agent.pick.loading'));
      else if (l.error) body = h('p', { class: 'muted' }, t('agent.pick.failed'));
      else if (!l.rows.length) body = h('p', { class: 'muted' }, t('agent.pick.empty'));
      else {
        body = h('table', { class: 'pick-table', 'aria-labelledby': hid },
          h('thead', {}, h('tr', {},
            ['kind', 'from', 'subject', 'wait', 'action'].map((k) => h('th', { scope: 'col' }, t('agent.pick.col.' + k))))),
          h('tbody', {}, l.rows.map((b) => {
            const v = rowLabel(b);
            const btn = h('button', { type: 'button', class: 'primary', dataset: { pick: b.id },
              'aria-label': t(v.subject ? 'agent.pick.button.label.subject' : 'agent.pick.button.label', v) },
            t('agent.pick.button'));
            if (picking.has(b.id)) btn.setAttribute('aria-disabled', 'true');
            btn.addEventListener('click', () => { if (!picking.has(b.id)) pick(name, b, err); });
            return h('tr', { dataset: { bericht: b.id } },
              h('td', {}, kindLabel(b.kind), b.priority ? h('span', { class: 'prio' }, ' ' + t('agent.pick.priority', { p: b.priority })) : null),
              h('td', {}, b.from || '?'),
              h('td', {}, b.subject || t('dash')),
              h('td', { class: 'num', dataset: { wait: String(b.wait_ms ?? 0) } }, dur(waitNow(l, b))),
              h('td', {}, btn));
          })));
      }
      const more = l && l.total > l.rows.length ? h('p', { class: 'muted' }, t('agent.pick.more', { n: l.total - l.rows.length })) : null;
      return h('div', { class: 'pick-queue', dataset: { queue: name } },
        h('h3', { id: hid, tabindex: '-1' }, t('agent.pick.queue', { queue: queueTitle(name), n: l ? l.total : '…' })),
        body, more, err);
    });
    root.replaceChildren(...blocks);
    if (focusId) {
      const el = root.querySelector(`[data-pick="${CSS.escape(focusId)}"]`);
      if (el) el.focus();
      else if (focusQueue) {
        // the bericht went (picked, offered or ended): the next one's button, else the heading
        const q = root.querySelector(`[data-queue="${CSS.escape(focusQueue)}"]`);
        const next = q && (q.querySelector('[data-pick]') || q.querySelector('h3'));
        if (next) next.focus();
      }
    }
  }

  function waitNow(l, b) { return (b.wait_ms ?? 0) + (Date.now() - l.at); }

  /** queue_stats: refresh at once when a joined queue's waiting count changed. */
  function onQueueStats(queues) {
    let changed = false;
    for (const q of queues || []) {
      if (counts.get(q.name) !== q.waiting) { counts.set(q.name, q.waiting); changed = true; }
    }
    if (changed) refresh();
  }

  /** every second: the wait column */
  function tick() {
    for (const [name, l] of lists) {
      const box = root.querySelector(`[data-queue="${CSS.escape(name)}"]`);
      if (!box) continue;
      for (const tr of box.querySelectorAll('tr[data-bericht]')) {
        const b = l.rows.find((x) => x.id === tr.dataset.bericht);
        const td = tr.querySelector('td[data-wait]');
        if (b && td) td.textContent = dur(waitNow(l, b));
      }
    }
  }

  /** the `assigned` push for a bericht we picked */
  function assigned(id) {
    if (!picking.delete(id)) return false;
    for (const l of lists.values()) l.rows = l.rows.filter((x) => x.id !== id);
    if (polite) announce(polite, t('agent.pick.done'));
    render();
    return true;
  }

  setInterval(() => { if (loggedIn() && joined().length) refresh(); }, pollMs);
  return { refresh, render, onQueueStats, tick, assigned, isPicking: (id) => picking.has(id) };
}

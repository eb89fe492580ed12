// live.js -- the live figures for the supervisor dashboard and the wallboard.
// The supervisor websocket sends `hello`, `snapshot` and then `stats` every second; until a
// server does (or while it does not), the same model is built by polling GET /api/v1/queues
// and GET /api/v1/agents every 2 s. The model has the shape of a `stats` message:
//   {ts, live, queues:[{name,title,open,waiting,longest_wait_ms,today|null,sl_target_pct,sl_seconds,
//     agents:{logged_in,ready,busy,wrapup,not_ready}}], channels:[...]|null, agents:[...]}
import { api, Socket } from './common.js';

const STATS_WAIT_MS = 3000;   // no stats this long after hello: poll
const POLL_MS = 2000;

export class LiveFigures {
  constructor(token, { onModel, onConn, onExtra } = {}) {
    this.token = token;
    this.onModel = onModel || (() => {});
    this.onConn = onConn || (() => {});
    this.onExtra = onExtra || (() => {});
    this.live = false;           // stats arrive over the websocket
    this.lastStats = 0;
    this.pollTimer = null;
    this.sock = new Socket(token, {
      onMessage: (m) => this.message(m),
      onStatus: (st) => {
        if (st === 'open') this.armFallback();
        if (st === 'closed') { this.live = false; this.startPolling(); }
        this.conn(st);
      },
    });
  }

  start() {
    this.sock.connect();
    // first figures at once from REST, so the page is not empty while the socket connects
    this.poll();
    setInterval(() => {
      if (this.live && Date.now() - this.lastStats > STATS_WAIT_MS) { this.live = false; this.startPolling(); this.conn('open'); }
    }, 1000);
  }

  conn(st) {
    this.onConn(st === 'open' ? (this.live ? 'stats' : 'polling') : st);
  }

  armFallback() {
    setTimeout(() => { if (!this.live) { this.startPolling(); this.conn('open'); } }, STATS_WAIT_MS);
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
  }

  stopPolling() {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  message(m) {
    if (m.type === 'stats' || (m.type === 'snapshot' && Array.isArray(m.queues))) {
      const was = this.live;
      this.live = true;
      this.lastStats = Date.now();
      this.stopPolling();
      if (!was) this.conn('open');
      this.onModel({ ...m, live: true, ts: m.ts || Date.now() });
    }
    if (m.type === 'snapshot' || m.type === 'hello') this.onExtra(m);
  }

  /** Supervisor command: over the websocket when it sends live figures, else the same action in REST. */
  async command(msg) {
    if (this.live) return this.sock.send(msg);
    const q = encodeURIComponent(msg.queue || '');
    const a = encodeURIComponent(msg.agent || '');
    const rest = {
      queue_open: [`/api/v1/queues/${q}/open`], queue_close: [`/api/v1/queues/${q}/close`],
      agent_login: [`/api/v1/agents/${a}/login`], agent_logout: [`/api/v1/agents/${a}/logout`],
      agent_ready: [`/api/v1/agents/${a}/ready`],
      agent_not_ready: [`/api/v1/agents/${a}/not-ready`, msg.reason ? { reason: msg.reason } : {}],
      // supervise.js: reassign a bericht, whisper to its agent
      reassign: [`/api/v1/berichten/${encodeURIComponent(msg.bericht || '')}/reassign`, { agent: msg.agent }],
      whisper: [`/api/v1/berichten/${encodeURIComponent(msg.bericht || '')}/whisper`, { text: msg.text }],
    }[msg.type];
    if (!rest) return this.sock.send(msg);
    const r = await api(rest[0], { method: 'POST', token: this.token, body: rest[1] });
    if (!r.ok) throw { code: String(r.status), text: (r.json && (r.json.detail || r.json.title)) || String(r.status) };
    this.poll();
    return r.json;
  }

  async poll() {
    if (this.live) return;
    try {
      const [q, a] = await Promise.all([api('/api/v1/queues', { token: this.token }),
        api('/api/v1/agents', { token: this.token })]);
      if (this.live || !q.ok) return;
      this.onModel(fromRest(q.json.queues || [], a.ok ? a.json.agents || [] : []));
    } catch { /* next time */ }
  }
}

/**
 * What the dashboard and the wallboard show of an agent: one state, exclusive (the server's
 * queue counts use the same rule, acdm_agent_shown): logged out; else busy (in a
 * conversation), else wrap-up, else ready ("beschikbaar") or not ready.
 */
export function shownState(a) {
  if (a.state === 'logged_out') return 'logged_out';
  if (a.busy) return 'busy';
  if (a.wrapup) return 'wrapup';
  return a.state;
}

/** The stats model from the REST lists (no day figures, no channels). */
export function fromRest(queues, agents) {
  const now = Date.now();
  const ag = agents.map((a) => ({
    id: a.id, name: a.name, state: a.state, reason: a.reason, since: a.since, handled: a.handled,
    busy: (a.work || []).filter((w) => w.state === 'active').length,
    wrapup: (a.work || []).filter((w) => w.state === 'wrapup').length,
    work: a.work || [], queues: a.queues || [],
  }));
  return {
    ts: now, live: false, channels: null, agents: ag,
    queues: queues.map((q) => {
      const members = ag.filter((a) => a.state !== 'logged_out' && a.queues.some((x) => x.queue === q.name && x.joined));
      return {
        name: q.name, title: q.title || q.name, open: q.open, strategy: q.strategy, waiting: q.waiting,
        waiting_by_kind: q.waiting_by_kind, longest_wait_ms: q.longest_wait_ms, today: null,
        sl_target_pct: q.sl_target_pct ?? null, sl_seconds: q.sl_seconds ?? null, status: q.status ?? null,
        // one state per agent (shownState), as the server's stats count them
        agents: {
          logged_in: members.length,
          ready: members.filter((a) => shownState(a) === 'ready').length,
          busy: members.filter((a) => shownState(a) === 'busy').length,
          wrapup: members.filter((a) => shownState(a) === 'wrapup').length,
          not_ready: members.filter((a) => shownState(a) === 'not_ready').length,
        },
      };
    }),
  };
}

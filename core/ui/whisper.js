// whisper.js -- a supervisor's whisper on the agent desk: shown in the conversation, marked as
// from the supervisor and for the agent only (the customer never gets it: it is not in the
// thread, only in the bericht's events). Live as the websocket's `whisper`, after a reload from
// the bericht's `whisper` events (GET /api/v1/berichten/{id}).
import './i18n_supervise.js';
import { t } from './i18n.js';
import { h, clock } from './common.js';

/** The thread entry of a whisper {ts, text, from}. */
export function whisperItem(m) {
  const el = h('div', { class: 'msg whisper' },
    h('span', { class: 'who' }, `${t('agent.whisper.from', { from: m.from || '?' })} · ${clock(m.ts)}`), m.text);
  m.li = el;
  return el;
}

/** The whispers of a stored bericht, as thread messages (direction "whisper"). */
export function whispersOf(b) {
  return ((b && b.events) || []).filter((e) => e.type === 'whisper' && e.detail && e.detail.text)
    .map((e) => ({ ts: e.ts, direction: 'whisper', text: e.detail.text, from: e.detail.by }));
}

// transcript.js -- a chatbot's or the web chat bot's conversation handed to an agent, shown as
// the conversation it was: one line per entry, by author (Klant / Chatbot / Medewerker), in the
// browser's local time. Two payload shapes (docs/plugin-guide.md, "handoff"):
//   chatbot channel (acdm_handoff_* in plugin_util.h): {customer:{name,..}, summary, intent,
//     transcript:[{author, text, time}]}  time: ISO 8601 string or epoch ms, optional
//   web chat (channels/webchat):  {source:"bot", summary, transcript:[{from, text, ts}]}
//     from: visitor | bot | agent | system; ts: epoch ms
import { t } from './i18n.js';
import { h, clock } from './common.js';

/** The bot platforms' author names, and the web chat's `from`, as the desk's roles. */
const ROLE = {
  customer: 'customer', visitor: 'customer', user: 'customer', klant: 'customer', human: 'customer',
  bot: 'bot', chatbot: 'bot', assistant: 'bot', virtual_agent: 'bot',
  agent: 'agent', medewerker: 'agent', system: 'system',
};

function toMs(v) {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v) { const ms = Date.parse(v); return Number.isNaN(ms) ? null : ms; }
  return null;
}

/** The payload's transcript as [{role, label, text, ms}], or null when it has none. */
export function handoffLines(payload) {
  const tr = payload && typeof payload === 'object' && Array.isArray(payload.transcript) ? payload.transcript : null;
  if (!tr || !tr.length) return null;
  const out = [];
  for (const e of tr) {
    if (!e || typeof e !== 'object' || typeof e.text !== 'string') continue;
    const author = String(e.author ?? e.from ?? '');
    const role = ROLE[author.toLowerCase()] || null;
    out.push({ role, label: role ? t('transcript.' + role) : author || t('transcript.unknown'),
      text: e.text, ms: toMs(e.time ?? e.ts) });
  }
  return out.length ? out : null;
}

/** The customer's name wherever the channel knows it, or null: a chatbot handoff's
 *  customer.name, WhatsApp's profile name and the web chat form's name (payload.name), the
 *  display name of a mail's sender (payload.from_name). */
export function customerName(payload) {
  if (!payload || typeof payload !== 'object') return null;
  const c = payload.customer && typeof payload.customer === 'object' ? payload.customer : null;
  for (const v of [c && c.name, payload.name, payload.from_name, payload.customer_name]) {
    if (typeof v === 'string' && v.trim()) return v.trim();
  }
  return null;
}

/** The handed-off conversation as a block for the thread: summary, then the lines. */
export function transcriptBlock(lines, payload) {
  const summary = payload && (payload.summary || payload.intent);
  return h('div', { class: 'handoff' },
    summary ? h('p', { class: 'muted' }, t('transcript.summary', { summary })) : null,
    h('ol', { class: 'transcript', 'aria-label': t('transcript.label') },
      lines.map((l) => h('li', { class: 'tline tline-' + (l.role || 'other') },
        h('span', { class: 'tw' }, l.label + (l.ms != null ? ' · ' + clock(l.ms) : '')), ' ',
        h('span', { class: 'tt' }, l.text)))));
}

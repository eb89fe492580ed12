// composer_extras.js -- channel hints under the agent's reply box, kept out of agent.js:
//  - SMS: encoding and number of parts as the agent types, by the rules channels/sms/smstext.c
//    sends with (GSM-7 after substitutions: 160 in one SMS, 153 per part, € [ ] { } ~ ^ \ |
//    count two; otherwise UCS-2: 70 / 67, an emoji counts two), and a warning naming the
//    character that turns the whole text into UCS-2;
//  - WhatsApp: how long the 24-hour customer-service window stays open (from the citizen's last
//    message in the thread); outside it, that free text will be refused;
//  - WhatsApp: a template picker (the instance's configured templates, GET
//    /channels/<instance>/templates) with one field per parameter, opened when the window is
//    closed; sent as the message payload {"template": {name, language, params}};
//  - delivery states of the SMS and WhatsApp channels (accepted, sent, delivered, read, failed)
//    and the reason of a failure, read from the bericht's delivery events.
import { t } from './i18n.js';
import { h } from './common.js';

const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXT = '\f^{}\\[~]|€';
// the substitutions of smstext.c (typography and accents outside GSM 03.38)
const SUBST = {
  '\t': ' ', '\u00a0': ' ', '\u2002': ' ', '\u2003': ' ', '\u2009': ' ', '\u200b': '',
  '‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '´': "'", '`': "'",
  '“': '"', '”': '"', '„': '"', '«': '"', '»': '"',
  '‐': '-', '‑': '-', '‒': '-', '–': '-', '—': '-', '−': '-', '…': '...', '•': '-', '·': '.',
  'á': 'a', 'â': 'a', 'ã': 'a', 'À': 'A', 'Á': 'A', 'Â': 'A', 'Ã': 'A',
  'ë': 'e', 'ê': 'e', 'È': 'E', 'Ê': 'E', 'Ë': 'E',
  'í': 'i', 'î': 'i', 'ï': 'i', 'Ì': 'I', 'Í': 'I', 'Î': 'I', 'Ï': 'I',
  'ó': 'o', 'ô': 'o', 'õ': 'o', 'Ò': 'O', 'Ó': 'O', 'Ô': 'O', 'Õ': 'O',
  'ú': 'u', 'û': 'u', 'Ù': 'U', 'Ú': 'U', 'Û': 'U',
  'ç': 'Ç', 'ý': 'y', 'ÿ': 'y', 'Ý': 'Y', 'ĳ': 'ij', 'Ĳ': 'IJ',
};

function septets(ch) {
  if (GSM_BASIC.includes(ch)) return 1;
  if (GSM_EXT.includes(ch)) return 2;
  return 0;
}

/** How the sms channel will send `text`: {encoding: 'gsm7'|'ucs2', units, parts, perPart,
 *  cause (the first character forcing UCS-2, or null)}. */
export function smsCount(text) {
  let gsm = 0;
  let utf16 = 0;
  let cause = null;
  for (const ch of text) {
    utf16 += ch.length;
    const n = septets(ch);
    if (n) { gsm += n; continue; }
    const sub = SUBST[ch];
    if (sub !== undefined) { for (const c of sub) gsm += septets(c); continue; }
    if (cause === null) cause = ch;
  }
  if (cause === null) {
    const parts = gsm <= 160 ? 1 : splitCount(text, 153, true);
    return { encoding: 'gsm7', units: gsm, parts, perPart: parts === 1 ? 160 : 153, cause };
  }
  const parts = utf16 <= 70 ? 1 : splitCount(text, 67, false);
  return { encoding: 'ucs2', units: utf16, parts, perPart: parts === 1 ? 70 : 67, cause };
}

// parts as smstext.c cuts them: never inside a character (an escape pair or surrogate pair)
function splitCount(text, per, gsm) {
  let parts = 1;
  let used = 0;
  for (const ch of text) {
    let u;
    if (gsm) {
      u = septets(ch);
      if (!u) u = [...(SUBST[ch] || '')].reduce((a, c) => a + septets(c), 0);
    } else u = ch.length;
    if (used + u > per) { parts++; used = 0; }
    used += u;
  }
  return parts;
}

const WINDOW_MS = 24 * 3600 * 1000;

function windowText(c) {
  // the channel's own record of the citizen's last message (Meta's timestamp) when known
  const last = c.waLastIn !== undefined ? (c.waLastIn ? { ts: c.waLastIn } : null)
    : [...c.messages].reverse().find((m) => m.direction !== 'out');
  if (!last || !last.ts) return { text: t('wa.window.unknown'), closed: false };
  const left = last.ts + WINDOW_MS - Date.now();
  if (left <= 0) return { text: t('wa.window.closed'), closed: true };
  const hh = Math.floor(left / 3600000);
  const mm = Math.floor((left % 3600000) / 60000);
  return { text: t('wa.window.open', { h: hh, m: String(mm).padStart(2, '0') }), closed: false };
}

/** Adds the hint line for the card's channel (SMS, WhatsApp) after the composer's hint. */
export function attachComposerExtras(c) {
  const kind = c.brief.kind;
  if (kind !== 'sms' && kind !== 'whatsapp') return;
  const info = h('p', { class: 'muted composer-info', 'aria-live': 'polite', dataset: { kind } });
  c.hint.after(info);
  c.extraInfo = info;
  const update = () => {
    if (!info.isConnected && c.extraTimer) { clearInterval(c.extraTimer); return; }
    if (kind === 'sms') {
      const text = c.input.value;
      if (!text) { info.textContent = t('sms.count.empty'); info.classList.remove('warn'); return; }
      const n = smsCount(text);
      let s = t(n.encoding === 'gsm7' ? 'sms.count.gsm7' : 'sms.count.ucs2',
        { units: n.units, parts: n.parts, per: n.perPart });
      if (n.cause) s += ' ' + t('sms.count.cause', { ch: n.cause });
      info.textContent = s;
      info.classList.toggle('warn', !!n.cause);
    } else {
      const w = windowText(c);
      info.textContent = w.text;
      info.classList.toggle('warn', w.closed);
      if (w.closed && c.templates && !c.templates.dataset.opened) { c.templates.open = true; c.templates.dataset.opened = '1'; }
    }
  };
  c.input.addEventListener('input', update);
  if (kind === 'whatsapp') c.extraTimer = setInterval(update, 30000);
  c.updateExtras = update;
  update();
}

/** The desk's text for a delivery state pushed for this kind (null: not one of ours). */
export function deliveryLabel(status) {
  const k = { accepted: 'delivery.accepted', sent: 'delivery.sent', queued: 'delivery.accepted',
    delivered: 'delivery.delivered', read: 'delivery.read', failed: 'delivery.failed' }[status];
  return k ? t(k) : null;
}

/** The reason of the bericht's last failed delivery (from its events), or null. */
export async function deliveryReason(api, berichtId) {
  // the event is stored at the next group commit, a moment after the push: ask a few times
  for (let i = 0; i < 5; i++) {
    const r = await api(`/api/v1/berichten/${encodeURIComponent(berichtId)}`);
    if (!r.ok || !r.json) return null;
    const ev = (r.json.events || []).filter((e) => e.type === 'delivery').reverse();
    for (const e of ev) {
      let d = e.detail;
      if (typeof d === 'string') { try { d = JSON.parse(d); } catch { d = null; } }
      if (d && d.delivery === 'failed' && d.error) return d.error;
    }
    await new Promise((res) => setTimeout(res, 200 * (i + 1)));
  }
  return null;
}

async function channelInfo(c, api) {
  try {
    const r = await api(`/channels/${encodeURIComponent(c.brief.channel)}/templates?to=${encodeURIComponent(c.brief.from || '')}`);
    if (!r.ok || !r.json) return null;
    c.waLastIn = typeof r.json.last_in === 'number' ? r.json.last_in * 1000 : null;
    return r.json;
  } catch { return null; }
}

/** WhatsApp: the template picker under the composer; send(text, payload) sends a reply. */
export async function attachTemplatePicker(c, api, send) {
  if (c.brief.kind !== 'whatsapp' || !c.brief.channel) return;
  const info = await channelInfo(c, api);
  const list = info && Array.isArray(info.templates) ? info.templates : [];
  // a new message of the citizen moves the window: ask the channel again
  let seen = c.messages.filter((m) => m.direction !== 'out').length;
  const upd = c.updateExtras;
  c.updateExtras = () => {
    const n = c.messages.filter((m) => m.direction !== 'out').length;
    if (n !== seen) { seen = n; channelInfo(c, api).then(() => upd && upd()); }
    if (upd) upd();
  };
  if (upd) upd();
  if (!list.length || !c.el.isConnected) return;
  const safe = c.brief.id.replace(/[^\w-]/g, '_');
  const sel = h('select', { id: `tpl-${safe}` }, list.map((x, i) => h('option', { value: String(i) }, `${x.label} (${x.language})`)));
  const params = h('div', { class: 'tpl-params' });
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { type: 'submit' }, t('wa.tpl.send'));
  const form = h('form', { class: 'tpl' }, h('label', { for: `tpl-${safe}` }, t('wa.tpl.choose')), sel, params, btn, err);
  const box = h('details', { class: 'templates' }, h('summary', {}, t('wa.tpl.summary')), form);
  const fields = () => {
    const x = list[Number(sel.value)];
    params.replaceChildren(...Array.from({ length: x.params }, (_, i) => {
      const id = `tpl-${safe}-p${i}`;
      return h('p', {}, h('label', { for: id }, t('wa.tpl.param', { n: i + 1 })), h('input', { id, type: 'text', 'aria-required': 'true' }));
    }));
  };
  sel.addEventListener('change', fields);
  fields();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const x = list[Number(sel.value)];
    const vals = [...params.querySelectorAll('input')].map((i) => i.value.trim());
    if (vals.some((v) => !v)) { err.textContent = t('wa.tpl.missing'); return; }
    err.textContent = '';
    send(`[${x.label}] ${vals.join(' · ')}`.trim(), { template: { name: x.name, language: x.language, params: vals } });
    params.querySelectorAll('input').forEach((i) => { i.value = ''; });
  });
  (c.extraInfo || c.hint).after(box);
  c.templates = box;
  if (c.updateExtras) c.updateExtras();
}

// email.js -- the agent desk's additions for e-mail berichten (channels/email): the reply's
// subject and "quote the history" choice, the sender's authentication verdict and parse
// warnings, the mail's HTML (already sanitised by the channel) in a sandboxed frame that can run
// nothing and load nothing remote (sandbox without scripts, a CSP of its own, inline cid: images
// as data: URLs fetched with the agent's token), the full text, and "show original".
import { t } from './i18n.js';
import { h } from './common.js';

const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

async function fetchBlob(id, token) {
  const r = await fetch('/api/v1/attachments/' + encodeURIComponent(id), { headers: { Authorization: 'Bearer ' + token } });
  if (!r.ok) throw new Error(String(r.status));
  return r.blob();
}

function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(String(fr.result));
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(blob);
  });
}

/** The panel for one e-mail card. c: the card (agent.js), token: the agent's bearer token. */
export function createMailPanel(c, token) {
  const safe = c.brief.id.replace(/[^\w-]/g, '_');
  const subject = h('input', { type: 'text', id: `subj-${safe}`, maxlength: '300', class: 'mail-subject' });
  const subjLabel = h('label', { for: `subj-${safe}` }, t('mail.subject'));
  const quote = h('input', { type: 'checkbox', id: `quote-${safe}` });
  const quoteLabel = h('label', { for: `quote-${safe}` }, quote, ' ', t('mail.quote'));
  const info = h('p', { class: 'muted mail-info' });
  const warn = h('p', { class: 'error mail-warn', hidden: true });
  const frame = h('iframe', { sandbox: '', referrerpolicy: 'no-referrer', class: 'mail-html', hidden: true,
    title: t('mail.html') });
  const full = h('details', { class: 'mail-full', hidden: true }, h('summary', {}, t('mail.full')), h('pre', {}));
  const original = h('button', { type: 'button', class: 'link', hidden: true }, t('mail.original'));
  let originalAtt = null;
  original.addEventListener('click', async () => {
    if (!originalAtt) return;
    const blob = await fetchBlob(originalAtt.id, token);
    const url = URL.createObjectURL(new Blob([blob], { type: 'text/plain' }));   // shown as text, never rendered
    window.open(url, '_blank', 'noopener');
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });
  const panel = h('section', { class: 'mail' }, info, warn, frame, full, original);
  const composer = h('div', { class: 'row mail-composer' }, subjLabel, subject, quoteLabel);

  async function render(b) {
    const p = b.payload || {};
    const e = p.email || {};
    if (!subject.value) {
      const s0 = p.subject || '';
      subject.value = /^(re|antw|aw):/i.test(s0) ? s0 : (s0 ? 'Re: ' + s0 : '');
    }
    const a = e.auth || {};
    const parts = [];
    if (e.from_name) parts.push(e.from_name);
    if (a.spf || a.dkim || a.dmarc) {
      parts.push(t('mail.auth', { spf: a.spf || '-', dkim: a.dkim || '-', dmarc: a.dmarc || '-' }));
    }
    if (e.attachments_omitted) parts.push(t('mail.omitted', { n: e.attachments_omitted }));
    if (e.remote_images_blocked) parts.push(t('mail.remote'));
    info.textContent = parts.join(' · ');
    const bad = (a.dmarc && !['pass', 'none', 'bestguesspass'].includes(a.dmarc)) || (a.spf === 'fail');
    const warnings = (e.warnings || []).slice();
    if (bad) warnings.unshift(t('mail.auth.bad'));
    warn.hidden = !warnings.length;
    warn.textContent = warnings.join(' · ');
    if (e.text_full) {
      full.hidden = false;
      full.querySelector('pre').textContent = e.text_full;
    }
    // the parts message of the thread: the original and the inline images (cid -> id)
    let cids = {};
    for (const m of b.messages || []) {
      const ep = m.payload && m.payload.email_parts;
      if (!ep) continue;
      if (ep.original) originalAtt = ep.original;
      cids = Object.assign(cids, ep.cid || {});
    }
    original.hidden = !originalAtt;
    if (e.html) {
      let html = String(e.html);
      const urls = {};
      for (const [cid, id] of Object.entries(cids)) {
        try { urls[cid] = await dataUrl(await fetchBlob(id, token)); } catch { /* left blank */ }
      }
      // the sanitiser wrote data-cid="…" (escaped) instead of src; only data: URLs go in
      html = html.replace(/<img data-cid="([^"]*)"/g, (all, cid) => {
        const key = cid.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
        const u = urls[key];
        return u && /^data:image\/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]*$/i.test(u) ? `<img src="${u}" data-cid="${cid}"` : all;
      });
      frame.srcdoc = `<!doctype html><html><head><meta charset="utf-8">` +
        `<meta http-equiv="Content-Security-Policy" content="${CSP}"></head><body>${html}</body></html>`;
      frame.hidden = false;
    }
  }

  return {
    panel,
    composer,
    render,
    /** The extra keys of the agent's `message` for an e-mail reply. */
    extras: () => {
      const payload = {};
      const subj = subject.value.replace(/[\r\n]+/g, ' ').trim();
      if (subj) payload.subject = subj;
      if (quote.checked) payload.quote = true;
      return Object.keys(payload).length ? { payload } : {};
    },
  };
}

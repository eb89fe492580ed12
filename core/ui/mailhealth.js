// mailhealth.js -- the supervisor dashboard's mailbox health (channels/email): for every e-mail
// channel instance in GET /api/v1/health, whether it is connected, the last successful fetch,
// the backlog in the inbox, the quarantined mails and the last error. Polled every 10 s.
import { t, onLang } from './i18n.js';
import { api, h, dateTime } from './common.js';

export function startMailHealth(after) {
  const tbody = h('tbody', {});
  const table = h('table', { id: 'mailboxes' },
    h('thead', {}, h('tr', {}, ['name', 'connected', 'last_fetch', 'backlog', 'quarantined', 'last_error']
      .map((k) => h('th', { scope: 'col', dataset: { k } }, t('mail.health.' + k))))), tbody);
  const title = h('h3', { id: 'mailboxes-h' }, t('mail.health'));
  const box = h('div', { class: 'table-wrap', hidden: true }, title, table);
  after.after(box);
  onLang(() => {
    title.textContent = t('mail.health');
    for (const th of table.querySelectorAll('th')) th.textContent = t('mail.health.' + th.dataset.k);
  });
  async function poll() {
    try {
      const r = await api('/api/v1/health');
      const mail = ((r.json && r.json.channels) || []).filter((c) => c.status && c.status.address !== undefined);
      box.hidden = !mail.length;
      tbody.replaceChildren(...mail.map((c) => {
        const s = c.status;
        const fetched = s.last_fetch ? dateTime(Date.parse(s.last_fetch)) : t('mail.health.never');
        return h('tr', { class: s.healthy ? '' : 'warn' },
          h('td', {}, `${c.name} (${s.address})`),
          h('td', {}, s.connected ? t('mail.health.yes') + (s.idle ? ' (IDLE)' : '') : t('mail.health.no')),
          h('td', {}, fetched),
          h('td', { class: 'num' }, String(s.backlog ?? '')),
          h('td', { class: 'num' }, String(s.quarantined ?? '')),
          h('td', {}, s.last_error || ''));
      }));
    } catch { /* the next poll tries again */ }
  }
  poll();
  return setInterval(poll, 10000);
}

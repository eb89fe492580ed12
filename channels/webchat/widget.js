/* acdm web chat widget. Embed with one script tag:
 *   <script src="https://acdm.example.nl/channels/<instance>/widget.js" async></script>
 * Served by the webchat channel plugin (built into webchat.so). No dependencies. The texts come
 * from the instance's config (Dutch by default) in the server's hello. Accessible: a labelled
 * dialog, a live log, keyboard only use (Enter sends, Escape closes), visible focus. */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, '');
  var wsBase = base.replace(/^http/, 'ws') + '/ws';
  var KEY = 'acdm-webchat:' + base;
  var P = 'acdm-wc-';

  var texts = {
    title: 'Chat met ons', open_button: 'Chat openen', close_button: 'Chatvenster sluiten',
    minimize_button: 'Chat minimaliseren',
    connecting: 'Verbinden…', reconnecting: 'De verbinding is verbroken. Opnieuw verbinden…',
    sending: 'wordt verzonden…'
  };
  var store = window.sessionStorage;
  var saved = {};
  try { saved = JSON.parse(store.getItem(KEY) || '{}') || {}; } catch (e) { saved = {}; }
  function save() { try { store.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode */ } }

  var ws = null, retry = 0, retryTimer = null, transcript = [], state = 'new', lastTyping = 0;
  var maxChars = 2000, attach = null, uploadQueue = null, typingTimer = null, started = false;
  var pending = [];   /* messages typed while (re)connecting or after the server ended the session:
                       * on screen as being sent, sent when the next hello comes */
  var queueInfo = null;   /* the queue as the server says (open, closed_by, hours, agents) */
  var convStart = 0;      /* index in transcript where the current conversation began */
  var csatWanted = false; /* the satisfaction question is due (an agent's conversation ended) */

  function t(k, vars) {
    var s = texts[k] || '';
    if (vars) Object.keys(vars).forEach(function (v) { s = s.split('{' + v + '}').join(String(vars[v])); });
    return s;
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text != null) e.textContent = text;
    return e;
  }

  /* ---- DOM ---- */
  var css = el('link', {rel: 'stylesheet', href: base + '/widget.css'});
  document.head.appendChild(css);
  var root = el('div', {id: P + 'root', 'class': P + 'root', lang: 'nl'});
  var openBtn = el('button', {type: 'button', 'class': P + 'open', 'aria-expanded': 'false',
                              'aria-controls': P + 'panel', id: P + 'open'}, texts.open_button);
  var panel = el('section', {id: P + 'panel', 'class': P + 'panel', role: 'dialog',
                             'aria-labelledby': P + 'title', hidden: ''});
  var header = el('div', {'class': P + 'header'});
  var title = el('h2', {id: P + 'title', 'class': P + 'title'}, texts.title);
  var closeBtn = el('button', {type: 'button', 'class': P + 'close', 'aria-label': texts.close_button}, '×');
  header.appendChild(title); header.appendChild(closeBtn);
  var status = el('p', {id: P + 'status', 'class': P + 'status', role: 'status', 'aria-live': 'polite'});
  var log = el('div', {id: P + 'log', 'class': P + 'log', role: 'log', 'aria-live': 'polite',
                       'aria-label': texts.title, tabindex: '0'});
  var list = el('ol', {'class': P + 'list'});
  log.appendChild(list);
  var typingEl = el('p', {id: P + 'typing', 'class': P + 'typing', 'aria-live': 'polite'});
  var alertEl = el('p', {id: P + 'alert', 'class': P + 'alert', role: 'alert'});
  var info = el('div', {id: P + 'info', 'class': P + 'info', hidden: ''});
  var csat = el('form', {id: P + 'csat', 'class': P + 'csat', hidden: '', novalidate: ''});
  var newBtn = el('button', {type: 'button', id: P + 'new', 'class': P + 'new', hidden: ''}, 'Nieuw gesprek');
  var form = el('form', {'class': P + 'form', id: P + 'form'});
  var label = el('label', {'for': P + 'input', 'class': P + 'label'}, 'Uw bericht');
  var input = el('textarea', {id: P + 'input', 'class': P + 'input', rows: '2', autocomplete: 'off'});
  var count = el('span', {id: P + 'count', 'class': P + 'count', 'aria-live': 'off'});
  var sendBtn = el('button', {type: 'submit', 'class': P + 'send', id: P + 'send'}, 'Versturen');
  var fileLabel = el('label', {'for': P + 'file', 'class': P + 'filelabel', id: P + 'filelabel'}, 'Bestand toevoegen');
  var file = el('input', {type: 'file', id: P + 'file', 'class': P + 'file'});
  form.appendChild(label); form.appendChild(input); form.appendChild(count);
  var row = el('div', {'class': P + 'row'});
  row.appendChild(fileLabel); row.appendChild(file); row.appendChild(sendBtn);
  form.appendChild(row);
  var leave = el('form', {'class': P + 'leave', id: P + 'leave', hidden: '', novalidate: ''});
  var tools = el('div', {'class': P + 'tools'});
  var endBtn = el('button', {type: 'button', id: P + 'end', 'class': P + 'end'}, 'Chat beëindigen');
  var dlBtn = el('button', {type: 'button', id: P + 'download', 'class': P + 'download'}, 'Gesprek downloaden');
  tools.appendChild(endBtn); tools.appendChild(dlBtn);
  [header, status, info, log, typingEl, alertEl, form, leave, csat, newBtn, tools].forEach(function (c) { panel.appendChild(c); });
  root.appendChild(openBtn); root.appendChild(panel);

  function mount() { document.body.appendChild(root); if (saved.open) openPanel(false); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  function launcherText() {
    openBtn.textContent = panel.hidden ? t('open_button') : t('minimize_button');
  }

  function applyTexts() {
    launcherText();
    newBtn.textContent = t('new_chat');
    title.textContent = t('title');
    closeBtn.setAttribute('aria-label', t('close_button'));
    label.textContent = t('input_label');
    sendBtn.textContent = t('send');
    endBtn.textContent = t('end');
    dlBtn.textContent = t('download');
    fileLabel.textContent = t('attach');
    log.setAttribute('aria-label', t('title'));
  }

  /* The visitor's question so far (what they typed in this conversation, or in the box). */
  function questionSoFar() {
    var lines = transcript.slice(convStart).filter(function (m) { return m.from === 'visitor'; })
      .map(function (m) { return m.text; });
    var typed = input.value.trim();
    if (typed) lines.push(typed);
    return lines.join('\n');
  }

  /* The leave-a-message form, with our own (Dutch) validation instead of the browser's. Kept as
   * it is when it is shown already (what the visitor typed stays). */
  function buildLeave(intro) {
    if (!leave.hidden && leave.firstChild) return;
    leave.textContent = '';
    delete leave.dataset.auto;
    leave.appendChild(el('p', {'class': P + 'intro'}, intro || t('leave_message_intro')));
    var f = [['name', 'leave_name', 'text', 'name', false], ['email', 'leave_email', 'email', 'email', true],
             ['text', 'leave_text', null, null, true]];
    f.forEach(function (x) {
      var id = P + 'leave-' + x[0];
      leave.appendChild(el('label', {'for': id}, t(x[1])));
      var i = x[2] ? el('input', {id: id, type: x[2], autocomplete: x[3]})
                   : el('textarea', {id: id, rows: '3'});
      if (x[4]) i.setAttribute('aria-required', 'true');
      leave.appendChild(i);
      leave.appendChild(el('p', {id: id + '-err', 'class': P + 'field-error', 'aria-live': 'polite'}));
    });
    leave.appendChild(el('button', {type: 'submit', id: P + 'leave-send'}, t('leave_send')));
    document.getElementById(P + 'leave-text').value = questionSoFar();
    input.value = '';
    leave.hidden = false;
    form.hidden = true;
  }

  function fieldError(id, msg) {
    var i = document.getElementById(id), e = document.getElementById(id + '-err');
    e.textContent = msg || '';
    if (msg) { i.setAttribute('aria-invalid', 'true'); i.setAttribute('aria-describedby', id + '-err'); }
    else { i.removeAttribute('aria-invalid'); i.removeAttribute('aria-describedby'); }
    return !msg;
  }

  /* ---- opening hours ---- */
  var DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  function dayHours(h, d) {
    return (h[d] || []).map(function (iv) { return iv[0] + '–' + iv[1]; }).join(', ') || t('hours_closed_day');
  }
  function hoursList(h) {
    var ul = el('ul', {'class': P + 'hours'});
    for (var i = 0; i < 7;) {
      var j = i, v = dayHours(h, DAYS[i]);
      while (j + 1 < 7 && dayHours(h, DAYS[j + 1]) === v) j++;
      var days = i === j ? t('day_' + DAYS[i]) : j === i + 1 ? t('day_' + DAYS[i]) + ', ' + t('day_' + DAYS[j])
        : t('day_range', {from: t('day_' + DAYS[i]), to: t('day_' + DAYS[j])});
      ul.appendChild(el('li', null, days.charAt(0).toUpperCase() + days.slice(1) + ': ' + v));
      i = j + 1;
    }
    return ul;
  }
  function reopens(ms) {
    var d = new Date(ms), now = new Date();
    var day0 = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    var days = Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - day0) / 86400000);
    var day = days === 0 ? t('today') : days === 1 ? t('tomorrow')
      : t('on_day', {day: t('day_' + DAYS[(d.getDay() + 6) % 7])});
    return t('reopens', {day: day, time: fmtTime(ms)});
  }

  function closedNow() { return !!(queueInfo && queueInfo.open === false); }
  function nobodyNow() { return !!(queueInfo && queueInfo.open !== false && queueInfo.agents && queueInfo.agents.logged_in === 0); }
  function idle() { return state === 'new' || state === 'ended'; }

  /* What the visitor sees of the queue before and while waiting: closed (with the opening
   * hours and the form), or nobody logged in (no estimate; they may leave a message). */
  function renderInfo() {
    info.textContent = '';
    var showClosed = state === 'closed' || (idle() && closedNow());
    if (showClosed) {
      if (queueInfo && queueInfo.next_open_ms) info.appendChild(el('p', {'class': P + 'reopens'}, reopens(queueInfo.next_open_ms)));
      if (queueInfo && queueInfo.hours) {
        info.appendChild(el('h3', {'class': P + 'hours-title', id: P + 'hours-title'}, t('hours_title')));
        info.appendChild(hoursList(queueInfo.hours));
      }
      info.hidden = !info.firstChild;
      if (leave.hidden) { buildLeave(); leave.dataset.auto = '1'; }
      return;
    }
    if (nobodyNow() && (idle() || state === 'waiting') && leave.hidden) {
      info.appendChild(el('p', null, t('nobody_leave')));
      var b = el('button', {type: 'button', id: P + 'leave-open', 'class': P + 'leave-open'}, t('leave_button'));
      b.addEventListener('click', function () { buildLeave(); var x = document.getElementById(P + 'leave-email'); if (x) x.focus(); renderInfo(); });
      info.appendChild(b);
      info.hidden = false;
      return;
    }
    info.hidden = true;
  }

  function showCsat() {
    csat.textContent = '';
    var f1 = el('fieldset', {'class': P + 'scale'});
    f1.appendChild(el('legend', null, t('csat_question')));
    f1.appendChild(el('p', {id: P + 'csat-scale', 'class': P + 'hint'}, t('csat_scale')));
    var row1 = el('div', {'class': P + 'choices'});
    for (var i = 1; i <= 5; i++) {
      var id = P + 'csat-' + i;
      var r = el('input', {type: 'radio', name: P + 'score', id: id, value: String(i), 'aria-describedby': P + 'csat-scale'});
      var l = el('label', {'for': id}, String(i));
      row1.appendChild(r); row1.appendChild(l);
    }
    f1.appendChild(row1);
    var f2 = el('fieldset', {'class': P + 'helped'});
    f2.appendChild(el('legend', null, t('csat_helped')));
    var row2 = el('div', {'class': P + 'choices'});
    [['yes', 'true'], ['no', 'false']].forEach(function (x) {
      var id = P + 'helped-' + x[0];
      row2.appendChild(el('input', {type: 'radio', name: P + 'helped', id: id, value: x[1]}));
      row2.appendChild(el('label', {'for': id}, t(x[0])));
    });
    f2.appendChild(row2);
    csat.appendChild(f1); csat.appendChild(f2);
    csat.appendChild(el('p', {id: P + 'csat-err', 'class': P + 'field-error', 'aria-live': 'polite'}));
    csat.appendChild(el('button', {type: 'submit', id: P + 'csat-send'}, t('csat_send')));
    csat.hidden = false;
  }
  csat.addEventListener('submit', function (e) {
    e.preventDefault();
    var sc = csat.querySelector('input[name="' + P + 'score"]:checked');
    var hp = csat.querySelector('input[name="' + P + 'helped"]:checked');
    var err = document.getElementById(P + 'csat-err');
    if (!sc && !hp) { err.textContent = t('csat_required'); return; }
    err.textContent = '';
    var o = {type: 'csat'};
    if (sc) o.score = Number(sc.value);
    if (hp) o.helped = hp.value === 'true';
    send(o);
  });
  newBtn.addEventListener('click', function () {
    csat.hidden = true; csatWanted = false;
    leave.hidden = true; leave.textContent = ''; form.hidden = false;
    if (ws && ws.readyState === 1) { send({type: 'new'}); }
    else {
      /* the server closed the session (inactivity): the next one starts fresh */
      list.textContent = ''; transcript = []; convStart = 0;
      if (texts.greeting) addLine({from: 'system', text: texts.greeting, ts: Date.now(), greeting: true});
      setState('new');
      connect();
    }
    input.focus();
  });

  /* ---- log ---- */
  function who(from) { return from === 'visitor' ? t('you') : from === 'agent' ? t('agent') : from === 'bot' ? t('bot') : t('system'); }
  function locale() { return root.getAttribute('lang') === 'en' ? 'en-GB' : 'nl-NL'; }
  function fmtTime(ts) { var d = new Date(ts); return d.toLocaleTimeString(locale(), {hour: '2-digit', minute: '2-digit'}); }
  function addLine(m) {
    transcript.push(m);
    var li = el('li', {'class': P + 'msg ' + P + 'from-' + m.from});
    var meta = el('span', {'class': P + 'meta'}, who(m.from) + ' ' + fmtTime(m.ts));
    var body = el('span', {'class': P + 'text'}, m.text);
    li.appendChild(meta); li.appendChild(body);
    list.appendChild(li);
    log.scrollTop = log.scrollHeight;
    if (m.from === 'agent') typingEl.textContent = '';
  }
  function setStatus(s) { status.textContent = s || ''; }
  var lastPos = 0, lastEst = 0;
  function showQueue(pos, est) {
    lastPos = pos || 0; lastEst = est || 0;
    if (nobodyNow()) { setStatus((pos ? t('waiting', {position: pos}) + ' ' : '') + t('nobody')); return; }
    if (!pos) { setStatus(t('waiting_next')); return; }
    var s = t('waiting', {position: pos});
    if (est > 0) s += ' ' + t('estimate', {minutes: Math.max(1, Math.round(est / 60))});
    setStatus(s);
  }
  function setState(s, m) {
    state = s;
    panel.setAttribute('data-state', s);
    if (s === 'waiting') showQueue(m && m.position, m && m.estimate_s);
    else if (s === 'active') setStatus(t('joined'));
    else if (s === 'closed' || ((s === 'new' || s === 'ended') && closedNow()))
      setStatus((queueInfo && queueInfo.closed_text) || t('closed'));
    else if ((s === 'new' || s === 'ended') && nobodyNow()) setStatus(t('nobody'));
    else setStatus('');
    endBtn.hidden = !(s === 'waiting' || s === 'active' || s === 'bot');
    newBtn.hidden = !(s === 'ended' || s === 'closed' || (s === 'new' && transcript.length > convStart + 1));
    fileLabel.hidden = file.hidden = !(attach && (s === 'waiting' || s === 'active'));
    if (s === 'waiting' || s === 'active') { csat.hidden = true; }
    else if (csatWanted && csat.hidden) showCsat();
    if (!(s === 'closed' || ((s === 'new' || s === 'ended') && closedNow())) && !leave.hidden && leave.dataset.auto) {
      leave.hidden = true; leave.textContent = ''; form.hidden = false;   /* it opened meanwhile */
    }
    renderInfo();
  }

  /* ---- connection ---- */
  function connect() {
    if (ws && ws.readyState <= 1) return;
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    setStatus(retry ? t('reconnecting') : t('connecting'));
    ws = new WebSocket(wsBase + (saved.token ? '?resume=' + encodeURIComponent(saved.token) : ''));
    ws.onmessage = function (ev) { var m; try { m = JSON.parse(ev.data); } catch (e) { return; } onMessage(m); };
    ws.onopen = function () { retry = 0; };
    ws.onclose = function (ev) {
      ws = null;
      if (ev.code === 1000 && ev.reason === 'chat ended') {
        /* the server ended the session (inactivity): keep the conversation on screen (and
         * downloadable); a new session starts when the visitor writes again */
        saved.token = null; save();
        setStatus('');
        if (!pending.length) return;
      }
      var delay = Math.min(10000, 1000 * Math.pow(2, retry++));
      setStatus(t('reconnecting'));
      retryTimer = setTimeout(connect, delay);
    };
  }
  /* A line for a message typed while there is no session: the citizen sees it went, greyed
   * with "wordt verzonden…"; the hello that follows redraws the conversation and the server's
   * echo of the message replaces it. */
  function addPending(text) {
    var li = el('li', {'class': P + 'msg ' + P + 'from-visitor ' + P + 'pending'});
    li.appendChild(el('span', {'class': P + 'meta'}, who('visitor') + ' · ' + t('sending')));
    li.appendChild(el('span', {'class': P + 'text'}, text));
    list.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }
  function send(o) {
    if (ws && ws.readyState === 1 && started) { ws.send(JSON.stringify(o)); return true; }
    if (o.type === 'message') {
      /* typed before the hello (still connecting, reconnecting after a lost connection, or the
       * server ended the session): kept and sent once the session is there, never dropped and
       * never left in the box as if it went */
      pending.push(o);
      addPending(o.text);
      if (!ws && !retryTimer) connect();
      return true;
    }
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(o)); return true; }
    return false;
  }

  function onMessage(m) {
    switch (m.type) {
    case 'hello':
      texts = Object.assign(texts, m.texts || {});
      if (m.lang) root.setAttribute('lang', m.lang);
      applyTexts();
      maxChars = m.max_message_chars || maxChars;
      input.setAttribute('maxlength', String(maxChars));
      attach = m.attachments ? {max: m.max_attachment_bytes, types: m.attachment_types || []} : null;
      if (attach) file.setAttribute('accept', attach.types.join(','));
      saved.token = m.token; save();
      queueInfo = m.queue || null;
      list.textContent = ''; transcript = []; convStart = 0;
      csatWanted = !!(m.csat && !m.csat.done); csat.hidden = true;
      if (!leave.hidden && leave.dataset.auto && !closedNow()) { leave.hidden = true; leave.textContent = ''; form.hidden = false; }
      if (!(m.transcript || []).length && texts.greeting && !(m.queue && m.queue.open === false))
        addLine({from: 'system', text: texts.greeting, ts: Date.now(), greeting: true});
      (m.transcript || []).forEach(addLine);
      setState(m.state, m);
      started = true;
      pending.splice(0).forEach(send);
      break;
    case 'message': addLine(m); break;
    case 'state': setState(m.state, m); break;
    case 'queue': if (state === 'waiting') showQueue(m.position, m.estimate_s); break;
    case 'queue_info':
      queueInfo = m.queue || null;
      setState(state, {position: lastPos, estimate_s: lastEst});
      break;
    case 'csat_thanks':
      csatWanted = false;
      csat.textContent = '';
      csat.appendChild(el('p', {'class': P + 'thanks', role: 'status'}, m.text));
      break;
    case 'typing':
      typingEl.textContent = t('agent_typing');
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typingEl.textContent = ''; }, 4000);
      break;
    case 'agent_joined': break;
    case 'ended':
      addLine({from: 'system', text: m.text, ts: Date.now()});
      if (m.csat) { csatWanted = true; }
      break;
    case 'closed':
      if (queueInfo) queueInfo.closed_text = m.text;
      buildLeave(m.intro);
      setState('closed');
      break;
    case 'left_message':
      leave.hidden = true; leave.textContent = ''; form.hidden = false;
      addLine({from: 'system', text: m.text, ts: Date.now()});
      convStart = transcript.length;
      renderInfo();
      break;
    case 'attachment_ready': if (uploadQueue) uploadQueue(); break;
    case 'error':
      if (m.code === 'leave_closed') addLine({from: 'system', text: m.text, ts: Date.now()});
      alertEl.textContent = m.text;
      setTimeout(function () { if (alertEl.textContent === m.text) alertEl.textContent = ''; }, 8000);
      uploadQueue = null;
      break;
    }
  }

  /* ---- actions ---- */
  function openPanel(focus) {
    panel.hidden = false;
    openBtn.setAttribute('aria-expanded', 'true');
    launcherText();
    saved.open = true; save();
    connect();
    if (focus !== false) input.focus();
  }
  function closePanel() {
    panel.hidden = true;
    openBtn.setAttribute('aria-expanded', 'false');
    launcherText();
    saved.open = false; save();
    openBtn.focus();
  }
  openBtn.addEventListener('click', function () { if (panel.hidden) openPanel(); else closePanel(); });
  closeBtn.addEventListener('click', closePanel);
  panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') closePanel(); });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if ([...text].length > maxChars) { alertEl.textContent = t('too_long', {max: maxChars}); return; }
    if (send({type: 'message', text: text})) { input.value = ''; count.textContent = ''; alertEl.textContent = ''; }
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit')); }
  });
  input.addEventListener('input', function () {
    var n = [...input.value].length;
    count.textContent = n > maxChars * 0.8 ? n + ' / ' + maxChars : '';
    var now = Date.now();
    if (now - lastTyping > 1500 && state === 'active') { lastTyping = now; send({type: 'typing'}); }
  });
  endBtn.addEventListener('click', function () { send({type: 'end'}); });
  dlBtn.addEventListener('click', function () {
    var lines = transcript.map(function (m) { return '[' + new Date(m.ts).toLocaleString(locale()) + '] ' + who(m.from) + ': ' + m.text; });
    var blob = new Blob([lines.join('\n') + '\n'], {type: 'text/plain;charset=utf-8'});
    var a = el('a', {href: URL.createObjectURL(blob), download: 'chatgesprek.txt'});
    document.body.appendChild(a); a.click(); a.remove();
  });
  leave.addEventListener('submit', function (e) {
    e.preventDefault();
    var v = function (n) { var x = document.getElementById(P + 'leave-' + n); return x ? x.value.trim() : ''; };
    var em = v('email');
    var ok = fieldError(P + 'leave-email', !em ? t('required_email')
      : /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(em) ? '' : t('invalid_email'));
    ok = fieldError(P + 'leave-text', v('text') ? '' : t('required_text')) && ok;
    if (!ok) { var bad = leave.querySelector('[aria-invalid="true"]'); if (bad) bad.focus(); return; }
    send({type: 'leave_message', name: v('name') || null, email: em, text: v('text')});
  });
  file.addEventListener('change', function () {
    var f = file.files && file.files[0];
    file.value = '';
    if (!f || !attach) return;
    if (f.size > attach.max) { alertEl.textContent = t('attach_too_big', {max: Math.floor(attach.max / 1024)}); return; }
    var reader = new FileReader();
    reader.onload = function () {
      var bytes = new Uint8Array(reader.result), CH = 30000;
      uploadQueue = function () {
        uploadQueue = null;
        for (var i = 0; i < bytes.length; i += CH) {
          var s = '', part = bytes.subarray(i, i + CH);
          for (var k = 0; k < part.length; k++) s += String.fromCharCode(part[k]);
          send({type: 'attachment_chunk', data: btoa(s)});
        }
        send({type: 'attachment_end'});
      };
      send({type: 'attachment_start', filename: f.name, content_type: f.type || 'application/octet-stream', size: f.size});
    };
    reader.readAsArrayBuffer(f);
  });
  window.acdmWebchat = {open: openPanel, close: closePanel, state: function () { return state; },
                        transcript: function () { return transcript.slice(); }, started: function () { return started; }};
})();

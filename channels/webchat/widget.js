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
    connecting: 'Verbinden…', reconnecting: 'De verbinding is verbroken. Opnieuw verbinden…'
  };
  var store = window.sessionStorage;
  var saved = {};
  try { saved = JSON.parse(store.getItem(KEY) || '{}') || {}; } catch (e) { saved = {}; }
  function save() { try { store.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode */ } }

  var ws = null, retry = 0, retryTimer = null, transcript = [], state = 'new', lastTyping = 0;
  var maxChars = 2000, attach = null, uploadQueue = null, typingTimer = null, started = false;
  var pending = [];   /* messages typed after the server ended the session: sent to the next one */

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
  var leave = el('form', {'class': P + 'leave', id: P + 'leave', hidden: ''});
  var tools = el('div', {'class': P + 'tools'});
  var endBtn = el('button', {type: 'button', id: P + 'end', 'class': P + 'end'}, 'Chat beëindigen');
  var dlBtn = el('button', {type: 'button', id: P + 'download', 'class': P + 'download'}, 'Gesprek downloaden');
  tools.appendChild(endBtn); tools.appendChild(dlBtn);
  [header, status, log, typingEl, alertEl, form, leave, tools].forEach(function (c) { panel.appendChild(c); });
  root.appendChild(openBtn); root.appendChild(panel);

  function mount() { document.body.appendChild(root); if (saved.open) openPanel(false); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  function applyTexts() {
    openBtn.textContent = t('open_button');
    title.textContent = t('title');
    closeBtn.setAttribute('aria-label', t('close_button'));
    label.textContent = t('input_label');
    sendBtn.textContent = t('send');
    endBtn.textContent = t('end');
    dlBtn.textContent = t('download');
    fileLabel.textContent = t('attach');
    log.setAttribute('aria-label', t('title'));
  }

  function buildLeave(intro) {
    leave.textContent = '';
    leave.appendChild(el('p', {'class': P + 'intro'}, intro || t('leave_message_intro')));
    var f = [['name', 'leave_name', 'text', 'name'], ['email', 'leave_email', 'email', 'email'],
             ['text', 'leave_text', null, null]];
    f.forEach(function (x) {
      leave.appendChild(el('label', {'for': P + 'leave-' + x[0]}, t(x[1])));
      var i = x[2] ? el('input', {id: P + 'leave-' + x[0], type: x[2], autocomplete: x[3]})
                   : el('textarea', {id: P + 'leave-' + x[0], rows: '3', required: ''});
      leave.appendChild(i);
    });
    leave.appendChild(el('button', {type: 'submit', id: P + 'leave-send'}, t('leave_send')));
    leave.hidden = false;
    form.hidden = true;
  }

  /* ---- log ---- */
  function who(from) { return from === 'visitor' ? t('you') : from === 'agent' ? t('agent') : from === 'bot' ? t('bot') : t('system'); }
  function fmtTime(ts) { var d = new Date(ts); return d.toLocaleTimeString('nl-NL', {hour: '2-digit', minute: '2-digit'}); }
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
  function showQueue(pos, est) {
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
    else if (s === 'ended') setStatus('');
    else if (s === 'closed') setStatus(t('closed'));
    else setStatus('');
    endBtn.hidden = !(s === 'waiting' || s === 'active' || s === 'bot');
    fileLabel.hidden = file.hidden = !(attach && (s === 'waiting' || s === 'active'));
  }

  /* ---- connection ---- */
  function connect() {
    if (ws && ws.readyState <= 1) return;
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
  function send(o) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(o)); return true; }
    if (!ws && !saved.token && o.type === 'message') { pending.push(o); connect(); return true; }
    return false;
  }

  function onMessage(m) {
    switch (m.type) {
    case 'hello':
      texts = Object.assign(texts, m.texts || {});
      applyTexts();
      maxChars = m.max_message_chars || maxChars;
      input.setAttribute('maxlength', String(maxChars));
      attach = m.attachments ? {max: m.max_attachment_bytes, types: m.attachment_types || []} : null;
      if (attach) file.setAttribute('accept', attach.types.join(','));
      saved.token = m.token; save();
      list.textContent = ''; transcript = [];
      if (!(m.transcript || []).length && texts.greeting)
        addLine({from: 'system', text: texts.greeting, ts: Date.now(), greeting: true});
      (m.transcript || []).forEach(addLine);
      setState(m.state, m);
      started = true;
      pending.splice(0).forEach(send);
      break;
    case 'message': addLine(m); break;
    case 'state': setState(m.state, m); break;
    case 'queue': if (state === 'waiting') showQueue(m.position, m.estimate_s); break;
    case 'typing':
      typingEl.textContent = t('agent_typing');
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typingEl.textContent = ''; }, 4000);
      break;
    case 'agent_joined': break;
    case 'ended': addLine({from: 'system', text: m.text, ts: Date.now()}); break;
    case 'closed': addLine({from: 'system', text: m.text, ts: Date.now()}); buildLeave(m.intro); setState('closed'); break;
    case 'left_message':
      leave.hidden = true; form.hidden = false;
      addLine({from: 'system', text: m.text, ts: Date.now()});
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
    saved.open = true; save();
    connect();
    if (focus !== false) input.focus();
  }
  function closePanel() {
    panel.hidden = true;
    openBtn.setAttribute('aria-expanded', 'false');
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
    var lines = transcript.map(function (m) { return '[' + new Date(m.ts).toLocaleString('nl-NL') + '] ' + who(m.from) + ': ' + m.text; });
    var blob = new Blob([lines.join('\n') + '\n'], {type: 'text/plain;charset=utf-8'});
    var a = el('a', {href: URL.createObjectURL(blob), download: 'chatgesprek.txt'});
    document.body.appendChild(a); a.click(); a.remove();
  });
  leave.addEventListener('submit', function (e) {
    e.preventDefault();
    var v = function (n) { var x = document.getElementById(P + 'leave-' + n); return x ? x.value.trim() : ''; };
    if (!v('text')) return;
    send({type: 'leave_message', name: v('name') || null, email: v('email') || null, text: v('text')});
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

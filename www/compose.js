/* Yubin webmail: the compose dialog (new, reply, reply all, forward,
 * drafts, attachments, address completion).  Uses window.Yubin from app.js
 * and exposes window.YubinCompose.open({mode, emailId}).  User content only
 * ever goes in through textContent or .value (never innerHTML). */
'use strict';

(function () {
  const CORE = 'urn:ietf:params:jmap:core';
  const MAIL = 'urn:ietf:params:jmap:mail';
  const SUBMISSION = 'urn:ietf:params:jmap:submission';
  const FILE_CAP = 25 * 1024 * 1024;
  const REFS_CAP = 20;
  const CONTACTS_CAP = 2000;
  const CONTACTS_SCAN = 200;
  const SUGGEST_MAX = 8;
  const BODY_MAX = 1024 * 1024;
  const ADDR_FIELDS = ['compose-to', 'compose-cc', 'compose-bcc'];
  const GET_PROPS = ['id', 'mailboxIds', 'keywords', 'from', 'to', 'cc', 'bcc', 'replyTo',
                     'subject', 'messageId', 'inReplyTo', 'references', 'sentAt',
                     'receivedAt', 'textBody', 'htmlBody', 'bodyValues', 'attachments'];

  const $ = (id) => document.getElementById(id);

  /* the dialog's state; reset by open() */
  let cur = null;
  let identities = null;          /* [{id, name, email}] once loaded */
  let contacts = null;            /* [{name, email, n}] once loaded */
  let contactsLoading = null;
  let suggest = { field: null, items: [], index: -1 };
  let saving = null;              /* the draft save in flight (a promise) */
  let sending = false;
  let autosaveMs = 30000;           /* while changed; setAutosaveInterval for tests */

  function Y() {
    if (!window.Yubin) throw new Error('the page has not started');
    return window.Yubin;
  }

  function session() { return Y().state.session || {}; }

  function accountId() { return Y().state.accountId; }

  function hasCap(cap) {
    const s = session();
    return !!(s.capabilities && s.capabilities[cap]);
  }

  /* One JMAP request with the given calls; returns its methodResponses. */
  async function api(calls, extra) {
    const s = session();
    const url = s.apiUrl ? new URL(s.apiUrl, location.href).pathname : '/jmap/api/';
    const using = [CORE, MAIL].concat(extra || []);
    const data = await Y().request('POST', url, { using, methodCalls: calls });
    return (data && Array.isArray(data.methodResponses)) ? data.methodResponses : [];
  }

  /* The response to call id: the one named name (EmailSubmission/set may be
   * followed by an implicit Email/set under the same id), or its error. */
  function response(resp, id, name) {
    return resp.find((r) => r[2] === id && r[0] === name) ||
           resp.find((r) => r[2] === id && r[0] === 'error') || null;
  }

  class MethodError extends Error {
    constructor(type, desc) {
      super(desc ? type + ': ' + desc : type);
      this.type = type;
    }
  }

  /* The arguments of response id, which must be of method name. */
  function answer(resp, id, name) {
    const r = response(resp, id, name);
    if (!r) throw new MethodError('serverFail', 'no answer to ' + name);
    if (r[0] === 'error') throw new MethodError(r[1].type || 'error', r[1].description);
    if (r[0] !== name) throw new MethodError('serverFail', 'unexpected ' + r[0]);
    return r[1];
  }

  function setErr(e) {
    const p = $('compose-error');
    const t = e ? (typeof e === 'string' ? e : (e.message || String(e))) : '';
    p.textContent = t;
    p.hidden = !t;
  }

  function setSaved(text) { $('compose-saved').textContent = text || ''; }

  function toast(text) {
    const t = $('compose-toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  function formatSize(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }

  /* ---- addresses ---- */

  function quoteName(name) {
    if (!/[",;<>@()[\]:\\.]/.test(name)) return name;
    return '"' + name.replace(/(["\\])/g, '\\$1') + '"';
  }

  function formatAddr(a) {
    if (!a || !a.email) return '';
    return a.name ? quoteName(a.name) + ' <' + a.email + '>' : a.email;
  }

  function formatList(list) {
    return (list || []).map(formatAddr).filter(Boolean).join(', ');
  }

  /* Split at commas (or semicolons) outside quotes and angle brackets. */
  function splitAddrs(text) {
    const out = [];
    let q = false, angle = false, start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch === '\\' && q) { i++; continue; }
      if (ch === '"') q = !q;
      else if (!q && ch === '<') angle = true;
      else if (!q && ch === '>') angle = false;
      else if (!q && !angle && (ch === ',' || ch === ';')) {
        out.push(text.slice(start, i));
        start = i + 1;
      }
    }
    out.push(text.slice(start));
    return out;
  }

  const EMAIL_RE = /^[^\s@<>",;]+@[^\s@<>",;]+$/;

  /* "a@b, Name <c@d>" -> [{name, email}]; bad entries go to bad[]. */
  function parseAddrs(text, bad) {
    const out = [];
    for (const raw of splitAddrs(text || '')) {
      const s = raw.trim();
      if (!s) continue;
      let name = null, email = s;
      const m = /^(.*?)\s*<([^<>]*)>\s*$/.exec(s);
      if (m) {
        email = m[2].trim();
        name = m[1].trim();
        if (name.startsWith('"') && name.endsWith('"') && name.length >= 2)
          name = name.slice(1, -1).replace(/\\(.)/g, '$1');
        name = name || null;
      }
      if (!EMAIL_RE.test(email)) {
        if (bad) bad.push(s);
        continue;
      }
      out.push({ name, email });
    }
    return out;
  }

  function lc(s) { return String(s || '').toLowerCase(); }

  function isOwn(email) {
    const e = lc(email);
    if (identities && identities.some((i) => lc(i.email) === e)) return true;
    return e === lc(Y().state.user);
  }

  function dedupe(list, seen) {
    const out = [];
    for (const a of list || []) {
      if (!a || !a.email) continue;
      const k = lc(a.email);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ name: a.name || null, email: a.email });
    }
    return out;
  }

  /* ---- identities ---- */

  async function loadIdentities() {
    if (identities) return identities;
    const me = Y().state.user || session().username || '';
    let list = [];
    if (hasCap(SUBMISSION)) {
      try {
        const resp = await api([['Identity/get', { accountId: accountId(), ids: null }, 'i']],
                               [SUBMISSION]);
        list = answer(resp, 'i', 'Identity/get').list || [];
      } catch (e) {
        list = [];
      }
    }
    identities = list.map((i) => ({ id: i.id, name: i.name || '', email: i.email }));
    if (!identities.length) identities = [{ id: null, name: '', email: me }];
    return identities;
  }

  function renderFrom(pick) {
    const sel = $('compose-from');
    sel.replaceChildren();
    identities.forEach((i, n) => {
      const o = document.createElement('option');
      o.value = String(n);
      o.textContent = formatAddr(i);
      sel.append(o);
    });
    let idx = 0;
    if (pick) {
      const n = identities.findIndex((i) => lc(i.email) === lc(pick));
      if (n >= 0) idx = n;
    }
    sel.value = String(idx);
  }

  function fromIdentity() {
    return identities[Number($('compose-from').value) || 0] || identities[0];
  }

  /* ---- mailboxes ---- */

  function mailbox(role) {
    const y = Y();
    if (y.mailboxByRole) return y.mailboxByRole(role);
    return (y.state.mailboxes || []).find((m) => m.role === role) || null;
  }

  /* ---- the fields ---- */

  function fields() {
    return {
      from: $('compose-from').value,
      to: $('compose-to').value, cc: $('compose-cc').value, bcc: $('compose-bcc').value,
      subject: $('compose-subject').value, body: $('compose-body').value,
      att: cur ? cur.attachments.filter((a) => a.blobId).map((a) => a.blobId).join(' ') : '',
    };
  }

  function snapshot() { return JSON.stringify(fields()); }

  function dirty() { return !!cur && snapshot() !== cur.saved; }

  function showBcc(on) {
    for (const e of document.querySelectorAll('#compose .compose-bcc-row')) e.hidden = !on;
    $('compose-bcc-toggle').setAttribute('aria-expanded', String(on));
    $('compose-bcc-toggle').hidden = on;
  }

  /* ---- the body of an original message ---- */

  function bodyText(e) {
    const vals = e.bodyValues || {};
    const parts = (e.textBody && e.textBody.length) ? e.textBody : (e.htmlBody || []);
    const chunks = [];
    for (const p of parts) {
      const v = vals[p.partId];
      if (!v || typeof v.value !== 'string') continue;
      if (p.type === 'text/html') {
        /* parsed inert (no scripts run, nothing is loaded), only the text used */
        const doc = new DOMParser().parseFromString(v.value, 'text/html');
        chunks.push((doc.body && doc.body.textContent) || '');
      } else {
        chunks.push(v.value);
      }
    }
    return chunks.join('\n').replace(/\r\n/g, '\n');
  }

  function dateText(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toLocaleString(undefined, { weekday: 'short', year: 'numeric', month: 'short',
                                         day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  function isReply(subject) { return /^\s*re(\s*\[\d+\]|\s*\(\d+\))?\s*:/i.test(subject); }

  function isForward(subject) { return /^\s*(fwd?|fw)\s*:/i.test(subject); }

  function quote(text) {
    return text.replace(/\n+$/, '').split('\n')
      .map((l) => (l === '' ? '>' : (l.startsWith('>') ? '>' + l : '> ' + l))).join('\n');
  }

  function capRefs(refs) {
    if (refs.length <= REFS_CAP) return refs;
    return [refs[0]].concat(refs.slice(refs.length - (REFS_CAP - 1)));
  }

  async function getEmail(id) {
    const resp = await api([['Email/get', { accountId: accountId(), ids: [id],
                                            properties: GET_PROPS,
                                            fetchTextBodyValues: true,
                                            fetchHTMLBodyValues: true,
                                            maxBodyValueBytes: BODY_MAX }, 'g']]);
    const g = answer(resp, 'g', 'Email/get');
    const e = (g.list || [])[0];
    if (!e) throw new Error('the message is no longer there');
    return e;
  }

  function firstFrom(e) { return (e.from && e.from[0]) || null; }

  /* Fill the dialog from opts; cur is fresh. */
  async function prepare(opts) {
    const mode = opts.mode || 'new';
    let pickFrom = null;
    const titles = { new: 'New message', reply: 'Reply', replyAll: 'Reply all',
                     forward: 'Forward', draft: 'Draft' };
    $('compose-title').textContent = titles[mode] || titles.new;
    if (mode === 'new' || !opts.emailId) return { focus: 'compose-to' };
    const e = await getEmail(opts.emailId);
    const own = new Set();
    for (const i of identities) own.add(lc(i.email));
    own.add(lc(Y().state.user));
    const mine = (list) => (list || []).find((a) => a && own.has(lc(a.email)));
    const pm = mine(e.to) || mine(e.cc) || mine(e.bcc);
    if (pm) pickFrom = pm.email;
    if (mode === 'draft') {
      cur.draftId = e.id;
      cur.inReplyTo = e.inReplyTo || null;
      cur.references = e.references || null;
      const f = firstFrom(e);
      if (f) pickFrom = f.email;
      $('compose-to').value = formatList(e.to);
      $('compose-cc').value = formatList(e.cc);
      $('compose-bcc').value = formatList(e.bcc);
      if (e.bcc && e.bcc.length) showBcc(true);
      $('compose-subject').value = e.subject || '';
      $('compose-body').value = bodyText(e);
      for (const a of e.attachments || []) addExisting(a);
      return { focus: 'compose-body', pickFrom, start: true };
    }
    const subject = e.subject || '';
    const from = firstFrom(e);
    const who = from ? (from.name || from.email) : 'someone';
    const when = dateText(e.sentAt || e.receivedAt);
    const text = bodyText(e);
    if (mode === 'forward') {
      $('compose-subject').value = isForward(subject) ? subject : 'Fwd: ' + subject;
      const lines = ['', '', '---------- Forwarded message ----------'];
      lines.push('From: ' + formatList(e.from));
      lines.push('Date: ' + when);
      lines.push('Subject: ' + subject);
      lines.push('To: ' + formatList(e.to));
      if (e.cc && e.cc.length) lines.push('Cc: ' + formatList(e.cc));
      lines.push('', text);
      $('compose-body').value = lines.join('\n');
      for (const a of e.attachments || []) addExisting(a);
      cur.forwardOf = e.id;
      return { focus: 'compose-to', pickFrom, start: true };
    }
    /* reply, replyAll */
    const seen = new Set(own);
    let to;
    const fromMe = from && own.has(lc(from.email));
    if (e.replyTo && e.replyTo.length) to = e.replyTo;
    else if (fromMe) to = e.to || [];
    else to = e.from || [];
    to = dedupe(to, fromMe ? new Set() : seen);
    for (const a of to) seen.add(lc(a.email));
    let cc = [];
    if (mode === 'replyAll') {
      to = to.concat(dedupe(e.to, seen));
      cc = dedupe(e.cc, seen);
    }
    $('compose-to').value = formatList(to);
    $('compose-cc').value = formatList(cc);
    $('compose-subject').value = isReply(subject) ? subject : 'Re: ' + subject;
    const mid = e.messageId || [];
    cur.inReplyTo = mid.length ? mid.slice() : null;
    const refs = (e.references || []).concat(mid.filter((m) => !(e.references || []).includes(m)));
    cur.references = refs.length ? capRefs(refs) : null;
    cur.replyOf = e.id;
    $('compose-body').value = '\n\nOn ' + when + ', ' + who + ' wrote:\n' + quote(text) + '\n';
    return { focus: 'compose-body', pickFrom, start: true };
  }

  /* ---- attachments ---- */

  function uploadCap() {
    const c = (session().capabilities || {})[CORE] || {};
    const m = Number(c.maxSizeUpload);
    return m > 0 ? Math.min(m, FILE_CAP) : FILE_CAP;
  }

  function totalCap() {
    const acc = ((session().accounts || {})[accountId()] || {}).accountCapabilities || {};
    const m = Number((acc[MAIL] || {}).maxSizeAttachmentsPerEmail);
    return m > 0 ? m : 0;
  }

  function renderAttachment(a) {
    const li = document.createElement('li');
    li.className = 'compose-att';
    const name = document.createElement('span');
    name.className = 'compose-att-name';
    name.textContent = a.name || '(unnamed)';
    const size = document.createElement('span');
    size.className = 'compose-att-size';
    size.textContent = formatSize(a.size || 0);
    const prog = document.createElement('progress');
    prog.max = 100;
    prog.value = a.blobId ? 100 : 0;
    prog.hidden = !!a.blobId;
    const st = document.createElement('span');
    st.className = 'compose-att-state';
    const rm = document.createElement('button');
    rm.type = 'button';
    rm.className = 'compose-att-remove';
    rm.textContent = '\u00d7';
    rm.setAttribute('aria-label', 'Remove ' + (a.name || 'attachment'));
    rm.addEventListener('click', () => removeAttachment(a));
    li.append(name, size, prog, st, rm);
    a.li = li;
    a.prog = prog;
    a.state = st;
    $('compose-attachments').append(li);
  }

  function addExisting(p) {
    if (!p || !p.blobId) return;
    const a = { blobId: p.blobId, name: p.name || null, type: p.type || 'application/octet-stream',
                size: p.size || 0, cid: p.cid || null,
                disposition: p.disposition === 'inline' && p.cid ? 'inline' : 'attachment' };
    cur.attachments.push(a);
    renderAttachment(a);
  }

  function removeAttachment(a) {
    if (a.xhr) a.xhr.abort();
    a.removed = true;
    if (cur) cur.attachments = cur.attachments.filter((x) => x !== a);
    if (a.li) a.li.remove();
    scheduleAutosave();
  }

  function uploadUrl() {
    const t = session().uploadUrl || '/jmap/upload/{accountId}/';
    const u = t.replace('{accountId}', encodeURIComponent(accountId()));
    return new URL(u, location.href).pathname;
  }

  function addFiles(files) {
    if (!cur) return;
    const cap = uploadCap();
    const errors = [];
    for (const f of Array.from(files || [])) {
      if (f.size > cap) {
        errors.push(f.name + ' is ' + formatSize(f.size) + '; files can be at most ' +
                    formatSize(cap) + '.');
        continue;
      }
      const a = { blobId: null, name: f.name, type: f.type || 'application/octet-stream',
                  size: f.size, disposition: 'attachment' };
      cur.attachments.push(a);
      renderAttachment(a);
      a.done = upload(a, f, cur);
    }
    setErr(errors.join(' '));
  }

  function upload(a, file, c) {
    return new Promise((resolve) => {
      const x = new XMLHttpRequest();
      a.xhr = x;
      x.open('POST', uploadUrl());
      x.setRequestHeader('Content-Type', a.type);
      x.setRequestHeader('Accept', 'application/json');
      if (Y().state.csrf) x.setRequestHeader('X-Yubin-CSRF', Y().state.csrf);
      x.upload.onprogress = (ev) => {
        if (ev.lengthComputable) a.prog.value = Math.floor(ev.loaded * 100 / ev.total);
      };
      const fail = (why) => {
        a.xhr = null;
        a.failed = true;
        a.prog.hidden = true;
        a.state.textContent = 'upload failed: ' + why;
        a.li.classList.add('failed');
        resolve(false);
      };
      x.onerror = () => fail('network error');
      x.onabort = () => resolve(false);
      x.onload = () => {
        let r = null;
        try { r = JSON.parse(x.responseText); } catch (e) { r = null; }
        if (x.status < 200 || x.status >= 300 || !r || !r.blobId)
          return fail((r && (r.detail || r.title || r.type)) || 'HTTP ' + x.status);
        a.xhr = null;
        a.blobId = r.blobId;
        if (r.type) a.type = r.type;
        if (typeof r.size === 'number') a.size = r.size;
        a.prog.value = 100;
        a.prog.hidden = true;
        a.li.classList.add('done');
        a.li.dataset.blobId = r.blobId;
        if (c === cur) scheduleAutosave();
        resolve(true);
      };
      x.send(file);
    });
  }

  /* ---- the Email object ---- */

  function buildEmail(forSend) {
    const bad = [];
    const to = parseAddrs($('compose-to').value, bad);
    const cc = parseAddrs($('compose-cc').value, bad);
    const bcc = parseAddrs($('compose-bcc').value, bad);
    if (bad.length) throw new Error('Not an address: ' + bad.join(', '));
    if (forSend && !to.length && !cc.length && !bcc.length)
      throw new Error('Add at least one recipient.');
    if (cur.attachments.some((a) => !a.blobId && !a.failed))
      throw new Error('Wait until the attachments are uploaded.');
    if (forSend && cur.attachments.some((a) => a.failed))
      throw new Error('An attachment failed to upload: remove it or add it again.');
    const drafts = mailbox('drafts');
    if (!drafts) throw new Error('There is no Drafts mailbox.');
    const id = fromIdentity();
    const e = {
      mailboxIds: { [drafts.id]: true },
      keywords: { $draft: true, $seen: true },
      from: [{ name: id.name || null, email: id.email }],
      subject: $('compose-subject').value,
      bodyValues: { body: { value: $('compose-body').value } },
      textBody: [{ partId: 'body', type: 'text/plain' }],
    };
    if (to.length) e.to = to;
    if (cc.length) e.cc = cc;
    if (bcc.length) e.bcc = bcc;
    if (cur.inReplyTo) e.inReplyTo = cur.inReplyTo;
    if (cur.references) e.references = cur.references;
    const att = cur.attachments.filter((a) => a.blobId).map((a) => {
      const o = { blobId: a.blobId, type: a.type, name: a.name, disposition: a.disposition };
      if (a.cid) o.cid = a.cid;
      return o;
    });
    const total = cur.attachments.reduce((s, a) => s + (a.blobId ? a.size || 0 : 0), 0);
    if (totalCap() && total > totalCap())
      throw new Error('The attachments add up to ' + formatSize(total) + '; at most ' +
                      formatSize(totalCap()) + ' fit in one message.');
    if (att.length) e.attachments = att;
    return e;
  }

  function setFailure(r, id) {
    const nc = r && r.notCreated && r.notCreated[id];
    if (!nc) return null;
    return new MethodError(nc.type || 'invalidProperties',
                           (nc.description || '') +
                           (nc.properties ? ' (' + nc.properties.join(', ') + ')' : ''));
  }

  /* ---- drafts ---- */

  /* Wait for a draft save in flight (so that its draft id is known). */
  async function settle() {
    while (saving) await saving;
  }

  async function saveDraft(why) {
    if (!cur || sending) return false;
    await settle();
    if (!cur || sending) return false;
    const run = saveNow(why);
    saving = run;
    try {
      return await run;
    } finally {
      if (saving === run) saving = null;
    }
  }

  async function saveNow(why) {
    const c = cur;
    const snap = snapshot();
    let email;
    try {
      email = buildEmail(false);
    } catch (e) {
      if (why !== 'auto') setErr(e);
      return false;
    }
    setSaved('Saving\u2026');
    try {
      const args = { accountId: accountId(), create: { draft: email } };
      if (c.draftId) args.destroy = [c.draftId];
      const resp = await api([['Email/set', args, 's']]);
      const r = answer(resp, 's', 'Email/set');
      const f = setFailure(r, 'draft');
      if (f) throw f;
      c.draftId = r.created.draft.id;
      c.saved = snap;
      if (c === cur) {
        setSaved('Draft saved ' + new Date().toLocaleTimeString(undefined,
                 { hour: '2-digit', minute: '2-digit' }));
        setErr('');
      }
      return true;
    } catch (e) {
      if (c === cur) {
        setSaved('');
        setErr('The draft was not saved: ' + e.message);
      }
      return false;
    }
  }

  function scheduleAutosave() {
    if (!cur || cur.timer) return;
    cur.timer = setTimeout(async () => {
      if (!cur) return;
      cur.timer = null;
      if (dirty()) await saveDraft('auto');
      if (cur && dirty()) scheduleAutosave();
    }, autosaveMs);
  }

  /* ---- send ---- */

  async function send() {
    if (!cur || sending) return;
    sending = true;
    $('compose-send').disabled = true;
    try {
      await settle();
      if (cur) await sendNow();
    } finally {
      sending = false;
      $('compose-send').disabled = false;
    }
  }

  async function sendNow() {
    setErr('');
    const pending = cur.attachments.filter((a) => a.done && !a.blobId && !a.failed);
    if (pending.length) {
      setSaved('Uploading\u2026');
      await Promise.all(pending.map((a) => a.done));
      if (!cur) return;
      setSaved('');
    }
    let email;
    try {
      email = buildEmail(true);
    } catch (e) {
      return setErr(e);
    }
    if (!hasCap(SUBMISSION))
      return setErr('This server does not offer sending (no ' + SUBMISSION + ').');
    const id = fromIdentity();
    if (!id.id) return setErr('No identity to send as (Identity/get gave none).');
    const c = cur;
    const drafts = mailbox('drafts');
    const sent = mailbox('sent');
    const upd = { 'keywords/$draft': null };
    if (sent && sent.id !== drafts.id) {
      upd['mailboxIds/' + drafts.id] = null;
      upd['mailboxIds/' + sent.id] = true;
    }
    const set = { accountId: accountId(), create: { draft: email } };
    if (c.draftId) set.destroy = [c.draftId];
    let moved = null;
    setSaved('Sending\u2026');
    try {
      const resp = await api([
        ['Email/set', set, 's'],
        ['EmailSubmission/set', { accountId: accountId(),
                                  create: { sub: { identityId: id.id, emailId: '#draft' } },
                                  onSuccessUpdateEmail: { '#sub': upd } }, 'u'],
      ], [SUBMISSION]);
      const r = answer(resp, 's', 'Email/set');
      const f = setFailure(r, 'draft');
      if (f) throw f;
      c.draftId = r.created.draft.id;       /* if the submission fails: the draft kept */
      c.saved = snapshot();
      const u = answer(resp, 'u', 'EmailSubmission/set');
      const g = setFailure(u, 'sub');
      if (g) throw g;
      if (!u.created || !u.created.sub) throw new Error('the server did not send it');
      const imp = response(resp, 'u', 'Email/set');
      if (imp && imp[1].notUpdated && Object.keys(imp[1].notUpdated).length)
        moved = 'Message sent, but it was not moved to Sent.';
    } catch (e) {
      setSaved(c.draftId ? 'Kept as a draft' : '');
      if (e.status === 401) return setErr('Your session has ended; log in again.');
      return setErr('Not sent: ' + e.message);
    }
    const mark = c.replyOf ? '$answered' : (c.forwardOf ? '$forwarded' : null);
    const orig = c.replyOf || c.forwardOf;
    close(true);
    toast(moved || (sent ? 'Message sent.'
                         : 'Message sent (kept in Drafts: there is no Sent mailbox).'));
    if (mark) {
      try {
        await api([['Email/set', { accountId: accountId(),
                                   update: { [orig]: { ['keywords/' + mark]: true } } }, 'k']]);
      } catch (e) {
        /* the flag is a nicety: a server without Email/set update keeps going */
      }
    }
    if (Y().refresh) Y().refresh();
  }

  /* ---- open / close ---- */

  function reset() {
    for (const id of ['compose-to', 'compose-cc', 'compose-bcc', 'compose-subject',
                      'compose-body'])
      $(id).value = '';
    $('compose-attachments').replaceChildren();
    $('compose-confirm').hidden = true;
    $('compose-drop').hidden = true;
    $('compose-send').disabled = false;
    setErr('');
    setSaved('');
    hideSuggest();
    showBcc(false);
  }

  async function open(opts) {
    opts = opts || {};
    const dlg = $('compose');
    if (cur) {
      /* one message at a time: keep the open one (saved) before starting another */
      if (dirty()) await saveDraft('switch');
      close(true);
    }
    reset();
    cur = { mode: opts.mode || 'new', draftId: null, inReplyTo: null, references: null,
            replyOf: null, forwardOf: null, attachments: [], saved: '', timer: null,
            loading: true };
    const c = cur;
    if (!dlg.open) dlg.showModal();
    dlg.classList.add('loading');
    let how = { focus: 'compose-to' };
    try {
      await loadIdentities();
      if (c !== cur) return;
      renderFrom(null);
      how = await prepare(opts);
      if (c !== cur) return;
      if (how.pickFrom) renderFrom(how.pickFrom);
    } catch (e) {
      if (c !== cur) return;
      setErr('Could not load the message: ' + e.message);
    }
    dlg.classList.remove('loading');
    c.loading = false;
    c.saved = snapshot();
    /* the cursor above a quote or a forwarded message, whichever field has focus */
    $('compose-body').setSelectionRange(0, 0);
    $('compose-body').scrollTop = 0;
    $(how.focus).focus();
    loadContacts();
  }

  function close(force) {
    const dlg = $('compose');
    if (cur && cur.timer) clearTimeout(cur.timer);
    if (cur) for (const a of cur.attachments) if (a.xhr) a.xhr.abort();
    cur = null;
    hideSuggest();
    if (dlg.open) dlg.close();
    return force;
  }

  /* Close with the changes kept as a draft (autosave on close). */
  async function closeSaving() {
    if (cur && dirty()) {
      const ok = await saveDraft('close');
      if (!ok) return;            /* the error shows; the dialog stays */
      toast('Draft saved.');
      if (Y().refresh) Y().refresh();
    }
    close(true);
  }

  /* Escape: ask when there are unsaved changes. */
  function requestClose() {
    if (!cur) return close(true);
    if (!dirty()) return close(true);
    askConfirm(false);
  }

  /* The bar asking what to do with unsaved changes (or, for Discard, a saved draft). */
  function askConfirm(discarding) {
    $('compose-confirm-text').textContent = discarding && !dirty()
      ? 'Delete this draft?' : 'This message has unsaved changes.';
    $('compose-confirm-save').hidden = !dirty();
    $('compose-confirm-discard').textContent = discarding && cur && cur.draftId
      ? 'Delete draft' : 'Discard changes';
    $('compose-confirm').hidden = false;
    $('compose-confirm-keep').focus();
  }

  async function discard() {
    if (!cur) return;
    await settle();
    if (!cur) return;
    const id = cur.draftId;
    close(true);
    if (id) {
      try {
        const r = answer(await api([['Email/set', { accountId: accountId(),
                                                    destroy: [id] }, 'd']]), 'd', 'Email/set');
        const nd = r.notDestroyed && r.notDestroyed[id];
        toast(nd ? 'The draft was not deleted: ' + (nd.description || nd.type)
                 : 'Draft deleted.');
      } catch (e) {
        toast('The draft was not deleted: ' + e.message);
      }
      if (Y().refresh) Y().refresh();
    }
  }

  /* ---- address completion ---- */

  async function loadContacts() {
    if (contacts || contactsLoading) return contactsLoading;
    contactsLoading = (async () => {
      const counts = new Map();
      const add = (a, w, t) => {
        if (!a || !a.email || !EMAIL_RE.test(a.email) || isOwn(a.email)) return;
        const k = lc(a.email);
        let c = counts.get(k);
        if (!c) {
          c = { name: a.name || null, email: a.email, n: 0, t: 0 };
          counts.set(k, c);
        }
        c.n += w;
        if (t > c.t) c.t = t;
        if (!c.name && a.name) c.name = a.name;
      };
      try {
        const calls = [];
        const sent = mailbox('sent'), inbox = mailbox('inbox');
        for (const [tag, m] of [['s', sent], ['i', inbox]]) {
          if (!m) continue;
          calls.push(['Email/query', { accountId: accountId(), filter: { inMailbox: m.id },
                                       sort: [{ property: 'receivedAt', isAscending: false }],
                                       limit: CONTACTS_SCAN }, tag + 'q']);
          calls.push(['Email/get', { accountId: accountId(),
                                     '#ids': { resultOf: tag + 'q', name: 'Email/query',
                                               path: '/ids' },
                                     properties: ['from', 'to', 'cc', 'bcc', 'receivedAt'] },
                      tag + 'g']);
        }
        if (calls.length) {
          await loadIdentities();
          const resp = await api(calls);
          for (const tag of ['s', 'i']) {
            const r = response(resp, tag + 'g', 'Email/get');
            if (!r || r[0] !== 'Email/get') continue;
            for (const e of r[1].list || []) {
              const t = Date.parse(e.receivedAt) || 0;
              if (tag === 's') {
                for (const a of [].concat(e.to || [], e.cc || [], e.bcc || [])) add(a, 3, t);
              } else {
                for (const a of e.from || []) add(a, 1, t);
                for (const a of [].concat(e.to || [], e.cc || [])) add(a, 0.25, t);
              }
            }
          }
        }
      } catch (e) {
        /* no completion rather than a broken dialog */
      }
      contacts = Array.from(counts.values())
        .sort((a, b) => (b.n - a.n) || (b.t - a.t) || (a.email < b.email ? -1 : 1))
        .slice(0, CONTACTS_CAP);
      contactsLoading = null;
      return contacts;
    })();
    return contactsLoading;
  }

  /* The address being typed in input f: [start, end, text]. */
  function token(f) {
    const v = f.value;
    const pos = f.selectionStart == null ? v.length : f.selectionStart;
    const parts = splitAddrs(v.slice(0, pos));
    const last = parts[parts.length - 1];
    const start = pos - last.length;
    let end = v.indexOf(',', pos);
    if (end < 0) end = v.length;
    return [start, end, last.trim()];
  }

  function hideSuggest() {
    const ul = $('compose-suggest');
    ul.hidden = true;
    ul.replaceChildren();
    if (suggest.field) suggest.field.removeAttribute('aria-activedescendant');
    suggest = { field: null, items: [], index: -1 };
  }

  function renderSuggest() {
    const ul = $('compose-suggest');
    ul.replaceChildren();
    suggest.items.forEach((c, n) => {
      const li = document.createElement('li');
      li.id = 'compose-suggest-' + n;
      li.setAttribute('role', 'option');
      li.className = 'compose-suggest-item' + (n === suggest.index ? ' active' : '');
      li.setAttribute('aria-selected', String(n === suggest.index));
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = c.name || c.email;
      li.append(name);
      if (c.name) {
        const em = document.createElement('span');
        em.className = 'email';
        em.textContent = c.email;
        li.append(em);
      }
      li.addEventListener('mousedown', (ev) => {
        ev.preventDefault();
        suggest.index = n;
        pick();
      });
      ul.append(li);
    });
    const f = suggest.field;
    const box = f.getBoundingClientRect();
    const form = $('compose-form').getBoundingClientRect();
    ul.style.left = (box.left - form.left) + 'px';
    ul.style.top = (box.bottom - form.top + $('compose-form').scrollTop) + 'px';
    ul.style.width = box.width + 'px';
    ul.hidden = false;
    if (suggest.index >= 0) f.setAttribute('aria-activedescendant', 'compose-suggest-' +
                                           suggest.index);
  }

  async function updateSuggest(f) {
    await loadContacts();
    if (document.activeElement !== f || !cur) return;
    const [, , t] = token(f);
    const q = lc(t);
    if (!q) return hideSuggest();
    const present = new Set(parseAddrs(f.value).map((a) => lc(a.email)));
    const hits = [];
    for (const c of contacts) {
      const e = lc(c.email), n = lc(c.name);
      let score = -1;
      if (e.startsWith(q) || n.startsWith(q)) score = 2;
      else if (n.split(/\s+/).some((w) => w.startsWith(q)) || e.includes(q) || n.includes(q))
        score = 1;
      if (score < 0 || (present.has(e) && e !== q)) continue;
      hits.push([score, c]);
      if (hits.length >= 200) break;
    }
    hits.sort((a, b) => b[0] - a[0]);
    const items = hits.slice(0, SUGGEST_MAX).map((h) => h[1]);
    if (!items.length) return hideSuggest();
    suggest = { field: f, items, index: 0 };
    renderSuggest();
  }

  function pick() {
    const f = suggest.field;
    const c = suggest.items[suggest.index];
    if (!f || !c) return;
    const [start, end] = token(f);
    const v = f.value;
    const before = v.slice(0, start).replace(/\s*$/, '');
    const after = v.slice(end).replace(/^,?\s*/, '');
    const ins = (before ? before + ' ' : '') + formatAddr(c) + ', ';
    f.value = ins + after;
    f.setSelectionRange(ins.length, ins.length);
    hideSuggest();
    f.dispatchEvent(new Event('input', { bubbles: true }));
    hideSuggest();
  }

  function onAddrKey(ev) {
    if (suggest.field !== ev.target || !suggest.items.length) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      const n = suggest.items.length;
      suggest.index = (suggest.index + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
      renderSuggest();
    } else if ((ev.key === 'Enter' && !ev.ctrlKey && !ev.metaKey) || ev.key === 'Tab') {
      if (suggest.index < 0) return;
      ev.preventDefault();
      ev.stopPropagation();
      pick();
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      hideSuggest();
    }
  }

  /* ---- wiring ---- */

  function wire() {
    const dlg = $('compose');
    const form = $('compose-form');
    if (!dlg || !form) return;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      send();
    });
    /* no implicit submit from Enter in a one-line field */
    form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        send();
      } else if (ev.key === 'Enter' && ev.target.tagName === 'INPUT') {
        ev.preventDefault();
      }
    });
    dlg.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        if (!$('compose-confirm').hidden) $('compose-confirm').hidden = true;
        else requestClose();
      }
    });
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
    });
    $('compose-close').addEventListener('click', () => closeSaving());
    $('compose-save').addEventListener('click', () => saveDraft('button'));
    $('compose-discard').addEventListener('click', () => {
      if (dirty() || (cur && cur.draftId)) {
        askConfirm(true);
      } else {
        discard();
      }
    });
    $('compose-confirm-save').addEventListener('click', () => closeSaving());
    $('compose-confirm-discard').addEventListener('click', () => discard());
    $('compose-confirm-keep').addEventListener('click', () => {
      $('compose-confirm').hidden = true;
      $('compose-body').focus();
    });
    $('compose-bcc-toggle').addEventListener('click', () => {
      showBcc(true);
      $('compose-bcc').focus();
    });
    $('compose-attach').addEventListener('click', () => $('compose-file').click());
    $('compose-file').addEventListener('change', (ev) => {
      addFiles(ev.target.files);
      ev.target.value = '';
    });
    const hasFiles = (ev) => ev.dataTransfer &&
      Array.from(ev.dataTransfer.types || []).includes('Files');
    let depth = 0;
    form.addEventListener('dragenter', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth++;
      $('compose-drop').hidden = false;
    });
    form.addEventListener('dragover', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
    });
    form.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) $('compose-drop').hidden = true;
    });
    form.addEventListener('drop', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth = 0;
      $('compose-drop').hidden = true;
      addFiles(ev.dataTransfer.files);
    });
    for (const id of ADDR_FIELDS) {
      const f = $(id);
      f.addEventListener('input', () => { updateSuggest(f); scheduleAutosave(); });
      f.addEventListener('focus', () => loadContacts());
      f.addEventListener('keydown', onAddrKey);
      f.addEventListener('blur', () => { if (suggest.field === f) hideSuggest(); });
    }
    for (const id of ['compose-subject', 'compose-body', 'compose-from'])
      $(id).addEventListener('input', scheduleAutosave);
    /* the page's files dropped outside the dialog do not navigate away */
    window.addEventListener('dragover', (ev) => { if (cur) ev.preventDefault(); });
    window.addEventListener('drop', (ev) => { if (cur) ev.preventDefault(); });
    window.addEventListener('beforeunload', (ev) => {
      if (dirty()) ev.preventDefault();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden' && dirty()) saveDraft('auto');
    });
  }

  window.YubinCompose = {
    open: (opts) => open(opts).catch((e) => setErr(e)),
    close: () => requestClose(),
    isOpen: () => !!cur,
    /* for the page's tests and shortcuts: is there something unsaved? */
    dirty: () => dirty(),
    _parseAddrs: parseAddrs,
    setAutosaveInterval: (ms) => { autosaveMs = Math.max(100, Number(ms) || 30000); },
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wire);
  else wire();
})();

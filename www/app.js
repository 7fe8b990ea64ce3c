/* Yubin webmail: the page's script.  Plain JS, no framework, nothing from
 * the network but yubind.  User content only ever goes in through
 * textContent (never innerHTML); an HTML body is shown by yubind's
 * sanitised view (/jmap/view/) in a sandboxed <iframe> that runs nothing
 * (allow-popups only: its links open in a tab of their own). */
'use strict';

const CORE = 'urn:ietf:params:jmap:core';
const MAIL = 'urn:ietf:params:jmap:mail';
const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];
const PAGE = 50;
const BODY_VALUE_MAX = 1024 * 1024;
const PREVIEW_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const SORTS = {
  'receivedAt-desc': { property: 'receivedAt', isAscending: false },
  'receivedAt-asc': { property: 'receivedAt', isAscending: true },
  'size-desc': { property: 'size', isAscending: false },
  'size-asc': { property: 'size', isAscending: true },
};
const LIST_PROPS = ['id', 'threadId', 'mailboxIds', 'keywords', 'from', 'subject',
                    'receivedAt', 'preview', 'hasAttachment', 'size'];
const READ_PROPS = ['id', 'blobId', 'threadId', 'mailboxIds', 'keywords', 'from', 'to', 'cc',
                    'replyTo', 'subject', 'sentAt', 'receivedAt', 'size', 'textBody',
                    'htmlBody', 'attachments', 'bodyValues', 'hasAttachment'];

const state = { user: null, csrf: null, session: null, accountId: null, mailboxes: [],
                selected: null, loadSeq: 0,
                /* the list: ids in order, the emails by id, the page */
                ids: [], emails: new Map(), threads: new Map(), position: 0, total: null,
                sort: 'receivedAt-desc', search: '',
                cursor: null,          /* the id the keys act on */
                openId: null,          /* the email in the reading pane */
                current: null,         /* its Email object */
                images: false,         /* remote images allowed for the open email */
                events: null, eventStates: {}, refreshing: null, refreshAgain: false,
                mutations: 0 };        /* Email/set calls made: a list read
                                        * across one is read again */

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function button(text, cls, onClick, title) {
  const b = el('button', cls, text);
  b.type = 'button';
  if (title) b.title = title;
  if (onClick) b.addEventListener('click', onClick);
  return b;
}

class HttpError extends Error {
  constructor(status, detail) {
    super(detail || 'HTTP ' + status);
    this.status = status;
  }
}

async function request(method, url, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-Yubin-CSRF'] = state.csrf;
  const r = await fetch(url, { method, headers, credentials: 'same-origin',
                               body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    throw new HttpError(r.status, data && (data.error || data.detail));
  }
  return data;
}

/* A URL of the session object (absolute there) as a path on our origin. */
function localPath(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/* One JMAP request; returns methodResponses. */
async function jmap(calls) {
  const url = (state.session && state.session.apiUrl) ? localPath(state.session.apiUrl)
                                                      : '/jmap/api/';
  const data = await request('POST', url, { using: [CORE, MAIL], methodCalls: calls });
  return data.methodResponses;
}

/* The response of call id cid named name, or an Error. */
function result(resp, cid, name) {
  const r = resp.find((x) => x[2] === cid);
  if (!r) throw new Error('no answer to ' + name);
  if (r[0] !== name) throw new Error((r[1] && (r[1].description || r[1].type)) || r[0]);
  return r[1];
}

function showLogin(message) {
  stopEvents();
  state.user = state.csrf = state.session = state.accountId = null;
  state.mailboxes = [];
  state.selected = null;
  state.ids = [];
  state.emails = new Map();
  state.cursor = state.openId = state.current = null;
  $('main-view').hidden = true;
  $('login-view').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('login-password').value = '';
  (($('login-user').value) ? $('login-password') : $('login-user')).focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const btn = $('login-submit');
  btn.disabled = true;
  $('login-error').hidden = true;
  try {
    const r = await request('POST', '/login', { user: $('login-user').value.trim(),
                                                password: $('login-password').value });
    $('login-password').value = '';
    state.user = r.user;
    state.csrf = r.csrf;
    await start();
  } catch (e) {
    showLogin(e.status === 401 ? 'Wrong address or password.' : 'Login failed: ' + e.message);
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try {
    await request('POST', '/logout');
  } catch (e) {
    /* the session is dropped on our side anyway */
  }
  closeReader();
  showLogin('');
}

/* ---- folders ---- */

function sortMailboxes(list) {
  const byId = new Map(list.map((m) => [m.id, m]));
  const path = (m) => {
    const parts = [];
    for (let x = m, n = 0; x && n < 32; x = byId.get(x.parentId), n++) parts.unshift(x);
    return parts;
  };
  const rank = (m) => {
    const i = ROLE_ORDER.indexOf(m.role);
    return i < 0 ? ROLE_ORDER.length : i;
  };
  const key = (m) => path(m).map((x) => [rank(x), x.sortOrder || 0, x.name]);
  const cmp = (a, b) => {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
      const [ra, sa, na] = ka[i], [rb, sb, nb] = kb[i];
      if (ra !== rb) return ra - rb;
      if (sa !== sb) return sa - sb;
      if (na !== nb) return na < nb ? -1 : 1;
    }
    return ka.length - kb.length;
  };
  return list.slice().sort(cmp).map((m) => ({ m, depth: Math.min(path(m).length - 1, 2) }));
}

function mailboxName(m) {
  return m ? (m.role === 'inbox' ? 'INBOX' : m.name) : '';
}

function renderFolders() {
  const ul = $('folder-list');
  ul.replaceChildren();
  for (const { m, depth } of sortMailboxes(state.mailboxes)) {
    const li = el('li', 'depth-' + depth);
    li.dataset.id = m.id;
    if (m.role) li.dataset.role = m.role;
    if (state.selected === m.id) li.classList.add('selected');
    const b = el('button');
    b.type = 'button';
    b.append(el('span', 'name', mailboxName(m)));
    if (m.unreadEmails > 0) {
      const u = el('span', 'unread', m.unreadEmails);
      u.setAttribute('aria-label', m.unreadEmails + ' unread');
      b.append(u);
    }
    b.addEventListener('click', () => selectMailbox(m.id));
    li.append(b);
    ul.append(li);
  }
}

function mailboxByRole(role) {
  return state.mailboxes.find((m) => m.role === role) || null;
}

async function reloadMailboxes() {
  const resp = await jmap([['Mailbox/get', { accountId: state.accountId, ids: null }, 'm']]);
  state.mailboxes = result(resp, 'm', 'Mailbox/get').list;
  renderFolders();
}

/* ---- the message list ---- */

function formatDate(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString())
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleDateString(undefined, { year: d.getFullYear() === now.getFullYear()
                                                  ? undefined : 'numeric',
                                           month: 'short', day: 'numeric' });
}

function formatFullDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'short' });
}

function formatSize(n) {
  if (!(n >= 0)) return '';
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KB';
  return (n / 1048576).toFixed(1) + ' MB';
}

function addressText(list) {
  if (!Array.isArray(list) || list.length === 0) return '';
  return list.map((a) => (a && (a.name || a.email)) || '').join(', ');
}

/* "Name <address>" for the reading pane. */
function addressFull(list) {
  if (!Array.isArray(list) || list.length === 0) return '';
  return list.map((a) => {
    if (!a) return '';
    if (a.name && a.email) return a.name + ' <' + a.email + '>';
    return a.name || a.email || '';
  }).join(', ');
}

function setStatus(text) {
  $('message-status').textContent = text || '';
}

function hasKw(e, kw) {
  return !!(e && e.keywords && e.keywords[kw]);
}

function renderMessages() {
  const ul = $('message-list');
  ul.replaceChildren();
  renderPager();
  if (!state.ids.length) {
    setStatus(state.search ? 'No messages match' : 'No messages');
    return;
  }
  setStatus('');
  for (const id of state.ids) {
    const e = state.emails.get(id);
    if (!e) continue;
    const li = el('li');
    li.dataset.id = e.id;
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', String(id === state.cursor));
    if (!hasKw(e, '$seen')) li.classList.add('unseen');
    if (hasKw(e, '$flagged')) li.classList.add('flagged');
    if (id === state.cursor) li.classList.add('cursor');
    if (id === state.openId) li.classList.add('open');
    const marks = el('span', 'marks');
    const flag = el('span', 'flag', hasKw(e, '$flagged') ? '\u2605' : '');
    if (hasKw(e, '$flagged')) flag.setAttribute('aria-label', 'flagged');
    marks.append(flag);
    const att = el('span', e.hasAttachment ? 'att on' : 'att');
    if (e.hasAttachment) {
      att.setAttribute('role', 'img');
      att.setAttribute('aria-label', 'has attachments');
      att.title = 'Attachments';
    }
    marks.append(att);
    li.append(marks);
    li.append(el('span', 'from', addressText(e.from) || '(no sender)'));
    const subj = el('span', 'subject');
    subj.append(el('span', 'subject-text', e.subject || '(no subject)'));
    const t = state.threads.get(e.threadId);
    if (t && t.length > 1) subj.append(el('span', 'thread-count', ' ' + t.length));
    if (e.preview) subj.append(el('span', 'preview', ' \u2014 ' + e.preview));
    li.append(subj);
    li.append(el('span', 'date', formatDate(e.receivedAt)));
    li.addEventListener('click', () => openEmail(e.id));
    ul.append(li);
  }
}

function renderPager() {
  const n = state.ids.length;
  const from = n ? state.position + 1 : 0;
  const to = state.position + n;
  $('page-info').textContent = n ? (state.total !== null ? `${from}\u2013${to} of ${state.total}`
                                                         : `${from}\u2013${to}`) : '';
  $('page-newer').disabled = state.position === 0;
  $('page-older').disabled = state.total !== null ? to >= state.total : n < PAGE;
}

/* Load the current page of mailboxId.  keep: a refresh (no "Loading",
 * the cursor and the reading pane stay). */
async function loadMessages(mailboxId, keep) {
  const seq = ++state.loadSeq;
  const mutations = state.mutations;
  if (!keep) {
    setStatus('Loading\u2026');
    $('message-list').replaceChildren();
  }
  const filter = { inMailbox: mailboxId };
  if (state.search) filter.text = state.search;
  let ids = [], emails = [], total = null, threads = new Map();
  try {
    const resp = await jmap([
      ['Email/query', { accountId: state.accountId, filter, sort: [SORTS[state.sort]],
                        position: state.position, limit: PAGE, calculateTotal: true }, 'q'],
      ['Email/get', { accountId: state.accountId,
                      '#ids': { resultOf: 'q', name: 'Email/query', path: '/ids' },
                      properties: LIST_PROPS }, 'g'],
      ['Thread/get', { accountId: state.accountId,
                       '#ids': { resultOf: 'g', name: 'Email/get', path: '/list/*/threadId' } },
       't'],
    ]);
    const q = result(resp, 'q', 'Email/query');
    ids = q.ids || [];
    total = typeof q.total === 'number' ? q.total : null;
    emails = result(resp, 'g', 'Email/get').list || [];
    try {
      for (const t of result(resp, 't', 'Thread/get').list || [])
        threads.set(t.id, t.emailIds || []);
    } catch (e) {
      /* no thread counts */
    }
  } catch (e) {
    if (e.status === 401) return showLogin('Your session has ended; please log in again.');
    /* no Email methods yet, or a failure: an empty list, not a broken page */
  }
  if (seq !== state.loadSeq) return;
  if (mutations !== state.mutations) return loadMessages(mailboxId, keep);
  if (total !== null && state.position > 0 && state.position >= total) {
    /* the page emptied (moves, deletes): back one page */
    state.position = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
    return loadMessages(mailboxId, keep);
  }
  const byId = new Map(emails.map((e) => [e.id, e]));
  const oldIds = state.ids;
  state.ids = ids.filter((id) => byId.has(id));
  state.emails = byId;
  state.threads = threads;
  state.total = total;
  if (state.cursor && !byId.has(state.cursor)) {
    /* the cursor's email went away: the one now at its place */
    const at = oldIds.indexOf(state.cursor);
    state.cursor = at >= 0 ? nearestSurvivor(oldIds, at, byId) : null;
  }
  if (state.openId && byId.has(state.openId)) {
    const e = byId.get(state.openId);
    if (state.current) {
      state.current.keywords = e.keywords;
      state.current.mailboxIds = e.mailboxIds;
      renderReaderFlags();
    }
  }
  renderMessages();
}

function nearestSurvivor(oldIds, at, byId) {
  for (let i = at + 1; i < oldIds.length; i++) if (byId.has(oldIds[i])) return oldIds[i];
  for (let i = at - 1; i >= 0; i--) if (byId.has(oldIds[i])) return oldIds[i];
  return null;
}

function selectMailbox(id) {
  state.selected = id;
  state.position = 0;
  state.cursor = null;
  state.search = '';
  $('search').value = '';
  const m = state.mailboxes.find((x) => x.id === id);
  $('current-folder').textContent = mailboxName(m);
  renderFolders();
  $('folders').classList.remove('open');
  $('folders-toggle').setAttribute('aria-expanded', 'false');
  closeReader();
  loadMessages(id);
}

/* Reload the folder list (counts) and the current message list, keeping
 * the cursor and the open message.  Calls that overlap run once more. */
async function refresh() {
  if (!state.accountId) return;
  if (state.refreshing) {
    state.refreshAgain = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    do {
      state.refreshAgain = false;
      try {
        await reloadMailboxes();
      } catch (e) {
        if (e.status === 401) return showLogin('Your session has ended; please log in again.');
      }
      if (state.selected) await loadMessages(state.selected, true);
    } while (state.refreshAgain && state.accountId);
  })();
  try {
    await state.refreshing;
  } finally {
    state.refreshing = null;
  }
}

/* ---- the reading pane ---- */

function downloadUrl(blobId, name, type) {
  const tpl = (state.session && state.session.downloadUrl) ||
              '/jmap/download/{accountId}/{blobId}/{name}?accept={type}';
  const url = tpl.replace('{accountId}', encodeURIComponent(state.accountId))
                 .replace('{blobId}', encodeURIComponent(blobId))
                 .replace('{name}', encodeURIComponent(name || 'attachment'))
                 .replace('{type}', encodeURIComponent(type || 'application/octet-stream'));
  return localPath(url);
}

function viewUrl(blobId, images) {
  return '/jmap/view/' + encodeURIComponent(state.accountId) + '/' +
         encodeURIComponent(blobId) + '?images=' + (images ? '1' : '0');
}

function closeReader() {
  state.openId = null;
  state.current = null;
  $('main-view').classList.remove('reading');
  $('reader-content').hidden = true;
  $('reader-empty').hidden = false;
  const f = $('reader-html');
  f.hidden = true;
  f.removeAttribute('src');
  for (const li of $('message-list').children) li.classList.remove('open');
}

async function openEmail(id) {
  if (!id) return;
  const m = state.mailboxes.find((x) => x.id === state.selected);
  if (m && m.role === 'drafts' && window.YubinCompose) {
    state.cursor = id;
    markCursor();
    return openCompose('draft', id);
  }
  state.cursor = id;
  state.openId = id;
  state.images = false;
  markCursor();
  $('main-view').classList.add('reading');
  $('reader-empty').hidden = true;
  $('reader-content').hidden = false;
  $('reader-status').textContent = 'Loading\u2026';
  let e;
  try {
    const resp = await jmap([['Email/get', { accountId: state.accountId, ids: [id],
                                             properties: READ_PROPS, fetchTextBodyValues: true,
                                             maxBodyValueBytes: BODY_VALUE_MAX }, 'r']]);
    e = (result(resp, 'r', 'Email/get').list || [])[0];
  } catch (err) {
    if (err.status === 401) return showLogin('Your session has ended; please log in again.');
    if (state.openId === id) $('reader-status').textContent = 'Could not load the message: ' +
                                                              err.message;
    return;
  }
  if (state.openId !== id) return;
  if (!e) {
    $('reader-status').textContent = 'This message is gone.';
    return;
  }
  state.current = e;
  renderReader(e);
  if (!hasKw(e, '$seen')) setKeyword([id], '$seen', true, true);
}

function renderReader(e) {
  $('reader-status').textContent = '';
  $('reader-subject').textContent = e.subject || '(no subject)';
  const meta = $('reader-meta');
  meta.replaceChildren();
  const row = (label, value, cls) => {
    if (!value) return;
    const dt = el('dt', null, label), dd = el('dd', cls, value);
    meta.append(dt, dd);
  };
  row('From', addressFull(e.from), 'meta-from');
  row('To', addressFull(e.to), 'meta-to');
  row('Cc', addressFull(e.cc), 'meta-cc');
  row('Date', formatFullDate(e.sentAt || e.receivedAt), 'meta-date');
  renderReaderFlags();

  const html = (e.htmlBody || []).find((p) => p.type === 'text/html');
  const frame = $('reader-html'), text = $('reader-text');
  $('reader-images').hidden = true;
  if (html) {
    text.hidden = true;
    text.textContent = '';
    showHtml(e, html.blobId, false);
  } else {
    frame.hidden = true;
    frame.removeAttribute('src');
    const parts = (e.textBody || []).filter((p) => p.type && p.type.startsWith('text/'));
    const values = e.bodyValues || {};
    text.textContent = parts.map((p) => (values[p.partId] && values[p.partId].value) || '')
                            .join('\n\n');
    if (parts.some((p) => values[p.partId] && values[p.partId].isTruncated))
      text.textContent += '\n[\u2026 truncated]';
    text.hidden = false;
  }
  renderAttachments(e, html);
  $('reader').scrollTop = 0;
}

/* The HTML body in the sandboxed frame; the count of blocked remote images
 * from a HEAD of the same view (the frame's headers are not ours to read). */
async function showHtml(e, blobId, images) {
  const frame = $('reader-html');
  const url = viewUrl(blobId, images);
  frame.hidden = false;
  frame.src = url;
  if (images) {
    $('reader-images').hidden = true;
    return;
  }
  try {
    const r = await fetch(url, { method: 'HEAD', credentials: 'same-origin' });
    const n = parseInt(r.headers.get('X-Yubin-Remote-Images') || '0', 10);
    if (state.current !== e) return;
    if (n > 0) {
      $('reader-images-text').textContent =
        n === 1 ? 'One remote image is hidden.' : n + ' remote images are hidden.';
      $('reader-images').hidden = false;
      $('show-images').onclick = () => {
        state.images = true;
        showHtml(e, blobId, true);
      };
    }
  } catch (err) {
    /* no button then */
  }
}

function renderReaderFlags() {
  const e = state.current;
  if (!e) return;
  $('act-flag').textContent = hasKw(e, '$flagged') ? 'Unflag' : 'Flag';
  $('act-flag').setAttribute('aria-pressed', String(hasKw(e, '$flagged')));
  $('act-seen').textContent = hasKw(e, '$seen') ? 'Mark unread' : 'Mark read';
}

/* The attachments; with an HTML body shown, not the inline images it
 * shows itself (cid: references). */
function renderAttachments(e, html) {
  const ul = $('reader-attachments');
  ul.replaceChildren();
  const shown = new Set(html ? (e.htmlBody || []).filter((p) => p.cid).map((p) => p.partId)
                             : []);
  const list = (e.attachments || []).filter((p) => p.blobId && !(
    html && p.cid && p.disposition !== 'attachment' &&
    (shown.has(p.partId) || (p.type || '').startsWith('image/'))));
  ul.hidden = list.length === 0;
  for (const p of list) {
    const li = el('li', 'attachment');
    const type = (p.type || 'application/octet-stream').toLowerCase();
    const name = p.name || (type.startsWith('image/') ? 'image' : 'attachment');
    const a = el('a', 'att-link');
    a.href = downloadUrl(p.blobId, name, type);
    a.setAttribute('download', name);
    a.append(el('span', 'att-name', name));
    a.append(el('span', 'att-meta', formatSize(p.size) + ' \u00b7 ' + type));
    if (PREVIEW_TYPES.includes(type)) {
      const img = el('img', 'att-preview');
      img.alt = name;
      img.loading = 'lazy';
      img.src = downloadUrl(p.blobId, name, type);
      a.prepend(img);
    }
    li.append(a);
    ul.append(li);
  }
}

/* ---- actions (Email/set, RFC 8621 4.6) ---- */

/* The email the toolbar and the keys act on. */
function targetId() {
  return state.openId || state.cursor;
}

function targetEmail() {
  const id = targetId();
  if (!id) return null;
  if (state.current && state.current.id === id) return state.current;
  return state.emails.get(id) || null;
}

function flash(text) {
  const t = $('action-status');
  t.textContent = text || '';
  t.hidden = !text;
  clearTimeout(flash.timer);
  if (text) flash.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

/* Email/set update of ids with one patch each; true when all were done. */
async function emailSet(update, destroy, quiet) {
  const args = { accountId: state.accountId };
  if (update) args.update = update;
  if (destroy) args.destroy = destroy;
  state.mutations++;
  try {
    const resp = await jmap([['Email/set', args, 's']]);
    const r = result(resp, 's', 'Email/set');
    const failed = Object.values(r.notUpdated || {}).concat(Object.values(r.notDestroyed || {}));
    if (failed.length) {
      if (!quiet) flash('Not done: ' + (failed[0].description || failed[0].type));
      return false;
    }
    return true;
  } catch (e) {
    if (e.status === 401) showLogin('Your session has ended; please log in again.');
    else if (!quiet) flash('Not done: ' + e.message);
    return false;
  }
}

function applyLocal(id, fn) {
  for (const e of [state.emails.get(id), state.current && state.current.id === id
                                           ? state.current : null]) {
    if (e) fn(e);
  }
}

async function setKeyword(ids, kw, on, quiet) {
  const update = {};
  for (const id of ids) update[id] = { ['keywords/' + kw]: on ? true : null };
  if (!(await emailSet(update, null, quiet))) return;
  for (const id of ids) applyLocal(id, (e) => {
    e.keywords = Object.assign({}, e.keywords);
    if (on) e.keywords[kw] = true;
    else delete e.keywords[kw];
  });
  renderMessages();
  renderReaderFlags();
  if (!quiet) flash(kw === '$flagged' ? (on ? 'Flagged' : 'Unflagged')
                                      : (on ? 'Marked read' : 'Marked unread'));
  refresh();
}

function toggleFlag() {
  const e = targetEmail();
  if (e) setKeyword([e.id], '$flagged', !hasKw(e, '$flagged'));
}

function markSeen(on) {
  const e = targetEmail();
  if (e) setKeyword([e.id], '$seen', on);
}

/* Move the target from the current folder to mailbox dest. */
async function moveTo(dest, what) {
  const e = targetEmail();
  if (!e || !dest || dest.id === state.selected) return;
  const patch = { ['mailboxIds/' + dest.id]: true };
  if (state.selected) patch['mailboxIds/' + state.selected] = null;
  if (!(await emailSet({ [e.id]: patch }))) return;
  leaveTarget(e.id);
  flash((what || 'Moved to') + ' ' + mailboxName(dest));
  await refresh();
}

async function deleteTarget() {
  const e = targetEmail();
  if (!e) return;
  const trash = mailboxByRole('trash');
  if (trash && trash.id !== state.selected) return moveTo(trash, 'Moved to');
  if (!trash) {
    flash('There is no Trash folder.');
    return;
  }
  if (!(await emailSet(null, [e.id]))) return;
  leaveTarget(e.id);
  flash('Deleted for good');
  await refresh();
}

function archiveTarget() {
  const a = mailboxByRole('archive');
  if (!a) return flash('There is no Archive folder.');
  if (a.id === state.selected) return;
  return moveTo(a, 'Archived to');
}

/* The email left this folder: the cursor to its neighbour, the pane shut. */
function leaveTarget(id) {
  const at = state.ids.indexOf(id);
  if (at >= 0) {
    state.cursor = state.ids[at + 1] || state.ids[at - 1] || null;
    state.ids.splice(at, 1);
    state.emails.delete(id);
  }
  if (state.openId === id) closeReader();
  renderMessages();
}

function openMovePicker() {
  const e = targetEmail();
  if (!e) return;
  const ul = $('move-list');
  ul.replaceChildren();
  for (const { m, depth } of sortMailboxes(state.mailboxes)) {
    if (m.id === state.selected) continue;
    const li = el('li', 'depth-' + depth);
    li.dataset.id = m.id;
    li.append(button(mailboxName(m), 'move-target', () => {
      $('move-dialog').close();
      moveTo(m);
    }));
    ul.append(li);
  }
  $('move-dialog').showModal();
  const first = ul.querySelector('button');
  if (first) first.focus();
}

function openCompose(mode, emailId) {
  if (window.YubinCompose && window.YubinCompose.open)
    window.YubinCompose.open(emailId ? { mode, emailId } : { mode });
}

function composeFromTarget(mode) {
  const id = targetId();
  if (id) openCompose(mode, id);
}

/* ---- the cursor and the keys ---- */

function markCursor() {
  for (const li of $('message-list').children) {
    const on = li.dataset.id === state.cursor;
    li.classList.toggle('cursor', on);
    li.setAttribute('aria-selected', String(on));
    li.classList.toggle('open', li.dataset.id === state.openId);
    if (on) li.scrollIntoView({ block: 'nearest' });
  }
}

function moveCursor(delta) {
  if (!state.ids.length) return;
  let i = state.ids.indexOf(state.cursor);
  i = i < 0 ? (delta > 0 ? 0 : state.ids.length - 1)
            : Math.max(0, Math.min(state.ids.length - 1, i + delta));
  state.cursor = state.ids[i];
  if (state.openId) openEmail(state.cursor);
  else markCursor();
}

function goPage(delta) {
  const p = state.position + delta * PAGE;
  if (p < 0 || (delta > 0 && $('page-older').disabled)) return;
  state.position = p;
  state.cursor = null;
  loadMessages(state.selected);
  $('messages').scrollTop = 0;
}

function back() {
  if (state.openId) {
    closeReader();
    markCursor();
  }
}

const KEYS = [
  ['j', 'Next message', () => moveCursor(1)],
  ['k', 'Previous message', () => moveCursor(-1)],
  ['o', 'Open (also Enter)', () => openEmail(state.cursor || state.ids[0])],
  ['Escape', 'Back to the list', back],
  ['s', 'Flag or unflag', toggleFlag],
  ['u', 'Mark unread', () => markSeen(false)],
  ['U', 'Mark read (Shift+U)', () => markSeen(true)],
  ['m', 'Move to a folder', openMovePicker],
  ['e', 'Archive', archiveTarget],
  ['#', 'Delete (also Delete)', deleteTarget],
  ['c', 'Write a message', () => openCompose('new')],
  ['r', 'Reply', () => composeFromTarget('reply')],
  ['a', 'Reply all', () => composeFromTarget('replyAll')],
  ['f', 'Forward', () => composeFromTarget('forward')],
  ['/', 'Search', () => $('search').focus()],
  ['?', 'These keys', showHelp],
];
const KEY_ALIASES = { Enter: 'o', Delete: '#', ArrowDown: 'j', ArrowUp: 'k' };

function onKey(ev) {
  if ($('main-view').hidden || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) return;
  if (document.querySelector('dialog[open]')) return;
  const t = ev.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
    if (ev.key === 'Escape' && t.id === 'search') t.blur();
    return;
  }
  if (t && t.tagName === 'BUTTON' && ev.key === 'Enter') return;
  const key = KEY_ALIASES[ev.key] || ev.key;
  const k = KEYS.find((x) => x[0] === key);
  if (!k) return;
  ev.preventDefault();
  k[2]();
}

function showHelp() {
  const dl = $('help-keys');
  if (!dl.children.length) {
    for (const [key, what] of KEYS) {
      const dt = el('dt');
      dt.append(el('kbd', null, key === 'Escape' ? 'Esc' : key));
      dl.append(dt, el('dd', null, what));
    }
  }
  $('help-dialog').showModal();
}

/* ---- live updates (RFC 8620 7.3) ---- */

function startEvents() {
  stopEvents();
  const tpl = state.session && state.session.eventSourceUrl;
  if (!tpl || typeof EventSource === 'undefined') return;
  const url = localPath(tpl.replace('{types}', '*').replace('{closeafter}', 'no')
                           .replace('{ping}', '60'));
  const es = new EventSource(url);
  state.events = es;
  es.addEventListener('state', (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch (e) { return; }
    const ch = data && data.changed && data.changed[state.accountId];
    if (!ch) return;
    let news = false;
    for (const type of ['Email', 'Mailbox', 'Thread', 'EmailDelivery']) {
      if (ch[type] !== undefined && ch[type] !== state.eventStates[type]) {
        state.eventStates[type] = ch[type];
        news = true;
      }
    }
    if (news) refresh();
  });
  es.addEventListener('error', () => {
    /* the browser reconnects by itself unless the answer was not an event
     * stream (logged out, or no push on this server): try later then */
    if (es.readyState === EventSource.CLOSED && state.events === es) {
      state.events = null;
      clearTimeout(startEvents.timer);
      startEvents.timer = setTimeout(() => { if (state.accountId) startEvents(); }, 60000);
    }
  });
}

function stopEvents() {
  clearTimeout(startEvents.timer);
  if (state.events) state.events.close();
  state.events = null;
}

/* ---- start ---- */

async function start() {
  try {
    state.session = await request('GET', '/jmap/session');
    state.accountId = state.session.primaryAccounts[MAIL];
    const resp = await jmap([['Mailbox/get', { accountId: state.accountId, ids: null }, 'm']]);
    state.mailboxes = result(resp, 'm', 'Mailbox/get').list;
  } catch (e) {
    return showLogin(e.status === 401 ? '' : 'Could not load the mailbox: ' + e.message);
  }
  $('user-name').textContent = state.user || state.session.username;
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  const inbox = mailboxByRole('inbox') || state.mailboxes[0];
  if (inbox) selectMailbox(inbox.id);
  else renderFolders();
  startEvents();
}

function wire() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('folders-toggle').addEventListener('click', () => {
    const open = $('folders').classList.toggle('open');
    $('folders-toggle').setAttribute('aria-expanded', String(open));
  });
  $('compose-new').addEventListener('click', () => openCompose('new'));
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.search = $('search').value.trim();
    state.position = 0;
    state.cursor = null;
    closeReader();
    loadMessages(state.selected);
  });
  $('search').addEventListener('search', () => {
    if ($('search').value === '' && state.search) $('search-form').requestSubmit();
  });
  $('sort').addEventListener('change', () => {
    state.sort = SORTS[$('sort').value] ? $('sort').value : 'receivedAt-desc';
    state.position = 0;
    loadMessages(state.selected);
  });
  $('page-newer').addEventListener('click', () => goPage(-1));
  $('page-older').addEventListener('click', () => goPage(1));
  $('reader-back').addEventListener('click', back);
  $('act-reply').addEventListener('click', () => composeFromTarget('reply'));
  $('act-reply-all').addEventListener('click', () => composeFromTarget('replyAll'));
  $('act-forward').addEventListener('click', () => composeFromTarget('forward'));
  $('act-flag').addEventListener('click', toggleFlag);
  $('act-seen').addEventListener('click', () => {
    const e = targetEmail();
    if (e) markSeen(!hasKw(e, '$seen'));
  });
  $('act-move').addEventListener('click', openMovePicker);
  $('act-archive').addEventListener('click', archiveTarget);
  $('act-delete').addEventListener('click', deleteTarget);
  $('help-open').addEventListener('click', showHelp);
  for (const d of ['move-dialog', 'help-dialog']) {
    $(d).querySelector('.dialog-close').addEventListener('click', () => $(d).close());
  }
  document.addEventListener('keydown', onKey);
}

async function boot() {
  wire();
  try {
    const s = await request('GET', '/login');
    state.user = s.user;
    state.csrf = s.csrf;
    await start();
  } catch (e) {
    showLogin('');
  }
}

window.Yubin = { state, jmap, request, el, $, mailboxByRole, refresh, openCompose };

document.addEventListener('DOMContentLoaded', boot);

/* Yubin webmail: the page's script.  Plain JS, no framework, nothing from
 * the network but yubind.  User content only ever goes in through
 * textContent (never innerHTML). */
'use strict';

const CORE = 'urn:ietf:params:jmap:core';
const MAIL = 'urn:ietf:params:jmap:mail';
const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];
const PAGE = 50;

const state = { user: null, csrf: null, session: null, accountId: null, mailboxes: [],
                selected: null, loadSeq: 0 };

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
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

/* One JMAP request; returns methodResponses. */
async function jmap(calls) {
  const url = (state.session && state.session.apiUrl) ? new URL(state.session.apiUrl).pathname
                                                      : '/jmap/api/';
  const data = await request('POST', url, { using: [CORE, MAIL], methodCalls: calls });
  return data.methodResponses;
}

function showLogin(message) {
  state.user = state.csrf = state.session = state.accountId = null;
  state.mailboxes = [];
  state.selected = null;
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
  showLogin('');
}

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
    b.append(el('span', 'name', m.role === 'inbox' ? 'INBOX' : m.name));
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

function addressText(list) {
  if (!Array.isArray(list) || list.length === 0) return '';
  return list.map((a) => (a && (a.name || a.email)) || '').join(', ');
}

function setStatus(text) {
  $('message-status').textContent = text || '';
}

function renderMessages(emails) {
  const ul = $('message-list');
  ul.replaceChildren();
  if (!emails.length) {
    setStatus('No messages');
    return;
  }
  setStatus('');
  for (const e of emails) {
    const li = el('li');
    li.dataset.id = e.id;
    if (!(e.keywords && e.keywords.$seen)) li.classList.add('unseen');
    li.append(el('span', 'from', addressText(e.from) || '(no sender)'));
    const subj = el('span', 'subject');
    subj.append(el('span', 'subject-text', e.subject || '(no subject)'));
    if (e.preview) subj.append(el('span', 'preview', ' \u2014 ' + e.preview));
    li.append(subj);
    li.append(el('span', 'date', formatDate(e.receivedAt)));
    ul.append(li);
  }
}

async function loadMessages(mailboxId) {
  const seq = ++state.loadSeq;
  setStatus('Loading\u2026');
  $('message-list').replaceChildren();
  let emails = [];
  try {
    const resp = await jmap([
      ['Email/query', { accountId: state.accountId, filter: { inMailbox: mailboxId },
                        sort: [{ property: 'receivedAt', isAscending: false }],
                        position: 0, limit: PAGE }, 'q'],
      ['Email/get', { accountId: state.accountId,
                      '#ids': { resultOf: 'q', name: 'Email/query', path: '/ids' },
                      properties: ['id', 'threadId', 'mailboxIds', 'keywords', 'from',
                                   'subject', 'receivedAt', 'preview'] }, 'g'],
    ]);
    const get = resp.find((x) => x[2] === 'g');
    if (get && get[0] === 'Email/get' && Array.isArray(get[1].list)) emails = get[1].list;
  } catch (e) {
    if (e.status === 401) return showLogin('Your session has ended; please log in again.');
    /* no Email methods yet, or a failure: an empty list, not a broken page */
  }
  if (seq === state.loadSeq) renderMessages(emails);
}

function selectMailbox(id) {
  state.selected = id;
  const m = state.mailboxes.find((x) => x.id === id);
  $('current-folder').textContent = m ? (m.role === 'inbox' ? 'INBOX' : m.name) : '';
  renderFolders();
  $('folders').classList.remove('open');
  $('folders-toggle').setAttribute('aria-expanded', 'false');
  loadMessages(id);
}

async function start() {
  try {
    state.session = await request('GET', '/jmap/session');
    state.accountId = state.session.primaryAccounts[MAIL];
    const resp = await jmap([['Mailbox/get', { accountId: state.accountId, ids: null }, 'm']]);
    const r = resp[0];
    if (r[0] !== 'Mailbox/get') throw new Error(r[1].type || 'Mailbox/get failed');
    state.mailboxes = r[1].list;
  } catch (e) {
    return showLogin(e.status === 401 ? '' : 'Could not load the mailbox: ' + e.message);
  }
  $('user-name').textContent = state.user || state.session.username;
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  const inbox = state.mailboxes.find((m) => m.role === 'inbox') || state.mailboxes[0];
  if (inbox) selectMailbox(inbox.id);
  else renderFolders();
}

async function boot() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('folders-toggle').addEventListener('click', () => {
    const open = $('folders').classList.toggle('open');
    $('folders-toggle').setAttribute('aria-expanded', String(open));
  });
  try {
    const s = await request('GET', '/login');
    state.user = s.user;
    state.csrf = s.csrf;
    await start();
  } catch (e) {
    showLogin('');
  }
}

document.addEventListener('DOMContentLoaded', boot);

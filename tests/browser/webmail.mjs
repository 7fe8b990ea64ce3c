// webmail.mjs - drive yubind's webmail page in Debian's chromium (headless)
// with playwright-core; run by tests/proto/test_webmail.py and
// tests/proto/test_webmail_xss.py.
//
//   node webmail.mjs '{"base": "https://127.0.0.1:PORT", "user": ..., "password": ...,
//                      "outdir": DIR, "scenario": NAME, ...}'
//
// Scenarios (one chromium launch each):
//   basic    log in, folders, CSRF probes from the page's origin, screenshots
//            (desktop and phone), log out
//   read     the reading pane: decoded headers, the HTML body in its sandboxed
//            frame, remote images held back until asked for (cfg.remote: the
//            test's HTTP server, which counts requests), attachments and their
//            download, the phone's list/reader views, a screenshot
//   list     paging, sorting, search, the cursor keys and the help
//   actions  flag, read/unread, move (m), archive (e), delete (#) by keys and
//            buttons, with the folder counts
//   live     the page open on INBOX prints READY; the test delivers a message
//            (cfg.liveSubject) and the list must show it without a reload
//   xss      open every message of INBOX (cfg.expect: subjects) in the reading
//            pane; record dialogs, requests to cfg.canary, CSP reports,
//            window.__xss, and what the page shows of headers
// Prints one JSON object of observations on stdout (last line); the pytest
// side asserts.  Waits are Playwright's (selectors, functions) or polls with
// a deadline.
import { chromium, request } from 'playwright-core';
import path from 'node:path';

const cfg = JSON.parse(process.argv[2]);
const scenario = cfg.scenario || 'basic';
const out = { scenario, consoleErrors: [], pageErrors: [], dialogs: [], cspReports: [] };
const TIMEOUT = 20000;

/* Poll fn (async) until it returns a truthy value, or fail after ms. */
async function until(what, fn, ms = TIMEOUT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function remoteCount(base) {
  const r = await fetch(base + '/__count');
  return (await r.json()).count;
}

async function login(page) {
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');
  await page.waitForSelector('#folder-list li[data-role="inbox"]');
  await listSettled(page);
}

async function listSettled(page) {
  await page.waitForFunction(() =>
    document.getElementById('message-status').textContent !== 'Loading\u2026' &&
    (document.getElementById('message-list').children.length > 0 ||
     document.getElementById('message-status').textContent !== ''));
}

async function listed(page) {
  return page.$$eval('#message-list li', (l) => l.map((li) => ({
    id: li.dataset.id,
    from: li.querySelector('.from').textContent,
    subject: li.querySelector('.subject-text').textContent,
    unseen: li.classList.contains('unseen'),
    flagged: li.classList.contains('flagged'),
    attachment: li.querySelector('.att').classList.contains('on'),
    cursor: li.classList.contains('cursor'),
  })));
}

async function unreadOf(page, role) {
  return page.$eval(`#folder-list li[data-role="${role}"]`, (li) => {
    const u = li.querySelector('.unread');
    return u ? Number(u.textContent) : 0;
  });
}

async function readerShown(page) {
  return page.evaluate(() => {
    const meta = {};
    const dl = document.getElementById('reader-meta');
    for (const dt of dl.querySelectorAll('dt'))
      meta[dt.textContent] = dt.nextElementSibling.textContent;
    const f = document.getElementById('reader-html');
    return { subject: document.getElementById('reader-subject').textContent, meta,
             text: document.getElementById('reader-text').hidden ? null
               : document.getElementById('reader-text').textContent,
             frameSrc: f.hidden ? null : f.getAttribute('src'),
             sandbox: f.getAttribute('sandbox') };
  });
}

/* Open the email in the reading pane by clicking it; wait until shown. */
async function openByClick(page, id) {
  await page.click(`#message-list li[data-id="${id}"]`);
  await page.waitForFunction((i) => window.Yubin.state.current &&
    window.Yubin.state.current.id === i &&
    document.getElementById('reader-status').textContent === '', id);
}

/* The frame's document once loaded (Playwright reads sandboxed frames). */
async function frameOf(page) {
  const h = await page.waitForSelector('#reader-html:not([hidden])');
  await until('the message frame', async () => {
    const f = await h.contentFrame();
    if (!f) return false;
    const src = await h.getAttribute('src');
    return f.url().endsWith(src) && (await f.evaluate(() => document.readyState)) === 'complete';
  });
  return h.contentFrame();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true,
                                             viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => {
    if (m.type() === 'error') out.consoleErrors.push(m.text());
    if (/Content Security Policy/i.test(m.text())) out.cspReports.push(m.text());
  });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('dialog', async (d) => {
    out.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss().catch(() => {});
  });

  const resp = await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  const h = resp.headers();
  out.page = { status: resp.status(), contentType: h['content-type'],
               csp: h['content-security-policy'], nosniff: h['x-content-type-options'],
               referrer: h['referrer-policy'], cacheControl: h['cache-control'],
               encoding: h['content-encoding'] || null };

  if (scenario === 'basic') await basic(context, page);
  else if (scenario === 'read') await read(context, page);
  else if (scenario === 'list') await list(page);
  else if (scenario === 'actions') await actions(page);
  else if (scenario === 'live') await live(page);
  else if (scenario === 'xss') await xss(context, page);
  else throw new Error('unknown scenario ' + scenario);
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');

async function basic(context, page) {
  // not logged in yet: the login form
  await login(page);
  const inbox = await page.$('#folder-list li[data-role="inbox"]');
  out.inbox = {
    name: await inbox.$eval('.name', (e) => e.textContent),
    unread: await inbox.$$eval('.unread', (l) => (l.length ? l[0].textContent : null)),
    selected: await inbox.evaluate((e) => e.classList.contains('selected')),
  };
  out.folders = await page.$$eval('#folder-list li .name', (l) => l.map((e) => e.textContent));
  out.messages = await listed(page);
  out.messageStatus = await page.$eval('#message-status', (e) => e.textContent);
  out.userShown = await page.$eval('#user-name', (e) => e.textContent);
  out.yubinApi = await page.evaluate(() => Object.keys(window.Yubin).sort());

  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === 'yubin_session');
  out.cookie = c ? { httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite,
                     path: c.path, length: c.value.length } : null;
  out.cookieVisibleToScript = await page.evaluate(() => document.cookie.includes('yubin_session'));

  // CSRF: from the page's own origin, with the cookie
  out.csrf = await page.evaluate(async () => {
    const echo = JSON.stringify({ using: ['urn:ietf:params:jmap:core'],
                                  methodCalls: [['Core/echo', { x: 1 }, 'c']] });
    const json = { 'Content-Type': 'application/json' };
    const login = await (await fetch('/login')).json();
    const noHeader = await fetch('/jmap/api/', { method: 'POST', headers: json, body: echo });
    const wrong = await fetch('/jmap/api/', { method: 'POST', body: echo,
      headers: { ...json, 'X-Yubin-CSRF': '0'.repeat(64) } });
    const good = await fetch('/jmap/api/', { method: 'POST', body: echo,
      headers: { ...json, 'X-Yubin-CSRF': login.csrf } });
    const logoutNoHeader = await fetch('/logout', { method: 'POST' });
    const session = await fetch('/jmap/session');
    return { noHeader: noHeader.status, wrong: wrong.status, good: good.status,
             goodBody: await good.json(), logoutNoHeader: logoutNoHeader.status,
             session: session.status, tokenLength: login.csrf.length };
  });

  out.screenshot = path.join(cfg.outdir, 'webmail-main.png');
  await page.screenshot({ path: out.screenshot });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForSelector('#folders-toggle', { state: 'visible' });
  out.phone = {
    overflowX: await page.evaluate(() =>
      document.documentElement.scrollWidth > document.documentElement.clientWidth),
  };
  out.screenshotPhone = path.join(cfg.outdir, 'webmail-phone.png');
  await page.screenshot({ path: out.screenshotPhone });
  await page.click('#folders-toggle');
  await page.waitForFunction(() => {
    const r = document.getElementById('folders').getBoundingClientRect();
    return r.left >= 0 && r.width > 0;
  });
  out.phone.inboxVisible = await page.isVisible('#folder-list li[data-role="inbox"]');
  out.screenshotPhoneFolders = path.join(cfg.outdir, 'webmail-phone-folders.png');
  await page.screenshot({ path: out.screenshotPhoneFolders });
  await page.click('#folder-list li[data-role="inbox"] button');
  await page.setViewportSize({ width: 1280, height: 800 });

  // logout: the form again, the cookie gone, the old session dead server-side
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible' });
  const after = await context.cookies();
  out.cookieAfterLogout = after.some((x) => x.name === 'yubin_session');
  out.loginStateAfterLogout = await page.evaluate(async () => (await fetch('/login')).status);
  const api = await request.newContext({ ignoreHTTPSErrors: true });
  const old = await api.get(cfg.base + '/jmap/session',
                            { headers: { Cookie: 'yubin_session=' + (c ? c.value : '') } });
  out.oldCookieSession = old.status();
  await api.dispose();
}

async function read(context, page) {
  const remoteSeen = [];
  page.on('request', (r) => { if (r.url().startsWith(cfg.remote)) remoteSeen.push(r.url()); });
  await login(page);
  out.messages = await listed(page);
  const target = out.messages.find((m) => m.subject === cfg.subject);
  if (!target) throw new Error('the HTML message is not listed');
  await openByClick(page, target.id);
  out.reader = await readerShown(page);
  const frame = await frameOf(page);
  out.frame = await frame.evaluate(() => ({
    text: document.body.innerText,
    base: document.querySelector('base') && document.querySelector('base').getAttribute('target'),
    scripts: document.querySelectorAll('script').length,
    images: [...document.images].map((i) => ({
      alt: i.alt, src: (i.getAttribute('src') || '').slice(0, 40),
      dataSrc: i.getAttribute('data-yubin-src'), loaded: i.complete && i.naturalWidth > 0,
    })),
  }));
  await page.waitForSelector('#reader-images:not([hidden])');
  out.imagesBanner = await page.$eval('#reader-images-text', (e) => e.textContent);
  out.remoteBefore = await remoteCount(cfg.remote);
  out.remoteSeenBefore = remoteSeen.length;
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#reader-attachments img')].every((i) => i.complete));
  out.attachments = await page.$$eval('#reader-attachments li', (l) => l.map((li) => ({
    name: li.querySelector('.att-name').textContent,
    meta: li.querySelector('.att-meta').textContent,
    href: li.querySelector('a').getAttribute('href'),
    preview: li.querySelector('img') ? li.querySelector('img').naturalWidth : null,
  })));
  // the download gives the bytes (fetched from the page, with its cookie)
  const pdf = out.attachments.find((a) => a.name === 'report.pdf');
  if (pdf) {
    out.download = await page.evaluate(async (href) => {
      const r = await fetch(href);
      const b = new Uint8Array(await r.arrayBuffer());
      let s = '';
      for (const x of b) s += String.fromCharCode(x);
      return { status: r.status, type: r.headers.get('content-type'),
               disposition: r.headers.get('content-disposition'), b64: btoa(s) };
    }, pdf.href);
  }
  out.listAfterOpen = await listed(page);
  out.screenshot = path.join(cfg.outdir, 'webmail-reading.png');
  await page.screenshot({ path: out.screenshot });

  // remote images once asked for
  await page.click('#show-images');
  await until('the remote image request', async () => (await remoteCount(cfg.remote)) > 0);
  out.remoteAfter = await remoteCount(cfg.remote);
  const frame2 = await frameOf(page);
  await frame2.waitForFunction(() => [...document.images].every((i) => i.complete));
  out.frameAfter = await frame2.evaluate(() => [...document.images].map((i) => ({
    alt: i.alt, loaded: i.naturalWidth > 0 })));
  out.imagesBannerAfter = await page.isVisible('#reader-images');

  // compose actions hand YubinCompose.open {mode, emailId} (recorded here,
  // not opened: the dialog is compose.mjs's)
  await page.evaluate(() => {
    window.__composeCalls = [];
    window.YubinCompose = { open: (o) => window.__composeCalls.push(o) };
  });
  await page.locator('#reader-subject').click();
  for (const k of ['r', 'a', 'f', 'c']) await page.keyboard.press(k);
  for (const b of ['#act-reply', '#act-reply-all', '#act-forward', '#compose-new'])
    await page.click(b);
  out.composeCalls = await page.evaluate(() => window.__composeCalls);
  out.openId = await page.evaluate(() => window.Yubin.state.openId);

  // the phone: the reading pane alone, Back to the list
  await page.setViewportSize({ width: 390, height: 844 });
  out.phone = { listVisible: await page.isVisible('#message-list'),
                readerVisible: await page.isVisible('#reader-subject'),
                overflowX: await page.evaluate(() =>
                  document.documentElement.scrollWidth > document.documentElement.clientWidth) };
  out.screenshotPhone = path.join(cfg.outdir, 'webmail-phone-reading.png');
  await page.screenshot({ path: out.screenshotPhone });
  await page.click('#reader-back');
  await page.waitForSelector('#message-list', { state: 'visible' });
  out.phone.afterBack = { listVisible: await page.isVisible('#message-list'),
                          readerVisible: await page.isVisible('#reader-subject') };
  await page.setViewportSize({ width: 1280, height: 800 });
  // the plain-text message: pre-wrap text, no frame
  const plain = out.messages.find((m) => m.subject === cfg.plainSubject);
  if (plain) {
    await openByClick(page, plain.id);
    out.plain = await readerShown(page);
    out.plainStyle = await page.$eval('#reader-text', (e) => {
      const s = getComputedStyle(e);
      return { whiteSpace: s.whiteSpace, overflowX: e.scrollWidth > e.clientWidth + 1 };
    });
  }
}

async function list(page) {
  await login(page);
  const info = () => page.$eval('#page-info', (e) => e.textContent);
  out.first = { info: await info(), n: (await listed(page)).length,
                top: (await listed(page))[0].subject };
  await page.click('#page-older');
  await page.waitForFunction(() => /^51/.test(document.getElementById('page-info').textContent));
  out.older = { info: await info(), subjects: (await listed(page)).map((m) => m.subject),
                olderDisabled: await page.$eval('#page-older', (b) => b.disabled) };
  await page.click('#page-newer');
  await page.waitForFunction(() =>
    /^1\u2013/.test(document.getElementById('page-info').textContent));
  await page.selectOption('#sort', 'receivedAt-asc');
  await page.waitForFunction((s) => {
    const li = document.querySelector('#message-list li .subject-text');
    return li && li.textContent !== s;
  }, out.first.top);
  out.ascTop = (await listed(page))[0].subject;
  await page.selectOption('#sort', 'size-desc');
  await page.waitForFunction((s) => {
    const li = document.querySelector('#message-list li .subject-text');
    return li && li.textContent !== s;
  }, out.ascTop);
  out.sizeTop = (await listed(page))[0].subject;
  await page.selectOption('#sort', 'receivedAt-desc');
  await page.waitForFunction((s) => {
    const li = document.querySelector('#message-list li .subject-text');
    return li && li.textContent === s;
  }, out.first.top);
  // keys: / search, j j k, Enter opens, Escape back, ? help
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('k');
  out.cursorAfterKeys = (await listed(page)).findIndex((m) => m.cursor);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.Yubin.state.current !== null &&
    document.getElementById('reader-status').textContent === '');
  out.openedByKey = (await readerShown(page)).subject;
  await page.keyboard.press('j');
  await page.waitForFunction((s) => window.Yubin.state.current &&
    document.getElementById('reader-subject').textContent !== s, out.openedByKey);
  out.nextByKey = (await readerShown(page)).subject;
  await page.keyboard.press('Escape');
  out.readerClosed = await page.isHidden('#reader-content');
  await page.keyboard.press('?');
  await page.waitForSelector('#help-dialog[open]');
  out.helpKeys = await page.$$eval('#help-keys kbd', (l) => l.map((k) => k.textContent));
  await page.keyboard.press('Escape');
  await page.waitForSelector('#help-dialog:not([open])', { state: 'attached' });
  await page.keyboard.press('/');
  out.searchFocused = await page.evaluate(() => document.activeElement.id);
  await page.keyboard.type(cfg.search);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#message-list li').length < 50 &&
    document.getElementById('message-status').textContent !== 'Loading\u2026');
  out.searched = { subjects: (await listed(page)).map((m) => m.subject), info: await info() };
  await page.fill('#search', cfg.noMatch);
  await page.press('#search', 'Enter');
  await page.waitForFunction(() => document.getElementById('message-status').textContent ===
    'No messages match');
  out.noMatch = await page.$eval('#message-status', (e) => e.textContent);
}

async function actions(page) {
  await login(page);
  const byS = async (s) => (await listed(page)).find((m) => m.subject === s);
  out.start = { list: await listed(page), unread: await unreadOf(page, 'inbox') };
  // open A: seen; the INBOX count drops
  const a = await byS(cfg.subjects.a);
  await openByClick(page, a.id);
  await page.waitForFunction((n) => {
    const u = document.querySelector('#folder-list li[data-role="inbox"] .unread');
    return (u ? Number(u.textContent) : 0) < n;
  }, out.start.unread);
  out.afterOpen = { a: await byS(cfg.subjects.a), unread: await unreadOf(page, 'inbox') };
  // s: flag A; u: unread again; Shift+U: read
  await page.locator('#reader-subject').click();
  await page.keyboard.press('s');
  await page.waitForSelector(`#message-list li[data-id="${a.id}"].flagged`);
  await page.keyboard.press('u');
  await page.waitForSelector(`#message-list li[data-id="${a.id}"].unseen`);
  await page.waitForFunction((n) => {
    const u = document.querySelector('#folder-list li[data-role="inbox"] .unread');
    return (u ? Number(u.textContent) : 0) !== n;
  }, out.afterOpen.unread);
  out.afterUnread = await unreadOf(page, 'inbox');
  await page.keyboard.press('Shift+U');
  await page.waitForSelector(`#message-list li[data-id="${a.id}"]:not(.unseen)`);
  // m: move A to the folder cfg.moveTo
  await page.keyboard.press('m');
  await page.waitForSelector('#move-dialog[open]');
  out.moveChoices = await page.$$eval('#move-list button', (l) => l.map((b) => b.textContent));
  await page.click(`#move-list button:text-is("${cfg.moveTo}")`);
  await page.waitForSelector(`#message-list li[data-id="${a.id}"]`, { state: 'detached' });
  // B: Delete button (to Trash); C: e (archive)
  const b = await byS(cfg.subjects.b);
  await openByClick(page, b.id);
  await page.click('#act-delete');
  await page.waitForSelector(`#message-list li[data-id="${b.id}"]`, { state: 'detached' });
  const c = await byS(cfg.subjects.c);
  await page.click(`#message-list li[data-id="${c.id}"]`);
  await page.waitForFunction(() => window.Yubin.state.current !== null);
  await page.locator('#reader-subject').click();
  await page.keyboard.press('e');
  await page.waitForSelector(`#message-list li[data-id="${c.id}"]`, { state: 'detached' });
  await page.waitForFunction((n) => {
    const u = document.querySelector('#folder-list li[data-role="inbox"] .unread');
    return (u ? Number(u.textContent) : 0) === n;
  }, out.start.unread - 3);
  out.end = { list: await listed(page), unread: await unreadOf(page, 'inbox'),
              trashUnread: await unreadOf(page, 'trash') };
  // in Trash, # destroys for good
  await page.click('#folder-list li[data-role="trash"] button');
  // the Trash's own list, not the INBOX's still on screen
  await page.waitForFunction(() => {
    const y = window.Yubin;
    const t = y.mailboxByRole('trash');
    return t && y.state.selected === t.id && y.state.ids.length > 0 &&
      y.state.ids.every((id) => (y.state.emails.get(id).mailboxIds || {})[t.id]) &&
      document.querySelectorAll('#message-list li').length === y.state.ids.length &&
      document.getElementById('message-status').textContent !== 'Loading\u2026';
  });
  out.trash = (await listed(page)).map((m) => m.subject);
  const d = (await listed(page))[0];
  await page.click(`#message-list li[data-id="${d.id}"]`);
  await page.locator('#reader-subject').click();
  await page.keyboard.press('#');
  await page.waitForSelector(`#message-list li[data-id="${d.id}"]`, { state: 'detached' });
  out.trashAfter = (await listed(page)).map((m) => m.subject);
}

async function live(page) {
  await login(page);
  out.before = (await listed(page)).map((m) => m.subject);
  await page.waitForFunction(() => window.Yubin.state.events &&
    window.Yubin.state.events.readyState === 1);
  const unread = await unreadOf(page, 'inbox');
  process.stdout.write('READY\n');
  await page.waitForSelector(`#message-list li .subject-text:text-is("${cfg.liveSubject}")`);
  await page.waitForFunction((n) => {
    const u = document.querySelector('#folder-list li[data-role="inbox"] .unread');
    return (u ? Number(u.textContent) : 0) === n + 1;
  }, unread);
  out.after = (await listed(page)).map((m) => m.subject);
  out.unread = [unread, await unreadOf(page, 'inbox')];
  out.navigations = await page.evaluate(() => performance.getEntriesByType('navigation').length);
}

async function xss(context, page) {
  const canary = [];
  context.on('request', (r) => { if (r.url().startsWith(cfg.canary)) canary.push(r.url()); });
  await login(page);
  await page.evaluate(() => { window.__xss = undefined; });
  out.list = await listed(page);
  out.shown = [];
  for (const m of out.list) {
    await openByClick(page, m.id);
    const r = await readerShown(page);
    if (r.frameSrc) {
      const f = await frameOf(page);
      r.frameText = (await f.evaluate(() => document.body.innerText)).slice(0, 300);
      r.frameScripts = await f.evaluate(() => document.querySelectorAll(
        'script, iframe, frame, object, embed, form, input, button, base[href], svg, math, ' +
        'link, noscript, template, textarea').length);
      // the wrapper's own <meta charset> and <style>: one each, no other
      r.frameMetaStyle = await f.evaluate(() => [document.querySelectorAll('meta').length,
        document.querySelectorAll('style').length]);
      r.frameLinks = await f.evaluate(() => [...document.links].map((a) => a.href));
      r.frameHandlers = await f.evaluate(() => [...document.querySelectorAll('*')].filter(
        (e) => [...e.attributes].some((a) => /^on/i.test(a.name))).length);
      r.frameXss = await f.evaluate(() =>
        (window.__xss === undefined ? null : String(window.__xss)));
      r.frameUrl = f.url();
    }
    out.shown.push({ listSubject: m.subject, listFrom: m.from, ...r });
  }
  out.xssWindow = await page.evaluate(() =>
    (window.__xss === undefined ? null : String(window.__xss)));
  out.canary = canary;
  out.canaryServer = await remoteCount(cfg.canary);
  out.title = await page.title();
  out.url = page.url();
  // control: the dialog detector does see a dialog
  await page.evaluate(() => alert('control'));
}

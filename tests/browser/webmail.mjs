// webmail.mjs - drive yubind's webmail page in Debian's chromium (headless)
// with playwright-core; run by tests/proto/test_webmail.py.
//
//   node webmail.mjs '{"base": "https://127.0.0.1:PORT", "user": ..., "password": ...,
//                      "outdir": DIR}'
//
// Logs in, reads what the page shows and what the server sent, probes the
// CSRF rules from the page's own origin, takes screenshots (desktop and
// phone), logs out.  Prints one JSON object of observations on stdout; the
// pytest side asserts.  Waits are Playwright's (selectors, functions).
import { chromium, request } from 'playwright-core';
import path from 'node:path';

const cfg = JSON.parse(process.argv[2]);
const out = { consoleErrors: [], pageErrors: [] };
const TIMEOUT = 20000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true,
                                             viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));

  const resp = await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  const h = resp.headers();
  out.page = { status: resp.status(), contentType: h['content-type'],
               csp: h['content-security-policy'], nosniff: h['x-content-type-options'],
               referrer: h['referrer-policy'], cacheControl: h['cache-control'],
               encoding: h['content-encoding'] || null };

  // not logged in yet: the login form
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');

  // the folder list with INBOX and its unread count
  const inbox = await page.waitForSelector('#folder-list li[data-role="inbox"]');
  await page.waitForFunction(() =>
    document.getElementById('message-status').textContent !== 'Loading\u2026' &&
    (document.getElementById('message-list').children.length > 0 ||
     document.getElementById('message-status').textContent !== ''));
  out.inbox = {
    name: await inbox.$eval('.name', (e) => e.textContent),
    unread: await inbox.$$eval('.unread', (l) => (l.length ? l[0].textContent : null)),
    selected: await inbox.evaluate((e) => e.classList.contains('selected')),
  };
  out.folders = await page.$$eval('#folder-list li .name', (l) => l.map((e) => e.textContent));
  out.messages = await page.$$eval('#message-list li', (l) => l.map((li) => ({
    from: li.querySelector('.from').textContent,
    subject: li.querySelector('.subject-text').textContent,
    unseen: li.classList.contains('unseen'),
  })));
  out.messageStatus = await page.$eval('#message-status', (e) => e.textContent);
  out.userShown = await page.$eval('#user-name', (e) => e.textContent);

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
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');

// compose.mjs - drive the webmail page's compose dialog (www/compose.js) in
// Debian's chromium (headless) with playwright-core; run by
// tests/proto/test_webmail_compose.py, one browser launch per scenario.
//
//   node compose.mjs '{"base": "https://127.0.0.1:PORT", "user": ..., "password": ...,
//                      "outdir": DIR, "scenario": "send"|"replyAll"|"forward"|"draft"|
//                      "autocomplete", ...scenario fields}'
//
// Prints one JSON object of observations on stdout; the pytest side
// asserts (and reads the mail back over IMAP).  Waits are Playwright's.
import { chromium } from 'playwright-core';
import path from 'node:path';

const cfg = JSON.parse(process.argv[2]);
const out = { consoleErrors: [], pageErrors: [], uploads: 0 };
const TIMEOUT = 20000;

async function login(page) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');
  await mainReady(page);
}

async function mainReady(page) {
  await page.waitForSelector('#folder-list li[data-role="inbox"]');
  await page.waitForFunction(() => window.Yubin && window.YubinCompose);
}

async function openCompose(page, opts) {
  if (opts.mode === 'new') await page.click('#compose-new');
  else await page.evaluate((o) => window.YubinCompose.open(o), opts);
  await page.waitForSelector('#compose[open]');
  await page.waitForFunction(() => !document.getElementById('compose')
    .classList.contains('loading'));
}

async function dialogFields(page) {
  return page.evaluate(() => {
    const v = (id) => document.getElementById(id).value;
    const from = document.getElementById('compose-from');
    return {
      title: document.getElementById('compose-title').textContent,
      from: from.selectedOptions.length ? from.selectedOptions[0].textContent : null,
      fromOptions: Array.from(from.options).map((o) => o.textContent),
      to: v('compose-to'), cc: v('compose-cc'), bcc: v('compose-bcc'),
      subject: v('compose-subject'), body: v('compose-body'),
      attachments: Array.from(document.querySelectorAll('#compose-attachments li')).map(
        (li) => ({ name: li.querySelector('.compose-att-name').textContent,
                   done: li.classList.contains('done') || !!li.dataset.blobId ||
                         li.querySelector('progress').hidden,
                   failed: li.classList.contains('failed') })),
      error: document.getElementById('compose-error').hidden ? null
        : document.getElementById('compose-error').textContent,
      focus: document.activeElement ? document.activeElement.id : null,
    };
  });
}

/* Send (Ctrl+Enter or the button) and wait until the dialog closes or shows an error. */
async function send(page, how) {
  if (how === 'key') {
    await page.focus('#compose-body');
    await page.keyboard.press('Control+Enter');
  } else {
    await page.click('#compose-send');
  }
  await page.waitForFunction(() => !document.getElementById('compose').open ||
    !document.getElementById('compose-error').hidden, null, { timeout: TIMEOUT });
  return page.evaluate(() => ({
    closed: !document.getElementById('compose').open,
    error: document.getElementById('compose-error').hidden ? null
      : document.getElementById('compose-error').textContent,
    toast: document.getElementById('compose-toast').textContent,
  }));
}

/* A drop of files made in the page: DataTransfer + DragEvent, as a desktop drag would. */
async function dropFiles(page, files) {
  await page.evaluate((list) => {
    const dt = new DataTransfer();
    for (const f of list) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.type }));
    }
    const target = document.getElementById('compose-body');
    for (const type of ['dragenter', 'dragover']) {
      target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true,
                                                 cancelable: true }));
    }
    window.__dropOverlay = !document.getElementById('compose-drop').hidden;
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true,
                                                 cancelable: true }));
  }, files);
  out.dropOverlayShown = await page.evaluate(() => window.__dropOverlay);
}

async function waitUploads(page, n) {
  await page.waitForFunction((k) => {
    const l = document.querySelectorAll('#compose-attachments li');
    return l.length === k && Array.from(l).every((li) => li.dataset.blobId ||
                                                 li.classList.contains('failed'));
  }, n);
}

/* The Drafts mailbox as JMAP has it: [{id, subject, text}]. */
async function drafts(page) {
  return page.evaluate(async () => {
    const Y = window.Yubin;
    const r = await Y.jmap([
      ['Email/query', { accountId: Y.state.accountId,
                        filter: { inMailbox: Y.mailboxByRole('drafts').id } }, 'q'],
      ['Email/get', { accountId: Y.state.accountId,
                      '#ids': { resultOf: 'q', name: 'Email/query', path: '/ids' },
                      properties: ['subject', 'keywords', 'textBody', 'bodyValues'],
                      fetchTextBodyValues: true }, 'g']]);
    if (r[1][0] !== 'Email/get') return r;
    return r[1][1].list.map((e) => ({
      id: e.id, subject: e.subject, draft: !!(e.keywords && e.keywords.$draft),
      text: (e.textBody || []).map((p) => (e.bodyValues[p.partId] || {}).value).join(''),
    }));
  });
}

const scenarios = {
  async send(page) {
    await openCompose(page, { mode: 'new' });
    out.opened = await dialogFields(page);
    await page.fill('#compose-to', cfg.to);
    out.bccHidden = !(await page.isVisible('#compose-bcc'));
    await page.click('#compose-bcc-toggle');
    await page.fill('#compose-bcc', cfg.bcc);
    await page.fill('#compose-subject', cfg.subject);
    await page.fill('#compose-body', cfg.body);
    await page.setInputFiles('#compose-file', {
      name: cfg.picked.name, mimeType: cfg.picked.type,
      buffer: Buffer.from(cfg.picked.b64, 'base64'),
    });
    await dropFiles(page, [cfg.dropped]);
    await waitUploads(page, 2);
    // a third one, removed again before sending
    await page.setInputFiles('#compose-file', {
      name: 'remove-me.txt', mimeType: 'text/plain', buffer: Buffer.from('not wanted\n'),
    });
    await waitUploads(page, 3);
    await page.click('#compose-attachments li:nth-child(3) .compose-att-remove');
    await waitUploads(page, 2);
    // a file over the cap: refused with a message, nothing uploaded
    out.capMessage = await page.evaluate(() => {
      const before = document.querySelectorAll('#compose-attachments li').length;
      const dt = new DataTransfer();
      const big = new File([new Uint8Array(26 * 1024 * 1024)], 'huge.bin');
      dt.items.add(big);
      document.getElementById('compose-form').dispatchEvent(
        new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      const after = document.querySelectorAll('#compose-attachments li').length;
      return { added: after - before, text: document.getElementById('compose-error').textContent };
    });
    out.filled = await dialogFields(page);
    out.screenshot = path.join(cfg.outdir, 'compose-dialog.png');
    await page.screenshot({ path: out.screenshot });
    await page.setViewportSize({ width: 390, height: 844 });
    out.phone = await page.evaluate(() => {
      const r = document.getElementById('compose').getBoundingClientRect();
      return { width: Math.round(r.width), height: Math.round(r.height),
               vw: window.innerWidth, vh: window.innerHeight };
    });
    out.screenshotPhone = path.join(cfg.outdir, 'compose-dialog-phone.png');
    await page.screenshot({ path: out.screenshotPhone });
    await page.setViewportSize({ width: 1280, height: 800 });
    out.result = await send(page, 'key');
  },

  async replyAll(page) {
    // a plain reply to an "RE:" subject keeps it as it is
    await openCompose(page, { mode: 'reply', emailId: cfg.replyEmailId });
    out.reply = await dialogFields(page);
    await page.click('#compose-discard');
    await page.waitForFunction(() => !document.getElementById('compose').open);
    await openCompose(page, { mode: 'replyAll', emailId: cfg.emailId });
    out.opened = await dialogFields(page);
    await page.focus('#compose-body');
    await page.keyboard.type(cfg.text);
    out.result = await send(page, 'button');
  },

  async forward(page) {
    await openCompose(page, { mode: 'forward', emailId: cfg.emailId });
    out.opened = await dialogFields(page);
    await page.fill('#compose-to', cfg.to);
    await page.focus('#compose-body');
    await page.keyboard.type(cfg.text);
    out.result = await send(page, 'key');
  },

  async draft(page) {
    await openCompose(page, { mode: 'new' });
    await page.fill('#compose-to', cfg.to);
    await page.fill('#compose-subject', cfg.subject);
    await page.fill('#compose-body', cfg.body + '(first version)');
    await page.setInputFiles('#compose-file', {
      name: cfg.picked.name, mimeType: cfg.picked.type,
      buffer: Buffer.from(cfg.picked.b64, 'base64'),
    });
    await waitUploads(page, 1);
    // Escape with unsaved changes asks first
    await page.keyboard.press('Escape');
    out.confirmShown = await page.isVisible('#compose-confirm');
    out.openAfterEscape = await page.evaluate(() => document.getElementById('compose').open);
    await page.click('#compose-confirm-keep');
    await page.click('#compose-save');
    await page.waitForFunction(() => /saved/i.test(
      document.getElementById('compose-saved').textContent) ||
      !document.getElementById('compose-error').hidden);
    out.firstSave = await dialogFields(page);
    out.firstSaveState = await page.textContent('#compose-saved');
    if (out.firstSave.error) throw new Error('Save draft: ' + out.firstSave.error);
    // a second save replaces the first draft
    await page.fill('#compose-body', cfg.body);
    await page.evaluate(() => { document.getElementById('compose-saved').textContent = ''; });
    await page.click('#compose-save');
    await page.waitForFunction(() => /saved/i.test(
      document.getElementById('compose-saved').textContent) ||
      !document.getElementById('compose-error').hidden);
    out.secondSave = await dialogFields(page);
    if (out.secondSave.error) throw new Error('Save draft again: ' + out.secondSave.error);
    out.draftsAfterSave = await page.evaluate(async (role) => {
      const Y = window.Yubin;
      const d = Y.mailboxByRole(role);
      const r = await Y.jmap([['Email/query', { accountId: Y.state.accountId,
                                                filter: { inMailbox: d.id } }, 'q']]);
      return r[0][0] === 'Email/query' ? r[0][1].ids : r[0];
    }, 'drafts');
    // nothing unsaved now: Escape closes at once
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.getElementById('compose').open);
    // a reload, then the draft from the Drafts folder
    await page.reload({ waitUntil: 'domcontentloaded' });
    await mainReady(page);
    await page.click('#folder-list li[data-role="drafts"] button');
    const item = await page.waitForSelector('#message-list li[data-id]');
    const id = await item.getAttribute('data-id');
    out.draftListed = id;
    // app.js opens a Drafts message in the compose dialog; if this version
    // of the page does not, open it the way app.js would
    await item.click();
    try {
      await page.waitForSelector('#compose[open]', { timeout: 5000 });
      out.openedByClick = true;
    } catch (e) {
      out.openedByClick = false;
      await page.evaluate((i) => window.YubinCompose.open({ mode: 'draft', emailId: i }), id);
    }
    await page.waitForSelector('#compose[open]');
    await page.waitForFunction(() => !document.getElementById('compose')
      .classList.contains('loading'));
    out.loaded = await dialogFields(page);
    out.result = await send(page, 'button');
  },

  async autosave(page) {
    await page.evaluate(() => window.YubinCompose.setAutosaveInterval(300));
    await openCompose(page, { mode: 'new' });
    await page.focus('#compose-subject');
    await page.keyboard.type(cfg.subject);
    // saved without a click
    await page.waitForFunction(() => /saved/i.test(
      document.getElementById('compose-saved').textContent) ||
      !document.getElementById('compose-error').hidden);
    out.autosaved = await dialogFields(page);
    out.draftsAfterAutosave = await drafts(page);
    // more text, then the close button: saved again (the one draft replaced)
    await page.evaluate(() => window.YubinCompose.setAutosaveInterval(600000));
    await page.focus('#compose-body');
    await page.keyboard.type(cfg.body);
    await page.click('#compose-close');
    await page.waitForFunction(() => !document.getElementById('compose').open);
    out.draftsAfterClose = await drafts(page);
    out.toastAfterClose = await page.textContent('#compose-toast');
    // opened again and discarded: it asks, then the draft is gone
    const id = out.draftsAfterClose.length ? out.draftsAfterClose[0].id : null;
    await openCompose(page, { mode: 'draft', emailId: id });
    out.reopened = await dialogFields(page);
    await page.click('#compose-discard');
    out.discardAsk = await page.evaluate(() => ({
      shown: !document.getElementById('compose-confirm').hidden,
      text: document.getElementById('compose-confirm-text').textContent,
      button: document.getElementById('compose-confirm-discard').textContent,
      saveOffered: !document.getElementById('compose-confirm-save').hidden,
    }));
    await page.click('#compose-confirm-discard');
    await page.waitForFunction(() => !document.getElementById('compose').open);
    await page.waitForFunction(() => /^(Draft deleted|The draft was not)/.test(
      document.getElementById('compose-toast').textContent));
    out.toastAfterDiscard = await page.textContent('#compose-toast');
    out.draftsAfterDiscard = await drafts(page);
  },

  async autocomplete(page) {
    await openCompose(page, { mode: 'new' });
    await page.focus('#compose-to');
    await page.keyboard.type(cfg.typeTo);
    await page.waitForSelector('#compose-suggest li');
    out.suggestTo = await page.$$eval('#compose-suggest li', (l) => l.map((li) => li.textContent));
    out.suggestVisible = await page.isVisible('#compose-suggest');
    await page.keyboard.press('Enter');
    out.toValue = await page.inputValue('#compose-to');
    out.suggestAfterPick = await page.isVisible('#compose-suggest');
    // the second address, picked with the arrow keys and Tab
    await page.keyboard.type(cfg.typeTo2);
    await page.waitForSelector('#compose-suggest li');
    out.suggestTo2 = await page.$$eval('#compose-suggest li',
                                       (l) => l.map((li) => li.textContent));
    await page.keyboard.press('ArrowDown');
    out.active2 = await page.$eval('#compose-suggest li.active', (li) => li.textContent);
    await page.keyboard.press('Tab');
    out.toValue2 = await page.inputValue('#compose-to');
    // a name typed in Japanese, in Cc
    await page.focus('#compose-cc');
    await page.keyboard.type(cfg.typeCc);
    await page.waitForSelector('#compose-suggest li');
    out.suggestCc = await page.$$eval('#compose-suggest li', (l) => l.map((li) => li.textContent));
    await page.keyboard.press('Enter');
    out.ccValue = await page.inputValue('#compose-cc');
    // something nobody wrote: no list
    await page.focus('#compose-bcc').catch(() => {});
    await page.click('#compose-bcc-toggle');
    await page.keyboard.type('qqqzz');
    out.suggestNone = await page.isVisible('#compose-suggest');
    out.parsed = await page.evaluate(() =>
      window.YubinCompose._parseAddrs(document.getElementById('compose-to').value));
    out.screenshot = path.join(cfg.outdir, 'compose-suggest.png');
    await page.fill('#compose-bcc', '');
    await page.focus('#compose-to');
    await page.keyboard.type(cfg.typeTo.slice(0, 1));
    await page.waitForSelector('#compose-suggest li');
    await page.screenshot({ path: out.screenshot });
  },
};

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
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname.startsWith('/jmap/upload/'))
      out.uploads++;
  });
  await login(page);
  const fn = scenarios[cfg.scenario];
  if (!fn) throw new Error('no scenario ' + cfg.scenario);
  try {
    await fn(page);
  } catch (e) {
    out.failure = String(e && e.stack || e);
    try { out.atFailure = await dialogFields(page); } catch (e2) { /* the page is gone */ }
  }
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');

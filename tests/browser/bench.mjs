// bench.mjs - the webmail page's load time for bench/webmail.py: Debian's
// chromium (headless) with playwright-core.
//
//   node bench.mjs '{"base": "https://127.0.0.1:PORT", "user": ..., "password": ...,
//                    "loads": 10}'
//
// Logs in through the page first (the cookie stays in the context), then
// opens the page `loads` times; each time an init script watches the DOM
// and records performance.now() (milliseconds from navigation start) when
// the first row of #message-list appears.  Prints one JSON object on the
// last line: {"ms": [...], "rows": N}.
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 60000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true,
                                             viewport: { width: 1280, height: 800 } });
  await context.addInitScript(() => {
    window.__firstRow = null;
    const seen = () => {
      const l = document.getElementById('message-list');
      if (window.__firstRow === null && l && l.querySelector('li')) {
        window.__firstRow = performance.now();
        return true;
      }
      return false;
    };
    new MutationObserver((_, obs) => { if (seen()) obs.disconnect(); })
      .observe(document, { childList: true, subtree: true });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(cfg.base + '/');
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#login-user', cfg.user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');
  await page.waitForSelector('#message-list li');
  const ms = [];
  let rows = 0;
  for (let i = 0; i < (cfg.loads || 10); i++) {
    await page.goto(cfg.base + '/');
    await page.waitForFunction(() => window.__firstRow !== null);
    ms.push(await page.evaluate(() => window.__firstRow));
    rows = await page.$$eval('#message-list li', (l) => l.length);
  }
  console.log(JSON.stringify({ ms, rows }));
} finally {
  await browser.close();
}

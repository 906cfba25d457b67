// Opens a node's directory page (/directory/) in Debian's headless
// Chromium, as someone signed in on that node who follows a broadcaster:
// once the page shows who is signed in and its follow feed is open, it
// fetches --ready (the test then starts the broadcast), waits for the
// go-live note and for the broadcast in the list with its broadcaster's
// handle, checks the search, and clicks Watch, which must land on the
// node's player page for that broadcast.
//
//   node directory.mjs --url URL --ready URL --title TITLE --handle @HANDLE
//
// Prints one JSON line on stdout: what the page showed, where Watch led,
// and page errors. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    ready: { type: 'string' },
    title: { type: 'string' },
    handle: { type: 'string' },
  },
});
if (!opt.url || !opt.ready || !opt.title || !opt.handle) {
  console.error('usage: node directory.mjs --url URL --ready URL --title TITLE --handle @HANDLE');
  process.exit(2);
}

let browser;
const result = { errors: [] };
try {
  browser = await launch({ viewport: { width: 390, height: 844 } });
  const page = browser.page;
  page.on('pageerror', (e) => result.errors.push(e.message));
  await page.goto(opt.url);
  await page.waitForSelector('#who:not([hidden])', { timeout: 20000 });
  result.who = await page.textContent('#who');
  // The follow feed must be connected before the broadcast starts.
  await page.waitForFunction(() => window.peerscope.directory.open['./api/v1/feed'], null, { timeout: 10000 });
  await fetch(opt.ready);

  await page.waitForFunction((t) => document.getElementById('notes').textContent.includes(t), opt.title, { timeout: 30000 });
  result.note = await page.textContent('#notes');
  await page.waitForFunction((t) => [...document.querySelectorAll('#list li')].some((li) => li.textContent.includes(t)),
    opt.title, { timeout: 30000 });
  result.item = await page.evaluate((t) => [...document.querySelectorAll('#list li')].find((li) => li.textContent.includes(t)).textContent, opt.title);

  await page.fill('#q', 'no such broadcast anywhere');
  await page.waitForSelector('#empty:not([hidden])', { timeout: 10000 });
  result.emptyOnMiss = true;
  await page.fill('#q', opt.title.split(' ')[0]);
  await page.waitForFunction((t) => [...document.querySelectorAll('#list li')].some((li) => li.textContent.includes(t)),
    opt.title, { timeout: 10000 });
  result.foundBySearch = true;

  await Promise.all([
    page.waitForURL(/\/b\/[^/]+\/$/, { timeout: 40000 }),
    page.click(`#list li:has-text("${opt.title}") button`),
  ]);
  result.player = new URL(page.url()).pathname;
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Opens a replay's page at a phone size (390x844) and a tablet size
// (1024x768) at once, in Debian's headless Chromium, and watches its
// moments: the comment --comment must be absent from the list while the
// playhead is before its time and listed once past it; hearts must float
// (window.peerscope.heartsFloated, and hearts rising in the layer) when
// the playhead passes their second; a seek back hides the comment again,
// a seek past it lists it, without floating hearts.
//
//   node replay-moments.mjs --url URL --comment TEXT [--screenshots DIR]
//
// Prints one JSON line: for each size, what was seen, the console errors
// and whether the page scrolled sideways. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    comment: { type: 'string' },
    screenshots: { type: 'string' },
  },
});
if (!opt.url || !opt.comment) {
  console.error('usage: node replay-moments.mjs --url URL --comment TEXT [--screenshots DIR]');
  process.exit(2);
}

const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
const result = { url: opt.url, sizes: {} };

async function look(name, viewport) {
  const seen = { errors: [] };
  result.sizes[name] = seen;
  const page = await browser.ctx.newPage();
  await page.setViewportSize(viewport);
  page.on('console', (m) => { if (m.type() === 'error') seen.errors.push(m.text()); });
  page.on('pageerror', (e) => seen.errors.push(e.message));
  await page.goto(opt.url);
  await page.waitForFunction(() => window.peerscope && window.peerscope.mode === 'vod' &&
    window.peerscope.comments.length > 0 && window.peerscope.hearts.length > 0, null, { timeout: 30000 });
  const probe = () => page.evaluate((text) => ({
    t: document.querySelector('video').currentTime,
    listed: [...document.querySelectorAll('#rfeed li')].some((li) => li.textContent.includes(text)),
    floated: window.peerscope.heartsFloated.length,
    onScreen: window.peerscopeHearts.alive(document.getElementById('hearts')),
  }), opt.comment);
  const state = await page.evaluate((text) => ({
    commentAt: window.peerscope.comments.find((c) => c.text === text)?.at,
    heartsAt: window.peerscope.hearts[0].at,
  }), opt.comment);
  Object.assign(seen, state);
  // Play through both moments, looking every 100 ms.
  seen.listedBefore = false; seen.floatedEarly = false;
  const until = Date.now() + 20000;
  while (Date.now() < until) {
    const p = await probe();
    if (p.t < state.commentAt - 0.3 && p.listed) seen.listedBefore = true;
    if (p.t < state.heartsAt - 0.3 && p.floated > 0) seen.floatedEarly = true;
    if (p.listed && seen.listedAt === undefined) seen.listedAt = p.t;
    if (p.floated > 0 && seen.floatedAt === undefined) seen.floatedAt = p.t;
    if (p.onScreen > 0) seen.heartsOnScreen = Math.max(seen.heartsOnScreen || 0, p.onScreen);
    if (p.t > state.heartsAt + 1.5) break;
    await sleep(100);
  }
  const seek = async (t) => {
    await page.evaluate((to) => { document.querySelector('video').currentTime = to; }, t);
    await page.waitForFunction((to) => {
      const v = document.querySelector('video');
      return !v.seeking && Math.abs(v.currentTime - to) < 1;
    }, t, { timeout: 15000 });
    return probe();
  };
  const floatedBefore = (await probe()).floated;
  seen.backListed = (await seek(1)).listed;
  const past = await seek(state.commentAt + 6);
  seen.pastListed = past.listed;
  seen.seekFloated = past.floated - floatedBefore;
  seen.sideways = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  if (opt.screenshots) await page.screenshot({ path: `${opt.screenshots}/replay-moments-${name}.png` });
  await page.close();
}

try {
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required'] });
  await Promise.all(Object.entries(sizes).map(([name, v]) => look(name, v).catch((e) => {
    result.sizes[name] = { ...(result.sizes[name] || {}), error: String(e && e.message || e) };
  })));
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

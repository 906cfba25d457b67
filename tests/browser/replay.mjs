// Opens a replay's page in Debian's headless Chromium, watches it play from
// the start, seeks, and watches again.
//
//   node replay.mjs --url URL [--seconds 4] [--seek 40]
//
// Prints one JSON line on stdout: the page's mode and the replay's duration
// as the page read it; how far currentTime advanced before the seek; where
// it landed after seeking to --seek and how far it advanced from there;
// stalls; and the comments the page showed (those written before the
// playhead) at both moments; then, at a phone's size, the phone turned
// sideways and two tablets' (looks), whether the page scrolls sideways, how
// much of the picture is on screen and how much of it the comments cover;
// every console error. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';
import { pictureProbe } from './picture.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    seconds: { type: 'string', default: '4' },
    seek: { type: 'string', default: '40' },
    screenshot: { type: 'string' },
  },
});
if (!opt.url) {
  console.error('usage: node replay.mjs --url URL [--seconds N] [--seek T]');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
const result = { url: opt.url, console: [], looks: [] };
const sizes = { phone: { width: 390, height: 844 }, landscape: { width: 844, height: 390 }, tablet: { width: 1024, height: 768 },
  portrait: { width: 768, height: 1024 } };
try {
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required'] });
  const { page } = browser;
  await page.addInitScript(pictureProbe);
  page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text()); });
  page.on('pageerror', (e) => result.console.push(`uncaught: ${e.message}`));
  await page.goto(opt.url);
  await page.waitForFunction(() => window.peerscope && window.peerscope.startupMs !== null, null, { timeout: 30000 });
  const probe = () => page.evaluate(() => ({
    t: document.querySelector('video').currentTime,
    mode: window.peerscope.mode,
    duration: window.peerscope.duration,
    mediaDuration: document.querySelector('video').duration,
    comments: window.peerscope.comments.length,
    shown: document.querySelectorAll('#rfeed li').length,
    due: window.peerscope.comments.filter((c) => c.at <= document.querySelector('video').currentTime).length,
    controls: document.querySelector('video').controls,
  }));
  const watch = async (seconds) => {
    let stalls = 0; let last = -1; let lastChange = Date.now();
    const start = await probe();
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      await sleep(250);
      const s = await probe();
      if (s.t !== last) {
        if (last >= 0 && Date.now() - lastChange > 1000) stalls++;
        last = s.t; lastChange = Date.now();
      }
    }
    const end = await probe();
    return { from: start.t, to: end.t, advanced: end.t - start.t, stalls, ...end };
  };
  result.before = await watch(Number(opt.seconds));
  const target = Number(opt.seek);
  await page.evaluate((t) => { document.querySelector('video').currentTime = t; }, target);
  await page.waitForFunction((t) => {
    const v = document.querySelector('video');
    return !v.seeking && v.currentTime >= t - 0.5 && v.readyState >= 3;
  }, target, { timeout: 30000 });
  result.after = await watch(Number(opt.seconds));
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot });
  for (const [size, viewport] of Object.entries(sizes)) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(400); // the layout and the video's box settle
    result.looks.push({ size, ...(await page.evaluate(() => ({
      sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
      comments: [...document.querySelectorAll('#rfeed li')].filter((li) => li.offsetParent).length,
      ...window.peerscopePicture(document.querySelector('video'), '#rfeed li'),
    }))) });
  }
  const state = await page.evaluate(() => window.peerscope);
  Object.assign(result, {
    mode: state.mode, startupMs: state.startupMs, errors: state.errors, seeks: state.seeks,
    badge: await page.evaluate(() => document.getElementById('badge').textContent),
    title: await page.title(),
    log: state.log.slice(-30),
  });
} catch (e) {
  result.error = String(e && e.message || e);
  try { result.log = (await browser.page.evaluate(() => window.peerscope.log)).slice(-30); } catch { /* no page */ }
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

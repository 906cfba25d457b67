// Opens several player pages, one after another, in one headless Chromium,
// and watches them all play: the browser light nodes of issue 14 relaying
// to each other.
//
//   node relay.mjs --url URL [--url URL …] [--seconds 30] [--gap 0]
//                  [--close I --after S]
//
// Each page is opened once the one before shows its first frame (and
// --gap seconds more). Prints one JSON line: per page its mode, startup,
// first frame seen from here, latency samples, stalls (currentTime standing
// still over a second) and its light node's stats. With --close, page I is
// then closed (as a person closes a tab) and the others are watched S more
// seconds: their stalls and longest stall since ('afterClose') and their
// light node's stats at the end. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string', multiple: true },
    seconds: { type: 'string', default: '30' },
    gap: { type: 'string', default: '0' },
    close: { type: 'string' },
    after: { type: 'string', default: '10' },
  },
});
if (!opt.url || !opt.url.length) {
  console.error('usage: node relay.mjs --url URL [--url URL …] [--seconds N] [--gap N] [--close I --after S]');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
const result = { pages: [] };
try {
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs] });
  const watched = [];
  for (const [i, url] of opt.url.entries()) {
    const page = i === 0 ? browser.page : await browser.ctx.newPage();
    page.on('console', (m) => console.error(`[page ${i}]`, m.text()));
    const opened = Date.now();
    await page.goto(url);
    await page.waitForFunction(() => window.peerscope && window.peerscope.startupMs !== null, null, { timeout: 30000 });
    const w = { i, url, page, opened, firstFrameMs: Date.now() - opened, samples: [], stalls: 0, maxStallMs: 0, lastT: -1, lastChange: Date.now() };
    watched.push(w);
    await sleep(Number(opt.gap) * 1000);
  }
  await watch(watched, Number(opt.seconds));
  for (const w of watched) {
    const stuck = Date.now() - w.lastChange;
    if (stuck > 1000) { w.stalls++; w.maxStallMs = Math.max(w.maxStallMs, stuck); }
    const state = await w.page.evaluate(() => window.peerscope);
    result.pages.push({
      url: w.url, mode: state.mode, startupMs: state.startupMs, firstFrameMs: w.firstFrameMs,
      advanced: w.samples.length ? w.samples[w.samples.length - 1].t - w.samples[0].t : 0,
      stalls: w.stalls, maxStallMs: w.maxStallMs,
      latencyMs: summary(w.samples.map((s) => s.latencyMs).filter((x) => x !== null)),
      errors: state.errors, peerID: state.peerID, peer: state.peer, log: state.log.slice(-30),
    });
  }
  if (opt.close !== undefined) {
    const gone = watched[Number(opt.close)];
    await gone.page.close({ runBeforeUnload: true });
    const rest = watched.filter((w) => w !== gone);
    for (const w of rest) Object.assign(w, { samples: [], stalls: 0, maxStallMs: 0, lastT: -1, lastChange: Date.now() });
    await watch(rest, Number(opt.after));
    for (const w of rest) {
      const stuck = Date.now() - w.lastChange;
      if (stuck > 1000) { w.stalls++; w.maxStallMs = Math.max(w.maxStallMs, stuck); }
      const state = await w.page.evaluate(() => window.peerscope);
      result.pages[w.i].afterClose = {
        advanced: w.samples.length ? w.samples[w.samples.length - 1].t - w.samples[0].t : 0,
        stalls: w.stalls, maxStallMs: w.maxStallMs,
        peer: state.peer, errors: state.errors, log: state.log.slice(-30),
      };
    }
  }
} catch (e) {
  result.error = String(e && e.message || e);
  // What the pages said, for the failing test's log.
  for (const [i, page] of (browser ? browser.ctx.pages() : []).entries()) {
    const log = await page.evaluate(() => (window.peerscope ? window.peerscope.log : [])).catch(() => []);
    console.error(`page ${i} log:\n${log.join('\n')}`);
  }
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// watch samples the pages every 250 ms for the given seconds, counting
// stalls (currentTime standing still over a second).
async function watch(pages, seconds) {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    await sleep(250);
    for (const w of pages) {
      const s = await w.page.evaluate(() => ({ t: document.querySelector('video').currentTime, latencyMs: window.peerscope.latencyMs }));
      const now = Date.now();
      if (s.t !== w.lastT) {
        const stuck = now - w.lastChange;
        if (w.lastT >= 0 && stuck > 1000) { w.stalls++; console.error(`page ${w.i}: stall of ${stuck} ms at ${w.lastT}`); }
        if (w.lastT >= 0) w.maxStallMs = Math.max(w.maxStallMs, stuck);
        w.lastT = s.t; w.lastChange = now;
      }
      w.samples.push(s);
    }
  }
}

function summary(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1], n: s.length };
}

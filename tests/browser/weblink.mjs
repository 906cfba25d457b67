// Issue 14's headline: browser pages open a broadcast's web link from a
// community bootstrap's directory page — each page loads the directory,
// finds the live broadcast in the list and clicks its Watch link, which
// plays it from the tree in the page itself — and are all watched at once.
//
//   node weblink.mjs --directory URL --title TITLE [--pages 8] [--seconds 30]
//
// One headless Chromium; each page in a browser context of its own (its
// own renderer process, so that Chromium's per-page CPU figures are that
// page's). A page clicks once the page before it is in the tree and, when
// it offers child slots, reachable for other browsers. Then all are watched
// together for --seconds: currentTime and the page's own latency every
// 250 ms, stalls (currentTime standing still over a second).
//
// Prints one JSON line: per page, what its own light node says (parent, how
// it reaches it — 'browser' or 'node' —, depth, children), its first frame
// from the click (the page's performance.now() at its first frame, which
// counts from the navigation the click started), its latency samples,
// stalls, and over the watched window: the bytes it received from each
// peer and sent to each, the light node's main-thread busy time
// (performance.now()-based, web/peer's stats().cpu) and Chromium's own
// TaskDuration of the page's main thread (CDP Performance.getMetrics).
// Logs go to stderr.
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { executablePath, baseArgs, loopbackWebRTCArgs } from './chromium.mjs';
import { rtcTrace, rtcSummary } from './rtctrace.mjs';

const { values: opt } = parseArgs({
  options: {
    directory: { type: 'string' },
    title: { type: 'string' },
    pages: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '30' },
  },
});
if (!opt.directory || !opt.title) {
  console.error('usage: node weblink.mjs --directory URL --title TITLE [--pages N] [--seconds N]');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const result = { pages: [] };
let browser;
const watched = [];
let opening = null; // the page being opened, for the log on failure
try {
  browser = await chromium.launch({
    executablePath, headless: true,
    args: [...baseArgs, '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
  });
  for (let i = 0; i < Number(opt.pages); i++) {
    const ctx = await browser.newContext({ viewport: { width: 480, height: 360 } });
    await ctx.addInitScript(stallWatch);
    // PEERSCOPE_RTC_TRACE=1: every RTCPeerConnection's story (rtctrace.mjs),
    // printed for those that took over a second to connect.
    if (process.env.PEERSCOPE_RTC_TRACE) await ctx.addInitScript(rtcTrace);
    // PEERSCOPE_LIBP2P_DEBUG=<namespaces>: js-libp2p's own debug log
    // (the debug package reads localStorage), kept per page with the
    // page's clock and printed with the slow set-ups.
    if (process.env.PEERSCOPE_LIBP2P_DEBUG) {
      await ctx.addInitScript((ns) => {
        try { localStorage.setItem('debug', ns); } catch { /* an opaque origin */ }
        const d = console.debug.bind(console);
        console.debug = (f, ...a) => d(`${Math.round(performance.now())} ${f}`, ...a);
      }, process.env.PEERSCOPE_LIBP2P_DEBUG);
    }
    const page = await ctx.newPage();
    const w = { i, page, ctx, errors: [], samples: [], debug: [] };
    opening = w;
    page.on('console', (m) => {
      if (m.type() === 'debug') { if (w.debug.length < 5000) w.debug.push(m.text()); return; }
      if (m.type() === 'error') w.errors.push(m.text());
      if (process.env.PEERSCOPE_DEBUG) console.error(`[page ${i}]`, m.text());
    });
    page.on('pageerror', (e) => w.errors.push('uncaught: ' + e.message));
    await page.goto(opt.directory);
    const watch = `#list li:has-text(${JSON.stringify(opt.title)}) a.watch`;
    await page.waitForSelector(watch, { timeout: 30000 });
    w.link = await page.getAttribute(watch, 'href');
    const opened = Date.now();
    await Promise.all([page.waitForURL(/\/w\/[^/]+\/$/, { timeout: 10000 }), page.click(watch)]);
    w.url = page.url();
    await page.waitForFunction(() => window.peerscope && window.peerscope.firstFrameAt !== null, null, { timeout: 30000 });
    w.seenMs = Date.now() - opened;
    w.startLog = await page.evaluate(() => window.peerscope.log.slice());
    w.cdp = await ctx.newCDPSession(page);
    await w.cdp.send('Performance.enable');
    watched.push(w);
    opening = null;
    // The next page comes once this one can be found in the tree.
    w.settledMs = await page.waitForFunction(() => {
      const p = window.peerscope.peer;
      return p && p.depth > 0 && (!p.slots || p.reachable);
    }, null, { timeout: 15000 }).then(() => Date.now() - opened, () => null);
    const s = await page.evaluate(() => ({ at: window.peerscope.firstFrameAt, startup: window.peerscope.startupMs, peer: window.peerscope.peer }));
    console.error(`page ${i}: first frame ${s.at} ms after the click (seen ${w.seenMs} ms), parent …${(s.peer && s.peer.parent || '').slice(-8)} via ${s.peer && s.peer.parentVia}, depth ${s.peer && s.peer.depth}`);
  }

  if (process.env.PEERSCOPE_RTC_TRACE) {
    for (const w of watched) {
      const lines = rtcSummary(await w.page.evaluate(() => window.__rtcTrace || []), Number(process.env.PEERSCOPE_RTC_TRACE_MIN_MS || 1000));
      if (lines.length) console.error(`page ${w.i} slow WebRTC set-ups:\n${lines.join('\n')}`);
      if (w.debug.length) console.error(`page ${w.i} js-libp2p log:\n${w.debug.join('\n')}`);
    }
  }
  const before = await Promise.all(watched.map(snapshot));
  await Promise.all(watched.map((w) => w.page.evaluate(() => window.__stallWatch.start())));
  const t0 = Date.now();
  const until = Date.now() + Number(opt.seconds) * 1000;
  // The page's latency figure changes once a second: sample it so.
  while (Date.now() < until) {
    await sleep(1000);
    for (const w of watched) {
      w.samples.push(await w.page.evaluate(() => ({ t: document.querySelector('video').currentTime, latencyMs: window.peerscope.latencyMs })));
    }
  }
  const windowMs = Date.now() - t0;
  const watches = await Promise.all(watched.map((w) => w.page.evaluate(() => window.__stallWatch.stop())));
  const after = await Promise.all(watched.map(snapshot));
  for (const [k, w] of watched.entries()) {
    const a = after[k]; const b = before[k];
    Object.assign(w, watches[k]);
    if (w.stalls) console.error(`page ${w.i}: stalls of ${w.stallMs.join(', ')} ms`);
    const st = a.state;
    const lat = w.samples.map((s) => s.latencyMs).filter((x) => x !== null && x !== undefined);
    result.pages.push({
      url: w.url, link: w.link, mode: st.mode, peerID: st.peerID,
      firstFrameMs: st.firstFrameAt, times: st.times, seenMs: w.seenMs, startupMs: st.startupMs, settledMs: w.settledMs,
      advanced: w.advanced, waiting: w.waiting,
      stalls: w.stalls, maxStallMs: w.maxStallMs, latencySamples: lat,
      peer: st.peer,
      window: {
        ms: windowMs,
        bytesFrom: diff(a.state.peer.bytesFrom, b.state.peer.bytesFrom),
        bytesTo: diff(a.state.peer.bytesTo, b.state.peer.bytesTo),
        cpu: diff(a.state.peer.cpu, b.state.peer.cpu),
        taskMs: Math.round((a.metrics.TaskDuration - b.metrics.TaskDuration) * 1000),
        scriptMs: Math.round((a.metrics.ScriptDuration - b.metrics.ScriptDuration) * 1000),
      },
      errors: [...(st.errors || []), ...w.errors], log: (st.log || []).slice(-40),
      startLog: w.startLog,
    });
  }
} catch (e) {
  result.error = String(e && e.message || e);
  for (const w of opening ? [...watched, opening] : watched) {
    const log = await w.page.evaluate(() => (window.peerscope ? window.peerscope.log : [])).catch((e) => [`(no log: ${e.message})`]);
    console.error(`page ${w.i} (${w.page.url()}) log:\n${log.join('\n')}`);
  }
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// stallWatch runs in every page (an init script): every 100 ms it looks
// at the video's currentTime, and adds up the time between looks in which
// it did not move; a run of such time over a second is a stall. Time in
// which the page's own timers could not run (the renderer busy, the
// machine loaded) is not counted unless the video stood still across it
// too: a page that was merely slow to look is not a stall, and the
// driver's own pace does not enter into it.
function stallWatch() {
  const m = { on: false, lastT: -1, prev: 0, stuck: 0, stalls: [], max: 0, t0: 0, waiting: 0 };
  const tick = () => {
    const v = document.querySelector('video');
    if (!m.on || !v) return;
    const now = performance.now();
    if (v.currentTime === m.lastT) m.stuck += now - m.prev;
    else {
      if (m.stuck > 1000) m.stalls.push(Math.round(m.stuck));
      m.max = Math.max(m.max, m.stuck);
      m.stuck = 0;
      m.lastT = v.currentTime;
    }
    m.prev = now;
  };
  window.__stallWatch = {
    start() {
      const v = document.querySelector('video');
      Object.assign(m, { on: true, lastT: v.currentTime, prev: performance.now(), stuck: 0, stalls: [], max: 0, t0: v.currentTime, waiting: 0 });
      v.addEventListener('waiting', () => { if (m.on) m.waiting++; });
      setInterval(tick, 100);
    },
    stop() {
      tick();
      m.on = false;
      if (m.stuck > 1000) m.stalls.push(Math.round(m.stuck));
      m.max = Math.max(m.max, m.stuck);
      const v = document.querySelector('video');
      return { stalls: m.stalls.length, stallMs: m.stalls, maxStallMs: Math.round(m.max), advanced: v.currentTime - m.t0, waiting: m.waiting };
    },
  };
}

async function snapshot(w) {
  const state = await w.page.evaluate(() => JSON.parse(JSON.stringify(window.peerscope)));
  const { metrics } = await w.cdp.send('Performance.getMetrics');
  return { state, metrics: Object.fromEntries(metrics.map((m) => [m.name, m.value])) };
}

// diff returns a − b for every numeric key of a (a key missing from b
// counts from 0).
function diff(a, b) {
  const out = {};
  for (const [k, v] of Object.entries(a || {})) if (typeof v === 'number') out[k] = Math.round(v - ((b || {})[k] || 0));
  return out;
}

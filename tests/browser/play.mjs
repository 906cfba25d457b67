// Opens the player page in Debian's headless Chromium and watches it play.
//
//   node play.mjs --url URL [--seconds 20] [--end-wait 0] [--screenshot file.png]
//
// Prints one JSON line on stdout: the page's mode, its startup (page open →
// first frame, as the page measured it, and as seen from here), samples of
// currentTime and latency, stalls (currentTime not advancing for more than a
// second), and whether the page showed the end. Logs go to stderr. The
// screenshot, if asked for, is taken while playing.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    'end-wait': { type: 'string', default: '0' },
    screenshot: { type: 'string' },
  },
});
if (!opt.url) {
  console.error('usage: node play.mjs --url URL [--seconds N] [--end-wait N] [--screenshot file.png]');
  process.exit(2);
}

let browser;
const result = { url: opt.url };
try {
  // The page starts muted, as browsers require; let it play unmuted too.
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs] });
  const { page } = browser;

  const opened = Date.now();
  await page.goto(opt.url);
  // First frame: the page records it from requestVideoFrameCallback.
  await page.waitForFunction(() => window.peerscope && window.peerscope.startupMs !== null, null, { timeout: 20000 });
  result.firstFrameMs = Date.now() - opened;

  const samples = [];
  let stalls = 0; let maxStallMs = 0; let lastT = -1; let lastChange = Date.now();
  const until = Date.now() + Number(opt.seconds) * 1000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const s = await page.evaluate(() => ({
      t: document.querySelector('video').currentTime,
      paused: document.querySelector('video').paused,
      readyState: document.querySelector('video').readyState,
      latencyMs: window.peerscope.latencyMs,
      mode: window.peerscope.mode,
      ended: window.peerscope.ended,
    }));
    const now = Date.now();
    if (s.t !== lastT) {
      const stuck = now - lastChange;
      if (lastT >= 0 && stuck > 1000) { stalls++; console.error(`stall of ${stuck} ms at ${lastT}`); }
      maxStallMs = Math.max(maxStallMs, lastT >= 0 ? stuck : 0);
      lastT = s.t; lastChange = now;
    }
    samples.push({ at: now - opened, ...s });
  }
  const stuck = Date.now() - lastChange;
  if (stuck > 1000) { stalls++; maxStallMs = Math.max(maxStallMs, stuck); }

  const state = await page.evaluate(() => window.peerscope);
  Object.assign(result, {
    mode: state.mode, startupMs: state.startupMs, audio: state.audio, errors: state.errors,
    advanced: samples.length ? samples[samples.length - 1].t - samples[0].t : 0,
    stalls, maxStallMs,
    latencyMs: summary(samples.map((s) => s.latencyMs).filter((x) => x !== null)),
    title: await page.title(),
    note: await page.evaluate(() => document.getElementById('note').textContent),
    log: state.log.slice(-30),
    // The page's light node (?mode=p2p): its peer ID and its leaf's state.
    peerID: state.peerID, peer: state.peer,
  });
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot });
  if (Number(opt['end-wait']) > 0) {
    try {
      await page.waitForFunction(() => window.peerscope.ended, null, { timeout: Number(opt['end-wait']) * 1000 });
      result.ended = true;
      result.overlay = await page.evaluate(() => document.getElementById('overlay').textContent);
    } catch { result.ended = false; }
  }
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

function summary(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1], n: s.length };
}

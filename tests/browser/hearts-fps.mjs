// Measures the frame rate of the floating hearts (web/hearts) in Debian's
// headless Chromium: frame intervals by requestAnimationFrame, first on
// the idle page (what rate headless gives at all), then while hearts are
// floated through hearts.js as the pages call it
// (peerscopeHearts.float(layer, 1)) at --rate a second for --seconds, then
// at --flood a second (a flood its cap must absorb).
//
//   node hearts-fps.mjs --url URL [--rate 50] [--flood 500] [--seconds 10] [--size 390x844] [--arg FLAG …]
//
// URL is a page with a .hearts layer (#hearts) and hearts.css and
// hearts.js loaded. A dropped frame is an interval over 1.5 × 16.7 ms.
// Prints one JSON line: for each phase, frames, fps, the p50/p95/p99/max
// interval (ms), dropped frames, hearts floated and most alive at once
// (peerscopeHearts.alive, or the layer's elements for a hearts.js without
// it, as before the canvas).
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string', default: '50' },
    flood: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    idle: { type: 'string', default: '3' },
    size: { type: 'string', default: '390x844' },
    arg: { type: 'string', multiple: true, default: [] },
  },
});
if (!opt.url) {
  console.error('usage: node hearts-fps.mjs --url URL [--rate 50] [--seconds 10] [--size 390x844] [--arg FLAG …]');
  process.exit(2);
}
const [width, height] = opt.size.split('x').map(Number);

// measure runs in the page: rAF intervals for ms, while drive (none, or
// the hearts.js call) adds a heart every 1000/rate ms.
function measure([ms, rate, drive]) {
  return new Promise((resolve) => {
    const layer = document.getElementById('hearts');
    const times = [];
    let floated = 0, alive = 0;
    const hearts = window.peerscopeHearts;
    const count = () => (hearts.alive ? hearts.alive(layer) : layer.children.length);
    // A heart every 1000/rate ms on average, however late the timer fires.
    const t0 = performance.now();
    let sent = 0;
    const tick = drive === 'none' ? null : setInterval(() => {
      const due = Math.floor((performance.now() - t0) * rate / 1000);
      for (; sent < due; sent++) {
        hearts.float(layer, 1, () => floated++);
      }
    }, 20);
    const frame = (t) => {
      times.push(t);
      alive = Math.max(alive, count());
      if (t - t0 < ms) { requestAnimationFrame(frame); return; }
      if (tick) clearInterval(tick);
      const iv = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
      const q = (p) => iv[Math.min(iv.length - 1, Math.floor(p * iv.length))];
      const span = times[times.length - 1] - times[0];
      resolve({ drive, rate: tick ? rate : 0, frames: iv.length, fps: iv.length * 1000 / span, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: iv[iv.length - 1],
        dropped: iv.filter((d) => d > 1.5 * 1000 / 60).length, requested: sent, floated, alive });
    };
    requestAnimationFrame(frame);
  });
}

const result = { phases: [] };
let browser;
try {
  browser = await launch({ args: opt.arg, viewport: { width, height } });
  const { page } = browser;
  await page.goto(opt.url, { waitUntil: 'load' });
  const rate = Number(opt.rate), ms = Number(opt.seconds) * 1000;
  result.phases.push(await page.evaluate(measure, [Number(opt.idle) * 1000, rate, 'none']));
  result.phases.push(await page.evaluate(measure, [ms, rate, 'hearts.js']));
  // Let the last hearts finish before the next phase.
  await page.waitForFunction(() => {
    const layer = document.getElementById('hearts'), h = window.peerscopeHearts;
    return (h.alive ? h.alive(layer) : layer.children.length) === 0;
  }, null, { timeout: 15000 });
  result.phases.push(await page.evaluate(measure, [ms, Number(opt.flood), 'hearts.js']));
  result.userAgent = await page.evaluate(() => navigator.userAgent);
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

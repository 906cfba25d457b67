// Measures what a viewer sees: opens the player page in Debian's headless
// Chromium and, for every frame the page presents (requestVideoFrameCallback),
// every --every-ms or so, copies a region of that frame (--crop, in video
// pixels: where the clip burns in its timecode) to a canvas and records its
// grey levels with the time the frame is expected on screen, as wallclock
// (Unix ms). The Go side identifies each frame from those pixels and
// compares with the frame's capture time. Then it reloads the page
// --startups times and records page open → first frame presented.
//
//   node latency.mjs --url URL --out frames.json [--seconds 30] [--crop x,y,w,h] [--every-ms 200] [--startups 5]
//
// Writes the samples to --out (JSON) and prints one JSON line on stdout: the
// mode the page played in, the startups, the page's own latency readouts,
// stalls, and errors. Logs go to stderr.
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    out: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    crop: { type: 'string', default: '112,300,416,48' },
    'every-ms': { type: 'string', default: '200' },
    startups: { type: 'string', default: '5' },
  },
});
if (!opt.url || !opt.out) {
  console.error('usage: node latency.mjs --url URL --out frames.json [--seconds N] [--crop x,y,w,h] [--every-ms N] [--startups N]');
  process.exit(2);
}
const [cx, cy, cw, ch] = opt.crop.split(',').map(Number);

// Runs in the page before its own script: samples presented frames.
function sampler({ cx, cy, cw, ch, every }) {
  const m = window.peerscopeMeasure = { first: null, frames: [], sampling: false };
  const setup = () => {
    const v = document.querySelector('video');
    if (!v || !v.requestVideoFrameCallback) return;
    const canvas = document.createElement('canvas');
    canvas.width = cw; canvas.height = ch;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    let last = -Infinity;
    const onFrame = (now, meta) => {
      // performance.now() counts from the page's navigation start; this
      // maps it to the wallclock that capture times use.
      const unixOffset = Date.now() - performance.now();
      if (m.first === null) m.first = { openToFrameMs: meta.expectedDisplayTime, unix: unixOffset + meta.expectedDisplayTime };
      if (m.sampling && meta.expectedDisplayTime - last >= every) {
        last = meta.expectedDisplayTime;
        ctx.drawImage(v, cx, cy, cw, ch, 0, 0, cw, ch);
        const d = ctx.getImageData(0, 0, cw, ch).data;
        const grey = new Uint8Array(cw * ch);
        for (let i = 0; i < grey.length; i++) grey[i] = (d[4 * i] * 77 + d[4 * i + 1] * 150 + d[4 * i + 2] * 29) >> 8;
        let bin = '';
        for (let i = 0; i < grey.length; i += 0x8000) bin += String.fromCharCode(...grey.subarray(i, i + 0x8000));
        m.frames.push({
          displayUnixMs: unixOffset + meta.expectedDisplayTime,
          mediaTime: meta.mediaTime,
          width: v.videoWidth, height: v.videoHeight,
          pageLatencyMs: window.peerscope ? window.peerscope.latencyMs : null,
          grey: btoa(bin),
        });
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  };
  document.addEventListener('DOMContentLoaded', setup);
}

let browser;
const result = { url: opt.url, startups: [] };
try {
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs] });
  const { page } = browser;
  await page.addInitScript(sampler, { cx, cy, cw, ch, every: Number(opt['every-ms']) });

  const firstFrame = async () => {
    await page.waitForFunction(() => window.peerscopeMeasure && window.peerscopeMeasure.first !== null, null, { timeout: 20000 });
    return page.evaluate(() => ({
      openToFrameMs: Math.round(window.peerscopeMeasure.first.openToFrameMs),
      pageStartupMs: window.peerscope.startupMs,
      mode: window.peerscope.mode,
    }));
  };

  await page.goto(opt.url);
  result.startups.push(await firstFrame());
  // Settle (the LL-HLS reader trims its start towards the live edge), then
  // sample, watching for stalls as play.mjs does.
  await new Promise((r) => setTimeout(r, 3000));
  await page.evaluate(() => { window.peerscopeMeasure.sampling = true; });
  let stalls = 0; let lastT = -1; let lastChange = Date.now();
  const until = Date.now() + Number(opt.seconds) * 1000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const t = await page.evaluate(() => document.querySelector('video').currentTime);
    if (t !== lastT) {
      if (lastT >= 0 && Date.now() - lastChange > 1000) { stalls++; console.error(`stall of ${Date.now() - lastChange} ms at ${lastT}`); }
      lastT = t; lastChange = Date.now();
    }
  }
  const state = await page.evaluate(() => ({ frames: window.peerscopeMeasure.frames, mode: window.peerscope.mode, errors: window.peerscope.errors, log: window.peerscope.log.slice(-30) }));
  await writeFile(opt.out, JSON.stringify(state.frames));
  Object.assign(result, { mode: state.mode, samples: state.frames.length, stalls, errors: state.errors, log: state.log });

  for (let i = 0; i < Number(opt.startups); i++) {
    await page.goto('about:blank');
    await page.goto(opt.url);
    result.startups.push(await firstFrame());
  }
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Measures each page's first load in Debian's headless Chromium: the bytes
// it took over the wire and the time until it was ready for a person.
//
//   node weights.mjs --page 'NAME|READY|URL' [--page …] [--size WxH] [--timeout MS]
//
// READY names what the page shows once it is of use (the pages' policies
// forbid eval, so these are functions here): listed, the first broadcast
// in the list; profile, a profile's name; frame, the player's first video
// frame; preview, the studio's camera preview with Go live enabled. It is
// polled on every animation frame, and its first true moment
// (performance.now(), from the start of navigation) is "ready".
//
// Each page is loaded in a fresh tab with the HTTP cache off (a first
// visit). Bytes are counted two ways: from the Performance API (the
// navigation entry and every resource entry: transferSize, which is the
// bytes received including response headers, compressed as sent;
// decodedBodySize, the bodies after decompression), and from Chromium's
// own CDP Network events (encodedDataLength at loadingFinished, all
// requests of the tab, headers included). Both are read at the ready
// moment plus 500 ms, and split into the page's assets (document,
// scripts, styles, images, fonts) and data (fetch and XHR: the API calls,
// the HLS parts of a player that fell back to HLS). WebRTC media is not
// HTTP and is in neither.
//
// Prints one JSON line: for each page, its timings (DOMContentLoaded and
// load from navigation timing, ready) and its bytes.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    page: { type: 'string', multiple: true, default: [] },
    size: { type: 'string', default: '390x844' },
    timeout: { type: 'string', default: '30000' },
  },
});
if (opt.page.length === 0) {
  console.error("usage: node weights.mjs --page 'NAME|READY|URL' [--page …] [--size WxH] [--timeout MS]");
  process.exit(2);
}
const [width, height] = opt.size.split('x').map(Number);
const T = Number(opt.timeout);
const readiness = ['listed', 'profile', 'frame', 'preview'];

const result = { pages: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
  });
  const { ctx } = browser;
  for (const spec of opt.page) {
    const [name, ready, ...rest] = spec.split('|');
    const url = rest.join('|');
    if (!readiness.includes(ready)) throw new Error(`${name}: no readiness ${ready}; want one of ${Object.keys(readiness)}`);
    const page = await ctx.newPage();
    await page.setViewportSize({ width, height });
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    const types = new Map();
    let cdpBytes = { assets: 0, data: 0, requests: 0 };
    cdp.on('Network.requestWillBeSent', (e) => types.set(e.requestId, e.type));
    cdp.on('Network.loadingFinished', (e) => {
      const t = types.get(e.requestId);
      cdpBytes.requests++;
      if (t === 'Fetch' || t === 'XHR' || t === 'EventSource' || t === 'Media') cdpBytes.data += e.encodedDataLength;
      else cdpBytes.assets += e.encodedDataLength;
    });
    const seen = { name, url };
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    // Polled by a loop of animation frames that page.evaluate installs
    // (a function called through CDP, which the pages' CSP, with no
    // 'unsafe-eval', allows; waitForFunction would eval).
    await page.evaluate(([which, T]) => new Promise((resolve, reject) => {
      const ok = { listed: () => !!document.querySelector('#list > li'),
        profile: () => !document.getElementById('profile').hidden && !!document.getElementById('pname').textContent,
        frame: () => document.getElementById('video').readyState >= 2,
        preview: () => document.getElementById('preview').readyState >= 2 && !document.getElementById('golive').disabled }[which];
      const give = setTimeout(() => reject(new Error(`not ${which} within ${T} ms`)), T);
      const look = () => {
        if (ok()) { window.__ready = performance.now(); clearTimeout(give); resolve(); } else requestAnimationFrame(look);
      };
      look();
    }), [ready, T]);
    await page.waitForTimeout(500);
    Object.assign(seen, await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const r = { dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, ready: window.__ready,
        assets: { wire: nav.transferSize, body: nav.decodedBodySize, n: 1 }, data: { wire: 0, body: 0, n: 0 }, files: [] };
      r.files.push({ name: 'document', type: 'navigation', wire: nav.transferSize, body: nav.decodedBodySize });
      for (const e of performance.getEntriesByType('resource')) {
        const k = e.initiatorType === 'fetch' || e.initiatorType === 'xmlhttprequest' ? 'data' : 'assets';
        r[k].wire += e.transferSize; r[k].body += e.decodedBodySize; r[k].n++;
        if (k === 'assets') r.files.push({ name: new URL(e.name).pathname.split('/').pop(), type: e.initiatorType, wire: e.transferSize, body: e.decodedBodySize });
      }
      return r;
    }));
    seen.cdp = { ...cdpBytes };
    result.pages.push(seen);
    await page.close();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// The studio's end summary as a phone sees it, in Debian's headless
// Chromium with a fake camera: each --url is a go-live page at the
// machine's LAN address (as a phone on the network opens it). It goes live
// for a few seconds, ends, and reads the summary's replay row at a phone's
// size, the phone turned and two tablets': the link (if any) and the text
// said instead; a link is then opened, as the phone would, and played.
//
//   node studio-phone.mjs --url STUDIO_URL [--url STUDIO_URL …]
//
// Prints one JSON line: per page what the row showed at each size and
// whether the page scrolled sideways, the link's status, how far it
// played; every console error and uncaught exception.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({ options: { url: { type: 'string', multiple: true } } });
if (!opt.url) {
  console.error('usage: node studio-phone.mjs --url STUDIO_URL [--url STUDIO_URL …]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, landscape: { width: 844, height: 390 }, tablet: { width: 1024, height: 768 },
  portrait: { width: 768, height: 1024 } };
const result = { errors: [], pages: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: sizes.phone,
  });
  const { ctx } = browser;
  for (const url of opt.url) {
    const studio = await ctx.newPage();
    studio.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
    studio.on('pageerror', (e) => result.errors.push('uncaught: ' + e.message));
    await studio.setViewportSize(sizes.phone);
    await studio.goto(url);
    await studio.click('#golive');
    await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: 30000 });
    await studio.waitForTimeout(3000); // a few seconds of video, for a replay
    await studio.click('#golive'); // now labelled End
    await studio.waitForSelector('#summary:not([hidden])', { timeout: 10000 });
    await studio.waitForSelector('#sum-replay-row:not([hidden])', { timeout: 20000 });
    const seen = { url, sizes: [] };
    for (const [size, viewport] of Object.entries(sizes)) {
      await studio.setViewportSize(viewport);
      seen.sizes.push({ size, ...await studio.evaluate(() => {
        const a = document.getElementById('sum-replay');
        return { link: a.hidden ? '' : a.href, row: document.getElementById('sum-replay-row').innerText,
          sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth };
      }) });
    }
    const link = seen.sizes[0].link;
    if (link) {
      const page = await ctx.newPage();
      page.on('pageerror', (e) => result.errors.push('replay page: ' + e.message));
      const resp = await page.goto(link);
      seen.status = resp ? resp.status() : 0;
      await page.waitForFunction(() => { const v = document.querySelector('video'); return v && v.currentTime > 1; }, null, { timeout: 30000 }).catch(() => {});
      seen.played = await page.evaluate(() => { const v = document.querySelector('video'); return v ? v.currentTime : -1; });
      await page.close();
    }
    result.pages.push(seen);
    await studio.close();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

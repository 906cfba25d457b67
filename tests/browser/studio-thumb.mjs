// A live card's still, in Debian's headless Chromium with a fake camera:
// the phone studio (--url, 390x844) goes live and sends a still of its
// preview; then each directory page (--dir, one or more: the bootstrap's,
// a node's /directory/) shows the broadcast --title with that still (an
// image that loaded, natural size > 0) at a phone's size and both
// tablets', and the cards without one keep their initials ("?" for an
// anonymous broadcaster) in a picture box of the same size. With --shots
// DIR, the directory at each size (directory-thumb-<size>.png).
//
//   node studio-thumb.mjs --url STUDIO_URL --dir URL [--dir URL] --title TITLE [--shots DIR]
//
// Prints one JSON line: stills sent, per page and size what the card
// showed and whether the page scrolled sideways; every console error and
// uncaught exception.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { url: { type: 'string' }, dir: { type: 'string', multiple: true }, title: { type: 'string' }, shots: { type: 'string' } },
});
if (!opt.url || !opt.dir || !opt.title) {
  console.error('usage: node studio-thumb.mjs --url STUDIO_URL --dir URL [--dir URL] --title TITLE [--shots DIR]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], looks: [] };
const T = 15000;
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: sizes.phone,
  });
  const { ctx, page: studio } = browser;
  const watch = (p) => {
    p.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
    p.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  };
  watch(studio);
  await studio.goto(opt.url);
  await studio.fill('#title', opt.title);
  await studio.click('#golive');
  await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: T });
  await studio.waitForFunction(() => window.peerscopeStudio.stills > 0, null, { timeout: T });
  result.stills = await studio.evaluate(() => window.peerscopeStudio.stills);
  result.studioSideways = await studio.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

  const dir = await ctx.newPage();
  watch(dir);
  for (const [i, url] of opt.dir.entries()) {
    for (const [size, viewport] of Object.entries(sizes)) {
      await dir.setViewportSize(viewport);
      await dir.goto(url);
      // The still comes after the listing (the node sends it once listed);
      // the page follows the directory's events.
      const got = await dir.waitForFunction((title) => {
        for (const li of document.querySelectorAll('#list li[data-id]')) {
          if (li.querySelector('.title')?.textContent !== title) continue;
          const img = li.querySelector('img.thumb');
          if (!img || !img.complete || !img.naturalWidth) return null;
          const box = img.getBoundingClientRect();
          // Every live card: where it is, how tall, its picture box, and
          // the face shown in place of a still.
          const cards = [...document.querySelectorAll('#list > li[data-id]')].map((c) => {
            const r = c.getBoundingClientRect();
            const m = c.querySelector('.media');
            const face = c.querySelector('.noavatar');
            return { top: Math.round(r.top), height: Math.round(r.height), media: m ? Math.round(m.getBoundingClientRect().height) : 0,
              face: face ? face.textContent : '' };
          });
          return { natural: [img.naturalWidth, img.naturalHeight], box: [Math.round(box.width), Math.round(box.height)],
            initials: document.querySelectorAll('#list li .noavatar').length, cards };
        }
        return null;
      }, opt.title, { timeout: T });
      const r = { page: i, size, ...(await got.jsonValue()) };
      r.sideways = await dir.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
      result.looks.push(r);
      if (opt.shots && i === 0) await dir.screenshot({ path: join(opt.shots, `directory-thumb-${size}.png`) });
    }
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

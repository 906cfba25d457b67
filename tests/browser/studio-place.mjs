// A place on the map from the phone studio, in Debian's headless Chromium
// with a fake camera, at a phone's size: a place off the map is refused as
// it is typed (the field says why); a good one, typed, goes with Go live;
// then the directory page (--map) shows the broadcast's dot, and a click
// on it shows its card.
//
//   node studio-place.mjs --url STUDIO_URL --map DIRECTORY_URL --title TITLE
//
// Prints one JSON line: the refusal, the card, sideways scrolls, every
// console error and uncaught exception.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({ options: { url: { type: 'string' }, map: { type: 'string' }, title: { type: 'string' } } });
if (!opt.url || !opt.map || !opt.title) {
  console.error('usage: node studio-place.mjs --url STUDIO_URL --map DIRECTORY_URL --title TITLE');
  process.exit(2);
}
const result = { errors: [] };
const T = 20000;
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: { width: 390, height: 844 },
  });
  const { ctx, page: studio } = browser;
  for (const p of [studio]) {
    p.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
    p.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  }
  await studio.goto(opt.url);
  await studio.fill('#place', '95,2.35');
  result.refused = await studio.textContent('#placemsg');
  result.invalid = await studio.getAttribute('#place', 'aria-invalid');
  await studio.fill('#place', '48.8566, 2.3522');
  result.accepted = await studio.textContent('#placemsg');
  result.studioSideways = await studio.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
  await studio.fill('#title', opt.title);
  await studio.click('#golive');
  await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: T });

  const dir = await ctx.newPage();
  dir.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  dir.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  await dir.goto(opt.map);
  await dir.click('#tab-map');
  const dot = `#world .dot[title="${opt.title.replaceAll('"', '\\"')}"]`;
  // The listing comes once video flows; the page follows the directory's events.
  await dir.waitForSelector(dot, { timeout: T });
  result.at = await dir.evaluate((sel) => {
    const w = document.querySelector('#world').getBoundingClientRect();
    const d = document.querySelector(sel).getBoundingClientRect();
    return { x: (d.left + d.width / 2 - w.left) / w.width, y: (d.top + d.height / 2 - w.top) / w.height };
  }, dot);
  await dir.click(dot);
  await dir.waitForSelector('#mapcard li .title', { timeout: T });
  result.card = await dir.textContent('#mapcard li .title');
  result.mapSideways = await dir.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

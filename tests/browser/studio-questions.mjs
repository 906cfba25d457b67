// The studio's questions in advance: opens the go-live page (--url, the
// stream key in its fragment) in Debian's headless Chromium with a fake
// camera, goes live, and waits for the questions asked in advance of the
// broadcaster's scheduled broadcast, ranked by votes; at a phone's size and
// both tablets' it records them and whether the page scrolls sideways;
// then ticks the last one off and waits for it to show answered. With
// --shots DIR, studio-questions-<size>.png.
//
//   node studio-questions.mjs --url URL [--shots DIR]
//
// Prints one JSON line: the questions at each size, the ticked one, every
// console error, uncaught exception and failed request.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({ options: { url: { type: 'string' }, shots: { type: 'string' } } });
if (!opt.url) {
  console.error('usage: node studio-questions.mjs --url URL [--shots DIR]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], sizes: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: sizes.phone,
  });
  const studio = browser.page;
  studio.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  studio.on('pageerror', (e) => result.errors.push('uncaught: ' + e.message));
  studio.on('response', (r) => { if (r.status() >= 400) result.errors.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  await studio.goto(opt.url);
  await studio.fill('#title', 'Questions in advance');
  await studio.click('#golive');
  await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: 30000 });
  await studio.waitForSelector('#questions:not([hidden]) #q-list li', { timeout: 30000 });
  for (const [size, viewport] of Object.entries(sizes)) {
    await studio.setViewportSize(viewport);
    // The Questions button over the preview takes the broadcaster down to
    // them (the preview fills the screen while live).
    await studio.evaluate(() => window.scrollTo(0, 0));
    const button = await studio.textContent('#t-questions');
    await studio.click('#t-questions');
    await studio.waitForFunction(() => { const r = document.getElementById('questions').getBoundingClientRect(); return r.top >= -1 && r.top < innerHeight - 40; },
      null, { timeout: 5000 });
    result.sizes.push({
      size, button,
      heading: await studio.textContent('#q-for'),
      questions: await studio.locator('#q-list li').allTextContents(),
      sideways: await studio.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth),
    });
    if (opt.shots) await studio.screenshot({ path: join(opt.shots, `studio-questions-${size}.png`) });
  }
  const last = studio.locator('#q-list li').last();
  result.ticked = await last.locator('.q-text').textContent();
  await last.locator('button.q-tick').click();
  await studio.waitForFunction((t) => [...document.querySelectorAll('#q-list li.answered')].some((li) => li.textContent.includes(t)), result.ticked, { timeout: 10000 });
  result.answered = true;
  await studio.waitForFunction(() => document.getElementById('t-questions').textContent === 'Questions 1', null, { timeout: 5000 });
  result.buttonAfter = await studio.textContent('#t-questions');
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

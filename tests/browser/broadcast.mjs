// Opens the broadcaster page in Debian's headless Chromium with a fake
// camera and microphone, types a title, presses Go live, stays live for a
// while, then presses End (unless told to expect a refusal).
//
//   node broadcast.mjs --url URL [--seconds 5] [--title T] [--expect-error] [--screenshot file.png]
//
// Prints one JSON line on stdout: the states the page went through, the
// codec it sent, frames sent, the error it showed, and its log. Logs go to
// stderr.
import { parseArgs } from 'node:util';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    title: { type: 'string', default: 'Test broadcast' },
    'expect-error': { type: 'boolean', default: false },
    screenshot: { type: 'string' },
  },
});
if (!opt.url) {
  console.error('usage: node broadcast.mjs --url URL [--seconds N] [--title T] [--expect-error] [--screenshot file.png]');
  process.exit(2);
}

const result = { url: opt.url, states: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', ...loopbackWebRTCArgs],
    viewport: { width: 390, height: 844 }, // a phone
  });
  const { page } = browser;
  await page.goto(opt.url);
  const pageState = () => page.evaluate(() => ({ ...window.peerscopeBroadcast, status: document.getElementById('status').textContent }));
  const watch = setInterval(async () => {
    try {
      const s = await pageState();
      if (result.states[result.states.length - 1] !== s.state) result.states.push(s.state);
    } catch { /* navigation or close */ }
  }, 100);

  await page.fill('#title', opt.title);
  await page.click('#golive');
  if (opt['expect-error']) {
    await page.waitForFunction(() => window.peerscopeBroadcast.error !== '', null, { timeout: 20000 });
  } else {
    await page.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: 20000 });
    await new Promise((r) => setTimeout(r, Number(opt.seconds) * 1000));
    if (opt.screenshot) await page.screenshot({ path: opt.screenshot });
    const live = await pageState();
    result.codec = live.codec;
    result.framesSent = live.framesSent;
    result.liveStatus = live.status;
    await page.click('#golive'); // now labelled End
    await page.waitForFunction(() => window.peerscopeBroadcast.state === 'ended', null, { timeout: 10000 });
  }
  clearInterval(watch);
  const end = await pageState();
  if (result.states[result.states.length - 1] !== end.state) result.states.push(end.state);
  Object.assign(result, { state: end.state, error: end.error, status: end.status, session: end.session, log: end.log });
  if (opt.screenshot && opt['expect-error']) await page.screenshot({ path: opt.screenshot });
} catch (e) {
  result.error = result.error || `broadcast.mjs: ${e.message}`;
  result.failed = true;
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

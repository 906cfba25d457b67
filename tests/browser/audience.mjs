// The go-live page's "Who can watch" panel in Debian's headless Chromium,
// step by step as the Go test says: the test runs a small control server
// (--control URL); the script POSTs what the page shows after each step
// there, and the answer says what to do next:
//
//   {do: 'golive'}                      press Go live (fake camera), wait until live
//   {do: 'add', handle: '@carol'}       type the handle, press Add, wait for the page's word
//   {do: 'remove', handle: '@carol'}    press that person's Remove, wait for the page's word
//   {do: 'mutuals'}                     tick (or untick) "Everyone who follows you and whom you follow back"
//   {do: 'sizes'}                       the page at 390x844, 1024x768 and 768x1024: sideways scroll?
//   {do: 'open', url: URL[, key: K]}    another page (another key; K typed in its field): what its panel says
//   {do: 'end'}                         press End, then print the result and stop
//
//   node audience.mjs --url URL --control URL
//
// PEERSCOPE_SHOTS=DIR keeps a screenshot of the page at each size, and of
// each other page opened.
//
// Every report carries the page's state (window.peerscopeBroadcast), its
// panel's text and the console errors and uncaught exceptions of the main
// page so far. Prints one JSON line at the end; logs go to stderr.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({ options: { url: { type: 'string' }, control: { type: 'string' } } });
if (!opt.url || !opt.control) {
  console.error('usage: node audience.mjs --url URL --control URL');
  process.exit(2);
}

const T = 30000;
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], steps: [] };
let browser;

// watchErrors collects a page's console errors and uncaught exceptions.
function watchErrors(page, into) {
  page.on('console', (m) => { if (m.type() === 'error') into.push(m.text()); });
  page.on('pageerror', (e) => into.push('uncaught: ' + e.message));
}

async function shown(page) {
  return page.evaluate(() => {
    const s = window.peerscopeBroadcast;
    const panel = document.getElementById('audience');
    return {
      state: s.state, audience: s.audience, status: s.audienceStatus || '', error: s.audienceError || '',
      panel: panel.hidden ? '' : panel.innerText,
    };
  });
}

// report tells the control server what the page shows and returns its
// next instruction.
async function report(step, extra = {}) {
  const body = { step, ...extra, errors: result.errors };
  result.steps.push(step);
  const resp = await fetch(opt.control, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!resp.ok) throw new Error(`control: ${resp.status}`);
  return resp.json();
}

// settle waits until the panel is not busy and has said something since
// mark (its status or its error changed).
async function settle(page, before) {
  await page.waitForFunction((b) => {
    const s = window.peerscopeBroadcast;
    const busy = document.getElementById('aud-add-button').disabled;
    return !busy && ((s.audienceStatus || '') !== b.status || (s.audienceError || '') !== b.error) &&
      !/…$/.test(s.audienceStatus || '');
  }, before, { timeout: T });
}

try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', ...loopbackWebRTCArgs],
    viewport: sizes.phone,
  });
  const { page, ctx } = browser;
  watchErrors(page, result.errors);
  await page.goto(opt.url);
  await page.waitForFunction(() => window.peerscopeBroadcast.audience || window.peerscopeBroadcast.audienceError, null, { timeout: T });
  let next = await report('loaded', await shown(page));
  for (;;) {
    const d = next.do;
    if (d === 'end') break;
    switch (d) {
      case 'golive':
        await page.click('#golive');
        await page.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: T });
        next = await report('live', await shown(page));
        break;
      case 'add': {
        const before = await shown(page);
        await page.fill('#aud-handle', next.handle);
        await page.click('#aud-add-button');
        await settle(page, before);
        next = await report('added', await shown(page));
        break;
      }
      case 'remove': {
        const before = await shown(page);
        await page.click(`#aud-members li[data-handle="${next.handle}"] button`);
        await settle(page, before);
        next = await report('removed', await shown(page));
        break;
      }
      case 'mutuals': {
        const before = await shown(page);
        await page.click('#aud-mutuals');
        await settle(page, before);
        next = await report('mutuals', await shown(page));
        break;
      }
      case 'sizes': {
        const seen = [];
        for (const [name, vp] of Object.entries(sizes)) {
          await page.setViewportSize(vp);
          await page.waitForTimeout(300);
          if (process.env.PEERSCOPE_SHOTS) await page.screenshot({ path: join(process.env.PEERSCOPE_SHOTS, `audience-${name}.png`), fullPage: true });
          seen.push(await page.evaluate((n) => ({
            size: n,
            sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
            panelWidth: document.getElementById('audience').getBoundingClientRect().width,
            viewport: document.documentElement.clientWidth,
          }), name));
        }
        await page.setViewportSize(sizes.phone);
        next = await report('sizes', { sizes: seen });
        break;
      }
      case 'open': {
        const other = await ctx.newPage();
        const errs = [];
        watchErrors(other, errs);
        await other.goto(next.url);
        if (next.key) { // typed into the page's field, as without a key in the link
          await other.fill('#key', next.key);
          await other.press('#key', 'Tab');
        }
        await other.waitForFunction(() => window.peerscopeBroadcast.audience || window.peerscopeBroadcast.audienceError, null, { timeout: T });
        const s = await shown(other);
        if (process.env.PEERSCOPE_SHOTS) await other.screenshot({ path: join(process.env.PEERSCOPE_SHOTS, `audience-open-${result.steps.length}.png`), fullPage: true });
        await other.close();
        next = await report('opened', { ...s, pageErrors: errs });
        break;
      }
      default:
        throw new Error(`control said ${JSON.stringify(next)}`);
    }
  }
  await page.click('#golive'); // now labelled End
  await page.waitForFunction(() => window.peerscopeBroadcast.state === 'ended', null, { timeout: T });
  result.done = true;
} catch (e) {
  result.error = `audience.mjs: ${e && e.stack || e}`;
  try { await fetch(opt.control, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ step: 'failed', error: result.error, errors: result.errors }) }); } catch { /* the test is gone */ }
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Opens each of a node's pages in Debian's headless Chromium at a phone's
// and two tablets' sizes, under the pages' own Content-Security-Policy, and
// reports what the browser refused or complained about: every violation of
// the policy (the securitypolicyviolation event), every console error and
// every uncaught exception. With --shots DIR it saves a screenshot of each
// page at each size.
//
//   node pages.mjs --page NAME=URL [--page NAME=URL …] [--wait MS] [--shots DIR]
//                  [--allow REGEXP] [--sizes phone,tablet,portrait,landscape]
//
// The sizes: phone 390x844, tablet 1024x768, portrait 768x1024 (by
// default), and landscape 844x390 (a phone turned sideways).
//
// A page is looked at once its document has loaded and --wait (default
// 3000) ms more have passed (a player has played). Console errors matching
// --allow are left out (an external avatar that cannot load here, say).
// Prints one JSON line: for each page and size, its violations, errors,
// whether it scrolls sideways (sideways), the text of its body's first
// line (text) and its body's whole text (all, the first 4000 characters).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    page: { type: 'string', multiple: true, default: [] },
    wait: { type: 'string', default: '3000' },
    shots: { type: 'string' },
    allow: { type: 'string' },
    sizes: { type: 'string', default: 'phone,tablet,portrait' },
  },
});
if (opt.page.length === 0) {
  console.error('usage: node pages.mjs --page NAME=URL [--page NAME=URL …] [--wait MS] [--shots DIR] [--allow REGEXP]');
  process.exit(2);
}
const allow = opt.allow ? new RegExp(opt.allow) : null;
const allSizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 },
  landscape: { width: 844, height: 390 } };
const sizes = Object.fromEntries(opt.sizes.split(',').map((s) => [s, allSizes[s]]));
if (Object.values(sizes).some((v) => !v)) {
  console.error(`--sizes: want some of ${Object.keys(allSizes).join(',')}`);
  process.exit(2);
}

const result = { pages: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors', '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
  });
  const { ctx } = browser;
  await ctx.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} refused ${e.blockedURI || '(inline)'}${e.sample ? ': ' + e.sample : ''}`);
    });
  });
  for (const spec of opt.page) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const url = spec.slice(eq + 1);
    for (const [size, viewport] of Object.entries(sizes)) {
      const page = await ctx.newPage();
      await page.setViewportSize(viewport);
      const seen = { name, size, url, errors: [], violations: [] };
      page.on('console', (m) => {
        if (m.type() === 'error' && !(allow && allow.test(m.text()))) seen.errors.push(m.text());
      });
      page.on('pageerror', (e) => seen.errors.push('uncaught: ' + e.message));
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForTimeout(Number(opt.wait));
      seen.violations = await page.evaluate(() => window.__violations);
      // Sideways scroll: the document wider than the viewport.
      seen.sideways = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
      const all = ((await page.evaluate(() => document.body.innerText)) || '').trim();
      seen.text = all.split('\n')[0];
      seen.all = all.slice(0, 4000); // for a test that looks for something further down
      if (opt.shots) await page.screenshot({ path: join(opt.shots, `${name}-${size}.png`), fullPage: false });
      result.pages.push(seen);
      await page.close();
    }
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

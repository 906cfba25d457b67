// Signs a node in with Twitter from its directory page (/directory/) in
// Debian's headless Chromium, both ways the bootstrap hands the browser the
// one-time code that only the node that started the sign-in can redeem:
//
//  1. typed: the page is given --code (from a sign-in the test started and
//     took to X's stand-in itself, as if shown by the bootstrap's page), types
//     it into the code field and finishes; the page must say who is signed in;
//     then Sign out, and the page offers to sign in again;
//  2. sent back: Sign in with Twitter goes to the stand-in, which signs the
//     default user in at once; the bootstrap sends the browser back to the page
//     with the code in the fragment, which the page redeems (and clears).
//
// With --bootstrap URL it first opens the bootstrap's own directory page
// (which is no node's, so cannot sign one in) at the three sizes, presses
// its Sign in and reads where it says to sign in and out (bootstrapSays),
// and whether any size scrolls sideways (bootstrapSideways).
//
// With --shots DIR it saves the pages at phone (390x844) and tablet
// (1024x768, 768x1024) sizes before and after signing in.
//
//   node signin.mjs --url URL --code CODE [--bootstrap URL] [--shots DIR]
//
// Prints one JSON line on stdout: what the page said, and page and console
// errors.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { url: { type: 'string' }, code: { type: 'string' }, bootstrap: { type: 'string' }, shots: { type: 'string' } },
});
if (!opt.url || !opt.code) {
  console.error('usage: node signin.mjs --url URL --code CODE [--shots DIR]');
  process.exit(2);
}

const sizes = [[390, 844], [1024, 768], [768, 1024]];
async function shots(page, name) {
  if (!opt.shots) return;
  for (const [width, height] of sizes) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: `${opt.shots}/${name}-${width}x${height}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 390, height: 844 });
}

// bootstrapPage: the bootstrap's page says where sign-in and sign-out are.
async function bootstrapPage(page) {
  await page.goto(opt.bootstrap);
  await page.waitForSelector('#howsignin:not([hidden])', { timeout: 20000 });
  await page.click('#howsignin');
  await page.waitForSelector('#signbox[open]', { timeout: 5000 });
  result.bootstrapSays = await page.textContent('#signbox');
  result.bootstrapSideways = false;
  for (const [width, height] of sizes) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(200);
    result.bootstrapSideways ||= await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    if (opt.shots) await page.screenshot({ path: `${opt.shots}/bootstrap-signin-${width}x${height}.png` });
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#closesign');
}

let browser;
const result = { errors: [] };
try {
  browser = await launch({ viewport: { width: 390, height: 844 } });
  const page = browser.page;
  page.on('pageerror', (e) => result.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 404/.test(m.text())) result.errors.push(m.text()); });
  if (opt.bootstrap) await bootstrapPage(page);
  await page.goto(opt.url);
  await page.waitForSelector('#finish:not([hidden])', { timeout: 20000 });
  await shots(page, 'signed-out');

  // 1. The code typed in.
  await page.fill('#signincode', opt.code.toLowerCase());
  await page.click('#finishbtn');
  await page.waitForSelector('#who:not([hidden])', { timeout: 20000 });
  result.typed = await page.textContent('#who');
  result.finishHiddenWhenIn = await page.isHidden('#finish');
  await shots(page, 'signed-in');
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', { timeout: 20000 });
  result.signedOut = await page.isHidden('#who');

  // 2. Sent back: the whole round trip through the stand-in.
  await Promise.all([
    page.waitForURL(/\/directory\/#signin=/, { timeout: 30000 }),
    page.click('#signin'),
  ]);
  await page.waitForFunction(() => !document.getElementById('who').hidden, null, { timeout: 20000 });
  result.sentBack = await page.textContent('#who');
  result.hashLeft = await page.evaluate(() => location.hash);
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

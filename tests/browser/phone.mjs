// Signs a node in with a phone number from its directory page
// (/directory/) in Debian's headless Chromium: types the number, asks for
// a code, reads it from --codes (the test's stand-in for the SMS network),
// types it and signs in; the page must then say who is signed in.
//
//   node phone.mjs --url URL --codes URL --phone +15550100
//
// Prints one JSON line on stdout: what the page said, and page errors.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { url: { type: 'string' }, codes: { type: 'string' }, phone: { type: 'string' } },
});
if (!opt.url || !opt.codes || !opt.phone) {
  console.error('usage: node phone.mjs --url URL --codes URL --phone NUMBER');
  process.exit(2);
}

let browser;
const result = { errors: [] };
try {
  browser = await launch({ viewport: { width: 390, height: 844 } });
  const page = browser.page;
  page.on('pageerror', (e) => result.errors.push(e.message));
  await page.goto(opt.url);
  await page.waitForSelector('#phone:not([hidden])', { timeout: 20000 });
  await page.fill('#phonenum', opt.phone);
  await page.click('#sendcode');
  await page.waitForSelector('#code:not([hidden])', { timeout: 20000 });
  const r = await fetch(`${opt.codes}?phone=${encodeURIComponent(opt.phone)}`);
  const code = (await r.text()).trim();
  await page.fill('#code', code);
  await Promise.all([page.waitForNavigation({ timeout: 20000 }), page.click('#verify')]);
  await page.waitForSelector('#who:not([hidden])', { timeout: 20000 });
  result.who = await page.textContent('#who');
  result.phoneFormHidden = await page.isHidden('#phone');
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

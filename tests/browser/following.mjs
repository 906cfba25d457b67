// The directory's Following and Upcoming tabs on a signed-in node's page
// (/directory/) in Debian's headless Chromium, at a phone's size and both
// tablets', with more broadcasts listed than the public lists hold (200):
// Following lists the followed broadcaster's live broadcast --title and
// scheduled one --next although both lie past the first 200; a search on
// Upcoming for --find finds the scheduled one too.
//
//   node following.mjs --viewer URL --title TITLE --next TITLE --find WORD
//
// Prints one JSON line: per size what each tab listed and whether the page
// scrolled sideways; every console error and uncaught exception.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { viewer: { type: 'string' }, title: { type: 'string' }, next: { type: 'string' }, find: { type: 'string' } },
});
if (!opt.viewer || !opt.title || !opt.next || !opt.find) {
  console.error('usage: node following.mjs --viewer URL --title TITLE --next TITLE --find WORD');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], sizes: [] };
const T = 30000;
let browser;

const sideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
const titles = (page) => page.evaluate(() => [...document.querySelectorAll('#list > li .title')].map((x) => x.textContent));
const listHas = (page, t) => page.waitForFunction((t) => [...document.querySelectorAll('#list > li')].some((li) => li.textContent.includes(t)), t, { timeout: T });

try {
  browser = await launch({ viewport: sizes.phone });
  const page = browser.page;
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  page.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  for (const [size, viewport] of Object.entries(sizes)) {
    const r = { size };
    result.sizes.push(r);
    await page.setViewportSize(viewport);
    await page.goto(new URL('./?tab=following', opt.viewer).href);
    await listHas(page, opt.title);
    await listHas(page, opt.next);
    r.following = await titles(page);
    r.followingSideways = await sideways(page);

    await page.click('#tab-upcoming');
    await page.waitForSelector('#list > li.upcoming', { timeout: T });
    r.upcomingShown = (await titles(page)).length;
    await page.fill('#q', opt.find);
    await page.waitForFunction((w) => {
      const items = [...document.querySelectorAll('#list > li')];
      return items.length > 0 && items.every((li) => li.textContent.toLowerCase().includes(w));
    }, opt.find.toLowerCase(), { timeout: T });
    r.found = await titles(page);
    r.upcomingSideways = await sideways(page);
    await page.fill('#q', '');
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

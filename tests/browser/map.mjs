// The directory's map in Debian's headless Chromium, at a phone's size and
// both tablets': the Map tab shows the land and a dot for each live
// broadcast that said where it is; it reports where the dot for --title sits
// (as fractions of the map's box); a click (at the phone's size: Tab to it and Enter, as a
// keyboard would) shows its card with the title, the broadcaster and
// Watch; Watch opens the broadcast's web link. With --shots DIR, the map
// with its card open at each size (map-<size>.png).
//
//   node map.mjs --page URL --title TITLE [--shots DIR]
//
// Prints one JSON line: per size what the map showed and whether the page
// scrolled sideways; every console error and uncaught exception.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    page: { type: 'string' }, title: { type: 'string' }, shots: { type: 'string' },
  },
});
if (!opt.page || !opt.title) {
  console.error('usage: node map.mjs --page URL --title TITLE [--shots DIR]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], sizes: [] };
const T = 15000;
let browser;

try {
  browser = await launch({ viewport: sizes.phone });
  const page = browser.page;
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  page.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  const dotSel = `#world .dot[title="${opt.title.replaceAll('"', '\\"')}"]`;

  for (const [size, viewport] of Object.entries(sizes)) {
    const r = { size };
    result.sizes.push(r);
    await page.setViewportSize(viewport);
    await page.goto(opt.page);
    await page.click('#tab-map');
    await page.waitForSelector(dotSel, { timeout: T });
    await page.waitForFunction(() => {
      const img = document.querySelector('#world img');
      return img.complete && img.naturalWidth > 0;
    }, null, { timeout: T });
    r.dots = await page.locator('#world .dot').count();
    r.listHidden = await page.evaluate(() => getComputedStyle(document.querySelector('#list')).display === 'none');
    r.label = await page.getAttribute(dotSel, 'aria-label');
    r.note = await page.textContent('#mapnote');
    // Where the dot's centre is, as a fraction of the map's box.
    r.at = await page.evaluate((sel) => {
      const w = document.querySelector('#world').getBoundingClientRect();
      const d = document.querySelector(sel).getBoundingClientRect();
      return { x: (d.left + d.width / 2 - w.left) / w.width, y: (d.top + d.height / 2 - w.top) / w.height, ratio: w.width / w.height };
    }, dotSel);
    if (size === 'phone') {
      // The keyboard's way: Tab from the Map tab reaches the dots.
      await page.focus('#tab-map');
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((sel) => document.activeElement === document.querySelector(sel), dotSel)) {
          r.tabbed = true;
          break;
        }
      }
      await page.keyboard.press('Enter');
    } else {
      await page.click(dotSel);
    }
    await page.waitForSelector('#mapcard li .title', { timeout: T });
    r.card = await page.textContent('#mapcard li');
    r.cardTitle = await page.textContent('#mapcard li .title');
    r.watch = await page.getAttribute('#mapcard li a.watch', 'href');
    r.sideways = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    if (opt.shots) await page.screenshot({ path: join(opt.shots, `map-${size}.png`) });
  }
  // Watch opens the broadcast (its web link, in this browser).
  const href = result.sizes.at(-1).watch;
  await page.click('#mapcard li a.watch');
  await page.waitForURL(href, { timeout: T });
  result.opened = page.url();
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Checks the floating hearts (web/hearts) in Debian's headless Chromium, on
// a page with a .hearts layer (#hearts) and hearts.css and hearts.js
// loaded: a burst of 30 floats whole (one at once, the rest spread out)
// and is drawn on the layer's one canvas; a call whose go says no floats
// nothing; a flood of 5,000 in 2 s keeps at most MAX_ALIVE in the air and
// adds nothing to the DOM; once all have risen the canvas is blank and
// nothing is left in the air.
//
//   node hearts.mjs --url URL
//
// Prints one JSON line.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({ options: { url: { type: 'string' } } });
if (!opt.url) {
  console.error('usage: node hearts.mjs --url URL');
  process.exit(2);
}

const result = { errors: [] };
let browser;
try {
  browser = await launch({ viewport: { width: 390, height: 844 } });
  const { page } = browser;
  page.on('pageerror', (e) => result.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  await page.goto(opt.url, { waitUntil: 'load' });
  await page.evaluate(() => {
    const layer = document.getElementById('hearts');
    const canvas = () => layer.querySelector('canvas');
    window.probe = {
      layer,
      floated: 0,
      painted() {
        const c = canvas();
        if (!c) return 0;
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
        return n;
      },
    };
  });
  Object.assign(result, await page.evaluate(() => {
    const p = window.probe, h = window.peerscopeHearts;
    h.float(p.layer, 30, () => p.floated++);
    return { atOnce: p.floated, max: h.MAX_ALIVE };
  }));
  await page.waitForFunction(() => window.probe.floated >= 30, null, { timeout: 10000 });
  Object.assign(result, await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
    const p = window.probe;
    resolve({ burstFloated: p.floated, burstAlive: window.peerscopeHearts.alive(p.layer), burstPainted: p.painted(), children: p.layer.children.length });
  })))));
  result.stoppedFloated = await page.evaluate(() => {
    let n = 0;
    window.peerscopeHearts.float(window.probe.layer, 10, () => n++, () => false);
    return new Promise((resolve) => setTimeout(() => resolve(n), 500));
  });
  // A flood: 100 hearts every 20 ms for 2 s.
  Object.assign(result, await page.evaluate(() => new Promise((resolve) => {
    const p = window.probe, h = window.peerscopeHearts;
    let most = 0, asked = 0, floated = 0;
    const t = setInterval(() => {
      h.float(p.layer, 100, () => floated++);
      asked += 100;
      most = Math.max(most, h.alive(p.layer));
      if (asked >= 5000) {
        clearInterval(t);
        resolve({ floodAsked: asked, floodMostAlive: most, floodChildren: p.layer.children.length });
      }
    }, 20);
  })));
  await page.waitForFunction(() => window.peerscopeHearts.alive(window.probe.layer) === 0, null, { timeout: 20000 });
  // One frame more: the loop's last frame clears the canvas.
  result.afterPainted = await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(window.probe.painted())))));
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Drives a viewer's player page as a person would, at a phone's size
// (390x844), the phone turned sideways (844x390) and two tablets'
// (1024x768, 768x1024): reads who broadcasts,
// follows and unfollows them, opens Share and reads both links (copying
// one), taps the viewer count and finds a signed-in viewer's face, and
// measures where the video, the comments and the comment box lie (and how
// much of the picture is on screen, and how much comments cover). Hearts
// that others send must float without a tap here.
//
//   node player.mjs --url PLAYER --name NAME --viewer NAME [--shots DIR]
//                   [--signed-out PLAYER] [--weblink URL] [--own PLAYER]
//
// --signed-out and --weblink are pages where Follow cannot work (a node not
// signed in; the bootstrap's web link, which no node serves): a tap must
// say what to do. Their Share sheet is read too. --own is the
// broadcaster's own page: no Follow there.
//
// Prints one JSON line: for each size, what it saw, and every console
// error. With --shots, a screenshot of the page at each size
// (player-phone.png, player-phone-landscape.png, player-tablet-landscape.png,
// player-tablet-portrait.png).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';
import { pictureProbe } from './picture.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    name: { type: 'string' },
    viewer: { type: 'string' },
    shots: { type: 'string' },
    'signed-out': { type: 'string' }, // a player page on a node not signed in
    weblink: { type: 'string' }, // the bootstrap's web link of the broadcast
    own: { type: 'string' }, // the broadcaster's own node's page (no #owner=)
  },
});
const T = 40000;
const sizes = [
  ['phone', { width: 390, height: 844 }],
  ['phone-landscape', { width: 844, height: 390 }],
  ['tablet-landscape', { width: 1024, height: 768 }],
  ['tablet-portrait', { width: 768, height: 1024 }],
];
const result = { sizes: {}, errors: [] };
let browser;
try {
  browser = await launch({ args: ['--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs] });
  const { ctx } = browser;
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(opt.url).origin });
  // The sheet, not the system's share dialog (which headless Linux may or
  // may not have): it is what a desktop browser shows.
  await ctx.addInitScript(() => { try { delete Navigator.prototype.share; } catch (e) { /* none */ } });
  await ctx.addInitScript(pictureProbe);
  for (const [name, viewport] of sizes) {
    const page = await ctx.newPage();
    await page.setViewportSize(viewport);
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(`${name}: ${m.text()}`); });
    page.on('pageerror', (e) => result.errors.push(`${name}: uncaught: ${e.message}`));
    const seen = {};
    result.sizes[name] = seen;
    await page.goto(opt.url, { waitUntil: 'load' });

    // Who broadcasts.
    await page.waitForFunction((n) => document.getElementById('whoname').textContent.includes(n), opt.name, { timeout: T });
    seen.who = await page.evaluate(() => ({
      name: document.getElementById('whoname').textContent,
      handle: document.getElementById('whohandle').textContent,
      source: document.getElementById('whosource').textContent,
      face: document.getElementById('whoface').textContent,
      label: document.getElementById('who').getAttribute('aria-label'),
      profile: (document.querySelector('#whoname a') || {}).pathname || '',
    }));

    // Follow, then unfollow, by clicking; the state shows on the button.
    await page.waitForSelector('#follow:not([hidden])', { timeout: T });
    seen.followLabel = await page.getAttribute('#follow', 'aria-label');
    await page.click('#follow');
    await page.waitForFunction(() => document.getElementById('follow').getAttribute('aria-pressed') === 'true', null, { timeout: T });
    seen.followed = await page.textContent('#follow');
    await page.click('#follow');
    await page.waitForFunction(() => document.getElementById('follow').getAttribute('aria-pressed') === 'false', null, { timeout: T });
    seen.unfollowed = await page.textContent('#follow');
    seen.followNotes = await page.evaluate(() => window.peerscope.people.notes);

    // Share: the sheet with both links, one copied.
    await page.click('#share');
    await page.waitForSelector('#sharesheet[open]', { timeout: T });
    seen.share = await page.evaluate(() => ({
      web: document.getElementById('shareweb').value,
      p2p: document.getElementById('sharep2p').value,
      labels: [...document.querySelectorAll('#sharesheet label')].map((l) => l.textContent),
    }));
    await page.click('#sharesheet button.copy[data-copy="shareweb"]');
    await page.waitForFunction(() => document.querySelector('#sharesheet button.copy').textContent !== 'Copy', null, { timeout: T });
    seen.copyButton = await page.textContent('#sharesheet button.copy');
    seen.clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch((e) => 'unreadable: ' + e.message);
    seen.shareInView = await page.evaluate(() => {
      const r = document.getElementById('sharesheet').getBoundingClientRect();
      return r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight;
    });
    await page.click('#sharesheet button.close');
    await page.waitForSelector('#sharesheet:not([open])', { state: 'attached', timeout: T });

    // Who watches: a tap on the count.
    await page.click('#viewers');
    await page.waitForSelector('#viewersheet[open]', { timeout: T });
    await page.waitForFunction((n) => [...document.querySelectorAll('#faces li')].some((li) => li.textContent.includes(n)), opt.viewer, { timeout: T });
    seen.faces = await page.evaluate(() => [...document.querySelectorAll('#faces li')].map((li) => li.textContent));
    seen.anonymous = await page.textContent('#anoncount');
    seen.countLabel = await page.textContent('#viewers');
    await page.click('#viewersheet button.close');

    // Others' hearts float here, with no tap on this page.
    await page.waitForFunction(() => window.peerscope.chat && window.peerscope.chat.floated > 0, null, { timeout: T });
    seen.floated = await page.evaluate(() => window.peerscope.chat.floated);

    // Beside the video, the faces are on show at the top of the comments.
    if (name !== 'phone') {
      await page.waitForFunction((n) => [...document.querySelectorAll('#facestrip button')].some((b) => b.title.includes(n)), opt.viewer, { timeout: T }).catch(() => {});
    }
    seen.strip = await page.evaluate(() => [...document.querySelectorAll('#facestrip button')].filter((b) => b.offsetParent).map((b) => b.title));

    // Where things lie, once a comment shows and the video plays.
    await page.waitForFunction(() => document.querySelector('#feed li'), null, { timeout: T });
    await page.waitForFunction(() => window.peerscope.startupMs !== null, null, { timeout: T }).catch(() => {});
    await page.waitForTimeout(600); // the comment's entry animation
    Object.assign(seen, await page.evaluate(() => {
      const box = (el) => { const r = el.getBoundingClientRect(); return { l: r.left, t: r.top, r: r.right, b: r.bottom }; };
      const li = [...document.querySelectorAll('#feed li')].pop();
      return {
        stage: box(document.querySelector('.stage')), video: box(document.getElementById('video')),
        comment: box(li), say: box(document.getElementById('sayform')), side: box(document.querySelector('.side')),
        top: box(document.querySelector('.top')),
        ...window.peerscopePicture(document.getElementById('video'), '#feed li'),
        width: innerWidth, height: innerHeight,
        sideways: document.documentElement.scrollWidth > document.documentElement.clientWidth,
        playing: window.peerscope.startupMs !== null,
        // The focus ring: the follow button's outline when focused by keyboard.
        labels: [...document.querySelectorAll('button')].filter((b) => !b.closest('[hidden]') && !b.closest('dialog') &&
          !(b.getAttribute('aria-label') || b.textContent.trim())).length,
      };
    }));
    await page.focus('#share');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    seen.focusOutline = await page.evaluate(() => {
      const s = getComputedStyle(document.activeElement);
      return `${document.activeElement.id} ${s.outlineStyle} ${s.outlineWidth}`;
    });
    if (opt.shots) {
      await page.evaluate(() => document.activeElement.blur());
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(opt.shots, `player-${name}.png`) });
    }
    await page.close();
  }

  // Follow where it cannot work yet: the page says what to do.
  for (const [name, url] of [['signedOut', opt['signed-out']], ['weblink', opt.weblink]]) {
    if (!url) continue;
    const page = await ctx.newPage();
    await page.setViewportSize(sizes[0][1]);
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(`${name}: ${m.text()}`); });
    page.on('pageerror', (e) => result.errors.push(`${name}: uncaught: ${e.message}`));
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction((n) => document.getElementById('whoname').textContent.includes(n), opt.name, { timeout: T });
    await page.click('#follow');
    await page.waitForSelector('#follownote:not([hidden])', { timeout: T });
    const seen = await page.evaluate(() => ({
      note: document.getElementById('follownote').textContent,
      link: (document.querySelector('#follownote a') || {}).href || '',
      pressed: document.getElementById('follow').getAttribute('aria-pressed'),
      source: document.getElementById('whosource').textContent,
    }));
    await page.click('#share');
    await page.waitForSelector('#sharesheet[open]', { timeout: T });
    seen.share = await page.evaluate(() => ({ web: document.getElementById('shareweb').value, p2p: document.getElementById('sharep2p').value }));
    seen.sideways = await page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    result[name] = seen;
    await page.close();
  }

  // One's own broadcast offers no Follow.
  if (opt.own) {
    const page = await ctx.newPage();
    await page.setViewportSize(sizes[0][1]);
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(`own: ${m.text()}`); });
    await page.goto(opt.own, { waitUntil: 'load' });
    await page.waitForFunction((n) => document.getElementById('whoname').textContent.includes(n) && window.peerscope.people.signedIn !== null,
      opt.name, { timeout: T });
    result.own = { followHidden: await page.evaluate(() => document.getElementById('follow').hidden) };
    await page.close();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

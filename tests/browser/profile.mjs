// Profiles and the directory home on a signed-in node's directory page
// (/directory/) in Debian's headless Chromium, at a phone's size and both
// tablets': the search finds the broadcast --title (an overlong search is
// refused with its message, sending nothing); its broadcaster's name opens
// their profile; Follow there raises their followers by one and the
// Following tab then lists their live broadcast; Unfollow takes the count
// back. On the bootstrap's own page (--bootstrap), the same profile's
// Follow, and the Following tab, say where to sign in. With --shots DIR, the directory and the
// profile at each size (directory-<size>.png, profile-<size>.png).
//
//   node profile.mjs --viewer URL --bootstrap URL --title TITLE [--shots DIR]
//
// Prints one JSON line: per size what the pages showed and whether any
// scrolled sideways; every console error and uncaught exception.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { viewer: { type: 'string' }, bootstrap: { type: 'string' }, title: { type: 'string' }, shots: { type: 'string' } },
});
if (!opt.viewer || !opt.bootstrap || !opt.title) {
  console.error('usage: node profile.mjs --viewer URL --bootstrap URL --title TITLE [--shots DIR]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
const result = { errors: [], sizes: [] };
const T = 30000;
let browser;

const sideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
const text = (page, sel) => page.evaluate((s) => document.querySelector(s).textContent, sel);
const listHas = (page, t) => page.waitForFunction((t) => [...document.querySelectorAll('#list > li')].some((li) => li.textContent.includes(t)), t, { timeout: T });

try {
  browser = await launch({ viewport: sizes.phone });
  const page = browser.page;
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  page.on('pageerror', (e) => result.errors.push(`uncaught: ${e.message}`));
  const word = opt.title.split(' ')[0];

  for (const [size, viewport] of Object.entries(sizes)) {
    const r = { size, sideways: {} };
    result.sizes.push(r);
    await page.setViewportSize(viewport);
    await page.goto(opt.viewer);
    await page.waitForSelector('#who:not([hidden])', { timeout: T });
    await listHas(page, opt.title);

    // Search: by a word of the title, then for nothing, then too long.
    await page.fill('#q', word.toLowerCase());
    await page.waitForFunction((w) => {
      const items = [...document.querySelectorAll('#list > li')];
      return items.length > 0 && items.every((li) => li.textContent.toLowerCase().includes(w));
    }, word.toLowerCase(), { timeout: T });
    r.found = await page.evaluate(() => [...document.querySelectorAll('#list > li .title')].map((x) => x.textContent));
    r.foundLive = await page.evaluate(() => [...document.querySelectorAll('#list > li')].every((li) => li.textContent.includes('LIVE')));
    await page.fill('#q', 'no such broadcast anywhere');
    await page.waitForSelector('#empty:not([hidden])', { timeout: T });
    await page.fill('#q', 'x'.repeat(101));
    await page.waitForSelector('#error:not([hidden])', { timeout: T });
    r.overlong = await text(page, '#error');
    await page.fill('#q', '');
    await listHas(page, opt.title);
    await page.waitForSelector('#error', { state: 'hidden', timeout: T });
    r.columns = await page.evaluate(() => getComputedStyle(document.getElementById('list')).gridTemplateColumns.split(' ').length);
    r.sideways.directory = await sideways(page);
    if (opt.shots) await page.screenshot({ path: join(opt.shots, `directory-${size}.png`) });

    // An anonymous broadcaster's name opens what the directory has of them.
    if (size === 'phone') {
      await page.locator('#list > li', { hasText: 'Jazz rehearsal' }).locator('a.who').click();
      await page.waitForSelector('#profile:not([hidden])', { timeout: T });
      r.anonymous = { name: await text(page, '#pname'), source: await text(page, '#psource'), live: await text(page, '#plive'),
        follow: await page.isVisible('#pfollow'), counts: await page.isVisible('#pcounts') };
      await page.goBack();
      await listHas(page, opt.title);
    }

    // The broadcaster's name opens their profile.
    await page.locator('#list > li', { hasText: opt.title }).locator('a.who').first().click();
    await page.waitForSelector('#profile:not([hidden])', { timeout: T });
    await page.waitForSelector('#pfollow:not([hidden])', { timeout: T });
    r.url = page.url();
    r.name = await text(page, '#pname');
    r.source = await text(page, '#psource');
    r.live = await text(page, '#plive');
    r.upcoming = await text(page, '#pupcoming');
    const before = Number(await text(page, '#pfollowers'));
    r.followersBefore = before;
    await page.click('#pfollow');
    await page.waitForFunction((n) => document.getElementById('pfollowers').textContent === String(n + 1), before, { timeout: T });
    r.followersAfter = Number(await text(page, '#pfollowers'));
    r.button = await text(page, '#pfollow');
    r.sideways.profile = await sideways(page);
    if (opt.shots) await page.screenshot({ path: join(opt.shots, `profile-${size}.png`) });

    // Following: the followed broadcaster's live broadcast.
    await page.goto(new URL('./?tab=following', opt.viewer).href);
    await listHas(page, opt.title);
    await page.waitForFunction(() => document.querySelectorAll('#list > li').length >= 2, null, { timeout: T });
    r.following = await page.evaluate(() => [...document.querySelectorAll('#list > li .title')].map((x) => x.textContent));
    r.sideways.following = await sideways(page);

    // Unfollow from the profile: the count goes back.
    await page.goto(r.url);
    await page.waitForFunction(() => document.getElementById('pfollow').textContent === 'Following', null, { timeout: T });
    await page.click('#pfollow');
    await page.waitForFunction((n) => document.getElementById('pfollowers').textContent === String(n), before, { timeout: T });
    r.unfollowed = await text(page, '#pfollow');

    // The bootstrap's page: the profile shows; Follow says where to sign in.
    await page.goto(`${opt.bootstrap}/u/${encodeURIComponent(new URL(r.url).searchParams.get('u'))}`);
    await page.waitForSelector('#pfollow:not([hidden])', { timeout: T });
    await page.click('#pfollow');
    await page.waitForSelector('#signbox[open]', { timeout: T });
    r.bootstrapFollow = await text(page, '#signbox');
    await page.click('#closesign');
    await page.goto(`${opt.bootstrap}/?tab=following`);
    await page.waitForSelector('#followhint:not([hidden])', { timeout: T });
    r.bootstrapFollowing = await text(page, '#followhint');
    r.sideways.bootstrap = await sideways(page);
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

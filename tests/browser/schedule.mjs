// Scheduled broadcasts and questions in advance on two nodes' directory
// pages (/directory/) in Debian's headless Chromium, at one size, in a time
// zone that is not the machine's (Asia/Kolkata): the broadcaster (--caster,
// signed in) is refused a time in the past and an overlong title, each with
// its message, then schedules --title; the follower (--follower, signed
// in, following the broadcaster) sees it under Upcoming in its own time
// zone, asks a question and up-votes the broadcaster's; the list ranks them;
// the broadcaster ticks one off; then --remind (the test moves the
// bootstrap's clock to the day before and sends the reminders due) and the
// follower's page shows the reminder. With --shot FILE, a screenshot of
// the follower's Upcoming view.
//
//   node schedule.mjs --caster URL --follower URL --remind URL --title TITLE
//                     [--size phone|tablet|portrait] [--shot FILE]
//
// Prints one JSON line: what the pages said, whether either scrolled
// sideways, every console error and uncaught exception, and how many
// requests were refused (the three bad inputs).
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    caster: { type: 'string' }, follower: { type: 'string' }, remind: { type: 'string' },
    title: { type: 'string' }, size: { type: 'string', default: 'phone' }, shot: { type: 'string' },
  },
});
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
if (!opt.caster || !opt.follower || !opt.remind || !opt.title || !sizes[opt.size]) {
  console.error('usage: node schedule.mjs --caster URL --follower URL --remind URL --title TITLE [--size phone|tablet|portrait] [--shot FILE]');
  process.exit(2);
}
const timezoneId = 'Asia/Kolkata';
const result = { errors: [], refused: 0, size: opt.size };
const T = 30000;
let browser;

function watch(page, who) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every refused request: the bad input tried here is
    // refused on purpose, and counted (the test wants exactly those).
    if (/status of 400 \(Bad Request\)/.test(m.text())) result.refused++;
    else result.errors.push(`${who}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.errors.push(`${who} uncaught: ${e.message}`));
}
const sideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

// localInput is the datetime-local value of now + ms in the page's time zone.
const localInput = (page, ms) => page.evaluate((ms) => {
  const d = new Date(Date.now() + ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}, ms);

async function trySchedule(page, title, whenMs) {
  await page.click('#newsched');
  await page.waitForSelector('#schedbox[open]', { timeout: T });
  await page.fill('#stitle', title);
  await page.fill('#sstarts', await localInput(page, whenMs));
  await page.click('#schedgo');
}

async function openQuestions(page, title) {
  await page.click('#tab-upcoming');
  const li = page.locator('#list li.upcoming', { hasText: title });
  await li.waitFor({ timeout: T });
  if ((await li.locator('button.qs').getAttribute('aria-expanded')) !== 'true') await li.locator('button.qs').click();
  await li.locator('.questions ol').waitFor({ state: 'attached', timeout: T });
  return li;
}

try {
  browser = await launch({ viewport: sizes[opt.size], timezoneId });
  const caster = browser.page;
  watch(caster, 'caster');
  await caster.goto(opt.caster);
  await caster.waitForSelector('#newsched:not([hidden])', { timeout: T });

  // Bad input: a clear message, and the dialog stays open.
  await trySchedule(caster, opt.title, -3600e3);
  await caster.waitForFunction(() => document.getElementById('schedmsg').textContent !== '', null, { timeout: T });
  result.pastMessage = await caster.textContent('#schedmsg');
  await caster.fill('#stitle', 'x'.repeat(150));
  await caster.fill('#sstarts', await localInput(caster, 2 * 86400e3));
  await caster.evaluate(() => { document.getElementById('schedmsg').textContent = ''; });
  await caster.click('#schedgo');
  await caster.waitForFunction(() => document.getElementById('schedmsg').textContent !== '', null, { timeout: T });
  result.longMessage = await caster.textContent('#schedmsg');
  await caster.click('#schedclose');

  // The broadcast: in two days, with the day-before reminder among others.
  await trySchedule(caster, opt.title, 2 * 86400e3);
  await caster.waitForFunction(() => !document.getElementById('schedbox').open, null, { timeout: T });
  await caster.locator('#list li.upcoming', { hasText: opt.title }).waitFor({ timeout: T });

  // The follower: under Upcoming, in its own time zone.
  const follower = await browser.ctx.newPage();
  watch(follower, 'follower');
  await follower.goto(opt.follower);
  await follower.waitForSelector('#who:not([hidden])', { timeout: T });
  await follower.waitForFunction(() => window.peerscope.directory.open['./api/v1/feed'], null, { timeout: T });
  const li = await openQuestions(follower, opt.title);
  result.upcomingItem = await li.locator('.row').textContent();
  result.timeShown = await li.locator('time').textContent();
  result.timeWanted = await follower.evaluate(([t, tz]) => {
    const el = [...document.querySelectorAll('#list li.upcoming')].find((x) => x.textContent.includes(t)).querySelector('time');
    return new Date(el.dateTime).toLocaleString(undefined, {
      weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZoneName: 'short', timeZone: tz,
    });
  }, [opt.title, timezoneId]);

  // Questions: the follower asks; an overlong one is refused with a message.
  await li.locator('.ask input').fill('?'.repeat(300));
  await li.locator('.ask button').click();
  await follower.waitForFunction(() => document.getElementById('notes').textContent.includes('Question not sent'), null, { timeout: T });
  result.longQuestion = await follower.locator('#notes div').first().textContent();
  await li.locator('.ask input').fill('What lens do you use?');
  await li.locator('.ask button').click();
  await li.locator('.questions li', { hasText: 'What lens do you use?' }).waitFor({ timeout: T });

  // The broadcaster asks too; the follower up-votes that one: it ranks first.
  const cli = await openQuestions(caster, opt.title);
  await cli.locator('.ask input').fill('Which harbour should I film?');
  await cli.locator('.ask button').click();
  await cli.locator('.questions li', { hasText: 'Which harbour' }).waitFor({ timeout: T });
  const theirs = li.locator('.questions li', { hasText: 'Which harbour' });
  await theirs.waitFor({ timeout: T });
  result.ownVoteDisabled = await li.locator('.questions li', { hasText: 'What lens' }).locator('button.vote').isDisabled();
  await theirs.locator('button.vote').click();
  await follower.waitForFunction(() => {
    const first = document.querySelector('#list .questions li');
    return first && first.textContent.includes('Which harbour') && first.textContent.includes('▲ 1');
  }, null, { timeout: T });
  result.ranked = await li.locator('.questions li').allTextContents();

  // The broadcaster ticks the follower's question off.
  await cli.locator('.questions li', { hasText: 'What lens' }).locator('button.tick').click();
  await cli.locator('.questions li', { hasText: 'What lens' }).filter({ hasText: 'answered' }).waitFor({ timeout: T });
  result.ticked = true;

  // The reminder, the day before.
  const r = await fetch(`${opt.remind}?title=${encodeURIComponent(opt.title)}`);
  result.reminded = (await r.text()).trim();
  await follower.waitForFunction((t) => document.getElementById('notes').textContent.includes(`Reminder: ${t}`), opt.title, { timeout: T });
  result.reminder = await follower.locator('#notes div', { hasText: 'Reminder:' }).first().textContent();

  result.sideways = { caster: await sideways(caster), follower: await sideways(follower) };
  if (opt.shot) await follower.screenshot({ path: opt.shot, fullPage: false });
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

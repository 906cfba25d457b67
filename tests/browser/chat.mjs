// Opens two viewers' player pages in Debian's headless Chromium and chats:
// a comment typed in the first page must appear in the second's feed, and
// hearts tapped in the first must float in the second. With --owner (the
// broadcaster's page with its owner token), the owner turns comments off
// there and the second page's box must close.
//
//   node chat.mjs --from URL --to URL [--owner URL] [--text TEXT]
//
// Prints one JSON line on stdout: how long the comment took to show in the
// other page (from the first try that the node accepted), how many hearts
// floated in each page, both feeds, and page errors. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    owner: { type: 'string' },
    text: { type: 'string', default: 'hello from the other page' },
    shots: { type: 'string' }, // a directory for screenshots of the second page
  },
});
if (!opt.from || !opt.to) {
  console.error('usage: node chat.mjs --from URL --to URL [--text TEXT]');
  process.exit(2);
}

let browser;
const result = { errors: [] };
try {
  browser = await launch({ viewport: { width: 390, height: 844 } }); // a phone
  const from = browser.page;
  const to = await browser.ctx.newPage();
  for (const p of [from, to]) p.on('pageerror', (e) => result.errors.push(e.message));
  // Console errors count too, but for the media's: the test's broadcast has
  // no media (the chat needs none), so the player's asks for it (WHEP, the
  // HLS playlist) are refused.
  const media = (url) => url.endsWith('/whep') || url.includes('/hls/');
  to.on('console', (m) => {
    const at = m.location().url || '';
    if (m.type() === 'error' && !media(at)) result.errors.push(`${m.text()} (${at})`);
  });
  await from.goto(opt.from);
  await to.goto(opt.to);

  // The viewer's node takes comments once its moderation state matched the
  // broadcaster's beat: type, send, and try again while the page says so.
  const deadline = Date.now() + 30000;
  let sent = 0;
  for (;;) {
    await from.fill('#say', opt.text);
    await from.press('#say', 'Enter');
    try {
      await from.waitForFunction(() => document.getElementById('say').value === '', null, { timeout: 2000 });
      sent = Date.now();
      break;
    } catch {
      const note = await from.textContent('#chatnote');
      console.error('not sent yet:', note);
      if (Date.now() > deadline) throw new Error(`the comment was never taken: ${note}`);
    }
  }
  await to.waitForFunction((text) => [...document.querySelectorAll('#feed li')].some((li) => li.textContent.includes(text)),
    opt.text, { timeout: 20000 });
  result.commentMs = Date.now() - sent;
  result.author = await to.evaluate((text) => window.peerscope.chat.comments.find((c) => c.text === text).author, opt.text);

  for (let i = 0; i < 3; i++) await from.click('#heartbtn');
  await to.waitForFunction(() => window.peerscope.chat.floated > 0 && window.peerscopeHearts.alive(document.getElementById('hearts')) > 0,
    null, { timeout: 20000 });
  result.floatedFrom = await from.evaluate(() => window.peerscope.chat.floated);
  result.floatedTo = await to.evaluate(() => window.peerscope.chat.floated);
  result.feedFrom = await from.evaluate(() => window.peerscope.chat.comments.map((c) => c.text));
  result.feedTo = await to.evaluate(() => window.peerscope.chat.comments.map((c) => c.text));
  result.viewers = await to.textContent('#viewers');
  result.layout = await layouts(from, to, opt.text);

  // A burst of hearts floats whole, and never floods the page: the first
  // page posts 30 at once (as its heart button would over many taps).
  const total = await to.evaluate(() => window.peerscope.chat.hearts);
  const floatedBefore = await to.evaluate(() => window.peerscope.chat.floated);
  await from.evaluate(async () => {
    const token = document.querySelector('meta[name="peerscope-token"]').content;
    await fetch('chat/heart', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Peerscope-Token': token }, body: '{"n":30}' });
  });
  await to.waitForFunction((n) => window.peerscope.chat.hearts >= n + 30, total, { timeout: 20000 });
  let most = 0;
  for (let i = 0; i < 10; i++) {
    most = Math.max(most, await to.evaluate(() => window.peerscopeHearts.alive(document.getElementById('hearts'))));
    await to.waitForTimeout(100);
  }
  result.burstHeartNodes = most;
  await to.waitForFunction((n) => window.peerscope.chat.floated >= n + 30, floatedBefore, { timeout: 10000 }).catch(() => {});
  result.burstFloated = await to.evaluate((n) => window.peerscope.chat.floated - n, floatedBefore);

  if (opt.owner) {
    const own = await browser.ctx.newPage();
    own.on('pageerror', (e) => result.errors.push(e.message));
    await own.goto(opt.owner);
    await own.waitForSelector('#owner:not([hidden])', { timeout: 10000 });
    await own.waitForFunction((text) => window.peerscope.chat.comments.some((c) => c.text === text), opt.text, { timeout: 20000 });
    result.ownerModButtons = await own.locator('#feed button.mod').count();
    await own.click('#offbtn');
    await to.waitForFunction(() => document.getElementById('say').disabled, null, { timeout: 20000 });
    result.offAtViewer = true;
    result.fromModButtons = await from.locator('#feed button.mod').count();
  }
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// layouts looks at the second page on a phone and two tablets: at each,
// the first page's hearts must float there (it taps none), and the
// comment must lie over the video on the phone, beside it on a tablet held
// sideways and under it on one held upright, with nothing to scroll sideways.
async function layouts(from, to, text) {
  const sizes = { phone: { width: 390, height: 844 }, landscape: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 } };
  const out = {};
  for (const [name, size] of Object.entries(sizes)) {
    await to.setViewportSize(size);
    const before = await to.evaluate(() => window.peerscope.chat.floated);
    await from.click('#heartbtn');
    await to.waitForFunction((n) => window.peerscope.chat.floated > n && window.peerscopeHearts.alive(document.getElementById('hearts')) > 0,
      before, { timeout: 20000 });
    out[name] = await to.evaluate((text) => {
      const box = (e) => { const r = e.getBoundingClientRect(); return { l: r.left, t: r.top, r: r.right, b: r.bottom }; };
      const li = [...document.querySelectorAll('#feed li')].find((x) => x.textContent.includes(text));
      const de = document.documentElement;
      return { stage: box(document.querySelector('.stage')), comment: li ? box(li) : null,
        scrollWidth: de.scrollWidth, clientWidth: de.clientWidth, say: box(document.getElementById('say')), height: innerHeight };
    }, text);
    if (opt.shots) await to.screenshot({ path: `${opt.shots}/player-${name}.png` });
  }
  return out;
}

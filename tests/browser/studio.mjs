// The studio: goes live from the go-live page with Chromium's fake camera,
// then, at a phone's size and two tablets' (the live page resized, as a
// turned tablet would be), a viewer on another node comments and sends
// hearts through its node's chat API (what its player page posts), and the
// go-live page must show the comment (with its author's face) over the
// preview, which fills the screen, float at least one heart over it, count
// at least one viewer and list who watches on a tap, with the share sheet's
// two links copied, no error in its console, no policy violation and no
// sideways scroll. Then the broadcaster turns comments off (the viewer's
// node refuses the next one) and on again (taken; its frame time gives the
// nearest viewer's latency), deletes a comment (the viewer's node marks it
// deleted) and blocks its author, each with a tap or two; ends, reads the
// summary and plays the replay from its link.
//
//   node studio.mjs --url GO-LIVE-PAGE --viewer PLAYER-PAGE --token PAGE-TOKEN [--text T] [--shots DIR]
//
// PLAYER-PAGE is the viewer node's player page (its chat API is chat/
// there), PAGE-TOKEN that node's page token. Prints one JSON line on
// stdout: what the studio showed at each size, and its errors. Logs go to
// stderr.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    viewer: { type: 'string' },
    token: { type: 'string' },
    text: { type: 'string', default: 'hello studio' },
    shots: { type: 'string' },
  },
});
if (!opt.url || !opt.viewer || !opt.token) {
  console.error('usage: node studio.mjs --url GO-LIVE-PAGE --viewer PLAYER-PAGE --token PAGE-TOKEN [--text T] [--shots DIR]');
  process.exit(2);
}
const sizes = { phone: { width: 390, height: 844 }, tablet: { width: 1024, height: 768 }, portrait: { width: 768, height: 1024 }, landscape: { width: 844, height: 390 } };

const result = { errors: [], violations: [], sizes: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: sizes.phone,
  });
  const { ctx, page: studio } = browser;
  await ctx.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} refused ${e.blockedURI}`));
  });
  studio.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  studio.on('pageerror', (e) => result.errors.push('uncaught: ' + e.message));
  // Which request a "Failed to load resource" was.
  studio.on('response', (r) => { if (r.status() >= 400) result.errors.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  await studio.goto(opt.url);
  await studio.fill('#title', 'The studio');
  await studio.click('#golive');
  await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: 30000 });
  // Share, over the preview, opens the share sheet once the links are in.
  await studio.waitForSelector('#t-share:not([disabled])', { timeout: 20000 });
  await studio.click('#t-share');
  await studio.waitForSelector('#sharesheet[open]', { timeout: 5000 });
  result.share = await studio.evaluate(() => ({ web: document.getElementById('share-web').value, app: document.getElementById('share-app').value, id: window.peerscopeStudio.id }));
  // Copy puts the link on the clipboard. (A grant replaces the origin's
  // permissions: the camera's and microphone's go with it, or the capture
  // stops.)
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write', 'camera', 'microphone'], { origin: new URL(opt.url).origin });
  await studio.click('#copy-app');
  await studio.waitForFunction(() => document.getElementById('share-note').textContent === 'Copied.', null, { timeout: 5000 });
  result.share.copied = await studio.evaluate(() => navigator.clipboard.readText());
  await studio.click('#copy-web');
  await studio.waitForFunction(() => document.getElementById('share-note').textContent === 'Copied.', null, { timeout: 5000 });
  result.share.copiedWeb = await studio.evaluate(() => navigator.clipboard.readText());
  if (opt.shots) await studio.screenshot({ path: join(opt.shots, 'studio-share.png') });
  await studio.click('#share-close');
  await studio.waitForFunction(() => !document.getElementById('sharesheet').open, null, { timeout: 5000 });

  for (const [size, viewport] of Object.entries(sizes)) {
    await studio.setViewportSize(viewport);
    const text = `${opt.text} at ${size}`;
    await comment(text);
    await studio.waitForFunction((t) => [...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes(t)),
      text, { timeout: 20000 });
    const before = await studio.evaluate(() => window.peerscopeStudio.floated);
    await chat('heart', { n: 3 });
    await studio.waitForFunction((n) => window.peerscopeStudio.floated > n && window.peerscopeHearts.alive(document.getElementById('hearts')) > 0,
      before, { timeout: 20000 });
    await studio.waitForFunction(() => Number(document.getElementById('viewercount').textContent) >= 1, null, { timeout: 20000 });
    const seen = await studio.evaluate((t) => {
      const box = (el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
      const li = [...document.querySelectorAll('#comments li')].find((x) => x.textContent.includes(t));
      const v = box(document.getElementById('preview')), c = box(li), h = box(document.querySelector('#hearts canvas'));
      const tools = box(document.getElementById('tools')), count = box(document.getElementById('watching'));
      // A heart rises in #hearts, which clips it: that box must lie over the
      // video, and the heart across it.
      const field = box(document.getElementById('hearts'));
      const inside = (a, b) => a.x >= b.x - 1 && a.y >= b.y - 1 && a.x + a.w <= b.x + b.w + 1 && a.y + a.h <= b.y + b.h + 1;
      const de = document.documentElement;
      return {
        comment: li.textContent, author: li.querySelector('b').textContent, face: li.querySelector('.face') ? li.querySelector('.face').textContent : '',
        toolsOver: inside(tools, v), countOver: inside(count, v), fills: v.w >= innerWidth - 1 && v.h >= innerHeight - 1,
        over: inside(c, v), beside: c.x >= v.x + v.w, lowerHalf: c.y >= v.y + v.h / 2,
        heartOver: inside(field, v) && h.x >= v.x && h.x + h.w <= v.x + v.w, viewers: Number(document.getElementById('viewercount').textContent),
        sideways: de.scrollWidth > de.clientWidth, scrollWidth: de.scrollWidth, clientWidth: de.clientWidth,
        heartNodes: window.peerscopeHearts.alive(document.getElementById('hearts')),
      };
    }, text);
    // The health line: a bitrate over zero from the WHIP connection's stats.
    await studio.waitForFunction(() => { const h = window.peerscopeBroadcast.health; return h && h.kbps > 0 && !document.getElementById('health').hidden; },
      null, { timeout: 20000 }).catch(async (e) => {
      throw new Error(`the health line never showed a bitrate (${JSON.stringify(await studio.evaluate(() => [window.peerscopeBroadcast.health, document.getElementById('stats').textContent]))}): ${e.message}`);
    });
    seen.health = await studio.evaluate(() => ({ ...window.peerscopeBroadcast.health, text: document.getElementById('health-text').textContent }));
    // A tap on the count opens who watches.
    await studio.click('#watching');
    await studio.waitForSelector('#viewersheet[open]', { timeout: 5000 });
    await studio.waitForFunction(() => document.getElementById('anoncount').textContent !== '', null, { timeout: 10000 });
    seen.viewerSheet = await studio.evaluate(() => document.getElementById('anoncount').textContent);
    await studio.click('#vs-close');
    await studio.waitForFunction(() => !document.getElementById('viewersheet').open, null, { timeout: 5000 });
    result.sizes.push({ size, ...viewport, ...seen });
    if (opt.shots) await studio.screenshot({ path: join(opt.shots, `studio-${size}.png`) });
  }

  // A burst of hearts floats whole, and never floods the page.
  const floatedBefore = await studio.evaluate(() => window.peerscopeStudio.floated);
  await chat('heart', { n: 30 });
  await studio.waitForFunction(() => window.peerscopeStudio.hearts >= 39, null, { timeout: 20000 }).catch(() => {});
  result.maxHeartNodes = await studio.evaluate(() => window.peerscopeHearts.alive(document.getElementById('hearts')));
  await studio.waitForFunction((n) => window.peerscopeStudio.floated >= n + 30, floatedBefore, { timeout: 10000 }).catch(() => {});
  result.burstFloated = await studio.evaluate((n) => window.peerscopeStudio.floated - n, floatedBefore);

  // Comments off, over the preview: the state shows, the viewer's next
  // comment is refused at the viewer's node; then on again, and it is taken.
  await studio.setViewportSize(sizes.phone);
  await studio.click('#t-comments');
  await studio.waitForFunction(() => window.peerscopeStudio.commentsOff && document.getElementById('modstate').textContent === 'Comments are off', null, { timeout: 10000 });
  result.off = { on: await studio.evaluate(() => document.getElementById('t-comments').classList.contains('on')), label: await studio.textContent('#t-comments'),
    refused: await refusedAtViewer(`${opt.text} while off`) };
  if (opt.shots) await studio.screenshot({ path: join(opt.shots, 'studio-comments-off.png') });
  await studio.click('#t-comments');
  await studio.waitForFunction(() => !window.peerscopeStudio.commentsOff && document.getElementById('modstate').hidden, null, { timeout: 10000 });
  // This one says, as a player does, which frame was on its screen: 1.5 s
  // behind (the test runs on the nodes' machine, on their clock).
  result.off.takenAgain = await takenAtViewer(`${opt.text} on again`, 1500);
  await studio.waitForFunction((t) => [...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes(t)),
    `${opt.text} on again`, { timeout: 20000 });
  await studio.waitForFunction(() => /viewer \d+\.\d s behind/.test(document.getElementById('health-text').textContent), null, { timeout: 10000 }).catch(() => {});
  result.nearest = await studio.evaluate(() => ({ ms: window.peerscopeStudio.nearestMs, text: document.getElementById('health-text').textContent }));
  // Followers only needs a community (none here): no such button.
  result.followersHidden = await studio.evaluate(() => document.getElementById('t-followers').hidden);

  // One-tap moderation, on the phone: tap a comment, then Delete; tap
  // another, then Block its author. The viewer's node hears of the delete.
  await studio.setViewportSize(sizes.phone);
  const gone = `${opt.text} at portrait`;
  await studio.locator('#comments li', { hasText: gone }).locator('.c-body').click();
  await studio.locator('#comments li', { hasText: gone }).locator('.c-delete').waitFor({ timeout: 5000 });
  if (opt.shots) await studio.screenshot({ path: join(opt.shots, 'studio-picked.png') });
  await studio.locator('#comments li', { hasText: gone }).locator('.c-delete').click();
  await studio.waitForFunction((t) => ![...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes(t)), gone, { timeout: 20000 });
  result.deletedAtViewer = await deletedAtViewer(gone);
  await studio.locator('#comments li', { hasText: `${opt.text} at tablet` }).locator('.c-body').click();
  await studio.locator('#comments li', { hasText: `${opt.text} at tablet` }).locator('.c-block').click();
  await studio.waitForFunction((t) => ![...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes(t)), `${opt.text} at tablet`, { timeout: 20000 });
  result.afterBlock = await studio.evaluate(() => ({ comments: window.peerscopeStudio.comments.length, note: window.peerscopeStudio.note || '' }));
  if (opt.shots) await studio.screenshot({ path: join(opt.shots, 'studio-moderated.png') });

  result.violations = await studio.evaluate(() => window.__violations);
  await studio.click('#golive'); // now labelled End
  await studio.waitForFunction(() => window.peerscopeBroadcast.state === 'ended', null, { timeout: 10000 });
  result.afterEnd = await studio.evaluate(() => ({ on: window.peerscopeStudio.on, commentsHidden: document.getElementById('comments').hidden }));
  result.heartsSent = 3 * Object.keys(sizes).length + 30;
  result.summary = await summary(studio);
  result.violations = await studio.evaluate(() => window.__violations);
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// summary reads the panel End shows at each size, waits for its replay
// link and loads it, then presses Go live again.
async function summary(studio) {
  await studio.waitForSelector('#summary:not([hidden])', { timeout: 10000 });
  await studio.waitForSelector('#sum-replay-row:not([hidden])', { timeout: 20000 }).catch(() => {});
  const out = { sizes: [] };
  for (const [size, viewport] of Object.entries(sizes)) {
    await studio.setViewportSize(viewport);
    out.sizes.push({ size, ...await studio.evaluate(() => {
      const de = document.documentElement, box = document.getElementById('summary').getBoundingClientRect();
      const t = (id) => document.getElementById(id).textContent;
      return { duration: t('sum-duration'), peak: Number(t('sum-peak')), total: Number(t('sum-total')), hearts: Number(t('sum-hearts')), replay: document.getElementById('sum-replay').href || '',
        replayViews: document.getElementById('sum-replays-row').hidden ? -1 : Number(t('sum-replays')),
        shown: box.width > 0 && box.height > 0, sideways: de.scrollWidth > de.clientWidth };
    }) });
    if (opt.shots) await studio.screenshot({ path: join(opt.shots, `summary-${size}.png`) });
  }
  const replay = out.sizes[0].replay;
  if (replay) {
    out.replayStatus = (await fetch(replay)).status;
    // The link opens a replay that plays.
    const page = await studio.context().newPage();
    page.on('pageerror', (e) => result.errors.push('replay page: ' + e.message));
    await page.goto(replay);
    await page.waitForFunction(() => { const v = document.querySelector('video'); return v && v.currentTime > 1; }, null, { timeout: 30000 }).catch(() => {});
    out.replayPlayed = await page.evaluate(() => { const v = document.querySelector('video'); return v ? v.currentTime : -1; });
    out.replayMode = await page.evaluate(() => (window.peerscope && window.peerscope.mode) || '');
    await page.close();
  }
  await studio.click('#again');
  await studio.waitForFunction(() => ['idle', 'preview'].includes(window.peerscopeBroadcast.state), null, { timeout: 5000 });
  out.again = await studio.evaluate(() => ({ state: window.peerscopeBroadcast.state, summaryHidden: document.getElementById('summary').hidden,
    button: document.getElementById('golive').textContent }));
  return out;
}

// chat posts to the viewer's node's chat API as its player page would, and
// returns the answer's status.
async function chat(what, body) {
  const r = await fetch(new URL(`chat/${what}`, opt.viewer), {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', 'Peerscope-Token': opt.token },
  });
  await r.arrayBuffer();
  if (r.status >= 400 && r.status !== 503) throw new Error(`chat/${what}: ${r.status}`);
  return r.status;
}

// comment sends text, again while the viewer's node says it cannot yet
// (503: it takes comments once its moderation state matched the
// broadcaster's).
async function comment(text) {
  const deadline = Date.now() + 30000;
  while (await chat('comment', { text }) === 503) {
    if (Date.now() > deadline) throw new Error("the viewer's node never took the comment");
    await new Promise((r) => setTimeout(r, 300));
  }
}

// refusedAtViewer sends text at the viewer's node until it refuses it as
// comments being off (403; the switch takes a moment to reach it), and
// returns what it said.
async function refusedAtViewer(text) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const r = await fetch(new URL('chat/comment', opt.viewer), {
      method: 'POST', body: JSON.stringify({ text }), headers: { 'Content-Type': 'application/json', 'Peerscope-Token': opt.token },
    });
    const body = (await r.text()).trim();
    if (r.status === 403) return body;
    if (Date.now() > deadline) return `never refused: last ${r.status} ${body}`;
    await new Promise((res) => setTimeout(res, 300));
  }
}

// takenAtViewer sends text at the viewer's node until it takes it, saying
// the frame on screen is behind ms old.
async function takenAtViewer(text, behind) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const status = await fetch(new URL('chat/comment', opt.viewer), {
      method: 'POST', body: JSON.stringify({ text, at: Date.now() - behind }), headers: { 'Content-Type': 'application/json', 'Peerscope-Token': opt.token },
    }).then(async (r) => { await r.arrayBuffer(); return r.status; });
    if (status < 300) return true;
    if (Date.now() > deadline) return false;
    await new Promise((res) => setTimeout(res, 300));
  }
}

// deletedAtViewer waits for the viewer's node to say the comment was
// deleted (or to leave it out of its log).
async function deletedAtViewer(text) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const r = await fetch(new URL('chat/log', opt.viewer));
    const log = await r.json();
    const c = log.find((x) => x.text === text);
    if (!c || c.deleted) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 300));
  }
}

// The studio with people in it: goes live from the go-live page with
// Chromium's fake camera on a node signed in at a community, while a
// signed-in viewer (on another node, through its node's chat API as its
// player page posts) comments. The comment must show its author's name and
// face, not "anonymous"; a tap on the count lists the viewer by name; then
// Followers only (offered since the node has a community) shows its state
// over the preview, the followed viewer's next comment is still taken,
// and Everyone undoes it.
//
//   node studio-people.mjs --url GO-LIVE-PAGE --viewer PLAYER-PAGE --token PAGE-TOKEN [--shots DIR]
//
// Prints one JSON line on stdout; logs go to stderr.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { launch, loopbackWebRTCArgs } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: { url: { type: 'string' }, viewer: { type: 'string' }, token: { type: 'string' }, shots: { type: 'string' } },
});
if (!opt.url || !opt.viewer || !opt.token) {
  console.error('usage: node studio-people.mjs --url GO-LIVE-PAGE --viewer PLAYER-PAGE --token PAGE-TOKEN [--shots DIR]');
  process.exit(2);
}

const result = { errors: [] };
let browser;
try {
  browser = await launch({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required', ...loopbackWebRTCArgs],
    viewport: { width: 390, height: 844 },
  });
  const { page } = browser;
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  page.on('pageerror', (e) => result.errors.push('uncaught: ' + e.message));
  page.on('response', (r) => { if (r.status() >= 400) result.errors.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  await page.goto(opt.url);
  await page.fill('#title', 'People');
  await page.click('#golive');
  await page.waitForFunction(() => window.peerscopeBroadcast.state === 'live', null, { timeout: 30000 });
  await page.waitForSelector('#t-followers:not([hidden])', { timeout: 20000 });

  await comment('hello from a signed-in viewer');
  await page.waitForFunction(() => [...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes('signed-in viewer')), null, { timeout: 20000 });
  result.comment = await page.evaluate(() => {
    const li = [...document.querySelectorAll('#comments li')].find((x) => x.textContent.includes('signed-in viewer'));
    return { author: li.querySelector('b').textContent, face: li.querySelector('.face').textContent };
  });

  // Who watches: the names by the count (read every 5 s), then the list.
  await page.waitForFunction(() => document.getElementById('viewernames').textContent !== '', null, { timeout: 20000 });
  await page.click('#watching');
  await page.waitForSelector('#viewersheet[open]', { timeout: 5000 });
  result.sheet = await page.evaluate(() => ({ names: [...document.querySelectorAll('#faces li .name')].map((x) => x.textContent),
    faces: [...document.querySelectorAll('#faces li .face')].map((x) => x.textContent), anon: document.getElementById('anoncount').textContent }));
  if (opt.shots) await page.screenshot({ path: join(opt.shots, 'studio-people-viewers.png') });
  await page.click('#vs-close');
  await page.waitForFunction(() => !document.getElementById('viewersheet').open, null, { timeout: 5000 });

  // Followers only: the node fills in whom its account follows.
  await page.click('#t-followers');
  await page.waitForFunction(() => window.peerscopeStudio.followersOnly && !document.getElementById('modstate').hidden, null, { timeout: 10000 });
  result.followers = { state: await page.textContent('#modstate'), label: await page.textContent('#t-followers'), note: await page.evaluate(() => window.peerscopeStudio.note || '') };
  await comment('still here, followed');
  await page.waitForFunction(() => [...document.querySelectorAll('#comments li')].some((li) => li.textContent.includes('still here, followed')), null, { timeout: 20000 });
  result.followers.takenFromFollowed = true;
  if (opt.shots) await page.screenshot({ path: join(opt.shots, 'studio-people-followers.png') });
  await page.click('#t-followers');
  await page.waitForFunction(() => !window.peerscopeStudio.followersOnly && document.getElementById('modstate').hidden, null, { timeout: 10000 });
  result.followers.undone = true;

  await page.click('#golive'); // End
  await page.waitForSelector('#summary:not([hidden])', { timeout: 10000 });
  result.summaryNamed = Number(await page.textContent('#sum-named'));
  await page.waitForSelector('#sum-replay-row:not([hidden])', { timeout: 20000 }).catch(() => {});
  result.summaryWeb = await page.evaluate(() => (document.getElementById('sum-web-row').hidden ? '' : document.getElementById('sum-web').href));
  if (opt.shots) await page.screenshot({ path: join(opt.shots, 'studio-people-summary.png') });
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// comment posts text at the viewer's node as its player page would, again
// while it says it cannot yet (503: its moderation state not yet matched).
async function comment(text) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const r = await fetch(new URL('chat/comment', opt.viewer), {
      method: 'POST', body: JSON.stringify({ text }), headers: { 'Content-Type': 'application/json', 'Peerscope-Token': opt.token },
    });
    const body = await r.text();
    if (r.status < 300) return;
    if (r.status !== 503 || Date.now() > deadline) throw new Error(`the viewer's node refused ${JSON.stringify(text)}: ${r.status} ${body}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

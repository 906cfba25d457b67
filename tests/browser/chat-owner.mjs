// The broadcaster's page and four viewers' pages in Debian's headless
// Chromium, each viewer on its own node: who is shown as whom, the viewer
// list, and every moderation control of the owner's page, used by clicking.
//
//   node chat-owner.mjs --owner URL --a URL --b URL --c URL --d URL
//                       --a-peer ID --b-peer ID --c-peer ID --avatar URL
//
// A's node has an attestation (a verified identity), the others none.
//  1. A and C comment: B's page shows A's avatar and name, C as anonymous;
//     the owner's viewer list names A.
//  2. The owner blocks C from C's comment: C's next comment is refused and
//     shows in no page (D's later comment does, in every page).
//  3. The owner deletes A's comment: it disappears from B's page.
//  4. Followers only (nobody followed), then everyone again; comments off,
//     then on: B's page follows each change.
//  5. B comments, A reports it from A's page; D, the only viewer the
//     broadcaster heard from who is not author, reporter or blocked, is
//     summoned in its page and votes to mute; the owner's page shows the
//     verdict and B's next comment is refused.
//
// Prints one JSON line: what each step found, and page errors.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    owner: { type: 'string' }, a: { type: 'string' }, b: { type: 'string' },
    c: { type: 'string' }, d: { type: 'string' },
    'a-peer': { type: 'string' }, 'b-peer': { type: 'string' }, 'c-peer': { type: 'string' }, avatar: { type: 'string' },
  },
});
for (const k of ['owner', 'a', 'b', 'c', 'd', 'a-peer', 'b-peer', 'c-peer', 'avatar']) {
  if (!opt[k]) {
    console.error(`usage: node chat-owner.mjs --owner URL --a URL --b URL --c URL --d URL --a-peer ID --b-peer ID --c-peer ID --avatar URL (missing --${k})`);
    process.exit(2);
  }
}

const T = 30000;
const result = { errors: [] };
let browser;

// say types a comment in a page and returns whether its node took it
// (the box is cleared) or the note the page showed instead.
async function say(page, text, { retry = false } = {}) {
  const deadline = Date.now() + T;
  for (;;) {
    await page.fill('#say', text);
    await page.press('#say', 'Enter');
    try {
      await page.waitForFunction(() => document.getElementById('say').value === '', null, { timeout: 3000 });
      return { sent: true };
    } catch {
      const note = await page.textContent('#chatnote');
      if (!retry || Date.now() > deadline) return { sent: false, note };
      console.error('not taken yet:', note);
    }
  }
}

const hasComment = (page, text) => page.waitForFunction(
  (t) => window.peerscope.chat.comments.some((c) => c.text === t), text, { timeout: T });
const shows = (page, text) => page.evaluate(
  (t) => window.peerscope.chat.comments.some((c) => c.text === t), text);

try {
  browser = await launch({ viewport: { width: 390, height: 844 } });
  const pages = {};
  for (const name of ['owner', 'a', 'b', 'c', 'd']) {
    const p = name === 'owner' ? browser.page : await browser.ctx.newPage();
    p.on('pageerror', (e) => result.errors.push(`${name}: ${e.message}`));
    await p.goto(opt[name]);
    pages[name] = p;
  }
  const { owner, a, b, c, d } = pages;
  const viewers = [a, b, c, d];
  await owner.waitForSelector('#owner:not([hidden])', { timeout: T });

  // 1. Who is who.
  for (const [p, text] of [[a, 'hello from A'], [c, 'hi from C'], [d, 'D is here']]) {
    const r = await say(p, text, { retry: true });
    if (!r.sent) throw new Error(`"${text}" was never taken: ${r.note}`);
  }
  for (const text of ['hello from A', 'hi from C', 'D is here']) await hasComment(b, text);
  const row = (page, text) => page.evaluate((t) => {
    const li = [...document.querySelectorAll('#feed li')].find((x) => x.textContent.includes(t));
    const img = li.querySelector('img.avatar');
    return { who: li.querySelector('b').textContent, anon: li.querySelector('b').className === 'anon', avatar: img ? img.getAttribute('src') : null };
  }, text);
  result.aAtB = await row(b, 'hello from A');
  result.cAtB = await row(b, 'hi from C');
  await owner.waitForFunction((p) => window.peerscope.chat.identified.some((v) => v.peer === p), opt['a-peer'], { timeout: T });
  result.ownerList = await owner.evaluate(() => ({
    identified: window.peerscope.chat.identified.map((v) => v.name || v.handle),
    text: document.getElementById('viewerlist').textContent,
    live: document.getElementById('livecount').textContent,
    buttons: document.querySelectorAll('#viewers-identified button.block').length,
  }));

  // 2. Block C from its comment in the owner's feed.
  await hasComment(owner, 'hi from C');
  await owner.click(`#feed li[data-peer="${opt['c-peer']}"] button.block`);
  await owner.waitForFunction((p) => window.peerscope.chat.blocked.includes('peer:' + p), opt['c-peer'], { timeout: T });
  // C's node has the block once C's page heard of it; then C is refused.
  const moderated = (page, op, target) => page.waitForFunction(([o, t]) =>
    window.peerscope.chat.moderated.some((m) => m.op === o && m.target === t && (o === 'mute' || m.on)), [op, target], { timeout: T });
  await moderated(c, 'block', 'peer:' + opt['c-peer']);
  const cr = await say(c, 'C after the block');
  result.cRefused = cr.sent ? '' : cr.note;
  const marker = await say(d, 'D after the block', { retry: true });
  if (!marker.sent) throw new Error(`D's marker was refused: ${marker.note}`);
  for (const p of [owner, a, b, d]) await hasComment(p, 'D after the block');
  result.cAfterBlockShown = 0;
  for (const p of [owner, a, b, d]) if (await shows(p, 'C after the block')) result.cAfterBlockShown++;
  result.ownerBlocked = await owner.evaluate(() => window.peerscope.chat.blocked);

  // 3. Delete A's comment.
  await owner.click(`#feed li[data-peer="${opt['a-peer']}"] button.delete`);
  await b.waitForFunction(() => [...document.querySelectorAll('#feed li')].some((li) => li.textContent.includes('hello from A') && li.hidden), null, { timeout: T });
  result.deletedAtB = true;

  // 4. Followers only, then everyone; comments off, then on.
  await owner.fill('#follows', 'twitter:nobody');
  await owner.click('#followbtn');
  await b.waitForFunction(() => window.peerscope.chat.followersOnly, null, { timeout: T });
  const fo = await say(b, 'B while followers only');
  result.followersOnlyRefused = !fo.sent ? fo.note : '';
  await owner.click('#followbtn');
  await b.waitForFunction(() => !window.peerscope.chat.followersOnly, null, { timeout: T });
  await owner.click('#offbtn');
  await b.waitForFunction(() => document.getElementById('say').disabled, null, { timeout: T });
  result.offAtB = true;
  await owner.click('#offbtn');
  await b.waitForFunction(() => !document.getElementById('say').disabled, null, { timeout: T });
  result.onAtB = true;

  // 5. The jury.
  const bad = await say(b, 'buy cheap followers here', { retry: true });
  if (!bad.sent) throw new Error(`B's comment was refused: ${bad.note}`);
  await hasComment(a, 'buy cheap followers here');
  await a.evaluate(() => {
    const li = [...document.querySelectorAll('#feed li')].find((x) => x.textContent.includes('buy cheap followers here'));
    li.querySelector('button.rep').click();
  });
  await d.waitForSelector('#jury:not([hidden]) button.guilty', { timeout: T });
  result.summonedText = await d.textContent('#jury');
  result.othersSummoned = 0;
  for (const p of [a, b, c]) result.othersSummoned += await p.evaluate(() => window.peerscope.chat.summons.length);
  await d.click('#jury button.guilty');
  await owner.waitForFunction(() => window.peerscope.chat.verdicts.length > 0, null, { timeout: T });
  result.verdict = await owner.evaluate(() => window.peerscope.chat.verdicts[0]);
  result.juryLog = await owner.evaluate(() => [...document.querySelectorAll('#jurylog li')].map((li) => li.textContent));
  await moderated(b, 'mute', 'peer:' + opt['b-peer']);
  const br = await say(b, 'B after the verdict');
  result.mutedRefused = br.sent ? '' : br.note;
  // The count moves as the nodes' reports come and go: wait (20 s at most)
  // for it to settle at the four viewers, then read it. A count that stays
  // wrong is still read, and fails the test.
  result.viewerCounts = [];
  for (const p of viewers) {
    await p.waitForFunction(() => window.peerscope.chat.viewers === 4, null, { timeout: 20000 }).catch(() => {});
    result.viewerCounts.push(await p.evaluate(() => window.peerscope.chat.viewers));
  }
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// Plays two attackers on a node's local API in Debian's headless Chromium,
// then the node's owner:
//
//  1. another site (--attack, a page on another origin, e.g. another
//     loopback port) that the owner visits: it posts a comment and hearts
//     as text/plain (fetch in no-cors mode, navigator.sendBeacon) and as a
//     form (enctype text/plain, the JSON hidden in the field's name), and
//     tries a JSON comment, a heart and a join with a guessed token (those
//     need a CORS preflight);
//  2. DNS rebinding: a page of evil.test served by the attacker (playwright
//     answers its first request, as the attacker's server would before the
//     name is rebound) on the node's own port, whose name then resolves to
//     127.0.0.1 (--host-resolver-rules): same-origin with the node, it reads
//     the player page for its token and posts a comment, a heart and a join
//     with JSON;
//  3. the owner's own player page (--player), which comments and hearts.
//
// Chromium's Local Network Access checks are turned off: the node must
// refuse these requests itself, in any browser.
//
//   node crossorigin.mjs --attack URL --node URL --player PATH --link LINK
//
// Prints one JSON line: what each attacker saw (the answers it could read),
// what the owner's page showed, its page errors and what its Content
// Security Policy refused. Logs go to stderr.
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    attack: { type: 'string' }, node: { type: 'string' }, player: { type: 'string' }, link: { type: 'string' },
  },
});
for (const k of ['attack', 'node', 'player', 'link']) {
  if (!opt[k]) {
    console.error(`usage: node crossorigin.mjs --attack URL --node URL --player PATH --link LINK (missing --${k})`);
    process.exit(2);
  }
}

const T = 20000;
const nodeURL = new URL(opt.node);
const result = { errors: [], ownerErrors: [] };
let browser;
try {
  browser = await launch({
    viewport: { width: 390, height: 844 },
    args: [
      '--host-resolver-rules=MAP evil.test 127.0.0.1',
      '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests',
    ],
  });
  const { ctx } = browser;

  // 1. Another site.
  const attack = browser.page;
  attack.on('pageerror', (e) => result.errors.push(e.message));
  await attack.goto(`${opt.attack}?node=${encodeURIComponent(opt.node)}&player=${encodeURIComponent(opt.player)}&link=${encodeURIComponent(opt.link)}`);
  await attack.waitForFunction(() => window.attack && window.attack.done, null, { timeout: T });
  result.crossSite = await attack.evaluate(() => window.attack.seen);

  // 2. DNS rebinding: evil.test on the node's port.
  const evil = `http://evil.test:${nodeURL.port}`;
  const rebind = await ctx.newPage();
  rebind.on('pageerror', (e) => result.errors.push(e.message));
  await rebind.route(`${evil}/attack.html`, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><title>evil</title><script>
      window.seen = {};
      (async () => {
        const seen = window.seen;
        const post = async (name, path, body, token) => {
          try {
            const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Peerscope-Token': token },
              body: JSON.stringify(body) });
            seen[name] = r.status;
          } catch (e) { seen[name] = 'failed: ' + e.message; }
        };
        let token = '';
        try {
          const r = await fetch(${JSON.stringify(opt.player)});
          seen.page = r.status;
          const m = (await r.text()).match(/name="peerscope-token" content="([^"]*)"/);
          token = m ? m[1] : '';
        } catch (e) { seen.page = 'failed: ' + e.message; }
        seen.token = token !== '';
        await post('comment', ${JSON.stringify(opt.player + 'chat/comment')}, { text: 'rebound comment' }, token);
        await post('heart', ${JSON.stringify(opt.player + 'chat/heart')}, { n: 40 }, token);
        await post('join', '/directory/api/node/watch', { link: ${JSON.stringify(opt.link)} }, token);
        seen.done = true;
      })();
    </script>`,
  }));
  await rebind.goto(`${evil}/attack.html`);
  await rebind.waitForFunction(() => window.seen && window.seen.done, null, { timeout: T });
  result.rebinding = await rebind.evaluate(() => window.seen);
  await rebind.close();

  // 3. The owner's own page still comments and hearts.
  const own = await ctx.newPage();
  own.on('pageerror', (e) => result.ownerErrors.push(e.message));
  // A broadcast with no media yet answers the players 503: what counts
  // here is what the page's own policy refused.
  own.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) result.ownerErrors.push(m.text()); });
  await own.goto(new URL(opt.player, opt.node).href);
  await own.waitForSelector('#chat:not([hidden])', { timeout: T });
  await own.fill('#say', 'from the owner page');
  await own.press('#say', 'Enter');
  await own.waitForFunction(() => window.peerscope.chat.comments.some((c) => c.text === 'from the owner page'), null, { timeout: T });
  for (let i = 0; i < 3; i++) await own.click('#heartbtn');
  await own.waitForTimeout(1200); // the page sends its taps every 500 ms
  result.ownerNote = await own.textContent('#chatnote');
  result.ownerFeed = await own.evaluate(() => window.peerscope.chat.comments.map((c) => c.text));
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(result));

// The directory page: what is live now and what is replayable, searchable,
// kept current by the directory's event stream. The same file is served by
// a bootstrap (at /) and by any node (at /directory/, which proxies the
// bootstrap's API); the API is always ./api/v1/… relative to the page. On
// a node, ./api/node/… adds what only that node can do: sign in, watch a
// listed broadcast, and the follow feed's go-live notes. Those act in the
// node's name: the node puts a page token into the page it serves its own
// machine (<meta name="peerscope-token">), which every call to ./api/node/
// sends in the Peerscope-Token header, with JSON. The bootstrap's page, and
// a node's page served to another machine, have none: they list, and show
// the link to watch with.
'use strict';

const $ = (id) => document.getElementById(id);
const tokenMeta = document.querySelector('meta[name="peerscope-token"]');
const token = tokenMeta ? tokenMeta.content : '';
const nodeHeaders = { 'Content-Type': 'application/json', 'Peerscope-Token': token };
const state = { tab: 'live', q: '', onNode: false, broadcasts: [], events: 0, open: {} };
window.peerscope = { directory: state };

function ago(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function item(b) {
  const li = document.createElement('li');
  li.dataset.id = b.id;
  const who = b.who || {};
  let avatar;
  if (who.avatar && who.avatar.startsWith('https://')) {
    avatar = document.createElement('img');
    avatar.src = who.avatar;
    avatar.alt = '';
  } else {
    avatar = document.createElement('div');
    avatar.className = 'noavatar';
  }
  const info = document.createElement('div');
  info.className = 'info';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = b.title || '(untitled)';
  const meta = document.createElement('div');
  meta.className = 'meta';
  const by = who.handle ? `${who.name ? who.name + ' ' : ''}${who.handle}` : 'anonymous';
  if (state.tab === 'live') {
    const live = document.createElement('span');
    live.className = 'live';
    live.textContent = 'LIVE';
    meta.append(live, ` · ${by} · ${b.viewers} watching · started ${ago(b.started)}`);
  } else {
    // Replay views: those of signed-in accounts apart (anonymous ones are
    // proven, but peer IDs are free).
    const signed = b.replay_viewers_identified ? ` (${b.replay_viewers_identified} of the replay's signed in)` : '';
    meta.textContent = `${by} · ended ${ago(b.ended)} · ${b.viewers + b.replay_viewers} views${signed}`;
  }
  info.append(title, meta);
  if (state.tab === 'live' && !state.onNode) {
    // The web link: plays here, in this browser, which joins the
    // broadcast's tree itself (nothing to install). "App" shows the
    // command for a Peerscope node instead.
    const watch = document.createElement('a');
    watch.className = 'watch';
    watch.href = webLink(b);
    watch.textContent = 'Watch';
    const app = document.createElement('button');
    app.className = 'app';
    app.textContent = 'App';
    app.title = 'Watch with a Peerscope node';
    app.addEventListener('click', () => open(b));
    li.append(avatar, info, watch, app);
    return li;
  }
  const watch = document.createElement('button');
  watch.textContent = state.tab === 'live' ? 'Watch' : 'Replay';
  watch.addEventListener('click', () => open(b));
  li.append(avatar, info, watch);
  return li;
}

function render() {
  const list = $('list');
  list.replaceChildren(...state.broadcasts.map(item));
  $('empty').hidden = state.broadcasts.length > 0;
}

let loading = null;
async function load() {
  const params = new URLSearchParams({ state: state.tab });
  if (state.q) params.set('q', state.q);
  const want = params.toString();
  loading = want;
  try {
    const r = await fetch(`./api/v1/broadcasts?${want}`);
    const body = await r.json();
    if (loading !== want) return; // a newer query went out
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    state.broadcasts = body.broadcasts;
    $('error').hidden = true;
    render();
  } catch (e) {
    $('error').textContent = `The directory cannot be read: ${e.message}`;
    $('error').hidden = false;
  }
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 200);
}

function note(text) {
  const d = document.createElement('div');
  d.textContent = text;
  $('notes').prepend(d);
  setTimeout(() => d.remove(), 15000);
}

async function open(b) {
  if (state.onNode) {
    const r = await fetch('./api/node/watch', { method: 'POST', headers: nodeHeaders, body: JSON.stringify({ link: b.link }) });
    const body = await r.json();
    if (r.ok) {
      location.href = body.player;
      return;
    }
    note(`Cannot watch: ${body.error ? body.error.message : r.statusText}`);
    return;
  }
  $('web').hidden = !!b.ended;
  $('weblink').href = webLink(b);
  $('linkcmd').textContent = `peerscope watch ${shellQuote(b.link)}`;
  $('copy').onclick = () => navigator.clipboard && navigator.clipboard.writeText(b.link);
  $('linkbox').showModal();
}

// webLink is where a live broadcast plays in a plain browser: the
// bootstrap's /w/<ID>/, beside this page (a node's page sends it on to its
// bootstrap's).
function webLink(b) {
  return new URL(`w/${encodeURIComponent(b.id)}/`, location.href).href;
}

// shellQuote quotes a word for a POSIX shell: whatever a link holds, the
// command shown runs peerscope watch with it as one argument, nothing else.
function shellQuote(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}

function stream(path, onEvent) {
  const es = new EventSource(path);
  es.addEventListener('open', () => { state.open[path] = true; });
  es.addEventListener('error', () => { state.open[path] = false; });
  for (const kind of ['live', 'update', 'ended', 'replay']) {
    es.addEventListener(kind, (m) => {
      state.events++;
      onEvent(kind, JSON.parse(m.data));
    });
  }
  return es;
}

async function identity() {
  if (!token) {
    // Served by the bootstrap itself, or to another machine: a sign-in
    // binds an account to a node, so the page says where to do it.
    if (!location.pathname.startsWith('/directory/')) $('signincmd').textContent = `peerscope signin --bootstrap ${shellQuote(location.origin)}`;
    $('howsignin').hidden = false;
    return;
  }
  let r;
  try {
    r = await fetch('./api/node/identity', { headers: { 'Peerscope-Token': token } });
  } catch {
    return;
  }
  if (!r.ok) return;
  const body = await r.json();
  state.onNode = true;
  state.identity = body.identity || null;
  render(); // a list drawn before we knew: its Watch joins on this node, not the web link
  for (const id of ['who', 'signout', 'signin', 'phone', 'finish']) $(id).hidden = true;
  if (body.identity) {
    $('who').textContent = `Signed in as ${body.identity.Handle || body.identity.Account}`;
    $('who').hidden = false;
    $('signout').hidden = false;
    // Go-live notes of the people this node's account follows.
    stream('./api/v1/feed', (kind, ev) => {
      if (kind === 'live') {
        const who = ev.broadcast.who ? ev.broadcast.who.handle : 'someone';
        note(`${who} is live: ${ev.broadcast.title || '(untitled)'}`);
      }
    });
  } else if (body.bootstrap) {
    $('signin').hidden = false;
    $('phone').hidden = false;
    $('finish').hidden = false;
  }
}

// A sign-in is redeemed by this node with the one-time code the bootstrap
// gave the browser that finished it at X: sent back here in the URL's
// fragment (the page was opened on this machine), or typed in from the
// bootstrap's page.
async function finishSignIn(code) {
  try {
    await nodePost('./api/node/signin/finish', { code });
    note('Signed in.');
  } catch (e) {
    note(`Not signed in: ${e.message}`);
  }
  await identity();
}

function codeFromFragment() {
  const m = /^#signin=([0-9A-Za-z-]{1,16})$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search); // used once
  return m[1];
}

async function nodePost(path, body) {
  const r = await fetch(path, { method: 'POST', headers: nodeHeaders, body: JSON.stringify(body) });
  const out = await r.json();
  if (!r.ok) throw new Error(out.error ? out.error.message : r.statusText);
  return out;
}

$('sendcode').addEventListener('click', async (ev) => {
  ev.preventDefault();
  try {
    await nodePost('./api/node/phone/start', { phone: $('phonenum').value.trim() });
    $('code').hidden = false;
    $('verify').hidden = false;
    note('Code sent.');
  } catch (e) {
    note(`Cannot send a code: ${e.message}`);
  }
});

$('verify').addEventListener('click', async (ev) => {
  ev.preventDefault();
  try {
    await nodePost('./api/node/phone/verify', { phone: $('phonenum').value.trim(), code: $('code').value.trim() });
    location.reload();
  } catch (e) {
    note(`Cannot sign in: ${e.message}`);
  }
});

$('finishbtn').addEventListener('click', async (ev) => {
  ev.preventDefault();
  await finishSignIn($('signincode').value.trim());
});

$('signout').addEventListener('click', async () => {
  try {
    await nodePost('./api/node/signout', {});
  } catch (e) {
    note(`Cannot sign out: ${e.message}`);
  }
  await identity();
});

$('signin').addEventListener('click', async () => {
  const r = await fetch('./api/node/signin', { method: 'POST', headers: nodeHeaders, body: JSON.stringify({ scopes: ['follows'] }) });
  const body = await r.json();
  if (r.ok) location.href = body.authorize_url;
  else note(`Cannot sign in: ${body.error ? body.error.message : r.statusText}`);
});

for (const b of document.querySelectorAll('nav button')) {
  b.addEventListener('click', () => {
    state.tab = b.dataset.state;
    for (const o of document.querySelectorAll('nav button')) o.classList.toggle('on', o === b);
    load();
  });
}
$('q').addEventListener('input', () => {
  state.q = $('q').value.trim();
  reloadSoon();
});
$('closebox').addEventListener('click', () => $('linkbox').close());
$('howsignin').addEventListener('click', () => $('signbox').showModal());
$('closesign').addEventListener('click', () => $('signbox').close());

// A shared link (/watch/<id> → ?watch=<id>) opens that broadcast.
async function openShared() {
  const id = new URLSearchParams(location.search).get('watch');
  if (!id) return;
  const r = await fetch(`./api/v1/broadcasts/${encodeURIComponent(id)}`);
  if (!r.ok) {
    note('That broadcast is not in the directory (it may be over).');
    return;
  }
  open(await r.json());
}

stream('./api/v1/events', () => reloadSoon());
const pendingCode = codeFromFragment();
identity().then(() => (pendingCode ? finishSignIn(pendingCode) : null)).then(openShared);
load();

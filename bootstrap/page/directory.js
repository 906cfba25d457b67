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
const state = {
  tab: 'live', q: '', onNode: false, broadcasts: [], upcoming: [], events: 0, open: {}, openQ: null,
  // upcomingFound: what the bootstrap found for a search on the Upcoming
  // tab ({q, list}); following: the Following tab's lists, as the
  // bootstrap selected them for the node's account.
  upcomingFound: { q: '', list: [] }, following: { live: [], upcoming: [] },
  // follows: the node's account's key and whom it follows (null until
  // asked, or not signed in); profile: the profile shown (?u=), if any.
  follows: null, profileWho: new URLSearchParams(location.search).get('u'), profile: null,
  // mapPick: the broadcast whose dot was tapped on the map.
  mapPick: null,
};
// A search longer than the bootstrap takes is not sent: the page says so.
const maxSearch = 100;
window.peerscope = { directory: state };

function ago(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function item(b, mode = state.tab) {
  const li = document.createElement('li');
  li.dataset.id = b.id;
  const who = b.who || {};
  // A live card's picture is a 16:9 box, the still or, in its place, the
  // face: cards with and without a still are the same height.
  let avatar = avatarOf(b.who);
  if (mode === 'live') {
    const box = document.createElement('div');
    box.className = 'media';
    box.append(/^[0-9a-f]{16}$/.test(b.thumbnail || '') ? stillOf(b) : avatar);
    avatar = box;
  }
  const info = document.createElement('div');
  info.className = 'info';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = b.title || '(untitled)';
  const meta = document.createElement('div');
  meta.className = 'meta';
  // A federated entry (from another community's directory) has no
  // profile here: its broadcaster's name is plain text, and the card says
  // where it comes from.
  const by = b.origin ? whoName(b.who) : whoLink(b.who, b.broadcaster);
  if (mode === 'live') {
    const live = document.createElement('span');
    live.className = 'live';
    live.textContent = 'LIVE';
    meta.append(live, ' · ', by, ` · ${b.viewers} watching · started ${ago(b.started)}`);
    if (b.origin) {
      const from = document.createElement('span');
      from.className = 'origin';
      from.textContent = `from ${b.origin.name}`;
      from.title = `Listed by ${b.origin.url}; checked here against its broadcaster's signature`;
      meta.append(' · ', from);
    }
  } else {
    // Replay views: those of signed-in accounts apart (anonymous ones are
    // proven, but peer IDs are free).
    const signed = b.replay_viewers_identified ? ` (${b.replay_viewers_identified} of the replay's signed in)` : '';
    meta.append(by, ` · ended ${ago(b.ended)} · ${b.viewers + b.replay_viewers} views${signed}`);
  }
  info.append(title, meta);
  const next = who.provider && state.upcoming.find((u) => u.who && u.who.provider === who.provider && u.who.account === who.account);
  if (next) {
    const n = document.createElement('div');
    n.className = 'meta next';
    n.textContent = `Next: ${next.title} · ${localTime(next.starts)}`;
    info.append(n);
  }
  if (mode === 'live' && !state.onNode) {
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
  watch.textContent = mode === 'live' ? 'Watch' : 'Replay';
  watch.addEventListener('click', () => open(b));
  li.append(avatar, info, watch);
  return li;
}

function render() {
  if (state.profileWho) {
    renderProfile();
    return;
  }
  const list = $('list');
  $('followhint').hidden = true;
  $('map').hidden = state.tab !== 'map';
  list.hidden = state.tab === 'map';
  if (state.tab === 'map') {
    renderMap();
    return;
  }
  $('empty').textContent = 'Nothing here right now.';
  if (state.tab === 'following') {
    renderFollowing();
    return;
  }
  if (state.tab === 'upcoming') {
    // A question being typed survives the list being drawn again (a vote
    // elsewhere redraws it).
    const typing = state.openQ && $(`ask-${state.openQ}`);
    const kept = typing ? { value: typing.value, focused: document.activeElement === typing } : null;
    // Searched: what the bootstrap found (past the list's first 200);
    // until it answers, what the list holds.
    const found = state.upcomingFound;
    const shown = !state.q ? state.upcoming : found.q === state.q ? found.list : state.upcoming.filter(matches);
    list.replaceChildren(...shown.map(upcomingItem));
    const again = state.openQ && $(`ask-${state.openQ}`);
    if (kept && again) {
      again.value = kept.value;
      if (kept.focused) again.focus();
    }
    $('empty').hidden = shown.length > 0;
    if (state.openQ) loadQuestions(state.openQ);
    return;
  }
  list.replaceChildren(...state.broadcasts.map((b) => item(b)));
  $('empty').hidden = state.broadcasts.length > 0;
}

// renderMap draws a dot for each live broadcast whose broadcaster said
// where it is. The outline (world.svg) is equirectangular over the whole
// box: longitude -180..180 left to right, latitude 90..-90 top to bottom,
// so a dot's place is two percentages. Dots are buttons: a tap, a click or
// Enter shows the broadcast's card (title, broadcaster, Watch) under the
// map.
function renderMap() {
  const placed = state.broadcasts.filter((b) => b.location);
  const dots = placed.map((b) => {
    const d = document.createElement('button');
    d.className = 'dot';
    d.dataset.id = b.id;
    d.style.left = `${((b.location.lon + 180) / 360) * 100}%`;
    d.style.top = `${((90 - b.location.lat) / 180) * 100}%`;
    d.setAttribute('aria-label', `${b.title || '(untitled)'}, by ${whoName(b.who)}`);
    d.title = b.title || '(untitled)';
    d.setAttribute('aria-pressed', String(state.mapPick === b.id));
    d.addEventListener('click', () => {
      state.mapPick = b.id;
      renderMap();
      const again = document.querySelector(`#world .dot[data-id="${CSS.escape(b.id)}"]`);
      if (again) again.focus();
    });
    return d;
  });
  $('world').replaceChildren($('world').querySelector('img'), ...dots);
  const elsewhere = state.broadcasts.length - placed.length;
  $('mapnote').textContent = (placed.length ? `${placed.length} live on the map. Tap a dot to see it.` : 'No live broadcast has said where it is.') +
    (elsewhere ? ` ${elsewhere} more did not say where.` : '');
  const pick = placed.find((b) => b.id === state.mapPick);
  $('mapcard').replaceChildren(...(pick ? [item(pick, 'live')] : []));
  $('empty').hidden = true;
}

// accountKey is what follows name an account by.
function accountKey(who) {
  return who && who.provider ? `${who.provider}:${who.account}` : '';
}

// whoLink is a broadcaster's name, linking to their profile (an account's,
// or an anonymous broadcaster's by peer ID when it is known).
function whoLink(who, peer) {
  const key = accountKey(who) || peer;
  const name = whoName(who);
  if (!key) return name;
  const a = document.createElement('a');
  a.className = 'who';
  a.href = `./?u=${encodeURIComponent(key)}`;
  a.textContent = name;
  return a;
}

// matches keeps what the search names (title, name, handle) while the
// bootstrap has not yet answered the search on the Upcoming tab.
function matches(x) {
  const q = state.q.toLowerCase();
  return !q || [x.title, x.who && x.who.name, x.who && x.who.handle].some((v) => v && v.toLowerCase().includes(q));
}

// apiMessage is the part of an error answer a person needs: the bootstrap's
// messages start with where they come from and their kind.
function apiMessage(body, r) {
  const m = body && body.error ? body.error.message : r.statusText;
  return m.replace(/^bootstrap: (bad request|rate limited|forbidden|not found): /, '');
}

// loadFollows asks the node whom its account follows (only a node's own
// page can: the bootstrap's page has nobody signed in).
async function loadFollows() {
  if (!state.onNode || !state.identity) {
    state.follows = null;
    return;
  }
  const r = await fetch('./api/node/follows', { headers: { 'Peerscope-Token': token } });
  const body = await r.json();
  if (!r.ok) throw new Error(apiMessage(body, r));
  state.follows = body.signed_in ? { account: body.account, keys: new Set(body.following) } : null;
}

// Following: what the accounts this node's account follows have live now
// and scheduled. The node asks the bootstrap for those alone (signed with
// its key), so that none is lost behind the 200 entries of the public
// lists.
async function loadFollowing() {
  if (!state.onNode || !state.identity) {
    loading = 'following';
    render();
    return;
  }
  const want = `following?${new URLSearchParams({ q: state.q })}`;
  loading = want;
  try {
    const r = await fetch(`./api/node/${want}`, { headers: { 'Peerscope-Token': token } });
    const body = await r.json();
    if (loading !== want) return; // a newer search went out
    if (!r.ok) throw new Error(apiMessage(body, r));
    state.follows = body.signed_in ? { account: body.account, keys: new Set(body.following) } : null;
    state.following = { live: body.live || [], upcoming: body.upcoming || [] };
    $('error').hidden = true;
    render();
  } catch (e) {
    $('error').textContent = `Whom you follow cannot be read: ${e.message}`;
    $('error').hidden = false;
  }
}

function renderFollowing() {
  const list = $('list');
  if (!state.onNode || !state.identity || !state.follows) {
    list.replaceChildren();
    $('empty').hidden = true;
    $('followhint').hidden = false;
    $('followhint').textContent = state.onNode
      ? 'Sign in (above) to see here who you follow: live now and coming up.'
      : 'Who you follow is your node\'s: sign in on your Peerscope node (Sign in, above, says how) and open its directory page.';
    return;
  }
  const follows = state.follows.keys;
  const { live, upcoming: next } = state.following;
  list.replaceChildren(...live.map((b) => item(b, 'live')), ...next.map(upcomingItem));
  $('empty').hidden = live.length + next.length > 0;
  if (!$('empty').hidden) $('empty').textContent = follows.size ? 'Nobody you follow is live or has a broadcast coming up.' : 'You follow nobody yet: open a profile (a name in the lists) and Follow.';
}

// --- profiles (?u=KEY, @handle or an anonymous broadcaster's peer ID) ---

const sourceText = {
  twitter: 'Signed in with X (Twitter)',
  phone: 'Signed in with a phone number (the number is not shown)',
  anonymous: 'Anonymous: no account, known only by its node',
};

async function loadProfile() {
  const who = state.profileWho;
  try {
    const [r] = await Promise.all([fetch(`./api/v1/profiles/${encodeURIComponent(who)}`), loadFollows().catch(() => {})]);
    const body = await r.json();
    if (!r.ok) throw new Error(apiMessage(body, r));
    state.profile = body;
    $('error').hidden = true;
  } catch (e) {
    state.profile = null;
    $('error').textContent = `This profile cannot be shown: ${e.message}`;
    $('error').hidden = false;
  }
  render();
}

function renderProfile() {
  const p = state.profile;
  $('profile').hidden = !p;
  $('list').hidden = true;
  $('empty').hidden = true;
  if (!p) return;
  const who = p.who;
  const name = who ? (who.name || who.handle || who.account) : 'Anonymous broadcaster';
  document.title = `${name} — Peerscope`;
  const pic = avatarOf(who);
  $('pavatar').replaceChildren(pic);
  $('pname').textContent = name;
  $('phandle').textContent = who && who.handle && who.handle !== name ? who.handle : '';
  $('psource').textContent = sourceText[p.source] || `Signed in with ${p.source}`;
  $('pfollowers').textContent = String(p.followers);
  $('pfollowerswho').textContent = p.followers === 1 ? 'follower' : 'followers';
  $('pfollowing').textContent = String(p.following);
  $('pcounts').hidden = !who;
  const btn = $('pfollow');
  const mineToo = state.follows && state.follows.account === p.key;
  btn.hidden = !who || mineToo;
  const following = !!(state.follows && state.follows.keys.has(p.key));
  btn.textContent = following ? 'Following' : 'Follow';
  btn.classList.toggle('on', following);
  btn.setAttribute('aria-pressed', String(following));
  btn.title = following ? 'Unfollow' : '';
  const lists = [['plive', p.live.map((b) => item(b, 'live'))], ['pupcoming', p.upcoming.map(profileUpcomingItem)],
    ['preplays', p.replays.map((b) => item(b, 'replay'))]];
  for (const [id, items] of lists) {
    $(id).replaceChildren(...items);
    $(`${id}-empty`).hidden = items.length > 0;
  }
}

// initials are what a face without a picture shows, as the player's do:
// the first letters of two words, or two of one.
function initials(s) {
  const words = String(s).replace(/^[@+]/, '').split(/[\s._-]+/).filter(Boolean);
  const two = words.length > 1 ? [...words[0]][0] + [...words[1]][0] : [...(words[0] || '?')].slice(0, 2).join('');
  return two.toUpperCase();
}

// profileUpcomingItem is a scheduled broadcast on its broadcaster's
// profile: what and when (the questions are under Upcoming).
function profileUpcomingItem(u) {
  const li = document.createElement('li');
  li.dataset.schedule = u.id;
  const info = document.createElement('div');
  info.className = 'info';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = u.title;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const when = document.createElement('time');
  when.dateTime = u.starts;
  when.textContent = localTime(u.starts);
  meta.append(when, ` · ${u.questions} question${u.questions === 1 ? '' : 's'} in advance`);
  info.append(title, meta);
  const qs = document.createElement('a');
  qs.className = 'watch';
  qs.href = './?tab=upcoming';
  qs.textContent = 'Questions';
  li.append(info, qs);
  return li;
}

async function toggleFollow() {
  const p = state.profile;
  if (!p) return;
  if (!state.onNode || !state.identity) {
    $('signbox').showModal();
    return;
  }
  const on = !(state.follows && state.follows.keys.has(p.key));
  try {
    await nodePost('./api/node/follow', { account: p.key, follow: on });
    note(on ? `Following ${$('pname').textContent}.` : `No longer following ${$('pname').textContent}.`);
  } catch (e) {
    note(`${on ? 'Not followed' : 'Not unfollowed'}: ${e.message}`);
  }
  await loadProfile();
}

// localTime shows an instant in the viewer's own time zone, with its name.
function localTime(t) {
  return new Date(t).toLocaleString(undefined, {
    weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  });
}

function whoName(who) {
  if (!who || !who.handle) return 'anonymous';
  return who.name ? `${who.name} ${who.handle}` : who.handle;
}

function avatarOf(who) {
  if (who && who.avatar && who.avatar.startsWith('https://')) {
    const img = document.createElement('img');
    img.src = who.avatar;
    img.alt = '';
    return img;
  }
  // As the player's faces: a named account's initials on a colour of its
  // own, an anonymous broadcaster's "?" on grey.
  const d = document.createElement('div');
  d.className = 'noavatar';
  const name = who && (who.name || who.handle || who.account);
  d.textContent = name ? initials(name) : '?';
  d.classList.toggle('anon', !name);
  if (name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    d.style.backgroundColor = `hsl(${h} 45% 32%)`;
  }
  d.setAttribute('aria-hidden', 'true');
  return d;
}

// stillOf is a live card's still, which the broadcaster's node sent the
// bootstrap (its tag in the URL: a new still is a new URL); the initials
// circle stands in if it cannot be had.
function stillOf(b) {
  const img = document.createElement('img');
  img.className = 'thumb';
  img.alt = '';
  img.src = `./api/v1/broadcasts/${encodeURIComponent(b.id)}/thumbnail?v=${b.thumbnail}`;
  img.addEventListener('error', () => img.replaceWith(avatarOf(b.who)), { once: true });
  return img;
}

function mine(who) {
  const me = state.identity;
  return !!(me && who && me.Provider === who.provider && me.Account === who.account);
}

// upcomingItem is a scheduled broadcast: who, when (in the viewer's time
// zone), what; its questions in advance open under it.
function upcomingItem(u) {
  const li = document.createElement('li');
  li.dataset.schedule = u.id;
  li.className = 'upcoming';
  const info = document.createElement('div');
  info.className = 'info';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = u.title;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const when = document.createElement('time');
  when.dateTime = u.starts;
  when.textContent = localTime(u.starts);
  meta.append(whoLink(u.who), ' · ', when);
  info.append(title, meta);
  if (u.description) {
    const d = document.createElement('div');
    d.className = 'desc';
    d.textContent = u.description;
    info.append(d);
  }
  const qs = document.createElement('button');
  qs.className = 'qs';
  qs.textContent = `Questions (${u.questions})`;
  qs.setAttribute('aria-expanded', String(state.openQ === u.id));
  qs.addEventListener('click', () => {
    state.openQ = state.openQ === u.id ? null : u.id;
    render();
  });
  const row = document.createElement('div');
  row.className = 'row';
  row.append(avatarOf(u.who), info, qs);
  li.append(row);
  if (state.openQ === u.id) li.append(questionsPanel(u));
  return li;
}

function questionsPanel(u) {
  const panel = document.createElement('div');
  panel.className = 'questions';
  const ol = document.createElement('ol');
  ol.id = `questions-${u.id}`;
  panel.append(ol);
  if (state.onNode && state.identity) {
    const form = document.createElement('form');
    form.className = 'ask';
    const input = document.createElement('input');
    input.id = `ask-${u.id}`;
    input.maxLength = 400;
    input.placeholder = 'Ask a question in advance';
    input.setAttribute('aria-label', 'Your question');
    input.autocomplete = 'off';
    const send = document.createElement('button');
    send.textContent = 'Ask';
    form.append(input, send);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await nodePost('./api/node/questions/ask', { schedule: u.id, text: input.value });
        input.value = '';
        loadQuestions(u.id);
      } catch (e) {
        note(`Question not sent: ${e.message}`);
      }
    });
    panel.append(form);
    if (mine(u.who)) {
      const cancel = document.createElement('button');
      cancel.className = 'cancel';
      cancel.textContent = 'Cancel this broadcast';
      cancel.addEventListener('click', async () => {
        try {
          await nodePost('./api/node/schedule/cancel', { schedule: u.id });
          note('Cancelled.');
          loadUpcoming();
        } catch (e) {
          note(`Not cancelled: ${e.message}`);
        }
      });
      panel.append(cancel);
    }
  } else {
    const p = document.createElement('p');
    p.className = 'meta';
    p.textContent = 'Sign in on your node to ask and up-vote.';
    panel.append(p);
  }
  return panel;
}

// loadQuestions fills a schedule's open panel, the most voted first.
async function loadQuestions(id) {
  let body;
  try {
    const r = await fetch(`./api/v1/schedules/${id}/questions`);
    body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  } catch (e) {
    note(`The questions cannot be read: ${e.message}`);
    return;
  }
  const ol = $(`questions-${id}`);
  if (!ol) return;
  const u = state.upcoming.find((x) => x.id === id);
  ol.replaceChildren(...body.questions.map((q) => {
    const li = document.createElement('li');
    li.dataset.question = q.id;
    const vote = document.createElement('button');
    vote.className = 'vote';
    vote.textContent = `▲ ${q.votes}`;
    vote.setAttribute('aria-label', `Up-vote (${q.votes} votes)`);
    vote.disabled = !(state.onNode && state.identity) || mine(q.who);
    vote.addEventListener('click', async () => {
      try {
        await nodePost('./api/node/questions/vote', { schedule: id, question: q.id });
        loadQuestions(id);
      } catch (e) {
        note(`Vote not counted: ${e.message}`);
      }
    });
    const text = document.createElement('span');
    text.className = 'qtext';
    text.textContent = q.text;
    const by = document.createElement('span');
    by.className = 'meta';
    by.textContent = ` — ${whoName(q.who)}${q.answered ? ' · answered' : ''}`;
    li.append(vote, text, by);
    if (u && mine(u.who) && !q.answered) {
      const tick = document.createElement('button');
      tick.className = 'tick';
      tick.textContent = 'Answered';
      tick.addEventListener('click', async () => {
        try {
          await nodePost('./api/node/questions/answered', { schedule: id, question: q.id });
          loadQuestions(id);
        } catch (e) {
          note(`Not ticked off: ${e.message}`);
        }
      });
      li.append(tick);
    }
    return li;
  }));
}

// loadUpcoming reads what is coming up: everyone's (the Upcoming tab, and
// the live entries' "Next:"), or, for a search on the Upcoming tab, what
// the bootstrap finds for it.
async function loadUpcoming() {
  const q = state.tab === 'upcoming' ? state.q : '';
  try {
    const r = await fetch(`./api/v1/schedules${q ? `?${new URLSearchParams({ q })}` : ''}`);
    const body = await r.json();
    if (!r.ok) throw new Error(apiMessage(body, r));
    if (q) {
      if (q !== state.q) return; // a newer search went out
      state.upcomingFound = { q, list: body.schedules };
    } else state.upcoming = body.schedules;
    if (state.tab === 'upcoming') $('error').hidden = true;
    render(); // the upcoming list, or the live entries' "Next:"
  } catch (e) {
    if (state.tab !== 'upcoming') return;
    $('error').textContent = `The upcoming broadcasts cannot be read: ${e.message}`;
    $('error').hidden = false;
  }
}

let loading = null;
async function load() {
  if (state.profileWho) return loadProfile();
  if ([...state.q].length > maxSearch) {
    $('error').textContent = `A search is at most ${maxSearch} characters: shorten it.`;
    $('error').hidden = false;
    return;
  }
  if (state.tab === 'following') return loadFollowing();
  if (state.tab === 'upcoming') {
    loading = 'upcoming';
    render();
    return loadUpcoming();
  }
  const params = new URLSearchParams({ state: state.tab === 'map' ? 'live' : state.tab });
  if (state.q) params.set('q', state.q);
  const want = params.toString();
  loading = want;
  try {
    const r = await fetch(`./api/v1/broadcasts?${want}`);
    const body = await r.json();
    if (loading !== want) return; // a newer query went out
    if (!r.ok) throw new Error(apiMessage(body, r));
    state.broadcasts = body.broadcasts;
    $('error').hidden = true;
    render();
  } catch (e) {
    $('error').textContent = `The directory cannot be read: ${e.message}`;
    $('error').hidden = false;
  }
}

let reloadTimer = null;
// reloadSoon reloads after a burst of events; Following less often, as
// each of its reloads is three signed requests the bootstrap rate-limits.
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, state.tab === 'following' && !state.profileWho ? 2000 : 200);
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
  // A federated entry plays on its own community's bootstrap.
  const base = b.origin && /^https?:\/\//.test(b.origin.url) ? `${b.origin.url}/` : location.href;
  return new URL(`w/${encodeURIComponent(b.id)}/`, base).href;
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
  for (const kind of ['live', 'update', 'ended', 'replay', 'scheduled', 'reminder']) {
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
  for (const id of ['who', 'signout', 'signin', 'phone', 'finish', 'newsched']) $(id).hidden = true;
  if (body.identity) {
    $('who').textContent = `Signed in as ${body.identity.Handle || body.identity.Account}`;
    $('who').hidden = false;
    $('signout').hidden = false;
    // Go-live notes of the people this node's account follows.
    stream('./api/v1/feed', (kind, ev) => {
      if (kind === 'live') {
        const who = ev.broadcast.who ? ev.broadcast.who.handle : 'someone';
        note(`${who} is live: ${ev.broadcast.title || '(untitled)'}`);
      } else if (kind === 'reminder' && ev.schedule) {
        note(`Reminder: ${ev.schedule.title} by ${whoName(ev.schedule.who)} ${stepText[ev.step] || 'soon'} (${localTime(ev.schedule.starts)})`);
      }
    });
    $('newsched').hidden = !!state.profileWho;
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

// How far off a reminder's step is.
const stepText = { d7: 'in 7 days', d3: 'in 3 days', d1: 'in 1 day', h1: 'in 1 hour' };

async function nodePost(path, body) {
  const r = await fetch(path, { method: 'POST', headers: nodeHeaders, body: JSON.stringify(body) });
  const out = await r.json();
  // The bootstrap's messages start with where they come from and their
  // kind ("bootstrap: bad request: …"): the person needs the rest.
  if (!r.ok) throw new Error(out.error ? out.error.message.replace(/^bootstrap: (bad request|rate limited|forbidden|not found): /, '') : r.statusText);
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
$('pfollow').addEventListener('click', toggleFollow);
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

// Scheduling, from a node signed in: the time typed is the viewer's local
// time; the bootstrap says what is wrong with the rest.
$('newsched').addEventListener('click', () => {
  $('schedmsg').textContent = '';
  $('schedbox').showModal();
});
$('schedclose').addEventListener('click', () => $('schedbox').close());
$('schedform').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const starts = new Date($('sstarts').value);
  if (Number.isNaN(starts.getTime())) {
    $('schedmsg').textContent = 'Pick a day and a time.';
    return;
  }
  const reminders = [...document.querySelectorAll('input[name="rem"]:checked')].map((c) => c.value);
  try {
    const sc = await nodePost('./api/node/schedule', {
      title: $('stitle').value, description: $('sdesc').value, starts: starts.toISOString(), reminders, tweet: $('stweet').checked,
    });
    $('schedbox').close();
    $('schedform').reset();
    note(`Scheduled: ${sc.title}, ${localTime(sc.starts)}`);
    $('tab-upcoming').click();
  } catch (e) {
    $('schedmsg').textContent = e.message;
  }
});

// ?tab=upcoming (or replay) opens that list: a link to what is coming.
{
  const tab = new URLSearchParams(location.search).get('tab');
  const b = tab && document.querySelector(`nav button[data-state="${CSS.escape(tab)}"]`);
  if (b) {
    state.tab = tab;
    for (const o of document.querySelectorAll('nav button')) o.classList.toggle('on', o === b);
  }
}

// A vote or a question anywhere is a "scheduled" event: a burst of them
// makes one reload.
let upcomingTimer = null;
stream('./api/v1/events', (kind, ev) => {
  if (state.profileWho) {
    // A profile reloads for its own broadcasts and schedules only.
    const p = state.profile;
    const b = ev && ev.broadcast;
    const s = ev && ev.schedule;
    if (!p || (b && (accountKey(b.who) === p.key || b.broadcaster === p.key)) || (s && (!s.who || accountKey(s.who) === p.key))) reloadSoon();
    return;
  }
  if (kind === 'scheduled' && state.tab !== 'following') {
    clearTimeout(upcomingTimer);
    upcomingTimer = setTimeout(loadUpcoming, 300);
    return;
  }
  reloadSoon();
});
if (state.profileWho) {
  // A profile: the directory's lists give way to it.
  for (const id of ['tabs', 'newsched']) $(id).hidden = true;
  $('back').hidden = false;
} else if (state.tab !== 'upcoming') loadUpcoming(); // for the live entries' "Next:"
const pendingCode = codeFromFragment();
identity().then(() => (pendingCode ? finishSignIn(pendingCode) : null)).then(openShared).then(() => {
  // What depends on who is signed in.
  if (state.profileWho || state.tab === 'following') load();
});
if (!state.profileWho && state.tab !== 'following') load();

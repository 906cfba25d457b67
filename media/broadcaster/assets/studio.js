// The studio: while live, the go-live page shows the broadcaster their
// audience — comments over the preview, which fills the screen at every
// size, everyone's hearts floating up, how many watch and who (a tap on
// the count lists them), one-tap moderation (delete, block, comments
// off, followers only, each shown while in force), the share sheet, and
// at the end a summary with the replay link. It reads the chat API the owner's player page reads, under
// data-studio on <body> (relative to the page; none: no studio), opened
// by the stream key: "live" (ID and links), "chat/events" (server-sent
// events, read with fetch so that the key goes in a header, never in a
// URL), "chat/viewers" (who is signed in), "questions" (those asked in
// advance of the account's scheduled broadcast, ranked by votes; ticked
// off through "questions/answered"). broadcast.js tells this file
// its state and key with a "peerscope:state" event.
'use strict';

(() => {
  const base = document.body.dataset.studio;
  if (!base) return;
  const api = (p) => new URL(p, new URL(base, location.href));
  const $ = (id) => document.getElementById(id);
  const list = $('comments'), hearts = $('hearts'), watching = $('watching');

  const MAX_COMMENTS = 30; // older ones fade (CSS), then go
  const NAMES_EVERY = 5000;
  const QUESTIONS_EVERY = 15000;
  // The directory card's still: 320 px wide, at most 32 KB (the node's
  // and the bootstrap's cap), every 30 s.
  const STILL_EVERY = 30000, STILL_WIDTH = 320, STILL_MAX = 32 * 1024;

  // What tests and curious people can read.
  const studio = window.peerscopeStudio = { on: false, id: '', web: '', link: '', comments: [], floated: 0, live: 0, hearts: 0, names: [], errors: 0, questions: [], stills: 0,
    peak: 0, seen: new Set(), since: 0, summary: null, commentsOff: false, followersOnly: false, viewers: null };

  let key = '', run = null; // run: the live session's AbortController
  let lastTotal = -1;       // the broadcast's heart total as last seen
  let after = null;         // the summary's reads, until Go live again
  let stillsFor = null;     // the run whose stills are being sent

  document.addEventListener('peerscope:state', (ev) => {
    const { state, key: k } = ev.detail;
    if (state === 'live' || state === 'unstable') {
      if (!run) start(k);
    } else if (run) {
      stop(state === 'ended');
    }
  });

  function start(k) {
    key = k;
    run = new AbortController();
    studio.on = true;
    document.body.classList.add('studio', 'full');
    lastTotal = -1;
    list.replaceChildren();
    studio.comments = [];
    list.hidden = false;
    watching.hidden = false;
    $('tools').hidden = false;
    $('t-share').disabled = true; // until the links are in
    $('t-followers').hidden = true; // until the node says it has a community
    showModeration(false, false);
    $('summary').hidden = true;
    studio.since = Date.now();
    studio.peak = 0;
    studio.hearts = 0;
    studio.seen = new Set();
    studio.summary = null;
    studio.nearestMs = -1;
    lags.length = 0;
    loadLinks(run.signal);
    sendPlace(run.signal);
    follow(run.signal);
    pollNames(run.signal);
    pollQuestions(run.signal);
    loadModeration(run.signal);
  }

  // stop ends the session's reads; the links stay up once the broadcast
  // has ended (people may still share its replay's way in).
  function stop(ended) {
    run.abort();
    run = null;
    studio.on = false;
    document.body.classList.remove('studio');
    watching.hidden = true;
    list.hidden = true;
    $('tools').hidden = true;
    $('modstate').hidden = true;
    $('t-questions').hidden = true;
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    hearts.replaceChildren();
    if (!ended) {
      document.body.classList.remove('full');
      $('questions').hidden = true;
    } else showSummary();
  }

  // showSummary shows, in place of the live overlay, what the page counted
  // while live (it keeps its own counts: the WHIP session is gone), then
  // asks the node for the replay, which it seals at the end.
  function showSummary() {
    const s = Math.floor((Date.now() - studio.since) / 1000);
    const named = studio.seen.size;
    // Anonymous viewers cannot be told apart over time: those in all are
    // at least the most at once, and at least the signed-in ones seen.
    const total = Math.max(studio.peak, named);
    studio.summary = { seconds: s, peak: studio.peak, total, named, hearts: studio.hearts, replay: '', replayViewers: 0 };
    $('sum-duration').textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    $('sum-peak').textContent = String(studio.peak);
    $('sum-named').textContent = String(named);
    $('sum-total').textContent = String(total);
    $('sum-named-row').hidden = named === 0;
    $('sum-replays-row').hidden = true;
    $('sum-hearts').textContent = String(studio.hearts);
    $('sum-replay-row').hidden = true;
    $('sum-web-row').hidden = true;
    $('summary').hidden = false;
    after = new AbortController();
    findReplay(after.signal);
  }

  // findReplay asks the node, a few times, for the ended broadcast's replay
  // (the key still opens /broadcast/live after the end).
  async function findReplay(signal) {
    for (let i = 0; i < 15 && !signal.aborted; i++) {
      try {
        const resp = await fetch(api('live'), authed(signal));
        if (!resp.ok) return;
        const a = await resp.json();
        if (a.replay || a.replay_local) {
          // The node links the replay where this browser can open it: at
          // the address this page came from, or the community's web page;
          // when neither (the node's pages are for its own machine), the
          // summary says where it is instead of linking a phone's own
          // 127.0.0.1.
          showReplay(a.replay, a.replay_local, a.replay_viewers || 0);
          // Listed at a community: its web page, the link shared while
          // live, now offers the replay — the one a phone can pass on.
          if (a.web && a.web !== a.replay) {
            studio.summary.web = a.web;
            $('sum-web').href = a.web;
            $('sum-web').textContent = a.web;
            $('sum-web-row').hidden = false;
          }
          return;
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      await pause(1000, signal);
    }
  }

  function showReplay(href, local, views) {
    studio.summary.replay = href;
    studio.summary.replayViewers = views;
    $('sum-replays').textContent = String(views);
    $('sum-replays-row').hidden = false;
    const a = $('sum-replay');
    a.hidden = !href;
    if (href) {
      a.href = href;
      a.textContent = href;
    }
    $('sum-replay-far').hidden = !!href;
    $('sum-replay-local').textContent = href ? '' : local;
    $('sum-replay-row').hidden = false;
  }

  $('again').addEventListener('click', () => {
    if (after) after.abort();
    after = null;
    $('summary').hidden = true;
    document.body.classList.remove('full');
    document.dispatchEvent(new CustomEvent('peerscope:again'));
  });

  const authed = (signal) => ({ headers: { Authorization: `Bearer ${key}` }, cache: 'no-store', signal });
  const pause = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  // The place on the directory's map, optional: typed as LAT,LON or taken
  // from the browser's geolocation, rounded to 0.1° here already (the node
  // and the directory round it too). A place off the map is refused here
  // with why, and by the node if it gets there.
  const placeMsg = $('placemsg');
  const placeHint = placeMsg.textContent;
  function readPlace() {
    const v = $('place').value.trim();
    if (!v) return { place: null };
    const m = v.match(/^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/);
    if (!m) return { error: 'Write the place as LAT,LON in degrees, say 48.85,2.35.' };
    const lat = Number(m[1]), lon = Number(m[2]);
    if (lat < -90 || lat > 90) return { error: `Latitude ${lat} is not between -90 and 90.` };
    if (lon < -180 || lon > 180) return { error: `Longitude ${lon} is not between -180 and 180.` };
    return { place: { lat: Math.round(lat * 10) / 10, lon: Math.round(lon * 10) / 10 } };
  }
  function showPlace() {
    const r = readPlace();
    placeMsg.textContent = r.error || placeHint;
    placeMsg.classList.toggle('bad', !!r.error);
    $('place').setAttribute('aria-invalid', String(!!r.error));
    return r;
  }
  $('placerow').hidden = false;
  $('place').addEventListener('input', showPlace);
  $('here').addEventListener('click', () => {
    if (!navigator.geolocation) {
      placeMsg.textContent = 'This browser cannot say where it is: type the place instead.';
      return;
    }
    placeMsg.textContent = 'Asking the browser where you are…';
    navigator.geolocation.getCurrentPosition((p) => {
      $('place').value = `${Math.round(p.coords.latitude * 10) / 10},${Math.round(p.coords.longitude * 10) / 10}`;
      showPlace();
    }, (e) => {
      placeMsg.textContent = `No place from the browser (${e.message || 'refused'}): type it, or leave it empty.`;
    }, { maximumAge: 600000, timeout: 15000 });
  });
  async function sendPlace(signal) {
    const r = showPlace();
    if (r.error) $('studio-note').textContent = `Not on the map: ${r.error}`;
    if (!r.place) return;
    try {
      const resp = await fetch(api('location'), {
        method: 'PUT', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ location: r.place }), cache: 'no-store', signal,
      });
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        $('studio-note').textContent = `Not on the map: ${body && body.error ? body.error.message : resp.statusText}`;
      }
    } catch {
      // The network: the broadcast goes on, off the map.
    }
  }

  async function loadLinks(signal) {
    // The broadcast is there as soon as WHIP took the key: one read, tried
    // again only when the network failed.
    for (let wait = 1000; !signal.aborted; wait = Math.min(wait * 2, 10000)) {
      try {
        const resp = await fetch(api('live'), authed(signal));
        if (!resp.ok) { studio.errors++; return; }
        showLinks(await resp.json());
        return;
      } catch (e) {
        if (signal.aborted) return;
        await pause(wait, signal);
      }
    }
  }

  // sendStills draws the preview to a canvas every STILL_EVERY and sends
  // it, a small JPEG, as the broadcast's card in the directory (the node
  // checks it and passes it on). Only a listed broadcast has a card.
  async function sendStills(signal) {
    const video = $('preview');
    const canvas = document.createElement('canvas');
    for (let wait = 500; !signal.aborted; wait = STILL_EVERY) {
      await pause(wait, signal);
      if (signal.aborted || !video.videoWidth) { wait = 500; continue; }
      const w = Math.min(STILL_WIDTH, video.videoWidth);
      canvas.width = w;
      canvas.height = Math.max(1, Math.round(video.videoHeight * w / video.videoWidth));
      canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
      let blob = null;
      for (const q of [0.7, 0.5, 0.3]) {
        blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', q));
        if (blob && blob.size <= STILL_MAX) break;
      }
      if (!blob || blob.size > STILL_MAX) continue;
      try {
        const resp = await fetch(api('thumbnail'), {
          method: 'PUT', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'image/jpeg' },
          body: blob, cache: 'no-store', signal,
        });
        if (resp.ok) studio.stills++;
      } catch {
        // The network: the card keeps its last still, or its initials.
      }
    }
  }

  function showLinks(a) {
    if (a.web && run && stillsFor !== run) {
      stillsFor = run;
      sendStills(run.signal);
    }
    studio.id = a.id;
    studio.web = a.web || a.player || '';
    studio.link = a.link || '';
    $('share-web').value = studio.web;
    $('share-app').value = studio.link;
    $('share-web').parentElement.hidden = !studio.web;
    $('share-native').hidden = !navigator.share;
    $('t-followers').hidden = !a.community;
    $('t-share').disabled = false;
  }

  // The share sheet: the web link (the bootstrap's, or this node's player
  // page), the peerscope:// link, each with Copy, and the system's own
  // share sheet where the browser has one.
  $('t-questions').addEventListener('click', () => $('questions').scrollIntoView({ behavior: 'smooth', block: 'start' }));
  $('t-share').addEventListener('click', () => { $('share-note').textContent = ''; $('sharesheet').showModal(); });
  $('share-close').addEventListener('click', () => $('sharesheet').close());
  $('share-native').addEventListener('click', async () => {
    try {
      await navigator.share({ title: document.getElementById('title').value || 'Live on Peerscope', url: studio.web || studio.link });
    } catch (e) { /* dismissed */ }
  });

  // follow reads the chat's event stream while live, and opens it again
  // after a break (the node restarting the room, the network).
  async function follow(signal) {
    for (let wait = 1000; !signal.aborted; wait = Math.min(wait * 2, 15000)) {
      try {
        const resp = await fetch(api('chat/events'), authed(signal));
        if (resp.ok && resp.body) {
          wait = 1000;
          await readEvents(resp.body, signal);
        } else {
          studio.errors++;
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      await pause(wait, signal);
    }
  }

  // readEvents parses server-sent events ("event: NAME\ndata: JSON\n\n")
  // from a response body until it ends.
  async function readEvents(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let name = 'message', data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data) onEvent(name, data);
      }
    }
  }

  function onEvent(name, data) {
    let v;
    try { v = JSON.parse(data); } catch (e) { return; }
    switch (name) {
      case 'comment': addComment(v); break;
      case 'hearts': heartsTo(v.total); break;
      case 'viewers':
        seeLive(v.live);
        $('viewercount').textContent = String(v.live);
        heartsTo(v.hearts);
        break;
      case 'moderated':
        if (v.op === 'delete') removeComment(v.target);
        if (v.op === 'block' && v.on) removeAuthor(String(v.target).replace(/^peer:/, ''));
        if (v.op === 'comments-off') showModeration(v.on, studio.followersOnly);
        if (v.op === 'followers-only') showModeration(studio.commentsOff, v.on);
        break;
    }
  }

  const who = (a) => (a.anonymous ? 'anonymous' : (a.name || (a.handle ? `@${a.handle.replace(/^@/, '')}` : 'anonymous')));

  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };

  // A player sends with each comment the stream's clock of the frame on
  // its screen ("at", the broadcasting node's wallclock, as "received"
  // is): received - at is how far behind that viewer watches, give or
  // take the comment's trip. The least of the last minute's is the
  // nearest viewer's latency, which the health line shows. A comment that
  // did not say (a page that has not measured its latency) gets its send
  // time as "at": a few milliseconds of trip, under any real viewer's
  // latency here (encoding alone takes more), so those under 250 ms are
  // left out.
  const lags = [];
  function seeLag(c) {
    if (!(c.at > 0) || !(c.received - c.at >= 250) || c.received - c.at > 120000) return;
    const now = Date.now();
    lags.push({ t: now, ms: c.received - c.at });
    while (lags.length && (lags.length > 50 || now - lags[0].t > 60000)) lags.shift();
    studio.nearestMs = Math.min(...lags.map((x) => x.ms));
  }

  function addComment(c) {
    if (c.deleted) return;
    seeLag(c);
    studio.comments.push({ id: c.id, text: c.text, author: who(c.author), peer: c.author.peer });
    if (studio.comments.length > MAX_COMMENTS) studio.comments.shift();
    const li = el('li');
    li.dataset.id = c.id;
    li.dataset.peer = c.author.peer;
    // The comment is a button: a tap offers to delete it or block its
    // author (not the broadcaster's own).
    const body = el('button', '', 'c-body');
    body.type = 'button';
    const f = el('span', '', 'face');
    face(f, who(c.author), c.author.avatar, c.author.anonymous);
    const words = el('span', '', 'c-words');
    words.append(el('b', who(c.author)), ' ', c.text);
    body.append(f, words);
    if (c.author.broadcaster) body.disabled = true;
    else body.addEventListener('click', () => pick(li, c));
    li.append(body);
    list.append(li);
    while (list.children.length > MAX_COMMENTS) list.firstElementChild.remove();
  }

  function removeComment(id) {
    studio.comments = studio.comments.filter((c) => c.id !== id);
    for (const li of [...list.children]) if (li.dataset.id === id) li.remove();
  }

  function removeAuthor(peer) {
    studio.comments = studio.comments.filter((c) => c.peer !== peer);
    for (const li of [...list.children]) if (li.dataset.peer === peer) li.remove();
  }

  // pick opens a comment's actions (one comment's at a time), or closes
  // them when they were open.
  function pick(li, c) {
    const open = li.querySelector('.c-actions');
    for (const row of list.querySelectorAll('.c-actions')) row.remove();
    for (const x of list.querySelectorAll('li.picked')) x.classList.remove('picked');
    if (open) return;
    li.classList.add('picked');
    const row = el('span', '', 'c-actions');
    row.append(action('Delete', 'delete', { op: 'delete', target: c.id }, () => removeComment(c.id)),
      action(c.author.anonymous ? 'Block this viewer' : `Block ${who(c.author)}`, 'block', { op: 'block', target: c.author.peer }, () => removeAuthor(c.author.peer)));
    li.append(row);
  }

  function action(label, cls, req, done) {
    const b = el('button', label, `c-${cls}`);
    b.type = 'button';
    b.addEventListener('click', async () => {
      b.disabled = true;
      const err = await moderate(req);
      if (err) { b.disabled = false; say(err); return; }
      say('');
      done();
    });
    return b;
  }

  // moderate asks the node to act on the chat; it returns what went wrong,
  // in words, or '' once done.
  async function moderate(req) {
    if (!run) return 'Not live any more.';
    let resp;
    try {
      resp = await fetch(api('chat/moderate'), {
        method: 'POST', cache: 'no-store', body: JSON.stringify(req),
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      });
    } catch (e) {
      return 'The node could not be reached. Try again.';
    }
    if (resp.ok) return '';
    const text = (await resp.text().catch(() => '')).trim();
    return `The node did not take it (${resp.status}): ${text}`;
  }

  function say(text) {
    studio.note = text;
    $('studio-note').textContent = text;
  }

  // heartsTo floats the rise of the broadcast's heart total: everyone's
  // hearts, those of viewers on this very node included (the chat's own
  // "hearts" count leaves those out, as their pages float them).
  function heartsTo(total) {
    if (typeof total !== 'number') return;
    studio.hearts = total;
    if (lastTotal >= 0 && total > lastTotal) float(total - lastTotal);
    if (total > lastTotal) lastTotal = total;
  }

  // float: web/hearts' hearts.js, while live.
  function float(n) {
    window.peerscopeHearts.float(hearts, n, () => { studio.floated++; }, () => !!run);
  }

  // pollNames shows the signed-in viewers' names now and then (the event
  // stream says how many watch, not who).
  async function pollNames(signal) {
    while (!signal.aborted) {
      try {
        const resp = await fetch(api('chat/viewers'), authed(signal));
        if (resp.ok) showNames(await resp.json());
      } catch (e) {
        if (signal.aborted) return;
      }
      await pause(NAMES_EVERY, signal);
    }
  }

  // pollQuestions shows the questions asked in advance, most voted first,
  // each with a tick for once it is answered; none scheduled: no section.
  async function pollQuestions(signal) {
    while (!signal.aborted) {
      try {
        const resp = await fetch(api('questions'), authed(signal));
        if (resp.ok) showQuestions(await resp.json());
      } catch (e) {
        if (signal.aborted) return;
      }
      await pause(QUESTIONS_EVERY, signal);
    }
  }

  function showQuestions(v) {
    const box = $('questions');
    studio.questions = v.questions || [];
    box.hidden = !v.schedule;
    // A way down to them from over the preview, with how many are open.
    const open = studio.questions.filter((q) => !q.answered).length;
    $('t-questions').hidden = !v.schedule || !run;
    $('t-questions').textContent = open ? `Questions ${open}` : 'Questions';
    if (!v.schedule) return;
    $('q-for').textContent = studio.questions.length ? `For “${v.schedule.title}”` : `Nobody asked anything in advance of “${v.schedule.title}”.`;
    $('q-list').replaceChildren(...studio.questions.map((q) => {
      const li = el('li', '', q.answered ? 'answered' : '');
      li.dataset.question = q.id;
      const body = el('div', '', 'q-body');
      body.append(el('div', q.text, 'q-text'), el('div', who(q.who || {}), 'q-who'));
      li.append(el('span', `▲ ${q.votes}`, 'q-votes'), body);
      if (q.answered) {
        li.append(el('span', 'Answered', 'q-done'));
        return li;
      }
      const b = el('button', 'Mark answered', 'q-tick');
      b.type = 'button';
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const resp = await fetch(api('questions/answered'), {
            method: 'POST', cache: 'no-store', body: JSON.stringify({ schedule: v.schedule.id, question: q.id }),
            headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
          });
          if (!resp.ok) throw new Error(String(resp.status));
          q.answered = true;
          showQuestions(v);
        } catch (e) {
          b.disabled = false;
          say('The question could not be ticked off. Try again.');
        }
      });
      li.append(b);
      return li;
    }));
  }

  function seeLive(n) {
    studio.live = n;
    if (typeof n === 'number' && n > studio.peak) studio.peak = n;
  }

  function showNames(v) {
    studio.viewers = v;
    seeLive(v.live);
    $('viewercount').textContent = String(v.live);
    studio.names = (v.identified || []).map(who);
    for (const a of v.identified || []) studio.seen.add(a.peer || a.handle || who(a));
    const shown = studio.names.slice(0, 3).join(', ');
    const more = studio.names.length - 3;
    $('viewernames').textContent = more > 0 ? `${shown} +${more}` : shown;
    $('viewerfaces').replaceChildren(...(v.identified || []).slice(0, 3).map((a) => {
      const f = el('span', '', 'face');
      face(f, who(a), a.avatar, false);
      return f;
    }));
    if ($('viewersheet').open) showViewers();
  }

  // ---- comments off, followers only ----
  // The state in force shows over the preview, and each button undoes
  // what it did. The node says what it takes: the page
  // shows the state the chat's "moderated" events and its moderation
  // read tell, not what it asked for.
  function showModeration(off, followers) {
    studio.commentsOff = !!off;
    studio.followersOnly = !!followers;
    const tc = $('t-comments'), tf = $('t-followers');
    // Each button says what a tap does (not a toggle's fixed name with a
    // pressed state: the label changes, which a screen reader reads out
    // as it is); it is amber while its switch is in force.
    tc.classList.toggle('on', studio.commentsOff);
    tc.textContent = studio.commentsOff ? 'Comments on' : 'Comments off';
    tf.classList.toggle('on', studio.followersOnly);
    tf.textContent = studio.followersOnly ? 'Open to all' : 'Followers only';
    const m = $('modstate');
    m.textContent = studio.commentsOff ? 'Comments are off' : studio.followersOnly ? 'Only people you follow can comment' : '';
    m.hidden = !run || !m.textContent;
  }

  async function loadModeration(signal) {
    for (let wait = 1000; !signal.aborted; wait = Math.min(wait * 2, 10000)) {
      try {
        const resp = await fetch(api('chat/moderation'), authed(signal));
        if (resp.ok) {
          const m = await resp.json();
          showModeration(m.comments_off, m.followers_only);
          return;
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      await pause(wait, signal);
    }
  }

  async function toggle(button, req, after) {
    button.disabled = true;
    const err = await moderate(req);
    button.disabled = false;
    if (err) { say(err); return; }
    say('');
    after();
  }
  // The value is chosen at the tap: the chat's own "moderated" event may
  // come before the answer, and must not be undone by it.
  $('t-comments').addEventListener('click', (ev) => {
    const off = !studio.commentsOff;
    toggle(ev.currentTarget, { op: off ? 'comments_off' : 'comments_on' }, () => showModeration(off, studio.followersOnly));
  });
  $('t-followers').addEventListener('click', (ev) => {
    const on = !studio.followersOnly;
    toggle(ev.currentTarget, { op: on ? 'followers_only' : 'followers_off' }, () => showModeration(studio.commentsOff, on));
  });

  // ---- faces ----
  function initials(name) {
    const words = name.replace(/^[@+]/, '').split(/[\s._-]+/).filter(Boolean);
    return (words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 2)).toUpperCase();
  }
  // face fills e with the avatar (https only: the page's policy) or the
  // initials of name, on a colour of the name's own.
  function face(e, name, avatar, anon) {
    e.replaceChildren();
    e.classList.toggle('anon', !!anon);
    if (avatar && avatar.startsWith('https://')) {
      const img = document.createElement('img');
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      img.src = avatar;
      img.addEventListener('error', () => { img.remove(); e.textContent = initials(name); });
      e.append(img);
    } else {
      e.textContent = anon ? '?' : initials(name);
    }
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    e.style.backgroundColor = anon ? '' : `hsl(${h} 45% 32%)`;
  }

  // ---- who watches: a tap on the count opens the list ----
  watching.addEventListener('click', () => { showViewers(); $('viewersheet').showModal(); });
  $('vs-close').addEventListener('click', () => $('viewersheet').close());
  function showViewers() {
    const v = studio.viewers || { live: studio.live, identified: [], anonymous: studio.live };
    const ul = $('faces');
    ul.replaceChildren(...(v.identified || []).map((a) => {
      const li = el('li');
      const f = el('span', '', 'face');
      const name = who(a);
      face(f, name, a.avatar, false);
      li.append(f, el('span', name, 'name'));
      if (a.handle && a.name) li.append(el('span', `@${a.handle.replace(/^@/, '')}`, 'handle'));
      return li;
    }));
    const anon = v.anonymous || 0, known = (v.identified || []).length;
    const anons = `${anon} anonymous viewer${anon === 1 ? '' : 's'}`;
    $('anoncount').textContent = known === 0 ? (anon === 0 ? 'Nobody is watching yet.' : `${anons}, none signed in.`)
      : (anon === 0 ? 'Nobody anonymous.' : `And ${anons}.`);
  }

  for (const b of document.querySelectorAll('button.copy')) {
    b.addEventListener('click', () => copy($(b.dataset.copy)));
  }

  async function copy(input) {
    const note = $('share-note');
    try {
      await navigator.clipboard.writeText(input.value);
      note.textContent = 'Copied.';
    } catch (e) {
      // No clipboard for this page (an old browser, a refused permission):
      // select it for the person to copy.
      input.focus();
      input.select();
      note.textContent = 'Selected: copy it from the menu.';
    }
  }
})();

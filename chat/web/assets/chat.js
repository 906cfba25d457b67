// Peerscope chat: the comment feed and box, hearts, the live count and, for
// the node's owner (#owner=TOKEN in the URL), moderation. Package chat/web
// serves it beside the API it speaks, at the player page's chat/ (its URLs
// are relative to the page); window.peerscope.chat exposes its state for
// tests. The page's chat section is hidden until this script runs.
//
// What it posts acts in the node's name, so it sends the page token the
// node put into the page (<meta name="peerscope-token">) in the
// Peerscope-Token header, with a JSON body. A page served to another
// machine has no token: its chat is read-only (no box, hearts, reports or
// jury votes).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  $('chat').hidden = false;
  const owner = new URLSearchParams(location.hash.slice(1)).get('owner') || '';
  const meta = document.querySelector('meta[name="peerscope-token"]');
  const token = meta ? meta.content : '';
  const st = (window.peerscope = window.peerscope || {}).chat = {
    comments: [], floated: 0, viewers: null, hearts: 0, off: false, followersOnly: false,
    errors: [], summons: [], verdicts: [], identified: [], blocked: [], moderated: [], readOnly: !token,
  };
  const feed = $('feed');
  const shown = new Map(); // comment ID → its <li>

  function authorName(a) {
    if (a.anonymous) return a.broadcaster ? 'broadcaster' : 'anonymous';
    return a.name || a.handle || 'anonymous';
  }

  // who renders an author: the avatar (over https, which the page's policy
  // allows) and handle of a verified identity (the attestation's), or
  // "anonymous".
  function who(a) {
    const b = document.createElement('b');
    if (!a.anonymous && a.avatar && a.avatar.startsWith('https://')) {
      const img = document.createElement('img');
      img.className = 'avatar';
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      img.src = a.avatar;
      img.addEventListener('error', () => { img.style.visibility = 'hidden'; });
      b.append(img);
    }
    b.append(authorName(a));
    if (!a.anonymous && a.handle && a.name) {
      const h = document.createElement('small');
      h.className = 'handle';
      h.textContent = ' ' + a.handle;
      b.append(h);
    }
    if (a.broadcaster) b.className = 'host';
    else if (a.anonymous) b.className = 'anon';
    b.title = a.peer;
    return b;
  }

  async function api(path, body, asOwner) {
    const headers = { 'Content-Type': 'application/json', 'Peerscope-Token': token };
    if (asOwner) headers.Authorization = 'Bearer ' + owner;
    const r = await fetch('chat/' + path, { method: 'POST', headers, body: JSON.stringify(body) });
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  }
  function note(text) {
    $('chatnote').textContent = text || '';
    if (text) st.errors.push(text);
  }

  function show(c) {
    if (shown.has(c.id)) return;
    st.comments.push(c);
    const li = document.createElement('li');
    li.dataset.id = c.id;
    li.dataset.peer = c.author.peer;
    const text = document.createElement('span');
    text.textContent = ' ' + c.text;
    li.append(who(c.author), text);
    if (owner && !c.author.broadcaster) {
      for (const [label, op, target] of [['delete', 'delete', c.id], ['block', 'block', c.author.peer]]) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'mod ' + op;
        b.textContent = label;
        b.onclick = () => api('moderate', { op, target }, true).catch((e) => note(e.message));
        li.append(b);
      }
    }
    if (!owner && token && !c.author.broadcaster) {
      // Anyone may report a comment: the broadcaster's node calls a jury.
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'rep';
      b.textContent = 'report';
      b.onclick = () => api('report', { id: c.id }).then(() => { b.disabled = true; }).catch((e) => note(e.message));
      li.append(b);
    }
    if (c.deleted) li.hidden = true;
    shown.set(c.id, li);
    feed.append(li);
    while (feed.children.length > 200) feed.firstElementChild.remove();
    feed.scrollTop = feed.scrollHeight;
  }

  function setOff(off) {
    st.off = off;
    if (!owner) $('say').disabled = off; // the broadcaster may still comment
    $('say').placeholder = off ? 'Comments are off' : 'Say something…';
    if (owner) $('offbtn').textContent = off ? 'Turn comments on' : 'Turn comments off';
  }

  function setFollowersOnly(on) {
    st.followersOnly = on;
    if (owner) $('followbtn').textContent = on ? 'Everyone may comment' : 'Followers only';
    else if (on && !st.off) $('say').placeholder = 'Only people the broadcaster follows may comment';
  }

  // The moderation in force, when the page opens and after each change
  // (the owner's also lists the blocked).
  async function loadModeration() {
    try {
      const r = await fetch('chat/moderation', { headers: owner ? { Authorization: 'Bearer ' + owner } : {}, cache: 'no-store' });
      if (!r.ok) return;
      const m = await r.json();
      setOff(m.comments_off);
      setFollowersOnly(m.followers_only);
      if (owner) showBlocked(m.blocked || []);
    } catch (e) { /* the next change */ }
  }

  function showBlocked(users) {
    st.blocked = users;
    const ul = $('blocked');
    ul.replaceChildren();
    for (const u of users) {
      const li = document.createElement('li');
      li.textContent = u.replace(/^peer:/, '').slice(-10) + ' ';
      const id = u.startsWith('peer:') ? u.slice(5) : '';
      if (id) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'mod unblock';
        b.textContent = 'unblock';
        b.onclick = () => api('moderate', { op: 'unblock', target: id }, true).catch((e) => note(e.message));
        li.append(b);
      }
      ul.append(li);
    }
    $('blockedbox').hidden = users.length === 0;
  }

  // Hearts float up from the bottom right: everyone's, taken from the rise
  // of the broadcast's heart total (the "hearts" event's count leaves out
  // the taps of other pages on this node), less this page's own taps,
  // which floated when tapped. Capped (web/hearts), so that a burst never
  // floods the DOM.
  let lastTotal = -1; // the heart total as last seen
  let ownUnseen = 0;  // this page's taps sent but not yet in a total seen
  let ownAt = 0;      // when this page last sent taps
  const OWN_FORGET = 15000; // taps the tree never counted (capped, lost) stop hiding others' after this

  // float: web/hearts' hearts.js, which the player page loads.
  function float(n) {
    if (window.peerscopeHearts) window.peerscopeHearts.float($('hearts'), n, () => { st.floated++; });
  }

  function heartsTo(total) {
    if (typeof total !== 'number') return;
    st.hearts = Math.max(st.hearts, total);
    if (ownUnseen && Date.now() - ownAt > OWN_FORGET) ownUnseen = 0;
    if (lastTotal >= 0 && total > lastTotal) {
      const rise = total - lastTotal;
      const own = Math.min(rise, ownUnseen);
      ownUnseen -= own;
      if (rise > own) float(rise - own);
    }
    if (total > lastTotal) lastTotal = total;
  }

  function setViewers(v) {
    st.viewers = v.live;
    heartsTo(v.hearts);
    $('viewers').textContent = `${v.live} watching · ♥ ${v.hearts}`;
    if (owner) $('livecount').textContent = v.live;
  }

  // ---- the stream -------------------------------------------------------

  fetch('chat/log', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : [])).then((log) => {
    for (const c of log) if (!c.deleted) show(c);
  }).catch(() => {});
  const es = new EventSource('chat/events' + (owner ? '?owner=' + encodeURIComponent(owner) : ''));
  const on = (name, f) => es.addEventListener(name, (e) => f(JSON.parse(e.data)));
  on('comment', show);
  on('hearts', (h) => heartsTo(h.total));
  on('viewers', setViewers);
  on('moderated', (m) => {
    st.moderated.push(m);
    if (m.op === 'comments-off') setOff(m.on);
    if (m.op === 'followers-only') setFollowersOnly(m.on);
    if (m.op === 'delete' && shown.has(m.target)) shown.get(m.target).hidden = true;
    if (owner && m.op === 'block') loadModeration();
  });
  on('summons', (s) => {
    // A juror: the comment, and two buttons until the deadline.
    st.summons.push(s);
    if (!token) return; // the node's owner votes, from a page on its machine
    const box = $('jury');
    box.hidden = false;
    box.textContent = `You are on a jury: should “${s.text}” be muted? `;
    for (const [label, guilty] of [['Mute', true], ['Keep', false]]) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = guilty ? 'guilty' : 'innocent';
      b.textContent = label;
      b.onclick = () => {
        box.hidden = true;
        api('vote', { call: s.call, guilty }).then(() => { s.voted = guilty; }).catch((e) => note(e.message));
      };
      box.append(b);
    }
    setTimeout(() => { box.hidden = true; }, Math.max(0, s.deadline - Date.now()));
  });
  function juryLog(text) {
    const li = document.createElement('li');
    li.textContent = text;
    $('jurylog').append(li);
  }
  on('reported', (r) => {
    const c = st.comments.find((x) => x.id === r.comment);
    juryLog(`Reported: “${c ? c.text : r.comment}” — a jury of viewers decides`);
  });
  on('verdict', (v) => {
    st.verdicts.push(v);
    const c = st.comments.find((x) => x.id === v.comment);
    juryLog(`Jury ${v.guilty ? 'muted' : 'kept'} “${c ? c.text : v.comment}” (${v.for} for, ${v.against} against, of ${v.jurors})`);
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) $('chat').hidden = true; };

  // ---- the box and the heart --------------------------------------------

  $('sayform').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('say').value.trim();
    if (!text) return;
    // The frame on screen: its capture time is now less the latency.
    const lat = window.peerscope.latencyMs;
    const at = typeof lat === 'number' ? Date.now() - lat : 0;
    api('comment', { text, at }).then(() => { $('say').value = ''; note(''); }).catch((err) => note(err.message));
  });

  if (!token) {
    // Served to another machine: what this page would post would be in
    // the node's name, which only its owner's pages may use.
    $('sayform').hidden = true;
    $('chatnote').textContent = 'Read-only here: only this node’s owner comments from it.';
  }

  // Taps are sent twice a second, with the moment they watched: the mean
  // capture time of the frames on screen when tapped (as a comment's at),
  // so that the replay floats them there, not when they reached the
  // broadcaster.
  let taps = 0, timed = 0, atSum = 0, atBase = 0;
  $('heartbtn').addEventListener('click', () => {
    taps++;
    const lat = window.peerscope.latencyMs;
    if (typeof lat === 'number') {
      const at = Date.now() - lat;
      if (!timed) atBase = at;
      atSum += at - atBase;
      timed++;
    }
    float(1);
  });
  setInterval(() => {
    if (!taps) return;
    const n = taps;
    const at = timed ? Math.round(atBase + atSum / timed) : 0;
    taps = timed = atSum = 0;
    ownUnseen += n;
    ownAt = Date.now();
    api('heart', { n, at }).catch((e) => { ownUnseen = Math.max(0, ownUnseen - n); note(e.message); });
  }, 500);

  loadModeration();
  if (owner) {
    $('owner').hidden = false;
    $('offbtn').onclick = () => api('moderate', { op: st.off ? 'comments_on' : 'comments_off' }, true).catch((e) => note(e.message));
    $('followbtn').onclick = () => {
      const follows = $('follows').value.split(',').map((x) => x.trim()).filter(Boolean);
      api('moderate', st.followersOnly ? { op: 'followers_off' } : { op: 'followers_only', follows }, true)
        .catch((e) => note(e.message));
    };
    const list = async () => {
      try {
        const r = await fetch('chat/viewers', { headers: { Authorization: 'Bearer ' + owner }, cache: 'no-store' });
        if (!r.ok) return;
        const v = await r.json();
        st.identified = v.identified || [];
        $('livecount').textContent = v.live;
        $('viewerlist').textContent = `${st.identified.length} signed in, ${v.anonymous || 0} anonymous`; // (0 is left out)
        const ul = $('viewers-identified');
        ul.replaceChildren();
        for (const a of st.identified) {
          const li = document.createElement('li');
          li.append(who(a));
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'mod block';
          b.textContent = 'block';
          b.onclick = () => api('moderate', { op: 'block', target: a.peer }, true).catch((e) => note(e.message));
          li.append(b);
          ul.append(li);
        }
      } catch (e) { /* the next round */ }
    };
    list();
    setInterval(list, 2000);
  }
})();

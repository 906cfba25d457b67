// Peerscope chat: the comment feed and box, hearts, the live count and, for
// the node's owner (#owner=TOKEN in the URL), moderation. It speaks the
// node's chat/ API; window.peerscope.chat exposes its state for tests.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const owner = new URLSearchParams(location.hash.slice(1)).get('owner') || '';
  const st = (window.peerscope = window.peerscope || {}).chat = {
    comments: [], floated: 0, viewers: null, hearts: 0, off: false, errors: [],
  };
  const feed = $('feed');
  const shown = new Map(); // comment ID → its <li>

  function authorName(a) {
    if (a.anonymous) return a.broadcaster ? 'broadcaster' : 'anonymous';
    return a.name || (a.handle ? '@' + a.handle : 'anonymous');
  }

  async function api(path, body, asOwner) {
    const headers = { 'Content-Type': 'application/json' };
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
    const who = document.createElement('b');
    who.textContent = authorName(c.author);
    if (c.author.broadcaster) who.className = 'host';
    const text = document.createElement('span');
    text.textContent = ' ' + c.text;
    li.append(who, text);
    if (owner && !c.author.broadcaster) {
      for (const [label, op, target] of [['delete', 'delete', c.id], ['block', 'block', c.author.peer]]) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'mod';
        b.textContent = label;
        b.onclick = () => api('moderate', { op, target }, true).catch((e) => note(e.message));
        li.append(b);
      }
    }
    if (!owner && !c.author.broadcaster) {
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
    $('say').disabled = off;
    $('say').placeholder = off ? 'Comments are off' : 'Say something…';
    if (owner) $('offbtn').textContent = off ? 'Turn comments on' : 'Turn comments off';
  }

  function float(n) {
    const layer = $('hearts');
    for (let i = 0; i < Math.min(n, 8); i++) {
      const h = document.createElement('span');
      h.className = 'heart';
      h.textContent = '♥';
      h.style.left = (70 + Math.random() * 25) + '%';
      h.style.animationDelay = (i * 120) + 'ms';
      h.addEventListener('animationend', () => h.remove());
      layer.append(h);
      st.floated++;
    }
  }

  function setViewers(v) {
    st.viewers = v.live;
    st.hearts = v.hearts;
    $('viewers').textContent = `${v.live} watching · ♥ ${v.hearts}`;
  }

  // ---- the stream -------------------------------------------------------

  fetch('chat/log', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : [])).then((log) => {
    for (const c of log) if (!c.deleted) show(c);
  }).catch(() => {});
  const es = new EventSource('chat/events' + (owner ? '?owner=' + encodeURIComponent(owner) : ''));
  const on = (name, f) => es.addEventListener(name, (e) => f(JSON.parse(e.data)));
  on('comment', show);
  on('hearts', (h) => { float(h.count); st.hearts = h.total; }); // others' hearts: this node's pages float their own
  on('viewers', setViewers);
  on('moderated', (m) => {
    if (m.op === 'comments-off') setOff(m.on);
    if (m.op === 'delete' && shown.has(m.target)) shown.get(m.target).hidden = true;
  });
  on('summons', (s) => {
    // A juror: the comment, and two buttons until the deadline.
    const box = $('jury');
    box.hidden = false;
    box.textContent = `Jury: should “${s.text}” be muted? `;
    for (const [label, guilty] of [['Mute', true], ['Keep', false]]) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.onclick = () => { box.hidden = true; api('vote', { call: s.call, guilty }).catch((e) => note(e.message)); };
      box.append(b);
    }
    setTimeout(() => { box.hidden = true; }, Math.max(0, s.deadline - Date.now()));
  });
  on('reported', (r) => note(`A comment was reported: a jury decides (${r.comment})`));
  on('verdict', (v) => note(`Jury: ${v.guilty ? 'muted' : 'kept'} (${v.for}–${v.against})`));
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

  let taps = 0;
  $('heartbtn').addEventListener('click', () => { taps++; float(1); });
  setInterval(() => {
    if (!taps) return;
    const n = taps;
    taps = 0;
    api('heart', { n }).catch((e) => note(e.message));
  }, 500);

  if (owner) {
    $('owner').hidden = false;
    $('offbtn').onclick = () => api('moderate', { op: st.off ? 'comments_on' : 'comments_off' }, true).catch((e) => note(e.message));
    const list = async () => {
      try {
        const r = await fetch('chat/viewers', { headers: { Authorization: 'Bearer ' + owner }, cache: 'no-store' });
        if (!r.ok) return;
        const v = await r.json();
        const names = (v.identified || []).map((a) => a.name || '@' + a.handle);
        $('viewerlist').textContent = names.length ? names.join(', ') + ` and ${v.anonymous} anonymous` : `${v.anonymous} anonymous`;
      } catch (e) { /* the next round */ }
    };
    list();
    setInterval(list, 5000);
  }
})();

// Peerscope player: WHEP first, then our own small LL-HLS reader over Media
// Source Extensions. No dependencies. window.peerscope exposes the state
// for tests and the curious.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const params = new URLSearchParams(location.search);
  const forced = params.get('mode'); // 'hls' | 'whep' | 'p2p' | null
  const NTP_UNIX_MS = 2208988800000; // 1900 → 1970

  const state = window.peerscope = Object.assign(window.peerscope || {}, {
    mode: null, startupMs: null, firstFrameAt: null, latencyMs: null, ended: false, live: false, prefer: '',
    audio: null, errors: [], log: [],
    replay: false, duration: null, comments: [], shownComments: 0, seeks: 0,
    hearts: [], heartAt: 0, heartsFloated: [],
  });
  const t0 = performance.now();

  function log(...a) {
    const line = `${((performance.now() - t0) / 1000).toFixed(2)} ${a.join(' ')}`;
    state.log.push(line);
    if (state.log.length > 200) state.log.shift();
    if (params.has('debug')) { $('log').hidden = false; $('log').textContent = state.log.join('\n'); }
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- page state -------------------------------------------------------

  function setBadge(text, live) {
    $('badge').textContent = text;
    $('badge').classList.toggle('live', !!live);
  }
  function showOverlay(text) {
    $('overlay').textContent = text;
    $('overlay').hidden = !text;
  }
  function setNote(text, action) {
    const n = $('note');
    n.textContent = text || '';
    if (action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = action.label;
      b.onclick = action.run;
      n.append(b);
    }
  }

  let player = null; // the active player: {kind, stop(), latency()}

  function ended() {
    if (state.ended) return;
    state.ended = true;
    log('ended');
    setBadge('ended');
    showOverlay('The broadcast has ended');
    $('viewers').hidden = true; // nobody watches any more
    $('unmute').hidden = true;
    if (player) player.stop();
    if (state.replayURL) {
      const a = document.createElement('a');
      a.href = state.replayURL;
      a.textContent = 'Watch the replay';
      $('note').replaceChildren(a);
    } else if (state.replayLink) {
      offerReplayLink(state.replayLink);
    }
  }

  // offerReplayLink: a web link's server carries no media, so an ended
  // broadcast's replay is offered as the command that plays it with a
  // Peerscope node, with a button to copy its link.
  function offerReplayLink(link) {
    const cmd = document.createElement('code');
    cmd.className = 'cmd';
    cmd.textContent = `peerscope watch '${link}'`;
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.textContent = 'Copy the link';
    copy.onclick = () => {
      if (navigator.clipboard) navigator.clipboard.writeText(link).then(() => { copy.textContent = 'Copied'; }, () => {});
    };
    $('note').replaceChildren('Its replay plays for 24 hours with Peerscope: ', cmd, copy);
  }

  function setReplays(n, identified) {
    $('replays').textContent = n ? `${n} replay view${n === 1 ? '' : 's'}${identified ? `, ${identified} signed in` : ''}` : '';
  }

  async function pollStatus() {
    try {
      const r = await fetch('api/status', { cache: 'no-store' });
      if (!r.ok) return;
      const s = await r.json();
      if (s.title) { $('title').textContent = s.title; document.title = `${s.title} · Peerscope`; }
      people.status(s);
      state.live = !!s.live;
      state.replay = !!s.replay;
      state.prefer = s.prefer || '';
      if (s.replay) {
        state.duration = s.duration;
        setReplays(s.replay_viewers, s.replay_viewers_identified);
        $('viewers').hidden = true; // nobody watches live; the replay's views are in the footer
        return;
      }
      setReplays(s.replay_viewers, s.replay_viewers_identified);
      if (s.ended && s.replay_url) state.replayURL = new URL(s.replay_url, location.href).href;
      if (s.ended && s.replay_link) state.replayLink = s.replay_link;
      if (s.ended) {
        // Let the last seconds play out before saying so; with nothing
        // playing, at once (so that the page does not try to play it).
        if (!player) ended();
        else if (video.paused || video.ended || player.kind === 'whep') setTimeout(ended, 1500);
      } else if (!state.ended) {
        setBadge(s.live ? 'live' : 'waiting', s.live);
      }
    } catch (e) { /* the node may restart; try again later */ }
  }

  function firstFrame() {
    if (state.startupMs !== null) return;
    state.startupMs = Math.round(performance.now() - t0);
    // From the navigation that opened the page (a click on a link): what a
    // person waits for.
    state.firstFrameAt = Math.round(performance.now());
    log('first frame after', state.startupMs, 'ms over', state.mode);
    showOverlay('');
  }

  // The first frame shown: requestVideoFrameCallback where there is one.
  function watchFirstFrame() {
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => firstFrame());
    else video.addEventListener('playing', firstFrame, { once: true });
  }

  function startPlayback() {
    const p = video.play();
    if (p) p.catch((e) => log('play:', e.message));
    $('unmute').hidden = !video.muted || !state.audio;
  }
  $('unmute').onclick = () => { video.muted = false; $('unmute').hidden = true; video.play().catch(() => {}); };

  // ---- WHEP -------------------------------------------------------------

  async function gathered(pc, ms) {
    if (pc.iceGatheringState === 'complete') return;
    await Promise.race([
      new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r())),
      sleep(ms),
    ]);
  }

  async function playWHEP(timeoutMs) {
    if (!window.RTCPeerConnection) return null;
    const pc = new RTCPeerConnection();
    let resource = null;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      pc.close();
      if (resource) fetch(resource, { method: 'DELETE', keepalive: true }).catch(() => {});
    };
    try {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 1000);
      const r = await fetch('whep', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      if (r.status !== 201) { log('whep: POST', r.status); stop(); return null; }
      resource = new URL(r.headers.get('Location'), r.url).href;
      const audio = r.headers.get('Peerscope-Audio') || '';
      state.audio = audio.startsWith('opus') ? 'opus' : null;
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
      const ok = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        const done = () => { clearTimeout(timer); resolve(true); };
        if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(done);
        else video.addEventListener('playing', done, { once: true });
        pc.addEventListener('connectionstatechange', () => { if (pc.connectionState === 'failed') { clearTimeout(timer); resolve(false); } });
        startPlayback();
      });
      if (!ok) { log('whep: no picture'); stop(); video.srcObject = null; return null; }
      if (audio.includes('codec=aac')) {
        setNote('Sound is available over HLS.', { label: 'Play with sound', run: () => switchTo('hls', true) });
      }
      pc.addEventListener('connectionstatechange', () => {
        log('whep:', pc.connectionState);
        if (stopped || state.ended) return;
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
          // The node hangs up when the broadcast ends; otherwise, fall back.
          pollStatus().then(() => { if (!state.ended) switchTo(forced === 'whep' ? 'whep' : 'hls'); });
        }
      });
      return {
        kind: 'whep',
        stop,
        async latency() {
          const stats = await pc.getStats();
          let est = null;
          stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video' && s.estimatedPlayoutTimestamp) est = s.estimatedPlayoutTimestamp; });
          return est ? Date.now() - (est - NTP_UNIX_MS) : null;
        },
      };
    } catch (e) {
      log('whep:', e.message);
      stop();
      return null;
    }
  }

  // ---- LL-HLS over MSE --------------------------------------------------

  // Boxes: [type, start of payload, end] of the boxes in b[from, to).
  function boxes(b, from, to) {
    const out = [];
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let o = from; o + 8 <= to;) {
      let size = dv.getUint32(o);
      const type = String.fromCharCode(b[o + 4], b[o + 5], b[o + 6], b[o + 7]);
      let hdr = 8;
      if (size === 1) { size = Number(dv.getBigUint64(o + 8)); hdr = 16; } else if (size === 0) size = to - o;
      if (size < hdr || o + size > to) break;
      out.push([type, o + hdr, o + size]);
      o += size;
    }
    return out;
  }
  const child = (b, box, type) => boxes(b, box[1], box[2]).filter((x) => x[0] === type);

  // From an init segment: the MSE codecs string, the video track ID and
  // its timescale.
  function readInit(b) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const codecs = [];
    let videoID = null; let timescale = 90000;
    for (const moov of boxes(b, 0, b.length).filter((x) => x[0] === 'moov')) {
      for (const trak of child(b, moov, 'trak')) {
        const tkhd = child(b, trak, 'tkhd')[0];
        const id = tkhd ? dv.getUint32(tkhd[1] + (b[tkhd[1]] === 1 ? 20 : 12)) : 0;
        for (const mdia of child(b, trak, 'mdia')) {
          const hdlr = child(b, mdia, 'hdlr')[0];
          const handler = hdlr ? String.fromCharCode(...b.subarray(hdlr[1] + 8, hdlr[1] + 12)) : '';
          const mdhd = child(b, mdia, 'mdhd')[0];
          const ts = mdhd ? dv.getUint32(mdhd[1] + (b[mdhd[1]] === 1 ? 20 : 12)) : 0;
          const stsd = child(b, child(b, child(b, mdia, 'minf')[0] || [0, 0, 0], 'stbl')[0] || [0, 0, 0], 'stsd')[0];
          if (!stsd) continue;
          const entry = boxes(b, stsd[1] + 8, stsd[2])[0];
          if (!entry) continue;
          if (handler === 'vide' && entry[0] === 'avc1') {
            videoID = id; timescale = ts || timescale;
            const avcC = boxes(b, entry[1] + 78, entry[2]).find((x) => x[0] === 'avcC');
            const hex = (v) => v.toString(16).padStart(2, '0');
            codecs.push(avcC ? `avc1.${hex(b[avcC[1] + 1])}${hex(b[avcC[1] + 2])}${hex(b[avcC[1] + 3])}` : 'avc1.42e01e');
          } else if (handler === 'soun') {
            if (entry[0] === 'Opus') codecs.push('opus');
            else if (entry[0] === 'mp4a') codecs.push('mp4a.40.2');
          }
        }
      }
    }
    return { codecs: codecs.join(','), videoID, timescale };
  }

  // The video track's decode time at the start of a part, in seconds.
  function partStart(b, videoID, timescale) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (const moof of boxes(b, 0, b.length).filter((x) => x[0] === 'moof')) {
      for (const traf of child(b, moof, 'traf')) {
        const tfhd = child(b, traf, 'tfhd')[0];
        const tfdt = child(b, traf, 'tfdt')[0];
        if (!tfhd || !tfdt || dv.getUint32(tfhd[1] + 4) !== videoID) continue;
        const t = b[tfdt[1]] === 1 ? Number(dv.getBigUint64(tfdt[1] + 4)) : dv.getUint32(tfdt[1] + 4);
        return t / timescale;
      }
    }
    return null;
  }

  function parsePlaylist(text, base) {
    const pl = { parts: [], segments: [], map: null, ended: false, hint: null, holdBack: 1, msn: 0 };
    let msn = 0; let idx = 0; let map = null; let disc = false; let pdt = null;
    const attrs = (s) => {
      const a = {};
      for (const m of s.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) a[m[1]] = m[2].replace(/^"|"$/g, '');
      return a;
    };
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i].trim();
      if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) msn = pl.msn = parseInt(l.slice(22), 10);
      else if (l.startsWith('#EXT-X-MAP:')) map = new URL(attrs(l.slice(11)).URI, base).href;
      else if (l.startsWith('#EXT-X-DISCONTINUITY') && !l.startsWith('#EXT-X-DISCONTINUITY-')) disc = true;
      else if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = Date.parse(l.slice(25));
      else if (l.startsWith('#EXT-X-SERVER-CONTROL:')) pl.holdBack = parseFloat(attrs(l.slice(22))['PART-HOLD-BACK'] || '1');
      else if (l.startsWith('#EXT-X-PART:')) {
        const a = attrs(l.slice(12));
        pl.parts.push({ uri: new URL(a.URI, base).href, dur: parseFloat(a.DURATION), independent: a.INDEPENDENT === 'YES', msn, idx, map, disc, pdt });
        if (pdt !== null) pdt += parseFloat(a.DURATION) * 1000;
        idx++; disc = false;
      } else if (l.startsWith('#EXTINF:')) {
        pl.segments.push({ msn, uri: new URL(lines[i + 1].trim(), base).href, map });
        msn++; idx = 0; i++; pdt = null;
      } else if (l.startsWith('#EXT-X-PRELOAD-HINT:')) pl.hint = new URL(attrs(l.slice(20)).URI, base).href;
      else if (l === '#EXT-X-ENDLIST') pl.ended = true;
    }
    pl.map = map;
    pl.nextMSN = msn; pl.nextPart = idx;
    return pl;
  }

  async function playHLS() {
    if (!window.MediaSource) { setNote('This browser cannot play this stream.'); return null; }
    const url = new URL('hls/index.m3u8', location.href).href;
    const ms = new MediaSource();
    let stopped = false;
    let sb = null;
    let mapURI = null; let info = null;
    const anchors = []; // [media time (s), capture time (ms)]
    const appended = new Set();
    let last = null; // the last part appended: {msn, idx}
    const stop = () => { stopped = true; };

    video.srcObject = null;
    video.src = URL.createObjectURL(ms);
    await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));

    const append = (buf) => appendTo(sb, buf);
    async function get(u) {
      const r = await fetch(u, { cache: 'no-store' });
      if (!r.ok) throw new Error(`${r.status} ${u}`);
      return r;
    }
    async function load(part) {
      if (part.map !== mapURI) {
        const init = new Uint8Array(await (await get(part.map)).arrayBuffer());
        const next = readInit(init);
        const type = `video/mp4; codecs="${next.codecs}"`;
        log('hls: init', type);
        if (!sb) {
          if (!MediaSource.isTypeSupported(type)) throw new Error(`unsupported ${type}`);
          sb = ms.addSourceBuffer(type);
        } else if (info.codecs !== next.codecs && sb.changeType) sb.changeType(type);
        state.audio = /opus|mp4a/.test(next.codecs) ? next.codecs.split(',').pop() : null;
        info = next; mapURI = part.map;
        await append(init);
      }
      const r = await get(part.uri);
      const buf = new Uint8Array(await r.arrayBuffer());
      const wall = parseInt(r.headers.get('Peerscope-Wallclock') || '', 10) || part.pdt;
      const start = partStart(buf, info.videoID, info.timescale);
      if (start !== null && wall) {
        anchors.push([start, wall]);
        if (anchors.length > 300) anchors.shift();
      }
      await append(buf);
      appended.add(part.uri);
      last = part;
    }

    let pl = null;
    for (let wait = 500; !pl && !stopped && !state.ended; wait = Math.min(wait * 2, 5000)) {
      // The broadcast may not have started yet: the server then answers
      // 503 after a while, or 404 if it has no LL-HLS at all.
      try { pl = parsePlaylist(await (await get(url)).text(), url); } catch (e) { log('hls:', e.message); await sleep(wait); }
    }
    if (!pl) return null;
    // Start at the newest independent part: the first picture comes from
    // there, then we seek near the live edge.
    let from = -1;
    for (let i = pl.parts.length - 1; i >= 0; i--) if (pl.parts[i].independent) { from = i; break; }
    if (from < 0) from = 0;
    const keeper = { kind: 'hls', stop, latency: () => latencyFrom(anchors) };

    (async () => {
      let first = true;
      while (!stopped) {
        try {
          let idx = last ? pl.parts.findIndex((p) => p.uri === last.uri) + 1 : from;
          if (last && idx === 0) {
            // Fell out of the playlist: resync at its newest independent part.
            log('hls: resync');
            idx = pl.parts.map((p) => p.independent).lastIndexOf(true);
            if (idx < 0) idx = 0;
          }
          for (const part of pl.parts.slice(idx)) {
            if (stopped) return;
            if (!appended.has(part.uri)) await load(part);
          }
          if (first && sb && sb.buffered.length) {
            first = false;
            const end = sb.buffered.end(sb.buffered.length - 1);
            video.currentTime = Math.max(sb.buffered.start(0), end - Math.max(pl.holdBack, 0.5));
            startPlayback();
          }
          if (pl.ended) {
            if (!sb.updating) ms.endOfStream();
            log('hls: end of playlist');
            return;
          }
          const next = last ? `_HLS_msn=${last.msn}&_HLS_part=${last.idx + 1}` : `_HLS_msn=${pl.nextMSN}&_HLS_part=${pl.nextPart}`;
          const r = await fetch(`${url}?${next}`, { cache: 'no-store' });
          if (r.ok) pl = parsePlaylist(await r.text(), url);
          else { log('hls: playlist', r.status); await sleep(500); pl = parsePlaylist(await (await get(url)).text(), url); }
        } catch (e) {
          log('hls:', e.message);
          state.errors.push(e.message);
          await sleep(1000);
          try { pl = parsePlaylist(await (await get(url)).text(), url); } catch (e2) { /* keep trying */ }
        }
      }
    })();

    keepLive(() => sb, () => pl.holdBack, () => stopped);
    video.addEventListener('ended', () => { if (pl.ended) ended(); });
    return keeper;
  }

  // keepLive keeps the playhead near the live edge of a SourceBuffer, for
  // LL-HLS and the tree alike: a little faster when behind, a jump when far
  // behind, holes jumped, what was played long ago dropped.
  function keepLive(getSB, holdBack, isStopped) {
    const timer = setInterval(() => {
      if (isStopped()) { clearInterval(timer); return; }
      const sb = getSB();
      if (!sb || !sb.buffered.length || state.ended) return;
      const b = sb.buffered;
      const t = video.currentTime;
      const end = b.end(b.length - 1);
      for (let i = 0; i < b.length; i++) {
        if (t < b.start(i) && (i === 0 || t >= b.end(i - 1) - 0.1) && b.start(i) - t < 3) {
          log('jump hole', t.toFixed(2), '→', b.start(i).toFixed(2));
          video.currentTime = b.start(i) + 0.01;
          return;
        }
      }
      const ahead = end - t;
      const target = Math.max(holdBack(), 0.5);
      if (ahead > target + 3) { log('catch up', ahead.toFixed(2)); video.currentTime = end - target; } else if (ahead > target + 0.3) video.playbackRate = 1.08;
      else if (ahead < target - 0.2) video.playbackRate = 0.97;
      else video.playbackRate = 1;
      if (!sb.updating && t - b.start(0) > 30) sb.remove(b.start(0), t - 20);
    }, 250);
  }

  function latencyFrom(anchors) {
    const t = video.currentTime;
    let a = null;
    for (const x of anchors) if (x[0] <= t + 0.001 && (!a || x[0] > a[0])) a = x;
    return a ? Date.now() - (a[1] + (t - a[0]) * 1000) : null;
  }


  // ---- the tree itself: the page as a light node (web/peer) -------------

  // idle waits until a SourceBuffer is doing nothing: keepLive's remove of
  // old media may be under way when the next part comes, and appendBuffer
  // throws then (the part would be lost).
  async function idle(sb) {
    while (sb.updating) await new Promise((r) => sb.addEventListener('updateend', r, { once: true }));
  }

  // appendTo appends buf to sb once it is idle, resolving when it is in.
  async function appendTo(sb, buf) {
    await idle(sb);
    return new Promise((resolve, reject) => {
      sb.addEventListener('updateend', resolve, { once: true });
      sb.addEventListener('error', reject, { once: true });
      sb.appendBuffer(buf);
    });
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = src;
      el.onload = resolve;
      el.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.append(el);
    });
  }

  // playP2P joins the broadcast's tree through the node that served the
  // page (api/peer), verifies every chunk and appends the parts, in
  // sequence, to one SourceBuffer: the same reader, latency and catch-up
  // as LL-HLS, fed by the tree instead of HTTP.
  async function playP2P() {
    if (!window.MediaSource || !window.RTCPeerConnection) return null;
    let info;
    // The page's startup, on its own clock (from the navigation): this
    // script, api/peer answered, peer.js loaded, the MediaSource open.
    // The three go at once: each waited for the one before it, which cost
    // a loaded machine up to half a second.
    const times = state.times = { script: Math.round(t0) };
    const ms = new MediaSource();
    const opened = new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }))
      .then(() => { times.mse = Math.round(performance.now()); });
    try {
      const script = window.PeerscopePeer ? null : loadScript('peer.js')
        .then(() => { times.peerjs = Math.round(performance.now()); });
      if (script) script.catch(() => {}); // (awaited below, once api/peer has answered)
      const r = await fetch('api/peer', { cache: 'no-store' });
      if (!r.ok) { log('p2p: api/peer', r.status); return null; }
      info = await r.json();
      times.api = Math.round(performance.now());
      video.srcObject = null;
      video.src = URL.createObjectURL(ms);
      await script;
    } catch (e) { log('p2p:', e.message); return null; }
    await opened;
    let sb = null; let codecs = null; let videoID = null; let timescale = 90000;
    let stopped = false; let first = true; let holdBack = 0.6; let sawEnd = false;
    const anchors = [];
    const queue = []; let busy = false;
    const append = (buf) => appendTo(sb, buf);
    async function put(c) {
      if (c.flags & 2) { // init
        const next = readInit(c.payload);
        const type = `video/mp4; codecs="${next.codecs}"`;
        if (!sb) {
          if (!MediaSource.isTypeSupported(type)) throw new Error(`unsupported ${type}`);
          sb = ms.addSourceBuffer(type);
          log('p2p: init', type);
        } else if (codecs !== next.codecs && sb.changeType) sb.changeType(type);
        state.audio = /opus|mp4a/.test(next.codecs) ? next.codecs.split(',').pop() : null;
        codecs = next.codecs; videoID = next.videoID; timescale = next.timescale;
        await append(c.payload);
        return;
      }
      if (c.flags & 4) sawEnd = true;
      if (!sb || !c.payload.length) return;
      const start = partStart(c.payload, videoID, timescale);
      if (start !== null) {
        anchors.push([start, Number(c.wallclock / 1000000n)]);
        if (anchors.length > 300) anchors.shift();
      }
      if (c.duration > 0n) holdBack = Math.max(holdBack, 3 * Number(c.duration) / 1e9);
      await append(c.payload);
      if (first && sb.buffered.length) {
        first = false;
        const end = sb.buffered.end(sb.buffered.length - 1);
        video.currentTime = Math.max(sb.buffered.start(0), end - Math.max(holdBack, 0.5));
        startPlayback();
      }
    }
    async function pump() {
      if (busy) return;
      busy = true;
      try {
        while (queue.length && !stopped) {
          try { await put(queue.shift()); } catch (e) { log('p2p:', e.message); state.errors.push(e.message); }
        }
        if (sawEnd && !queue.length && sb && !sb.updating && ms.readyState === 'open') ms.endOfStream();
      } finally { busy = false; }
    }
    let peer;
    try {
      peer = await window.PeerscopePeer.start({
        broadcast: info.broadcast, protocol: info.protocol, addrs: info.addrs, log,
        slots: state.slots = childSlots(info),
        onChunk: (c) => { queue.push(c); pump(); },
      });
    } catch (e) { log('p2p: start', e.message); return null; }
    state.peerID = peer.id;
    const stats = setInterval(() => { state.peer = peer.stats(); }, 250);
    keepLive(() => sb, () => holdBack, () => stopped);
    video.addEventListener('ended', () => { if (sawEnd) ended(); });
    return {
      kind: 'p2p',
      stop: () => { if (stopped) return; stopped = true; clearInterval(stats); state.peer = peer.stats(); peer.stop(); },
      latency: () => latencyFrom(anchors),
    };
  }

  // childSlots is how many other browsers this page feeds: ?slots=N (at
  // most 8) when the URL says; else none on a metered network (a phone on
  // cellular data, or Save-Data), else what the server suggests (api/peer's
  // slots; 0, a leaf, on a full node's own page).
  function childSlots(info) {
    const clamp = (n) => Math.max(0, Math.min(8, n || 0));
    if (params.has('slots')) return clamp(parseInt(params.get('slots'), 10));
    const c = navigator.connection;
    if (c && (c.saveData || c.type === 'cellular')) return 0;
    return clamp(info.slots);
  }

  // ---- replay: HLS VOD over MSE, with seeking ---------------------------

  // The VOD playlist: segments with their place on the timeline.
  function parseVOD(text, base) {
    const segs = [];
    let map = null; let at = 0; let dur = null; let pdt = null;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i].trim();
      if (l.startsWith('#EXT-X-MAP:')) map = new URL(/URI="([^"]*)"/.exec(l)[1], base).href;
      else if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = Date.parse(l.slice(25));
      else if (l.startsWith('#EXTINF:')) dur = parseFloat(l.slice(8));
      else if (l && !l.startsWith('#') && dur !== null) {
        segs.push({ uri: new URL(l, base).href, map, start: at, dur, pdt });
        at += dur; dur = null; pdt = null;
      }
    }
    return { segs, duration: at };
  }

  async function playVOD() {
    if (!window.MediaSource) { setNote('This browser cannot play this replay.'); return null; }
    state.mode = 'vod';
    $('mode').textContent = 'Replay';
    setBadge('replay');
    video.controls = true; // the seek bar
    watchFirstFrame();
    const url = new URL('hls/index.m3u8', location.href).href;
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) { setNote(`The replay is not available (${r.status}).`); return null; }
    const pl = parseVOD(await r.text(), url);
    if (!pl.segs.length) { setNote('The replay is empty.'); return null; }
    state.duration = pl.duration;
    const ms = new MediaSource();
    video.srcObject = null;
    video.src = URL.createObjectURL(ms);
    await new Promise((res) => ms.addEventListener('sourceopen', res, { once: true }));
    ms.duration = pl.duration;
    let sb = null; let mapURI = null; let info = null; let offset = null;
    let next = 0; // the next segment to load
    let gen = 0; // bumped by a seek: a loader of an older generation stops
    const loaded = new Set();
    const skipped = new Set(); // segments no peer gave: jumped over
    const append = (buf) => appendTo(sb, buf);
    async function get(u) {
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(u);
        if (res.ok) return new Uint8Array(await res.arrayBuffer());
        if (attempt >= 4) throw new Error(`${res.status} ${u}`);
        await sleep(500 * (attempt + 1)); // a part may still be on its way from a peer
      }
    }
    async function load(i, g) {
      const seg = pl.segs[i];
      if (seg.map !== mapURI) {
        const init = await get(seg.map);
        const next = readInit(init);
        const type = `video/mp4; codecs="${next.codecs}"`;
        if (!sb) {
          if (!MediaSource.isTypeSupported(type)) throw new Error(`unsupported ${type}`);
          sb = ms.addSourceBuffer(type);
          sb.mode = 'segments';
        } else if (info.codecs !== next.codecs && sb.changeType) sb.changeType(type);
        state.audio = /opus|mp4a/.test(next.codecs) ? next.codecs.split(',').pop() : null;
        info = next; mapURI = seg.map;
        await append(init);
      }
      const buf = await get(seg.uri);
      if (g !== gen) return false;
      if (offset === null) {
        // The replay's timeline starts at 0: shift its decode times.
        const t0 = partStart(buf, info.videoID, info.timescale) || 0;
        offset = -t0;
        sb.timestampOffset = offset;
      }
      await append(buf);
      loaded.add(i);
      return true;
    }
    const segAt = (t) => {
      for (let i = pl.segs.length - 1; i >= 0; i--) if (pl.segs[i].start <= t + 0.001) return i;
      return 0;
    };
    const buffered = (t) => {
      const b = sb ? sb.buffered : null;
      if (!b) return false;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.05 && t < b.end(i) - 0.05) return true;
      return false;
    };
    let stopped = false;
    let loading = false;
    async function pump() {
      if (loading || stopped) return;
      loading = true;
      const g = gen;
      try {
        while (!stopped && g === gen && next < pl.segs.length) {
          // Keep about 30 s ahead of the playhead.
          if (pl.segs[next].start > video.currentTime + 30) break;
          if (!skipped.has(next) && (!loaded.has(next) || !buffered(pl.segs[next].start + pl.segs[next].dur / 2))) {
            try {
              if (!(await load(next, g))) break;
            } catch (e) {
              // No peer holds it (yet): play on past the hole.
              log('vod: segment', next, 'skipped:', e.message);
              state.errors.push(e.message);
              skipped.add(next);
            }
          }
          next++;
          if (state.startupMs === null && sb && sb.buffered.length) startPlayback();
        }
        if (g === gen && next >= pl.segs.length && sb && !sb.updating && ms.readyState === 'open') {
          log('vod: all segments appended');
          ms.endOfStream();
        }
      } catch (e) {
        log('vod:', e.message);
        state.errors.push(e.message);
      } finally {
        loading = false;
      }
      if (g !== gen) pump(); // a seek came while loading
    }
    video.addEventListener('seeking', () => {
      const t = video.currentTime;
      state.seeks++;
      renderComments(t, true);
      state.heartAt = t; // a seek floats nothing: hearts float as the replay plays through them
      if (buffered(t)) return;
      log('vod: seek to', t.toFixed(2));
      gen++;
      skipped.clear(); // a peer may have come since: try again
      next = segAt(t);
      if (ms.readyState === 'ended') {
        // More media after the end was declared: reopen by appending.
        loaded.clear();
      }
      pump();
    });
    video.addEventListener('timeupdate', () => {
      renderComments(video.currentTime, false);
      floatHearts(video.currentTime);
      pump();
      // Drop what lies far behind, to bound memory on long replays.
      if (sb && !sb.updating && sb.buffered.length && video.currentTime - sb.buffered.start(0) > 90) {
        sb.remove(0, video.currentTime - 60);
        for (const i of [...loaded]) if (pl.segs[i].start + pl.segs[i].dur < video.currentTime - 60) loaded.delete(i);
      }
    });
    video.addEventListener('ended', () => { setBadge('replay ended'); log('vod: ended'); });
    video.addEventListener('waiting', () => {
      // Stuck at a skipped segment: jump to the next one that is here.
      let i = segAt(video.currentTime + 0.05);
      if (!skipped.has(i)) return;
      while (i < pl.segs.length && skipped.has(i)) i++;
      if (i < pl.segs.length) { log('vod: jump over a hole to', pl.segs[i].start.toFixed(2)); video.currentTime = pl.segs[i].start + 0.01; }
    });
    loadComments();
    loadHearts();
    pump();
    return { kind: 'vod', stop: () => { stopped = true; }, latency: async () => null };
  }

  // The comments, shown as the playhead passes the moment they were written.
  async function loadComments() {
    try {
      const r = await fetch('api/comments');
      if (!r.ok) return;
      state.comments = await r.json();
      $('replaychat').hidden = false;
      $('chat').hidden = true;
      renderComments(video.currentTime, true);
    } catch (e) { log('comments:', e.message); }
  }
  // The hearts (api/hearts: a count for each second that had any), floated
  // as the playhead plays through their second. Pages of a node without
  // them get a 404 and float none.
  async function loadHearts() {
    try {
      const r = await fetch('api/hearts');
      if (!r.ok) return;
      state.hearts = await r.json();
      state.heartAt = video.currentTime;
    } catch (e) { log('hearts:', e.message); }
  }
  function floatHearts(t) {
    const from = state.heartAt;
    state.heartAt = t;
    if (!(t > from) || t - from > 2) return; // paused, or a jump: nothing floats
    const hs = state.hearts;
    let lo = 0; let hi = hs.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (hs[m].at <= from) lo = m + 1; else hi = m; }
    for (let i = lo; i < hs.length && hs[i].at <= t; i++) {
      state.heartsFloated.push(hs[i].at);
      if (state.heartsFloated.length > 1000) state.heartsFloated.shift();
      if (window.peerscopeHearts) window.peerscopeHearts.float($('hearts'), hs[i].count);
    }
  }
  function clock(s) {
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
  }
  function renderComments(t, rebuild) {
    const cs = state.comments;
    let n = 0;
    while (n < cs.length && cs[n].at <= t) n++;
    if (!rebuild && n === state.shownComments) return;
    const feed = $('rfeed');
    if (rebuild || n < state.shownComments) { feed.replaceChildren(); state.shownComments = 0; }
    for (let i = state.shownComments; i < n; i++) {
      const c = cs[i];
      const li = document.createElement('li');
      const when = document.createElement('span');
      when.className = 'when';
      when.textContent = clock(c.at);
      const who = document.createElement('b');
      who.textContent = c.name;
      if (c.broadcaster) who.className = 'host';
      const text = document.createElement('span');
      text.textContent = ' ' + c.text;
      li.append(when, who, text);
      feed.append(li);
    }
    state.shownComments = n;
    feed.scrollTop = feed.scrollHeight;
  }

  // ---- who broadcasts, Follow, Share, who watches ------------------------

  // people: the broadcaster's face, name, handle and where the identity
  // comes from (api/status's who: the directory's listing, from the
  // attestation a bootstrap signed), Follow through the node, Share, and
  // the faces of the signed-in viewers behind the count.
  const people = (() => {
    const meta = document.querySelector('meta[name="peerscope-token"]');
    const token = meta ? meta.content : '';
    const isOwner = new URLSearchParams(location.hash.slice(1)).has('owner');
    const st = state.people = { who: undefined, link: '', web: '', following: null, signedIn: null, notes: [], viewers: null };
    let polls = 0;

    function initials(name) {
      const words = name.replace(/^[@+]/, '').split(/[\s._-]+/).filter(Boolean);
      const s = (words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 2));
      return s.toUpperCase();
    }
    // face fills el with the avatar (https only: the page's policy) or the
    // initials of name.
    function face(el, name, avatar, anon) {
      el.replaceChildren();
      el.classList.toggle('anon', !!anon);
      if (avatar && avatar.startsWith('https://')) {
        const img = document.createElement('img');
        img.alt = '';
        img.referrerPolicy = 'no-referrer';
        img.src = avatar;
        img.addEventListener('error', () => { img.remove(); el.textContent = initials(name); });
        el.append(img);
      } else {
        el.textContent = anon ? '?' : initials(name);
      }
      // A colour of its own for each name, dark enough for white initials.
      let h = 0;
      for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
      el.style.backgroundColor = anon ? '' : `hsl(${h} 45% 32%)`;
    }
    const SOURCES = { twitter: 'via Twitter', phone: 'signed in by phone' };

    // showWho shows who (a signed-in broadcaster), or, with who null, an
    // anonymous one (anon: the directory says so) or one not known here.
    function showWho(who, anon) {
      st.who = who;
      const name = who ? (who.name || who.handle || who.account) : anon ? 'Anonymous broadcaster' : 'Broadcaster';
      face($('whoface'), name, who && who.avatar, !who);
      if (who) {
        // The name opens the broadcaster's profile: the bootstrap's page
        // beside a web link (/w/…), else this node's directory.
        const a = document.createElement('a');
        a.href = `${location.pathname.startsWith('/w/') ? '/u/' : '/directory/u/'}${encodeURIComponent(`${who.provider}:${who.account}`)}`;
        a.textContent = name;
        $('whoname').replaceChildren(a);
      } else {
        $('whoname').textContent = name;
      }
      $('whohandle').textContent = who && who.name && who.handle ? who.handle : '';
      $('whosource').textContent = who ? (SOURCES[who.provider] || `via ${who.provider}`) : anon ? 'not signed in' : 'not in a directory';
      $('who').setAttribute('aria-label', `Broadcast by ${name}${who && who.handle && who.name ? ' ' + who.handle : ''}, ${$('whosource').textContent}`);
      $('follow').hidden = !who || isOwner;
      if (who) $('follow').setAttribute('aria-label', `${st.following ? 'Unfollow' : 'Follow'} ${name}`);
      if (who && st.following === null) loadFollows();
    }

    function status(s) {
      polls++;
      if (s.link) st.link = s.link;
      if (s.web_link) st.web = s.web_link;
      // The node reads the listing on the first ask: say "anonymous" only
      // once it has had the time to.
      if (s.who || s.anonymous || polls > 1 || s.replay || s.ended) {
        const key = s.who ? `${s.who.provider}:${s.who.account}` : s.anonymous ? 'anonymous' : '';
        if (key !== st.whoKey || st.who === undefined) { st.whoKey = key; showWho(s.who || null, !!s.anonymous); }
      }
      // A page without a chat (the web link) has the directory's count (0 is left out).
      if (!s.replay && !window.peerscope.chat) $('viewers').textContent = `${s.viewers || 0} watching`;
    }

    function followNote(...parts) {
      const n = $('follownote');
      n.replaceChildren(...parts);
      n.hidden = parts.length === 0;
      if (parts.length) st.notes.push(n.textContent);
    }
    function setFollowing(on) {
      st.following = on;
      const b = $('follow');
      b.textContent = on ? 'Following' : 'Follow';
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      if (st.who) b.setAttribute('aria-label', `${on ? 'Unfollow' : 'Follow'} ${$('whoname').textContent}`);
    }
    // The node follows for its owner's pages (the page token); a page
    // served elsewhere (the web link, another machine) cannot.
    const canAsk = token !== '';
    async function nodeAPI(path, body) {
      const init = { headers: { 'Peerscope-Token': token }, cache: 'no-store' };
      if (body) { init.method = 'POST'; init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
      const r = await fetch('/directory/api/node/' + path, init);
      let j = {};
      try { j = await r.json(); } catch (e) { /* no body */ }
      return { status: r.status, body: j };
    }
    async function loadFollows() {
      if (!canAsk || !st.who) return;
      try {
        const r = await nodeAPI('follows');
        if (r.status !== 200) { st.signedIn = false; return; }
        st.signedIn = !!r.body.signed_in;
        const key = `${st.who.provider}:${st.who.account}`;
        if (r.body.account === key) { $('follow').hidden = true; return; } // one's own broadcast
        setFollowing(st.signedIn && (r.body.following || []).includes(key));
      } catch (e) { log('follows:', e.message); }
    }
    function signInHint() {
      const a = document.createElement('a');
      a.href = '/directory/';
      a.textContent = 'Sign in on your directory';
      followNote(a, ' (Twitter or a phone number), then Follow here.');
    }
    $('follow').onclick = async () => {
      if (!st.who) return;
      if (!canAsk) {
        followNote('Follows belong to a signed-in Peerscope node: open this broadcast with your own node (Share gives its peerscope:// link), sign in on its directory, and Follow there.');
        return;
      }
      if (st.signedIn === null) await loadFollows();
      if (!st.signedIn) { signInHint(); return; }
      const want = !st.following;
      $('follow').disabled = true;
      try {
        const r = await nodeAPI('follow', { account: `${st.who.provider}:${st.who.account}`, follow: want });
        if (r.status === 200) { setFollowing(want); followNote(); }
        else if (r.status === 403) { st.signedIn = false; signInHint(); }
        else followNote(`Could not ${want ? 'follow' : 'unfollow'}: ${(r.body.error && r.body.error.message) || r.status}`);
      } catch (e) {
        followNote(`Could not ${want ? 'follow' : 'unfollow'}: the node did not answer.`);
      } finally {
        $('follow').disabled = false;
      }
    };

    // ---- Share ----
    function webLink() {
      // Never the fragment: #owner= is the owner's token.
      return st.web || location.origin + location.pathname;
    }
    function openSheet(d) {
      if (d.showModal) d.showModal(); else d.setAttribute('open', '');
    }
    for (const d of document.querySelectorAll('dialog')) {
      d.querySelector('.close').onclick = () => d.close();
      d.addEventListener('click', (e) => { if (e.target === d) d.close(); }); // a tap on the backdrop
    }
    $('share').onclick = async () => {
      const title = $('title').textContent;
      if (navigator.share) {
        try {
          await navigator.share({ title, text: st.link ? `${title} — with Peerscope: ${st.link}` : title, url: webLink() });
          return;
        } catch (e) {
          if (e.name === 'AbortError') return; // the person closed it
        }
      }
      $('shareweb').value = webLink();
      $('sharep2p').value = st.link;
      $('sharep2prow').hidden = !st.link;
      openSheet($('sharesheet'));
    };
    for (const b of document.querySelectorAll('button.copy')) {
      b.onclick = async () => {
        const input = $(b.dataset.copy);
        let ok = false;
        try { await navigator.clipboard.writeText(input.value); ok = true; } catch (e) {
          input.select();
          try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
        }
        b.textContent = ok ? 'Copied' : 'Select and copy';
        setTimeout(() => { b.textContent = 'Copy'; }, 2500);
      };
    }

    // ---- who watches ----
    let viewersTimer = 0;
    async function fetchViewers() {
      try {
        const r = await fetch('chat/viewers', { cache: 'no-store' });
        if (r.ok) return await r.json();
      } catch (e) { /* none */ }
      return null;
    }
    // The strip of faces at the top of the comments beside the video (a
    // tablet, a wide screen): the newest signed-in viewers; a tap opens the
    // list.
    const STRIP = 12;
    async function loadStrip() {
      if (!window.peerscope.chat || state.ended) return;
      const v = await fetchViewers();
      const ul = $('facestrip');
      const ids = (v && v.identified) || [];
      ul.hidden = ids.length === 0;
      ul.replaceChildren();
      for (const a of ids.slice(0, STRIP)) {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'face';
        const name = a.name || a.handle || 'signed in';
        face(b, name, a.avatar, false);
        b.setAttribute('aria-label', `${name} is watching: who watches`);
        b.title = name;
        b.onclick = openViewers;
        li.append(b);
        ul.append(li);
      }
      const more = Math.max(0, ids.length - STRIP) + ((v && v.anonymous) || 0);
      if (ids.length && more > 0) {
        const li = document.createElement('li');
        li.className = 'more';
        li.textContent = `+${more}`;
        li.title = `${more} more, anonymous or further down the list`;
        ul.append(li);
      }
    }
    setTimeout(loadStrip, 1500);
    setInterval(loadStrip, 5000);
    async function loadViewers() {
      const v = await fetchViewers();
      const ul = $('faces');
      ul.replaceChildren();
      if (!v) {
        $('anoncount').textContent = 'Who watches is told by a Peerscope node’s page; this one shows the count only.';
        return;
      }
      st.viewers = v;
      for (const a of v.identified || []) {
        const li = document.createElement('li');
        const f = document.createElement('span');
        f.className = 'face';
        const name = a.name || a.handle || 'signed in';
        face(f, name, a.avatar, false);
        const n = document.createElement('span');
        n.className = 'name';
        n.textContent = name;
        li.append(f, n);
        if (a.handle && a.name) {
          const h = document.createElement('span');
          h.className = 'handle';
          h.textContent = a.handle;
          li.append(h);
        }
        li.title = a.peer || '';
        ul.append(li);
      }
      const anon = v.anonymous || 0;
      const known = (v.identified || []).length;
      const anons = `${anon} anonymous viewer${anon === 1 ? '' : 's'}`;
      $('anoncount').textContent = known === 0 ? (anon === 0 ? 'Nobody is watching yet.' : `${anons}, none signed in.`)
        : (anon === 0 ? 'Nobody anonymous.' : `And ${anons}.`);
    }
    function openViewers() {
      loadViewers();
      openSheet($('viewersheet'));
      clearInterval(viewersTimer);
      viewersTimer = setInterval(() => { if ($('viewersheet').open) loadViewers(); else clearInterval(viewersTimer); }, 3000);
    }
    $('viewers').onclick = openViewers;

    // The video fills the screen when it is as upright (or as wide) as the
    // screen; otherwise all of it shows.
    const fit = () => {
      if (!video.videoWidth) return;
      document.documentElement.style.setProperty('--ar', (video.videoWidth / video.videoHeight).toFixed(4));
      const upright = video.videoHeight > video.videoWidth;
      const box = video.getBoundingClientRect();
      video.classList.toggle('fill', upright === box.height > box.width && window.innerWidth < 700);
    };
    video.addEventListener('resize', fit);
    window.addEventListener('resize', fit);

    return { status };
  })();

  // ---- orchestration ----------------------------------------------------

  async function switchTo(kind, unmute) {
    if (player) player.stop();
    player = null;
    if (state.ended) return;
    state.mode = kind;
    $('mode').textContent = { whep: 'WebRTC', hls: 'LL-HLS', p2p: 'peer-to-peer' }[kind];
    setNote('');
    watchFirstFrame();
    const play = { whep: () => playWHEP(8000), hls: playHLS, p2p: playP2P }[kind];
    player = await play();
    if (!player && kind === 'p2p' && forced !== 'p2p') return switchTo('whep');
    if (!player && kind === 'whep' && forced !== 'whep') return switchTo('hls');
    if (!player) { setNote('Cannot play this broadcast here.'); return; }
    if (unmute) { video.muted = false; $('unmute').hidden = true; }
    startPlayback();
  }

  setInterval(async () => {
    if (!player || state.ended) return;
    const l = await player.latency();
    state.latencyMs = l === null ? null : Math.round(l);
    $('latency').textContent = l === null ? 'latency –' : `latency ${(l / 1000).toFixed(1)} s`;
  }, 1000);
  video.addEventListener('waiting', () => log('waiting at', video.currentTime.toFixed(2)));
  // Closing the page takes its light node out of the tree at once: its
  // parent frees the slot, its children go to the parent and the room
  // below, rather than wait for silence. A WebRTC session is deleted
  // (keepalive DELETE) for the same reason: the node holds a few sessions
  // per address, and a page reloaded or opened again would otherwise find
  // them taken by the pages before it until their connections time out
  // (429, then LL-HLS). A page kept in the back-forward cache and shown
  // again starts playing afresh.
  let resume = false;
  window.addEventListener('pagehide', () => {
    if (player && (player.kind === 'p2p' || player.kind === 'whep')) {
      player.stop();
      player = null;
      resume = true;
    }
  });
  window.addEventListener('pageshow', (e) => {
    if (e.persisted && resume && !state.ended) { resume = false; switchTo(state.mode); }
  });

  (async () => {
    showOverlay('Connecting…');
    await pollStatus();
    setInterval(pollStatus, 3000);
    if (state.replay) {
      showOverlay('');
      player = await playVOD();
      if (!player) showOverlay('This replay cannot be played here');
      return;
    }
    if (state.ended) return;
    const first = forced === 'hls' || forced === 'p2p' ? forced : state.prefer === 'p2p' ? 'p2p' : 'whep';
    await switchTo(first);
  })();
})();

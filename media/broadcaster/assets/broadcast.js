// The broadcaster page: camera preview, then WHIP to the node that served
// the page. No framework; everything the page does is in this file.
//
// The stream key comes from the page URL's fragment (#key=…, never sent to
// a server or kept in its logs), or its query (?key=…), or the field the
// page shows when neither has one. The WHIP endpoint is data-whip on
// <body>, relative to the page (default "whip").
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('preview'), button = $('golive'), flip = $('flip');
  const statusEl = $('status'), errorEl = $('error'), statsEl = $('stats');
  const badge = $('badge'), clock = $('clock'), titleEl = $('title'), keyEl = $('key');
  const health = $('health'), healthText = $('health-text');

  // What tests and curious people can read.
  const state = window.peerscopeBroadcast = { state: 'idle', error: '', codec: '', session: '', log: [] };
  const log = (msg) => { state.log.push(`${new Date().toISOString()} ${msg}`); if (state.log.length > 200) state.log.shift(); console.log(msg); };

  const params = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const urlKey = params.get('key') || query.get('key') || '';
  if (!urlKey) $('keyrow').hidden = false;
  const title0 = params.get('title') || query.get('title');
  if (title0) titleEl.value = title0;
  const whipURL = new URL(document.body.dataset.whip || 'whip', location.href);

  let stream = null;      // the camera and microphone
  let pc = null;          // the WebRTC connection while live
  let session = null;     // the WHIP session resource (DELETE ends it)
  let facing = 'user';
  let liveSince = 0, timer = 0, statsTimer = 0, lastBytes = 0, lastAt = 0;

  function setState(s, text) {
    state.state = s;
    document.body.dataset.state = s;
    if (text !== undefined) statusEl.textContent = text;
    const busy = s === 'connecting' || s === 'live' || s === 'unstable';
    button.textContent = busy ? 'End' : 'Go live';
    badge.hidden = s !== 'live' && s !== 'unstable';
    titleEl.disabled = busy;
    keyEl.disabled = busy;
    log(`state ${s}${text ? ': ' + text : ''}`);
    // The studio (studio.js) follows the state: it reads the broadcast's
    // chat with the same key while live.
    document.dispatchEvent(new CustomEvent('peerscope:state', { detail: { state: s, key: urlKey || keyEl.value.trim() } }));
  }

  function showError(text) {
    state.error = text;
    errorEl.textContent = text;
    errorEl.hidden = !text;
    if (text) log(`error: ${text}`);
  }

  function cameraProblem(e) {
    switch (e && e.name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'Camera or microphone access was denied. Allow them for this site in the browser\'s settings (the camera icon in the address bar), then try again.';
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'No camera or microphone was found on this device.';
      case 'NotReadableError':
      case 'AbortError':
        return 'The camera is busy: another app or tab is using it. Close that and try again.';
    }
    return `The camera could not be started: ${e && e.message || e}`;
  }

  async function openCamera() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const https = location.href.replace(/^http:/, 'https:');
      throw new Error(`Browsers give the camera only to secure pages. Open ${https} instead (accept the certificate warning once: this node made its own certificate).`);
    }
    try {
      const s = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } },
        audio: { echoCancellation: true, noiseSuppression: true },
      });
      return s;
    } catch (e) {
      throw new Error(cameraProblem(e));
    }
  }

  async function startPreview() {
    if (stream) return;
    stream = await openCamera();
    video.srcObject = stream;
    $('placeholder').classList.add('gone');
    navigator.mediaDevices.enumerateDevices().then((ds) => {
      flip.hidden = ds.filter((d) => d.kind === 'videoinput').length < 2;
    }).catch(() => {});
    if (state.state === 'idle') setState('preview', 'Camera ready. Press Go live.');
  }

  // waitGathering resolves when ICE gathering is complete, or after ms:
  // WHIP here sends every candidate with the offer (no trickle).
  function waitGathering(conn, ms) {
    if (conn.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { conn.removeEventListener('icegatheringstatechange', check); clearTimeout(t); resolve(); };
      const check = () => { if (conn.iceGatheringState === 'complete') done(); };
      const t = setTimeout(done, ms);
      conn.addEventListener('icegatheringstatechange', check);
    });
  }

  async function refusal(resp) {
    const text = (await resp.text().catch(() => '')).trim();
    switch (resp.status) {
      case 401: return 'The stream key was refused. Check the link or the key you were given.';
      case 406:
      case 415: return `This browser's video was refused: ${text || 'it cannot send H.264.'}\nTry Chrome, Safari or Edge.`;
      // The node says who holds the broadcast and what to do: a second
      // tab, or this page back before the node noticed it had gone.
      case 409: return text ? `${text[0].toUpperCase()}${text.slice(1)}.` : 'Another publisher is live on this broadcast.';
      case 410: return 'This broadcast has ended. Start a new one on the node to go live again.';
      case 503: return `The node cannot take the broadcast now. ${text}`;
    }
    return `The node refused the broadcast (${resp.status}). ${text}`;
  }

  async function goLive() {
    showError('');
    const key = urlKey || keyEl.value.trim();
    if (!key) { showError('A stream key is needed to go live.'); return; }
    setState('connecting', 'Starting the camera…');
    try {
      await startPreview();
      setState('connecting', 'Connecting to the node…');
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const conn = pc;
      for (const track of stream.getTracks()) {
        const init = { direction: 'sendonly', streams: [stream] };
        if (track.kind === 'video') init.sendEncodings = [{ maxBitrate: 2_500_000, maxFramerate: 30 }];
        const tx = conn.addTransceiver(track, init);
        if (track.kind === 'video') preferH264(tx);
      }
      conn.addEventListener('connectionstatechange', () => onConnection(conn));
      const offer = await conn.createOffer();
      await conn.setLocalDescription(offer);
      await waitGathering(conn, 2000);
      const target = new URL(whipURL);
      const t = titleEl.value.trim();
      if (t) target.searchParams.set('title', t);
      const resp = await fetch(target, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${key}` },
        body: conn.localDescription.sdp,
      });
      if (resp.status !== 201) throw new Error(await refusal(resp));
      const loc = resp.headers.get('Location');
      session = loc ? new URL(loc, target).href : null;
      state.session = session || '';
      const answer = await resp.text();
      if (pc !== conn) return; // ended meanwhile
      await conn.setRemoteDescription({ type: 'answer', sdp: answer });
      if (state.state === 'connecting') statusEl.textContent = 'Connecting the media…';
    } catch (e) {
      await teardown(false);
      setState(stream ? 'preview' : 'idle', 'Not live.');
      showError(e.message || String(e));
    }
  }

  // preferH264 puts H.264 (constrained baseline first) ahead of the other
  // codecs, where the browser lets a page choose; the node answers with
  // H.264 whatever the order, so this only helps other WHIP servers.
  function preferH264(tx) {
    if (!tx.setCodecPreferences || !window.RTCRtpSender || !RTCRtpSender.getCapabilities) return;
    const caps = RTCRtpSender.getCapabilities('video');
    if (!caps) return;
    const rank = (c) => {
      if (c.mimeType.toLowerCase() !== 'video/h264') return 9;
      const f = c.sdpFmtpLine || '';
      if (!/packetization-mode=1/.test(f)) return 5;
      if (/profile-level-id=42e0/i.test(f)) return 0;
      if (/profile-level-id=4200/i.test(f)) return 1;
      return 4;
    };
    try { tx.setCodecPreferences([...caps.codecs].sort((a, b) => rank(a) - rank(b))); } catch (e) { log(`codec preferences: ${e.message}`); }
  }

  function onConnection(conn) {
    if (conn !== pc) return;
    log(`connection ${conn.connectionState}`);
    switch (conn.connectionState) {
      case 'connected':
        if (!liveSince) liveSince = Date.now();
        setState('live', 'You are live.');
        startTimers();
        break;
      case 'disconnected':
        setState('unstable', 'The connection is unstable; trying to hold on…');
        break;
      case 'failed':
        // No DELETE: that would end the broadcast. The node lets a
        // publisher that went silent go within seconds, and keeps the
        // broadcast for its return.
        teardown(false).then(() => {
          setState(stream ? 'preview' : 'idle', 'Not live.');
          showError('The connection to the node was lost. Check the network, then press Go live again.');
        });
        break;
    }
  }

  function startTimers() {
    clearInterval(timer);
    timer = setInterval(() => {
      const s = Math.floor((Date.now() - liveSince) / 1000);
      clock.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    }, 1000);
    clearInterval(statsTimer);
    statsTimer = setInterval(showStats, 1000);
  }

  async function showStats() {
    if (!pc) return;
    try {
      const report = await pc.getStats();
      let out = null, remote = null; const codecs = new Map();
      report.forEach((r) => {
        if (r.type === 'outbound-rtp' && r.kind === 'video') out = r;
        if (r.type === 'remote-inbound-rtp' && r.kind === 'video') remote = r;
        if (r.type === 'codec') codecs.set(r.id, r);
      });
      if (!out) return;
      const codec = codecs.get(out.codecId);
      state.codec = codec ? codec.mimeType : '';
      state.framesSent = out.framesSent || 0;
      const now = performance.now(), first = !lastAt;
      const kbps = lastAt ? Math.round((out.bytesSent - lastBytes) * 8 / (now - lastAt)) : 0;
      lastBytes = out.bytesSent; lastAt = now;
      const size = out.frameWidth ? `${out.frameWidth}×${out.frameHeight}` : '';
      statsEl.textContent = [state.codec.replace('video/', ''), size, out.framesPerSecond ? `${Math.round(out.framesPerSecond)} fps` : '', kbps ? `${kbps} kb/s` : ''].filter(Boolean).join(' · ');
      if (!first) showHealth(out, kbps, remote);
    } catch (e) { /* the connection is going away */ }
  }

  // showHealth puts the connection's health over the preview: what goes
  // out, the frames encoded and those that never left (the encoder made
  // them, the connection did not send them), and whether it holds. Weak:
  // the browser says it limits the video for want of bandwidth or CPU, or
  // the bitrate fell under half the encoder's own target (a target the
  // browser lowers as the network degrades, so a fall under it is a loss
  // the estimate has not caught up with yet).
  // The node's receiver reports (remote-inbound-rtp) add the packets it
  // never got and the round trip to it; a loss over 5% is weak too.
  function showHealth(out, kbps, remote) {
    const encoded = out.framesEncoded || 0, sent = out.framesSent || 0;
    const dropped = Math.max(0, encoded - sent);
    const reason = out.qualityLimitationReason || 'none';
    const target = out.targetBitrate ? Math.round(out.targetBitrate / 1000) : 0;
    const lost = remote && remote.packetsLost > 0 ? remote.packetsLost : 0;
    const loss = remote && typeof remote.fractionLost === 'number' ? remote.fractionLost : 0; // the last report's share
    const rtt = remote && typeof remote.roundTripTime === 'number' ? Math.round(remote.roundTripTime * 1000) : -1;
    const weak = reason === 'bandwidth' || reason === 'cpu' || (target > 0 && kbps < target / 2) || loss > 0.05;
    // The nearest viewer's latency, when comments told it (studio.js).
    const st = window.peerscopeStudio, nearest = st && st.on && st.nearestMs >= 0 ? st.nearestMs : -1;
    state.health = { kbps, target, encoded, sent, dropped, lost, loss, rtt, nearest, reason, level: weak ? 'weak' : 'good' };
    const why = reason === 'bandwidth' ? ' · slow network' : reason === 'cpu' ? ' · phone too busy' : loss > 0.05 ? ' · packets lost' : weak ? ' · weak' : '';
    health.title = 'Sent to the node · frames encoded but not sent · packets the node never got · round trip to the node · how far behind the nearest viewer watches (from their comments)';
    healthText.textContent = [`${kbps} kb/s`, `${dropped} dropped`, `${lost} lost`, rtt >= 0 ? `${rtt} ms` : '',
      nearest >= 0 ? `viewer ${(nearest / 1000).toFixed(1)} s behind` : ''].filter(Boolean).join(' · ') + why;
    health.classList.toggle('weak', weak);
    health.hidden = false;
  }

  // teardown ends the WebRTC connection and, when asked, the WHIP session.
  async function teardown(deleteSession) {
    clearInterval(timer); clearInterval(statsTimer);
    liveSince = 0; lastBytes = 0; lastAt = 0;
    statsEl.textContent = '';
    health.hidden = true;
    const conn = pc; pc = null;
    const s = session; session = null;
    if (s && deleteSession) {
      try { await fetch(s, { method: 'DELETE', keepalive: true }); } catch (e) { log(`DELETE: ${e.message}`); }
    }
    if (conn) conn.close();
  }

  async function end() {
    await teardown(true);
    setState('ended', 'Broadcast ended.');
  }

  document.getElementById('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (pc) end(); else goLive();
  });

  // After the summary (studio.js), "Go live again": back to the start.
  // The ended broadcast cannot take a new session (its key answers 410),
  // so the page says so if the node has not started a new one.
  document.addEventListener('peerscope:again', () => {
    if (state.state !== 'ended') return;
    showError('');
    setState(stream ? 'preview' : 'idle', 'Ready.');
  });

  flip.addEventListener('click', async () => {
    facing = facing === 'user' ? 'environment' : 'user';
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { exact: facing }, width: { ideal: 1280 }, height: { ideal: 720 } } });
      const track = s.getVideoTracks()[0];
      const old = stream.getVideoTracks()[0];
      if (pc) {
        const sender = pc.getSenders().find((x) => x.track && x.track.kind === 'video');
        if (sender) await sender.replaceTrack(track);
      }
      stream.removeTrack(old); old.stop(); stream.addTrack(track);
      video.srcObject = stream;
    } catch (e) {
      facing = facing === 'user' ? 'environment' : 'user';
      showError(cameraProblem(e));
    }
  });

  // Leaving the page ends the broadcast rather than leaving it to time out.
  window.addEventListener('pagehide', () => {
    if (session) fetch(session, { method: 'DELETE', keepalive: true }).catch(() => {});
  });

  // Show the preview at once where the camera is already allowed; others
  // ask when Go live is pressed, so the prompt comes from a click.
  if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: 'camera' }).then((p) => {
      if (p.state === 'granted') startPreview().catch((e) => showError(e.message));
    }).catch(() => {});
  }
  // Who can watch: the broadcast's audience, which the stream key opens as
  // it opens WHIP (data-audience on <body>, relative to the page; none: no
  // panel). A private broadcast's audience can be changed here before and
  // while it is live; a public broadcast is said to be public, since it
  // cannot become private while live.
  const audURL = document.body.dataset.audience ? new URL(document.body.dataset.audience, location.href) : null;
  const aud = {
    panel: $('audience'), summary: $('aud-summary'), list: $('aud-members'), controls: $('aud-controls'),
    handle: $('aud-handle'), mutuals: $('aud-mutuals'), group: $('aud-group-name'),
    status: $('aud-status'), error: $('aud-error'),
  };
  state.audience = null;      // the node's last answer
  state.audienceStatus = '';  // what the panel last said
  let audBusy = false, audTimer = 0;
  let audChanges = 0; // PUTs sent: a GET sent before one may answer after it, with the old audience

  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };
  const nameOf = (m) => m.handle || m.account;
  const plural = (n, one, many) => (n === 1 ? one : `${n} ${many}`);

  function audienceSay(text) {
    state.audienceStatus = text;
    aud.status.textContent = text;
  }

  function audienceProblem(text) {
    state.audienceError = text;
    aud.error.textContent = text;
    aud.error.hidden = !text;
    if (text) log(`audience: ${text}`);
  }

  // audienceCall sends one request with the stream key and returns the
  // node's answer, or throws an Error whose message the panel can show.
  async function audienceCall(method, body, what) {
    const init = { method, cache: 'no-store', headers: { Authorization: `Bearer ${urlKey || keyEl.value.trim()}` } };
    if (body) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(audURL, init);
    } catch (e) {
      throw new Error('The node could not be reached. Check the connection, then try again.');
    }
    if (resp.ok) return resp.json();
    let msg = '';
    try { const j = await resp.json(); msg = (j.error && j.error.message) || ''; } catch (e) { /* a 401 is plain text */ }
    const err = new Error(audienceRefusal(resp.status, msg, what));
    err.status = resp.status;
    throw err;
  }

  function audienceRefusal(status, msg, what) {
    switch (status) {
      case 401: return 'The stream key was refused, so who can watch cannot be shown or changed. Check the link or the key you were given.';
      case 400:
        if (/unknown account/.test(msg)) return `Nobody with ${what || 'that name'} has signed in to Peerscope yet. Each person must sign in once (on their node's directory page) before you can let them in.`;
        if (/no saved group/.test(msg)) return `You have no saved group called “${what}”.`;
        return `That was not taken: ${msg}`;
      case 403: return 'This node is not signed in any more. Sign it in again on its directory page, then try again.';
      case 409: return 'This broadcast is public: it cannot become private while it is live.';
      case 502: return `The node could not look people up just now. Try again in a moment. (${msg})`;
    }
    return `The node refused the change (${status}). ${msg}`;
  }

  function showAudience(a) {
    state.audience = a;
    aud.panel.hidden = false;
    aud.list.replaceChildren();
    aud.summary.replaceChildren();
    if (!a.private) {
      aud.controls.hidden = true;
      aud.summary.append(a.listed
        ? 'Public: anyone can watch, and this broadcast is listed in the directory.'
        : 'Public: anyone with the link can watch.');
      const how = el('p', 'A broadcast cannot become private once it has started. To choose who can watch, start it private from the node: ');
      how.append(el('code', 'peerscope broadcast --private @alice,@bob'), ' (or ', el('code', '--audience mutuals'), ', or ', el('code', '--audience group:NAME'), ').');
      aud.summary.append(how);
      return;
    }
    aud.controls.hidden = !a.changeable;
    const also = [];
    if (a.audience.mutuals) also.push('everyone who follows you and whom you follow back');
    if (a.audience.group) also.push(`everyone in your group “${a.audience.group}”`);
    let summary = 'Private: only the people below can watch. It is not in the directory, and the link alone lets nobody in.';
    if (also.length) summary += ` Besides those you name: ${also.join(', and ')}.`;
    else if (!a.changeable) summary += ' Who is in was set where the broadcast was started, and can be changed only there.';
    else if (!(a.audience.accounts || []).length) summary += ' You have not chosen anyone yet: add someone below.';
    aud.summary.textContent = summary;
    for (const m of a.members) {
      const li = el('li');
      li.dataset.account = m.account;
      li.dataset.handle = m.handle || '';
      const who = el('span', nameOf(m), 'who');
      let how = m.devices === 0 ? 'no device signed in yet: they get in once they sign in' : plural(m.devices, '1 device', 'devices');
      if (!m.named) {
        const via = [];
        if (a.audience.mutuals) via.push('you follow each other');
        if (a.audience.group) via.push(`in the group “${a.audience.group}”`);
        if (via.length) how += ` · ${via.join(' or ')}`;
      }
      who.append(el('span', how, 'how'));
      li.append(who);
      if (m.named && a.changeable) {
        const rm = el('button', 'Remove');
        rm.type = 'button';
        rm.setAttribute('aria-label', `Remove ${nameOf(m)}`);
        rm.disabled = audBusy;
        rm.addEventListener('click', () => removeMember(m));
        li.append(rm);
      }
      aud.list.append(li);
    }
    if (a.members.length === 0) aud.list.append(el('li', 'Nobody can watch yet.'));
    aud.mutuals.checked = !!a.audience.mutuals;
    if (document.activeElement !== aud.group) aud.group.value = a.audience.group || '';
  }

  function setAudienceBusy(busy) {
    audBusy = busy;
    for (const b of aud.panel.querySelectorAll('button, input')) b.disabled = busy;
  }

  async function loadAudience() {
    if (!audURL || audBusy || !(urlKey || keyEl.value.trim())) return;
    const gen = audChanges;
    try {
      const a = await audienceCall('GET');
      if (gen !== audChanges || audBusy) return; // a change came since: its answer is newer
      showAudience(a);
      audienceProblem('');
      // Devices come and go as people sign in: look again now and then.
      if (!audTimer) audTimer = setInterval(() => { if (!document.hidden) loadAudience(); }, 10000);
    } catch (e) {
      if (gen !== audChanges) return;
      aud.panel.hidden = false;
      audienceProblem(e.message);
      if (e.status === 401 || e.status === 404) { clearInterval(audTimer); audTimer = 0; }
    }
  }

  // changeAudience sends the whole audience as it should be, with what
  // to say once the node has taken it.
  async function changeAudience(next, doing, done, what) {
    if (audBusy) return;
    const a = state.audience;
    const body = { accounts: a.audience.accounts || [], mutuals: !!a.audience.mutuals, group: a.audience.group || '', ...next };
    audienceProblem('');
    audChanges++;
    setAudienceBusy(true);
    audienceSay(doing);
    try {
      const answer = await audienceCall('PUT', body, what);
      setAudienceBusy(false);
      showAudience(answer);
      audienceSay(done(answer));
      return true;
    } catch (e) {
      setAudienceBusy(false);
      showAudience(state.audience);
      audienceSay('');
      audienceProblem(e.message);
      return false;
    }
  }

  const sameName = (a, b) => a.replace(/^@/, '').toLowerCase() === b.replace(/^@/, '').toLowerCase();

  async function addMember(ev) {
    ev.preventDefault();
    let h = aud.handle.value.trim();
    if (!h) { audienceProblem('Type the handle of the person to let in, like @alice.'); return; }
    if (!h.startsWith('@') && !h.includes(':')) h = '@' + h;
    if (/[\s,]/.test(h)) { audienceProblem('One handle at a time, like @alice.'); return; }
    const accounts = state.audience.audience.accounts || [];
    if (accounts.some((x) => sameName(x, h))) { audienceProblem(''); audienceSay(`${h} can already watch.`); aud.handle.value = ''; return; }
    const ok = await changeAudience({ accounts: [...accounts, h] }, `Letting ${h} in…`, (answer) => {
      const m = answer.members.find((x) => x.named && sameName(x.named, h));
      if (m && m.devices === 0) return `${nameOf(m)} is in, but has no device signed in yet: they get in as soon as they sign in.`;
      return `${m ? nameOf(m) : h} can watch now: they get in within a few seconds.`;
    }, h);
    if (ok) aud.handle.value = '';
  }

  async function removeMember(m) {
    const accounts = (state.audience.audience.accounts || []).filter((x) => x !== m.named);
    await changeAudience({ accounts }, `Removing ${nameOf(m)}…`, (answer) => {
      const still = answer.members.find((x) => x.account === m.account);
      if (still) return `${nameOf(m)} can still watch: they are also in through ${answer.audience.mutuals ? 'following each other with you' : 'the group'}.`;
      return `${nameOf(m)} can no longer watch: they are cut off within a few seconds.`;
    });
  }

  if (audURL) {
    $('aud-add').addEventListener('submit', addMember);
    aud.mutuals.addEventListener('change', () => {
      const on = aud.mutuals.checked;
      changeAudience({ mutuals: on }, on ? 'Letting in everyone who follows each other with you…' : 'Taking out those you only follow each other with…',
        () => (on ? 'Everyone who follows you and whom you follow back can watch now.' : 'Following each other no longer lets anyone in: only those named or in the group can watch.'));
    });
    $('aud-group').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const g = aud.group.value.trim();
      if (g && !/^[A-Za-z0-9_-]{1,40}$/.test(g)) { audienceProblem('A group name is letters, digits, - and _ only.'); return; }
      changeAudience({ group: g }, g ? `Letting in the group “${g}”…` : 'Taking the group out…',
        () => (g ? `The group “${g}” can watch now.` : 'No group now: only the people named (and those you follow each other with, if ticked) can watch.'), g);
    });
    keyEl.addEventListener('change', loadAudience);
    loadAudience();
  }

  if (!window.isSecureContext) {
    showError(`Browsers give the camera only to secure pages. Open ${location.href.replace(/^http:/, 'https:')} instead.`);
  }
  setState('idle', 'Ready.');
})();

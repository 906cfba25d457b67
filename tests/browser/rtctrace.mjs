// rtcTrace is an init script (page.addInitScript) that records what every
// RTCPeerConnection in the page does, on the page's clock
// (performance.now()), in window.__rtcTrace: its creation, the offer and
// answer set, each local candidate gathered and each remote one added,
// every change of signalling, gathering, ICE and connection state, and,
// a second after creation and at every change of the connection state
// while not yet connected, getStats()'s transport and candidate pairs
// (state, nominated, requests sent and answered). It is what
// chrome://webrtc-internals would show, for a headless page: where a
// browser-to-browser set-up spends its time.
//
// rtcSummary(trace) makes of one page's trace a line per connection that
// took over minMs to connect, or never did.
export function rtcTrace() {
  const Native = window.RTCPeerConnection;
  if (!Native || window.__rtcTrace) return;
  const trace = window.__rtcTrace = [];
  const now = () => Math.round(performance.now());
  class Traced extends Native {
    constructor(...args) {
      super(...args);
      const t = { id: trace.length, created: now(), ev: [], stats: [] };
      trace.push(t);
      if (trace.length > 40) trace.shift();
      this.__t = t;
      const ev = (what) => t.ev.push(`${now()} ${what}`);
      const snap = async (why) => {
        try {
          const r = await this.getStats();
          const cands = {};
          const rows = [];
          r.forEach((s) => { if (s.type === 'local-candidate' || s.type === 'remote-candidate') cands[s.id] = s; });
          r.forEach((s) => {
            if (s.type === 'transport') rows.push(`transport ice ${s.iceState} dtls ${s.dtlsState} role ${s.iceRole || ''} ${s.dtlsRole || ''} selected ${s.selectedCandidatePairId || '-'} packets out ${s.packetsSent} in ${s.packetsReceived}`);
            if (s.type === 'candidate-pair') {
              const l = cands[s.localCandidateId] || {}; const rc = cands[s.remoteCandidateId] || {};
              rows.push(`pair ${l.protocol}:${l.address}:${l.port}(${l.candidateType})→${rc.address}:${rc.port}(${rc.candidateType}) ${s.state}${s.nominated ? ' nominated' : ''} req ${s.requestsSent}/${s.responsesReceived} in ${s.requestsReceived}`);
            }
          });
          t.stats.push({ at: now(), why, rows });
        } catch (e) { t.stats.push({ at: now(), why, rows: [`getStats: ${e.message}`] }); }
      };
      this.addEventListener('signalingstatechange', () => ev(`signaling ${this.signalingState}`));
      this.addEventListener('icegatheringstatechange', () => ev(`gathering ${this.iceGatheringState}`));
      this.addEventListener('iceconnectionstatechange', () => ev(`ice ${this.iceConnectionState}`));
      this.addEventListener('connectionstatechange', () => {
        ev(`connection ${this.connectionState}`);
        if (this.connectionState === 'connected') { t.connected = now(); snap('connected'); } else if (t.connected === undefined) snap(this.connectionState);
      });
      this.addEventListener('icecandidate', (e) => ev(`local ${e.candidate ? e.candidate.candidate.replace(/ generation.*$/, '') : 'end'}`));
      this.addEventListener('icecandidateerror', (e) => ev(`candidate error ${e.errorCode} ${e.errorText}`));
      this.addEventListener('datachannel', (e) => ev(`remote channel ${e.channel.label} ${e.channel.id} (${e.channel.readyState})`));
      for (const ms of [300, 600]) setTimeout(() => { if (t.connected === undefined) snap(`${ms} ms`); }, ms);
      setTimeout(() => { if (t.connected === undefined) snap('1 s'); }, 1000);
      setTimeout(() => { if (t.connected === undefined) snap('3 s'); }, 3000);
    }

    setLocalDescription(d) { this.__t.ev.push(`${now()} setLocal ${d ? d.type : 'implicit'}`); return super.setLocalDescription(d); }
    setRemoteDescription(d) { this.__t.ev.push(`${now()} setRemote ${d.type}`); return super.setRemoteDescription(d); }
    addIceCandidate(c) { this.__t.ev.push(`${now()} remote ${c && c.candidate ? c.candidate.replace(/ generation.*$/, '') : 'end'}`); return super.addIceCandidate(c); }
    createDataChannel(label, o) {
      const ch = super.createDataChannel(label, o);
      const t = this.__t; const at = now();
      t.ev.push(`${at} channel ${label} (${ch.id === null ? 'id later' : ch.id})`);
      ch.addEventListener('open', () => t.ev.push(`${now()} channel ${label} ${ch.id} open`));
      ch.addEventListener('close', () => t.ev.push(`${now()} channel ${label} ${ch.id} closed`));
      return ch;
    }

    close() { if (!this.__t.closed) this.__t.closed = now(); return super.close(); }
  }
  window.RTCPeerConnection = Traced;
}

export function rtcSummary(trace, minMs = 1000) {
  const out = [];
  for (const t of trace || []) {
    const took = t.connected === undefined ? null : t.connected - t.created;
    if (took !== null && took < minMs) continue;
    // (A connection's own stats once connected say only which pair won.)
    if (took !== null) t.stats = t.stats.filter((s) => s.why !== 'connected' || minMs === 0);
    out.push(`rtc #${t.id} created ${t.created}, ${took === null ? `not connected${t.closed ? ` (closed at ${t.closed})` : ''}` : `connected after ${took} ms`}`);
    for (const e of t.ev) out.push('  ' + e);
    for (const s of t.stats) out.push(`  stats at ${s.at} (${s.why}):\n    ` + s.rows.join('\n    '));
  }
  return out;
}

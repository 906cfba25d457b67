package chat

import (
	"bytes"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The timers, which the shell runs when nextTick says something is due,
// and the broadcaster's beat they send.

// tickInput is what the shell reads from the application for a tick.
type tickInput struct {
	audience int       // broadcaster: tree nodes below the root
	web      int       // broadcaster: browsers the whole tree serves
	hearts   HeartSums // broadcaster: hearts the tree counted, with their moments
	edge     uint64    // broadcaster: 1 + the newest sequence number its tree cut
}

// tick runs the timers: the broadcaster's beat, the heart flush, this
// node's presence, the expiry of viewers, of the jury pool and of calls,
// and the requests for the moderation state.
func (m *machine) tick(now time.Time, in tickInput) {
	if m.isBroadcaster {
		m.logTreeHearts(now, in.hearts)
		m.riseTo(now, in.hearts.Total+m.topicHearts)
		m.beatIfDue(now, m.liveCount(in), in.edge)
	}
	m.flushHearts(now)
	pi := m.presenceEvery()
	m.sendPresence(now, pi)
	m.expireViewers(now, pi)
	for p, t := range m.seen {
		if now.Sub(t) > juryPoolAge {
			delete(m.seen, p)
		}
	}
	m.closeCalls(now)
	m.pruneCalls(now)
	m.expireReports(now)
	m.askForState(now)
	m.lastTick = now
	m.sweepDue = m.nextSweep(pi)
}

// farFuture stands for "never" in nextTick.
var farFuture = time.Unix(1<<62, 0)

// nextTick returns the earliest time at which tick would do anything, as
// the machine stands: until then tick changes nothing. The shell asks
// again after every input (check, deliver, applyState, an API call, a new
// trust set or attestation). It errs early, never late; a time already
// past means now.
//
// A viewer's timers: its taps' flush over the topic, its presence, the
// request for the state while no beat came, and the expiries of what it
// keeps (viewers, the jury pool, calls, early reports). A synced viewer
// with nothing pending has nothing due: its room sleeps until a message or
// a call comes. The broadcaster is always due: each tick reads its tree's
// sums (Config.Hearts, Audience), which change without telling it, floats
// their rise and beats when BeatInterval has passed; the shell's floor
// paces it as the fixed ticker did.
func (m *machine) nextTick() time.Time {
	if m.isBroadcaster || m.started.IsZero() {
		return time.Time{}
	}
	due := m.sweepDue
	at := func(t time.Time) {
		if t.Before(due) {
			due = t
		}
	}
	if m.pendingHearts > 0 && m.synced {
		at(m.lastHeartFlush.Add(m.heartEvery()))
	}
	// Presence goes out from presenceDue until the attestation expires; a
	// tick at or past the expiry saw it expire (a new attestation is an
	// input).
	if exp := m.attExpires; m.cfg.attested != nil && m.synced && m.presenceDue.Before(exp) && m.lastTick.Before(exp) {
		at(m.presenceDue)
	}
	if !m.synced && !m.haveBeat {
		at(m.lastFetch.Add(5*fetchBackoff + 1))
	}
	return due
}

// nextSweep is the earliest expiry among what the machine keeps: a viewer
// that missed its beats (at presence interval pi), a peer leaving the jury
// pool, a call reaching its deadline or forgotten, a report that waited
// too long for its comment. Each is the first instant its sweep's test
// (a strict "older than") holds.
func (m *machine) nextSweep(pi time.Duration) time.Time {
	due := farFuture
	at := func(t time.Time) {
		if t.Before(due) {
			due = t
		}
	}
	for _, v := range m.viewers {
		at(v.last.Add(presenceMisses*pi + 1))
	}
	for _, t := range m.seen {
		at(t.Add(juryPoolAge + 1))
	}
	for _, c := range m.calls {
		if !c.closed {
			at(c.deadline)
		}
		at(c.deadline.Add(juryPoolAge + 1))
	}
	for _, e := range m.early {
		at(e.at.Add(earlyReportWait + 1))
	}
	return due
}

// sweepBy lowers the machine's next sweep to t: something it keeps (an
// entry just added or refreshed) expires then. Entries refreshed later
// leave it early, and the next tick recomputes it.
func (m *machine) sweepBy(t time.Time) {
	if t.Before(m.sweepDue) {
		m.sweepDue = t
	}
}

// beatIfDue sends the broadcaster's beat every BeatInterval: the live
// count, the heart total, the pacing of presence and topic hearts, the
// moderation digest and the stream's live edge.
func (m *machine) beatIfDue(now time.Time, audience int, edge uint64) {
	if now.Sub(m.lastBeatSent) < m.cfg.BeatInterval {
		return
	}
	m.lastBeatSent = now
	m.send(now, envelope{Beat: &wireBeat{
		Audience:   uint32(min(audience, 1<<32-1)),
		Hearts:     m.hearts,
		PresenceMS: uint32(presenceInterval(audience) / time.Millisecond),
		HeartMS:    uint32(heartInterval(audience) / time.Millisecond),
		ModSeq:     m.modSeq,
		Digest:     m.stateDigest(),
		Edge:       edge,
	}})
}

// deliverBeat takes the broadcaster's beat: its pacing, and on a viewer
// the heart total (whose rise it floats), the live edge (for its tree) and
// the moderation digest, which syncs it or makes it fetch the state from
// the peer that relayed the beat (or the broadcaster). check let the beat
// through only from the broadcaster.
func (m *machine) deliverBeat(now time.Time, via peer.ID, b *wireBeat) {
	pi := m.presenceEvery()
	m.beat = *b
	m.beat.Digest = bytes.Clone(b.Digest)
	m.haveBeat = true
	if m.presenceEvery() < pi {
		m.sweepBy(time.Time{}) // viewers expire sooner: the next tick recomputes
	}
	if m.isBroadcaster {
		return
	}
	if b.Edge > 0 {
		m.rd.edge = b.Edge
	}
	if m.heartsKnown {
		m.riseTo(now, m.beat.Hearts)
	} else {
		m.hearts, m.heartsKnown = m.beat.Hearts, true
	}
	if !bytes.Equal(m.stateDigest(), m.beat.Digest) {
		if m.modSeq <= m.beat.ModSeq {
			m.wantFetch(now, via, m.cfg.Broadcaster)
		}
	} else if !m.synced {
		m.becomeSynced(now)
	}
}

// askForState asks for the moderation state: the broadcaster twice after
// joining (its node may have restarted mid-broadcast: its own signed
// actions come back, and its beats then agree with what the swarm
// enforces), a viewer when no beat came yet.
func (m *machine) askForState(now time.Time) {
	if m.started.IsZero() {
		m.started = now
	}
	if m.isBroadcaster && m.recoveries < 2 && now.Sub(m.started) >= time.Duration(1+5*m.recoveries)*3*time.Second {
		m.recoveries++
		m.lastFetch = time.Time{}
		m.wantFetch(now)
	}
	if !m.synced && !m.haveBeat && now.Sub(m.lastFetch) > 5*fetchBackoff {
		// No beat yet: ask around anyway (the shell adds its topic peers).
		m.wantFetch(now, m.cfg.Broadcaster)
	}
}

package chat

import (
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Pacing: the broadcaster's beats tell viewers how often to send presence,
// scaled with the audience so that the topic carries about presenceRate
// presence messages a second however many watch. Only identified viewers
// send presence (the count comes from the tree).
const (
	presenceRate   = 2
	minPresence    = 30 * time.Second
	maxPresenceInt = 20 * time.Minute
	// A presence beat carries the attestation on join and then every
	// attestEvery-th beat, so that a broadcaster that missed the join (or
	// restarted) learns who it is, while most beats stay small.
	attestEvery = 4
	// A viewer is gone after missing this many presence intervals.
	presenceMisses = 3
)

func presenceInterval(audience int) time.Duration {
	return min(max(time.Duration(audience)*time.Second/presenceRate, minPresence), maxPresenceInt)
}

func (m *machine) presenceEvery() time.Duration {
	if m.haveBeat && m.beat.PresenceMS > 0 {
		return min(max(time.Duration(m.beat.PresenceMS)*time.Millisecond, minPresence), maxPresenceInt)
	}
	return minPresence
}

type viewer struct {
	identity *Identity
	since    time.Time
	last     time.Time
}

func (m *machine) deliverPresence(now time.Time, from peer.ID, p *wirePresence) {
	if p.State == presenceLeave {
		delete(m.viewers, from)
		return
	}
	who, err := m.identity(now, from, p.Attestation)
	if err != nil {
		return
	}
	v := m.viewers[from]
	if who == nil && p.Attestation == nil {
		// A beat without the attestation: the identity comes from the
		// join (or an earlier beat that carried it).
		if v == nil {
			who = m.knownIdentity(from)
		} else {
			who = v.identity
		}
	}
	if who == nil {
		if v != nil {
			delete(m.viewers, from) // its identity expired: counted as anonymous
		}
		return
	}
	if v == nil {
		if len(m.viewers) >= maxRegisters {
			return
		}
		v = &viewer{since: now}
		m.viewers[from] = v
	}
	v.identity, v.last = who, now
	m.sweepBy(now.Add(presenceMisses*m.presenceEvery() + 1))
}

// sendPresence sends this node's presence when it is due: identified
// viewers only, so that the broadcaster can list them (the tree counts
// everyone), every pi with some jitter. The attestation goes with the join
// and every attestEvery-th beat.
func (m *machine) sendPresence(now time.Time, pi time.Duration) {
	if m.isBroadcaster || !m.synced || m.cfg.attested == nil || !now.Before(m.attestedExpiry()) || now.Before(m.presenceDue) {
		return
	}
	state := uint32(presenceBeat)
	if !m.joined {
		state = presenceJoin
		m.joined = true
		m.presenceBeats = 0
	}
	p := &wirePresence{State: state}
	if m.presenceBeats%attestEvery == 0 {
		p.Attestation = m.cfg.Attestation
	}
	m.presenceBeats++
	m.send(now, envelope{Presence: p})
	// Jitter, so that a crowd that joined together does not beat together.
	m.presenceDue = now.Add(pi*3/4 + time.Duration(m.rand.Int64N(int64(pi/2))))
}

// expireViewers forgets the viewers that missed presenceMisses beats.
func (m *machine) expireViewers(now time.Time, pi time.Duration) {
	for p, v := range m.viewers {
		if now.Sub(v.last) > presenceMisses*pi {
			delete(m.viewers, p)
		}
	}
}

// leave returns the presence leave for Close, or nil.
func (m *machine) leave(now time.Time) []byte {
	if !m.joined {
		return nil
	}
	m.joined = false
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Presence: &wirePresence{State: presenceLeave}}
	b, _ := e.encode() // no strings but the broadcast ID, which Join checked
	return b
}

// liveCount is the broadcaster's count of live viewers: the tree's nodes
// and the browsers they serve, both summed up the tree.
func (m *machine) liveCount(in tickInput) int {
	return max(in.audience, 0) + max(in.web, 0)
}

// viewersNow returns who watches, for the application.
func (m *machine) viewersNow(in tickInput) Viewers {
	v := Viewers{Hearts: m.hearts}
	if m.isBroadcaster {
		v.Live = m.liveCount(in)
	} else {
		v.Live = int(m.beat.Audience)
	}
	for p, w := range m.viewers {
		if w.identity != nil {
			v.Identified = append(v.Identified, Viewer{Peer: p, Identity: *w.identity, Since: w.since})
		}
	}
	slices.SortFunc(v.Identified, func(a, b Viewer) int {
		if c := b.Since.Compare(a.Since); c != 0 {
			return c
		}
		return strings.Compare(string(a.Peer), string(b.Peer))
	})
	v.Live = max(v.Live, len(v.Identified))
	v.Anonymous = v.Live - len(v.Identified)
	return v
}

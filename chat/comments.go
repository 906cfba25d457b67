package chat

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Comments: this node's, built and checked as a receiver will check them,
// and everyone's as they are delivered, into the log a replay shows.

// maxStreamLag bounds how far behind its send time a comment may place
// itself in the stream (a viewer's latency).
const maxStreamLag = 2 * time.Minute

// comment builds this node's comment, or says why it would be refused.
func (m *machine) comment(now time.Time, text string, at time.Time) (CommentID, []byte, error) {
	if !m.synced {
		return CommentID{}, nil, ErrNotReady
	}
	self := m.cfg.self
	who := m.cfg.attested
	if who != nil && !now.Before(m.attestedExpiry()) {
		who = nil
	}
	if m.isBlocked(self, who) {
		return CommentID{}, nil, ErrBlocked
	}
	if err := m.mayComment(now, self, who); err != nil {
		return CommentID{}, nil, err
	}
	if !m.lim.allow(now, self, kindComment, m.cfg.Limits.Comment, false) {
		return CommentID{}, nil, ErrRateLimited
	}
	c := &wireComment{ID: m.nextID(now), Text: text}
	if !at.IsZero() {
		c.At = at.UnixNano()
	}
	if who != nil {
		c.Attestation = m.cfg.Attestation
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Comment: c}
	b, err := e.encode()
	if err != nil {
		return CommentID{}, nil, err
	}
	// Check it as a receiver will, without charging the bucket.
	var probe envelope
	if err := probe.unmarshal(b); err != nil {
		return CommentID{}, nil, err
	}
	return CommentID{self, c.ID}, b, nil
}

func (m *machine) deliverComment(now time.Time, from peer.ID, env *envelope) {
	c := env.Comment
	who, err := m.identity(now, from, c.Attestation)
	if err != nil {
		return
	}
	id := CommentID{from, c.ID}
	// The state may have changed since the message was validated.
	if m.isBlocked(from, who) || m.mayComment(now, from, who) != nil || m.isDeleted(id) || m.logIndex[id] != nil {
		return
	}
	entry := &Comment{ID: id, Author: m.author(from, who), Text: c.Text, At: momentAt(c.At, time.Unix(0, env.Sent)), Received: now}
	if m.cfg.MaxLog > 0 {
		if len(m.log) >= m.cfg.MaxLog {
			drop := max(1, len(m.log)/10)
			for _, old := range m.log[:drop] {
				delete(m.logIndex, old.ID)
			}
			m.log = slices.Delete(m.log, 0, drop)
		}
		m.log = append(m.log, entry)
		m.logIndex[id] = entry
	}
	ev := *entry
	m.emit(&ev)
	if len(m.early) > 0 {
		m.reportsArrived(now, id)
	}
}

// commentLog returns the kept comments in stream order, those of an
// author blocked since marked deleted (a replay leaves them out too).
func (m *machine) commentLog() []Comment {
	out := make([]Comment, len(m.log))
	for i, c := range m.log {
		out[i] = *c
		if m.isBlocked(c.Author.Peer, c.Author.Identity) {
			out[i].Deleted = true
		}
	}
	slices.SortStableFunc(out, func(a, b Comment) int { return a.At.Compare(b.At) })
	return out
}

package chat

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Juries: any viewer may report a comment; the broadcaster's node draws
// jurors among the viewers it heard from lately and signs a jury call
// (OpJury); the jurors vote; a majority of guilty votes makes the
// broadcaster mute the author (OpMute) for MuteFor, a second conviction
// for the rest of the broadcast.

const (
	// The jury pool: peers heard from within juryPoolAge.
	juryPoolAge  = 10 * time.Minute
	maxOpenCalls = 4
	// A report can reach the broadcaster before the comment it names
	// does (gossip takes other paths): it waits this long for it, and at
	// most maxEarlyReports wait at once.
	earlyReportWait = 10 * time.Second
	maxEarlyReports = 32
)

// earlyReport is a report of a comment the broadcaster has not seen yet.
type earlyReport struct {
	comment CommentID
	by      peer.ID
	at      time.Time
}

type call struct {
	seq      uint64
	comment  CommentID
	text     string
	deadline time.Time
	jurors   map[peer.ID]bool
	votes    map[peer.ID]bool
	closed   bool
}

func (m *machine) openCall(now time.Time, s *signedAction) (result, error) {
	if _, ok := m.calls[s.Seq]; ok {
		return ignore, ErrDuplicate
	}
	deadline := time.Unix(0, s.Call.Deadline)
	if !now.Before(deadline) {
		return ignore, ErrNoCall
	}
	m.pruneCalls(now)
	c := &call{
		seq:      s.Seq,
		comment:  CommentID{s.Call.Author, s.Call.Comment},
		text:     s.Call.Text,
		deadline: deadline,
		jurors:   make(map[peer.ID]bool, len(s.Call.Jurors)),
		votes:    make(map[peer.ID]bool),
	}
	for _, j := range s.Call.Jurors {
		c.jurors[j] = true
	}
	m.calls[s.Seq] = c
	m.callFor[c.comment] = s.Seq
	m.sweepBy(deadline)
	if c.jurors[m.cfg.self] {
		m.emit(&Summons{Call: c.seq, Comment: c.comment, Text: c.text, Deadline: deadline})
	}
	return accept, nil
}

// pruneCalls forgets calls over for a while.
func (m *machine) pruneCalls(now time.Time) {
	for seq, c := range m.calls {
		if now.Sub(c.deadline) > juryPoolAge {
			delete(m.calls, seq)
			if m.callFor[c.comment] == seq {
				delete(m.callFor, c.comment)
			}
		}
	}
}

func (m *machine) report(now time.Time, by peer.ID, r *wireReport) {
	id := CommentID{r.Author, r.Comment}
	m.emit(&Reported{Comment: id, By: by})
	if m.logIndex[id] == nil && !m.isDeleted(id) {
		// Not seen here yet: the report overtook the comment. Before, it
		// was dropped, and a viewer's report of a comment it had just
		// seen was lost whenever its copy came first (CI: TestJury).
		if len(m.early) < maxEarlyReports && !slices.ContainsFunc(m.early, func(e earlyReport) bool { return e.comment == id && e.by == by }) {
			m.early = append(m.early, earlyReport{comment: id, by: by, at: now})
			m.sweepBy(now.Add(earlyReportWait + 1))
		}
		return
	}
	m.judge(now, by, id)
}

// reportsArrived judges the reports that were waiting for comment id,
// which has just arrived (tick forgets those that waited too long).
func (m *machine) reportsArrived(now time.Time, id CommentID) {
	var due []earlyReport
	m.early = slices.DeleteFunc(m.early, func(e earlyReport) bool {
		if e.comment == id {
			due = append(due, e)
			return true
		}
		return false
	})
	for _, e := range due {
		m.judge(now, e.by, e.comment)
	}
}

// expireReports forgets the reports that waited too long for their
// comment (it was refused here, or never came).
func (m *machine) expireReports(now time.Time) {
	if len(m.early) > 0 {
		m.early = slices.DeleteFunc(m.early, func(e earlyReport) bool { return now.Sub(e.at) > earlyReportWait })
	}
}

// judge calls a jury on a reported comment, if it may be judged and is not
// being judged already.
func (m *machine) judge(now time.Time, by peer.ID, id CommentID) {
	c := m.logIndex[id]
	if c == nil || c.Deleted || c.Author.Broadcaster || m.isModerator(c.Author.Peer) || by == c.Author.Peer {
		return
	}
	if _, ok := m.callFor[id]; ok {
		return // one jury per comment
	}
	open := 0
	for _, c := range m.calls {
		if !c.closed {
			open++
		}
	}
	if open >= maxOpenCalls {
		return
	}
	var pool []peer.ID
	for p, t := range m.seen {
		if now.Sub(t) < juryPoolAge {
			pool = append(pool, p)
		}
	}
	for p := range m.viewers {
		if _, ok := m.seen[p]; !ok {
			pool = append(pool, p)
		}
	}
	pool = slices.DeleteFunc(pool, func(p peer.ID) bool {
		return p == id.Author || p == by || p == m.cfg.Broadcaster || m.isBlocked(p, m.knownIdentity(p))
	})
	if len(pool) == 0 {
		m.cfg.Logger.Info("report: nobody to judge it", "comment", id)
		return
	}
	slices.Sort(pool) // the same draw for the same seed, whatever the map order
	m.rand.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	jurors := pool[:min(len(pool), m.cfg.JurySize)]
	a := action{Op: OpJury, Target: id.String(), Call: &wireCall{
		Author: id.Author, Comment: id.Seq, Text: c.Text,
		Deadline: now.Add(m.cfg.JuryTimeout).UnixNano(), Jurors: jurors,
	}}
	b, err := m.issue(now, a)
	if err != nil {
		m.cfg.Logger.Warn("jury call", "err", err)
		return
	}
	m.rd.publish = append(m.rd.publish, b)
	// Remember the call now, so a second report of the same comment does
	// not call another jury before this one comes back through pubsub.
	m.callFor[id] = 0
}

// deliverVote counts a juror's vote once.
func (m *machine) deliverVote(now time.Time, from peer.ID, v *wireVote) {
	c := m.calls[v.Call]
	if c == nil || !c.jurors[from] || c.closed {
		return
	}
	if _, voted := c.votes[from]; voted {
		return
	}
	c.votes[from] = v.Guilty
	if m.isBroadcaster {
		m.tally(now, c)
	}
}

// tally decides a call once a majority is certain either way.
func (m *machine) tally(now time.Time, c *call) {
	n := len(c.jurors)
	guilty, innocent := c.count()
	switch {
	case 2*guilty > n:
		c.closed = true
		v := &Verdict{Call: c.seq, Comment: c.comment, Guilty: true, For: guilty, Against: innocent, Jurors: n}
		v.Until = m.mute(now, c.comment)
		m.emit(v)
	case 2*innocent >= n:
		c.closed = true
		m.emit(&Verdict{Call: c.seq, Comment: c.comment, For: guilty, Against: innocent, Jurors: n})
	}
}

// closeCalls closes the calls past their deadline; the broadcaster tells
// its application that they were not decided (an acquittal).
func (m *machine) closeCalls(now time.Time) {
	for _, c := range m.calls {
		if !c.closed && !now.Before(c.deadline) {
			c.closed = true
			if m.isBroadcaster {
				guilty, innocent := c.count()
				m.emit(&Verdict{Call: c.seq, Comment: c.comment, For: guilty, Against: innocent, Jurors: len(c.jurors)})
			}
		}
	}
}

// count counts the votes so far.
func (c *call) count() (guilty, innocent int) {
	for _, g := range c.votes {
		if g {
			guilty++
		} else {
			innocent++
		}
	}
	return guilty, innocent
}

// mute mutes a convicted author (its peer, and its account if it had one)
// for MuteFor, or for the rest of the broadcast if it was muted before.
func (m *machine) mute(now time.Time, id CommentID) time.Time {
	var who *Identity
	if c := m.logIndex[id]; c != nil {
		who = c.Author.Identity
	}
	targets := users(id.Author, who)
	until := now.Add(m.cfg.MuteFor).UnixNano()
	for _, u := range targets {
		if m.reg(OpMute, u) != nil {
			until = MuteForever // a repeat offender
		}
	}
	for _, u := range targets {
		b, err := m.issue(now, action{Op: OpMute, Target: u, Until: until})
		if err != nil {
			m.cfg.Logger.Warn("mute", "err", err)
			continue
		}
		m.rd.publish = append(m.rd.publish, b)
	}
	if until == MuteForever {
		return time.Time{}
	}
	return time.Unix(0, until)
}

func (m *machine) reportComment(now time.Time, id CommentID) ([]byte, error) {
	if !m.synced {
		return nil, ErrNotReady
	}
	if m.logIndex[id] == nil {
		return nil, fmt.Errorf("%w: comment %s not seen here", ErrNoCall, id)
	}
	if !m.lim.allow(now, m.cfg.self, kindReport, m.cfg.Limits.Report, false) {
		return nil, ErrRateLimited
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Report: &wireReport{Author: id.Author, Comment: id.Seq}}
	return e.encode()
}

func (m *machine) vote(now time.Time, callSeq uint64, guilty bool) ([]byte, error) {
	c := m.calls[callSeq]
	if c == nil || c.closed || !now.Before(c.deadline) {
		return nil, ErrNoCall
	}
	if !c.jurors[m.cfg.self] {
		return nil, ErrNotJuror
	}
	if _, voted := c.votes[m.cfg.self]; voted {
		return nil, ErrDuplicate
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Vote: &wireVote{Call: callSeq, Guilty: guilty}}
	return e.encode()
}

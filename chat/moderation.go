package chat

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Moderation is a set of registers, one per (op, target), each holding the
// broadcaster's signed action with the highest sequence number: apply
// puts a newer one in force wherever it comes from (the topic, or a state
// fetch), and the digest of the registers, which the broadcaster's beats
// carry, tells a node that it enforces what everyone enforces.

const (
	// fetchBackoff spaces the requests for the moderation state.
	fetchBackoff = 2 * time.Second
	// maxRegisters bounds the moderation state.
	maxRegisters = 16 << 10
)

// apply puts a verified action in force, unless a newer one for the same
// register already is. Actions take effect at validation, so that the
// next message is checked against them even before pubsub delivers.
func (m *machine) apply(now time.Time, s *signedAction) (result, error) {
	m.issued = max(m.issued, s.Seq)
	if s.Op == OpJury {
		return m.openCall(now, s)
	}
	k := s.key()
	cur := m.regs[k]
	if cur != nil && cur.Seq >= s.Seq {
		return ignore, ErrDuplicate
	}
	if cur == nil && len(m.regs) >= maxRegisters {
		return ignore, ErrStateFull
	}
	m.regs[k] = s
	m.digest = nil
	m.modSeq = max(m.modSeq, s.Seq)
	ev := &Moderated{Op: s.Op, Target: s.Target, On: s.On, Seq: s.Seq}
	if s.Op == OpMute && s.Until != MuteForever {
		ev.Until = time.Unix(0, s.Until)
	}
	if s.Op == OpDelete {
		if id, err := ParseCommentID(s.Target); err == nil {
			if c := m.logIndex[id]; c != nil {
				c.Deleted = true
			}
		}
	}
	m.emit(ev)
	if !m.synced && m.haveBeat && bytes.Equal(m.stateDigest(), m.beat.Digest) {
		m.becomeSynced(now)
	}
	return accept, nil
}

func (m *machine) reg(op Op, target string) *signedAction {
	return m.regs[(&action{Op: op, Target: target}).key()]
}

func (s *signedAction) on() bool { return s != nil && s.On }

func (m *machine) privileged(p peer.ID) bool {
	return p == m.cfg.Broadcaster || m.isModerator(p)
}

func (m *machine) isModerator(p peer.ID) bool { return m.reg(OpModerator, userOfPeer(p)).on() }

// users returns the moderation targets a sender is: its peer, and its
// account when it has a verified identity.
func users(p peer.ID, who *Identity) []string {
	u := []string{userOfPeer(p)}
	if who != nil {
		u = append(u, userOfAccount(who.AccountKey()))
	}
	return u
}

func (m *machine) isBlocked(p peer.ID, who *Identity) bool {
	if p == m.cfg.Broadcaster {
		return false
	}
	for _, u := range users(p, who) {
		if m.reg(OpBlock, u).on() {
			return true
		}
	}
	return false
}

func (m *machine) isMuted(now time.Time, p peer.ID, who *Identity) bool {
	if p == m.cfg.Broadcaster {
		return false
	}
	for _, u := range users(p, who) {
		if r := m.reg(OpMute, u); r != nil && r.Until > now.UnixNano() {
			return true
		}
	}
	return false
}

func (m *machine) isDeleted(id CommentID) bool { return m.reg(OpDelete, id.String()) != nil }

// stateDigest sums up the actions in force: two nodes with the same digest
// enforce the same moderation.
func (m *machine) stateDigest() []byte {
	if m.digest == nil {
		keys := slices.Sorted(maps.Keys(m.regs))
		h := sha256.New()
		var seq [8]byte
		for _, k := range keys {
			h.Write([]byte(k))
			binary.BigEndian.PutUint64(seq[:], m.regs[k].Seq)
			h.Write(seq[:])
		}
		m.digest = h.Sum(nil)[:16]
	}
	return m.digest
}

// state returns the actions in force, as signed, oldest first: what a
// joining peer is sent.
func (m *machine) state() [][]byte {
	regs := slices.SortedFunc(maps.Values(m.regs), func(a, b *signedAction) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([][]byte, len(regs))
	for i, s := range regs {
		out[i] = s.encode()
	}
	return out
}

// applyState applies actions fetched from a peer (verified by the caller),
// then checks the result against the last beat.
func (m *machine) applyState(now time.Time, actions []*signedAction) {
	for _, s := range actions {
		if s.Broadcast == m.cfg.Broadcast && s.Op != OpJury {
			_, _ = m.apply(now, s)
		}
	}
	if !m.synced && m.haveBeat && bytes.Equal(m.stateDigest(), m.beat.Digest) {
		m.becomeSynced(now)
	}
}

// wantFetch asks the shell for the state, at most once per fetchBackoff.
func (m *machine) wantFetch(now time.Time, peers ...peer.ID) {
	if now.Sub(m.lastFetch) < fetchBackoff {
		return
	}
	m.lastFetch = now
	for _, p := range peers {
		if p != "" && p != m.cfg.self && !slices.Contains(m.rd.fetch, p) {
			m.rd.fetch = append(m.rd.fetch, p)
		}
	}
	if len(m.rd.fetch) == 0 {
		m.rd.fetch = []peer.ID{""} // none in particular: the shell asks the topic's peers
	}
}

// moderation returns the state for the application.
func (m *machine) moderation(now time.Time) Moderation {
	st := Moderation{Synced: m.synced, Seq: m.modSeq, Muted: make(map[string]time.Time)}
	for _, s := range m.regs {
		switch s.Op {
		case OpCommentsOff:
			st.CommentsOff = s.On
		case OpFollowersOnly:
			st.FollowersOnly = s.On
			if s.On {
				st.Follows = slices.Clone(s.List)
			}
		case OpBlock:
			if s.On {
				st.Blocked = append(st.Blocked, s.Target)
			}
		case OpModerator:
			if p, ok := peerOfUser(s.Target); ok && s.On {
				st.Moderators = append(st.Moderators, p)
			}
		case OpMute:
			if s.Until > now.UnixNano() {
				t := time.Time{}
				if s.Until != MuteForever {
					t = time.Unix(0, s.Until)
				}
				st.Muted[s.Target] = t
			}
		case OpDelete:
			st.Deleted++
		}
	}
	slices.Sort(st.Blocked)
	slices.Sort(st.Moderators)
	return st
}

// issue signs an action as the broadcaster and returns its envelope, for
// the caller to publish (or queue). It takes effect here when its own
// publication passes validation.
func (m *machine) issue(now time.Time, a action) ([]byte, error) {
	if !m.isBroadcaster || m.cfg.selfKey == nil {
		return nil, ErrNotBroadcaster
	}
	a.Broadcast = m.cfg.Broadcast
	a.Seq = m.nextID(now)
	s, err := signAction(a, m.cfg.selfKey)
	if err != nil {
		return nil, err
	}
	e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Action: s}
	return e.encode()
}

// moderate carries out a moderation request and returns the envelopes to
// publish: as the broadcaster, the signed actions (a block or unblock of a
// peer also covers its verified account); as a moderator, a request that
// the broadcaster do it.
func (m *machine) moderate(now time.Time, a action) ([][]byte, error) {
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !m.isBroadcaster {
		if !m.isModerator(m.cfg.self) {
			return nil, ErrNotModerator
		}
		switch a.Op {
		case OpCommentsOff, OpBlock, OpDelete:
		default:
			return nil, ErrNotBroadcaster
		}
		e := envelope{Broadcast: m.cfg.Broadcast, Sent: now.UnixNano(), Request: &a}
		b, err := e.encode()
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	actions := []action{a}
	if a.Op == OpBlock {
		if p, ok := peerOfUser(a.Target); ok {
			if p == m.cfg.Broadcaster {
				return nil, fmt.Errorf("%w: the broadcaster cannot block itself", ErrMalformed)
			}
			if k, ok := m.known[p]; ok {
				b := a
				b.Target = userOfAccount(k.id.AccountKey())
				actions = append(actions, b)
			}
		}
	}
	if len(m.regs)+len(actions) > maxRegisters {
		return nil, ErrStateFull
	}
	var out [][]byte
	for _, a := range actions {
		b, err := m.issue(now, a)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

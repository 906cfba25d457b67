package chat

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Validation: the topic validator every peer runs on every message, before
// it delivers or relays it (Room.validate hands it here).

// check decodes and validates one pubsub message from its (authenticated)
// author, handed to us by src (the author itself, or a relay). It is the
// topic validator.
//
// A message is rejected only for what every honest peer would reject
// whatever its state (malformed, forged, signed wrongly), or for a sender
// that floods its own messages far past its rate: with peer scoring on,
// rejections cost the peer that sent them, and honest relays must never
// pay. What depends on state (moderation, calls, rates seen through
// relays) is ignored.
func (m *machine) check(now time.Time, from, src peer.ID, data []byte) (*envelope, result, error) {
	env := new(envelope)
	if err := env.unmarshal(data); err != nil {
		m.stats.Rejected["malformed"]++
		return nil, reject, err
	}
	res, err := m.validate(now, from, src, env)
	k := env.kind().String()
	switch res {
	case accept:
		m.stats.Accepted[k]++
	case reject:
		m.stats.Rejected[k]++
	case ignore:
		m.stats.Ignored[k]++
	}
	return env, res, err
}

func (m *machine) validate(now time.Time, from, src peer.ID, env *envelope) (result, error) {
	if env.Broadcast != m.cfg.Broadcast {
		return reject, fmt.Errorf("%w: message of broadcast %q", ErrForged, env.Broadcast)
	}
	if from == "" {
		return reject, fmt.Errorf("%w: unsigned message", ErrForged)
	}
	k := env.kind()
	if k == kindAction {
		// Anyone may pass a broadcaster's action on; its own signature
		// and sequence number are what count, not its send time.
		return m.validateAction(now, env.Action)
	}
	if d := now.Sub(time.Unix(0, env.Sent)); d > m.cfg.MaxSkew || d < -m.cfg.MaxSkew {
		return ignore, ErrStale
	}
	switch k {
	case kindBeat:
		if from != m.cfg.Broadcaster {
			return reject, fmt.Errorf("%w: a beat from %s", ErrForged, from)
		}
		return m.take(now, from, src, k)
	case kindRequest:
		switch env.Request.Op {
		case OpCommentsOff, OpBlock, OpDelete:
		default:
			return reject, fmt.Errorf("%w: a moderator may not %v", ErrForged, env.Request.Op)
		}
		if !m.isModerator(from) {
			return ignore, ErrNotModerator
		}
		return m.take(now, from, src, k)
	}
	// Presence is relayed even before this node knows the moderation
	// state (checked against what it does know): a viewer's join is sent
	// once, and a neighbour that joined a moment later must not swallow it
	// for a whole presence interval. Everything else waits for the state.
	if !m.synced && k != kindPresence {
		if k == kindComment {
			m.hold(now, from, env)
		}
		return ignore, ErrNotReady
	}
	var att []byte
	switch {
	case env.Comment != nil:
		att = env.Comment.Attestation
	case env.Presence != nil:
		att = env.Presence.Attestation
	}
	who, err := m.identity(now, from, att)
	if err != nil {
		return reject, err
	}
	if m.isBlocked(from, who) {
		return ignore, ErrBlocked
	}
	switch k {
	case kindComment:
		if err := m.mayComment(now, from, who); err != nil {
			return ignore, err
		}
		id := CommentID{from, env.Comment.ID}
		if m.isDeleted(id) {
			return ignore, ErrDeleted
		}
		if m.logIndex[id] != nil {
			return ignore, ErrDuplicate
		}
	case kindReport:
		if m.isMuted(now, from, who) {
			return ignore, ErrMuted
		}
	case kindVote:
		c := m.calls[env.Vote.Call]
		if c == nil {
			// The vote may have overtaken the call here: relay it (the
			// rate limit bounds that), only the broadcaster counts.
			if m.isBroadcaster {
				return ignore, ErrNoCall
			}
			break
		}
		if c.closed || !now.Before(c.deadline) {
			return ignore, ErrNoCall
		}
		if !c.jurors[from] {
			// Ignored, not rejected: a relay that has not seen the call
			// yet passed it on in good faith.
			return ignore, ErrNotJuror
		}
		if _, voted := c.votes[from]; voted {
			return ignore, ErrDuplicate
		}
	}
	return m.take(now, from, src, k)
}

// take charges the sender's bucket for a message of kind k. Over the rate,
// the message is ignored; but a sender that hands us its own messages
// beyond even a generous second bucket (twice the burst and ten more: no
// honest sender, whose own room enforces the rate, gets there through
// network jitter) is flooding, and is rejected.
func (m *machine) take(now time.Time, from, src peer.ID, k kind) (result, error) {
	r := m.cfg.Limits.rate(k)
	if src == from && !m.lim.allow(now, from, k+numKinds, Rate{Every: r.Every, Burst: 2*r.Burst + 10}, true) {
		m.stats.Throttled++
		return reject, fmt.Errorf("%w: flooding", ErrRateLimited)
	}
	if !m.lim.allow(now, from, k, r, true) {
		m.stats.Throttled++
		return ignore, ErrRateLimited
	}
	return accept, nil
}

// mayComment says whether the moderation state lets from comment now.
func (m *machine) mayComment(now time.Time, from peer.ID, who *Identity) error {
	if m.isMuted(now, from, who) {
		return ErrMuted
	}
	if m.privileged(from) {
		return nil
	}
	if m.reg(OpCommentsOff, "").on() {
		return ErrCommentsOff
	}
	if f := m.reg(OpFollowersOnly, ""); f.on() {
		if who == nil || !slices.Contains(f.List, who.AccountKey()) {
			return ErrFollowersOnly
		}
	}
	return nil
}

func (m *machine) validateAction(now time.Time, s *signedAction) (result, error) {
	if s.Broadcast != m.cfg.Broadcast {
		return reject, fmt.Errorf("%w: action of broadcast %q", ErrForged, s.Broadcast)
	}
	if err := s.verify(m.cfg.brKey); err != nil {
		return reject, err
	}
	return m.apply(now, s)
}

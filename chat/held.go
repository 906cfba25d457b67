package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Comments heard before the moderation state is known. A viewer's room
// knows it at its first beat (or the state fetched after it), up to a beat
// interval after it joined; until then it cannot tell a blocked author's
// comment from anyone's, so it passes none on and shows none. GossipSub
// offers a message once: a comment ignored then was lost for good, and a
// viewer missed what was said in its first seconds (a node test lost a
// comment posted at a member synced a moment before the reader). So the
// room keeps the comments it hears meanwhile, a few and briefly, and
// judges them when it has the state, as if they came then: a blocked or
// muted author's, a deleted one, one already shown or grown too old are
// left out. They are still never relayed: the peers that forwarded them
// did.

// maxHeld bounds the comments kept before the state is known, and
// heldFor how long one is kept: longer than a beat interval and a fetch.
const (
	maxHeld = 64
	heldFor = 10 * time.Second
)

type heldComment struct {
	at   time.Time
	from peer.ID
	env  *envelope
}

// hold keeps a comment heard before the state, while there is room.
func (m *machine) hold(now time.Time, from peer.ID, env *envelope) {
	if len(m.held) >= maxHeld {
		return
	}
	m.held = append(m.held, heldComment{at: now, from: from, env: env})
}

// becomeSynced marks the state known and shows the held comments that pass
// the checks a comment heard now would.
func (m *machine) becomeSynced(now time.Time) {
	m.synced = true
	held := m.held
	m.held = nil
	for _, h := range held {
		if now.Sub(h.at) > heldFor {
			continue
		}
		// As heard from its author, once: the rate is charged, and its
		// flood bucket only where the author handed it over itself.
		if res, _ := m.validate(now, h.from, "", h.env); res == accept {
			m.deliver(now, h.from, "", h.env)
		}
	}
}

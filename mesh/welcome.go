// Welcome slots: a newcomer fed at once, then handed over to room below.

package mesh

import (
	"slices"
	"time"
)

// welcomeMove bounds how long a welcomed newcomer is fed while it moves to
// the room it was handed to: a browser's set-up to another browser through
// a relay, its dial bounded at 5 s and the answer at AttachTimeout, then
// the new parent's first chunk.
const welcomeMove = 7 * time.Second

// away says whether a child holds no slot here: being handed over, or
// welcomed beyond the slots. Such a child is fed but neither named as room
// nor counted in the subtree, and its slot is kept for nobody.
func (c *child) away() bool { return c.handTo != "" || !c.welcomeEnd.IsZero() }

// welcome adopts a newcomer that asked for a welcome (AttachWelcome) when
// this node's slots are full: beyond them, for WelcomeFor, after which it
// is handed over, make before break, to room below (tickWelcome). Its first
// chunks thus come from here at once, not after a set-up to the member with
// room (for a browser, a WebRTC set-up to another browser through a relay:
// 0.5–4.5 s). Bounded, so that fresh identities cannot take the upload:
// Config.Welcome at a time, each fed WelcomeFor + welcomeMove at most, only
// a first join (asking for the live edge, no parent lost, not a move), never
// on the broadcaster, and only while some member below has room to take it:
// a welcome always ends in a handover, and the tree's upload is paid by the
// member that takes it. It reports whether it adopted the newcomer.
func (n *Machine) welcome(now time.Time, info PeerInfo, m *Message) bool {
	if n.isRoot || n.welcoming >= n.cfg.Welcome || m.Seq != 0 || m.Lost != "" ||
		m.Flags&(AttachImprove|AttachWithheld) != 0 || len(n.handRoom(now, info.ID)) == 0 {
		return false
	}
	n.adoptAs(now, info, m, AcceptWelcome)
	n.welcoming++
	n.event(Event{Type: EvWelcomed, Peer: info.ID})
	return true
}

// handRoom is where a welcomed child can be handed: room below, not here.
func (n *Machine) handRoom(now time.Time, except PeerID) []Candidate {
	room := slices.DeleteFunc(n.roomBelow(now, except), func(c Candidate) bool { return c.ID == n.cfg.Self.ID })
	if len(room) > maxRedirect {
		room = room[:maxRedirect]
	}
	return room
}

// tickWelcome hands welcomed children over once they have been fed
// WelcomeFor (a slot free here by then takes the child instead), and
// lets go, with the room known, those still here at their end.
func (n *Machine) tickWelcome(now time.Time) {
	for i := 0; i < len(n.children); i++ {
		c := n.children[i]
		switch {
		case c.welcomeEnd.IsZero():
		case !now.Before(c.welcomeEnd):
			n.removeChild(i)
			i--
			n.send(c.info, &Message{Type: MsgLeave, Candidates: n.handRoom(now, c.info.ID)})
		case c.handTo == "" && now.Sub(c.addedAt) >= n.cfg.WelcomeFor && !now.Before(c.handUntil):
			n.handOn(now, c)
		}
	}
}

// handOn starts a welcomed child's handover: a Leave flagged handover
// naming the room below, the shallowest first, which the child asks to
// adopt it while it is still fed here (as a displaced child does). With a
// slot of its own free now, the node keeps the child in it instead; with
// no room below, the child is fed until its end and asked again then.
func (n *Machine) handOn(now time.Time, c *child) {
	if n.free() > 0 {
		c.welcomeEnd = time.Time{}
		n.welcoming--
		n.statusDirty = true
		return
	}
	room := n.handRoom(now, c.info.ID)
	if len(room) == 0 {
		return
	}
	c.handTo, c.handUntil = room[0].ID, c.welcomeEnd
	n.send(c.info, &Message{Type: MsgLeave, Flags: LeaveHandover, Candidates: room})
}

// welcomeBack takes a welcomed child's attach again. During its handover
// that is word that the move failed (the member handed to refused it, did
// not answer in time, or fed it nothing: flagged withheld, which
// stepAttach has heard): it stays, fed here, and is handed on again after
// WelcomeFor, until its end. (A child told AcceptWelcome asks its welcomer
// again when a handover fails, rather than rejoining elsewhere.)
func (n *Machine) welcomeBack(now time.Time, c *child) {
	if c.handTo != "" {
		c.handTo, c.handUntil = "", now.Add(n.cfg.WelcomeFor)
	}
}

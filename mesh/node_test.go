package mesh

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestJoinUnderBroadcaster(t *testing.T) {
	nw := newNetwork(t)
	nw.add("a", 2)
	nw.run(time.Second)
	nw.checkTree()
	if s := nw.status("a"); s.Parent != root || s.Depth != 1 {
		t.Fatalf("a: parent %q depth %d, want root at depth 1", s.Parent, s.Depth)
	}
	nw.stream(time.Second)
	nw.checkComplete("a", 0, nw.seq-1)
	if !nw.hasEvent("a", func(e Event) bool { return e.Type == EvAttached && e.Peer == root && !e.Rejoin }) {
		t.Fatal("no attached event")
	}
}

func TestFullNodeRedirectsToChildWithRoom(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("a", 2)
	nw.run(time.Second)
	nw.run(2 * time.Second) // a reports its room to the root
	nw.add("b", 0)
	nw.run(2 * time.Second)
	nw.checkTree()
	if s := nw.status("b"); s.Parent != "a" || s.Depth != 2 {
		t.Fatalf("b: parent %q depth %d, want a at depth 2", s.Parent, s.Depth)
	}
	nw.stream(time.Second)
	nw.checkComplete("b", 0, nw.seq-1)
}

func TestJoinPrefersNearbyMember(t *testing.T) {
	nw := newNetwork(t)
	// far and near are both children of the root with room; the joiner is
	// 5 ms from near and 120 ms from far.
	nw.add("far", 3)
	nw.add("near", 3)
	nw.run(2 * time.Second)
	nw.latency = func(a, b PeerID) time.Duration {
		if a > b {
			a, b = b, a
		}
		switch {
		case a == "j" && b == "near", a == "j" && b == "root" && false:
			return 5 * time.Millisecond
		case a == "far" && b == "j":
			return 120 * time.Millisecond
		case a == "j" && b == "root":
			return 60 * time.Millisecond
		}
		return time.Millisecond
	}
	nw.nodes[root].cfg.Slots = 2 // the root is full now
	j := nw.add("j", 0)
	j.AddCandidates(nw.now, PeerInfo{ID: "far"}, PeerInfo{ID: "near"})
	nw.run(3 * time.Second)
	nw.checkTree()
	if s := nw.status("j"); s.Parent != "near" {
		t.Fatalf("j attached under %q, want the nearby member", s.Parent)
	}
}

func TestParentLossRejoinsWithoutLosingChunks(t *testing.T) {
	for _, reset := range []bool{true, false} {
		t.Run(map[bool]string{true: "reset", false: "silence"}[reset], func(t *testing.T) {
			nw := newNetwork(t)
			nw.nodes[root].cfg.Slots = 1
			nw.add("relay", 2)
			nw.run(2 * time.Second)
			nw.add("c1", 1)
			nw.add("c2", 0)
			nw.run(3 * time.Second)
			nw.checkTree()
			for _, id := range []PeerID{"c1", "c2"} {
				if p := nw.status(id).Parent; p != "relay" && nw.status(p).Parent != "relay" {
					t.Fatalf("%s is not below relay (parent %s)", id, p)
				}
			}
			nw.stream(2 * time.Second)
			nw.kill("relay", reset)
			nw.stream(3 * time.Second)
			nw.run(time.Second)
			nw.checkTree()
			for _, id := range []PeerID{"c1", "c2"} {
				nw.checkComplete(id, 0, nw.seq-1)
			}
			if !nw.hasEvent("c1", func(e Event) bool { return e.Type == EvParentLost }) &&
				!nw.hasEvent("c2", func(e Event) bool { return e.Type == EvParentLost }) {
				t.Fatal("nobody lost a parent")
			}
			rejoined := nw.hasEvent("c1", func(e Event) bool { return e.Type == EvAttached && e.Rejoin }) ||
				nw.hasEvent("c2", func(e Event) bool { return e.Type == EvAttached && e.Rejoin })
			if !rejoined {
				t.Fatal("no rejoin event")
			}
		})
	}
}

func TestAttachUnderOwnDescendantIsRefused(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("a", 1)
	nw.run(2 * time.Second)
	nw.add("b", 1)
	nw.run(3 * time.Second)
	nw.checkTree()
	if nw.status("b").Parent != "a" {
		t.Fatalf("b's parent is %q, want a", nw.status("b").Parent)
	}
	// a asks its own child b to adopt it: b must refuse (a is b's ancestor).
	a := nw.nodes["a"]
	if err := nw.nodes["b"].Step(nw.now, "a", &Message{Type: MsgAttach, Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	rd := nw.nodes["b"].Ready()
	var reason Reason
	for _, e := range rd.Messages {
		if e.To.ID == "a" && e.Msg.Type == MsgReject {
			reason = e.Msg.Reason
		}
	}
	if reason != ReasonLoop {
		t.Fatalf("b answered a's attach with reason %d, want loop", reason)
	}
	if !slices.ContainsFunc(rd.Events, func(e Event) bool { return e.Type == EvLoopRefused }) {
		t.Fatal("no loop-refused event")
	}
	// And an accept whose path contains the node itself is left at once.
	a.attachTo, a.moving = "b", true
	_ = a.Step(nw.now, "b", &Message{Type: MsgAccept, Path: []PeerInfo{{ID: root}, {ID: "a"}}})
	rd = a.Ready()
	if a.Status().Parent != root {
		t.Fatalf("a took %q as parent from a looping accept", a.Status().Parent)
	}
	if !slices.ContainsFunc(rd.Messages, func(e Envelope) bool { return e.To.ID == "b" && e.Msg.Type == MsgLeave }) {
		t.Fatal("a did not leave the looping accept")
	}
}

func TestForgedChunkIsDroppedAndParentLeft(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 2
	nw.add("evil", 2)
	nw.add("good", 2)
	nw.run(2 * time.Second)
	nw.add("v", 0)
	nw.nodes["v"].AddCandidates(nw.now, PeerInfo{ID: "evil"})
	nw.latency = func(a, b PeerID) time.Duration {
		if a == "v" && b == "evil" || a == "evil" && b == "v" {
			return time.Millisecond
		}
		return 20 * time.Millisecond
	}
	nw.run(3 * time.Second)
	if p := nw.status("v").Parent; p != "evil" {
		t.Skipf("v attached under %q; the scenario needs it under evil", p)
	}
	// evil alters the payload of every chunk it forwards to v.
	nw.tamper = func(from, to PeerID, m *Message) *Message {
		if from == "evil" && to == "v" && m.Type == MsgChunk {
			c := m.Chunk.Clone()
			c.Payload = []byte("forged")
			return &Message{Type: MsgChunk, Chunk: c}
		}
		return m
	}
	nw.stream(3 * time.Second)
	nw.checkTree()
	if p := nw.status("v").Parent; p == "evil" {
		t.Fatal("v still trusts the parent that forged a chunk")
	}
	if nw.nodes["v"].Stats().Forged == 0 || !nw.hasEvent("v", func(e Event) bool { return e.Type == EvForged && e.Peer == "evil" }) {
		t.Fatal("forgery not reported")
	}
	if err := nw.nodes["v"].Step(nw.now, "evil", &Message{Type: MsgPing}); !errors.Is(err, ErrBanned) {
		t.Fatalf("evil is not banned: %v", err)
	}
	// Only genuine chunks were delivered, and the repair filled what the
	// forgeries cost.
	nw.stream(2 * time.Second)
	first := nw.got["v"][0]
	nw.checkComplete("v", first, nw.seq-1)
}

func TestSlotlessLeafIsDisplacedByRelay(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("phone", 0)
	nw.run(2 * time.Second)
	nw.stream(time.Second)
	nw.add("relay", 4)
	nw.run(3 * time.Second)
	nw.stream(2 * time.Second)
	nw.checkTree()
	if s := nw.status("relay"); s.Parent != root {
		t.Fatalf("relay is under %q, want the root", s.Parent)
	}
	if s := nw.status("phone"); s.Parent != "relay" {
		t.Fatalf("phone is under %q, want relay", s.Parent)
	}
	nw.checkComplete("phone", 0, nw.seq-1)
}

func TestGracefulLeaveHandsChildrenOn(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("mid", 2)
	nw.run(2 * time.Second)
	nw.add("x", 1)
	nw.add("y", 0)
	nw.run(3 * time.Second)
	nw.checkTree()
	nw.stream(time.Second)
	nw.nodes["mid"].Leave(nw.now)
	nw.drain("mid")
	nw.down["mid"] = true
	nw.stream(2 * time.Second)
	nw.checkTree()
	for _, id := range []PeerID{"x", "y"} {
		nw.checkComplete(id, 0, nw.seq-1)
	}
}

func TestHighCapacityNodeMovesUp(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 2
	nw.add("a", 1)
	nw.add("c", 1)
	nw.run(2 * time.Second)
	nw.add("b", 1)
	nw.add("d", 1)
	nw.run(2 * time.Second)
	nw.add("e", 1)
	nw.run(2 * time.Second)
	// big joins late and lands deep; improvement must bring it up.
	nw.add("big", 8, func(c *Config) { c.ImproveInterval = 2 * time.Second })
	nw.nodes["big"].AddCandidates(nw.now, PeerInfo{ID: "e"})
	nw.latency = func(a, b PeerID) time.Duration {
		if a == "big" && b == root || a == root && b == "big" {
			return 50 * time.Millisecond // e is much nearer, so big first joins deep
		}
		return time.Millisecond
	}
	nw.stream(10 * time.Second)
	nw.checkTree()
	before := nw.events["big"][0].Depth // where its first join put it
	after := nw.status("big").Depth
	if before < 3 || after != 1 {
		t.Fatalf("big stayed at depth %d (was %d); want it to move up to depth 1", after, before)
	}
	nw.checkComplete("big", nw.got["big"][0], nw.seq-1)
}

func TestSubtreeLeavesAParentThatCannotRejoin(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("a", 1)
	nw.run(2 * time.Second)
	nw.add("b", 1)
	nw.run(2 * time.Second)
	nw.add("c", 0)
	nw.run(2 * time.Second)
	nw.checkTree()
	if nw.status("c").Parent != "b" || nw.status("b").Parent != "a" {
		t.Fatalf("want root-a-b-c, got b under %s, c under %s", nw.status("b").Parent, nw.status("c").Parent)
	}
	nw.stream(time.Second)
	// a dies silently and b can no longer reach the root: b stays out of
	// the tree, and c must not starve with it.
	nw.cut[[2]PeerID{"b", root}] = true
	nw.kill("a", false)
	nw.stream(5 * time.Second)
	if s := nw.status("c"); s.Parent != root {
		t.Fatalf("c is %s under %q, want attached under the root", s.State, s.Parent)
	}
	if got := nw.got["c"]; got[len(got)-1] != nw.seq-1 {
		t.Fatalf("c's last chunk is %d, want %d", got[len(got)-1], nw.seq-1)
	}
}

func TestOneSlotJoinerGetsIntoAFullTree(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("leaf", 0)
	nw.run(2 * time.Second)
	nw.stream(time.Second)
	// No slot is free anywhere, but the joiner relays: it goes between the
	// root and the slotless leaf.
	nw.add("one", 1)
	nw.run(2 * time.Second)
	nw.stream(2 * time.Second)
	nw.checkTree()
	if s := nw.status("one"); s.Parent != root {
		t.Fatalf("one is %s under %q, want attached under the root", s.State, s.Parent)
	}
	if s := nw.status("leaf"); s.Parent != "one" {
		t.Fatalf("leaf is under %q, want one", s.Parent)
	}
	nw.checkComplete("leaf", 0, nw.seq-1)
}

// A node left deep (a chain of one-slot relays above it) climbs into room
// that opened two or more levels higher, which it learns by asking an
// ancestor; and it does not climb again once it is there.
func TestDeepNodeClimbsToRoomHigherUp(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	for _, id := range []PeerID{"hub", "a", "b", "c"} {
		nw.add(id, 1)
		nw.run(2 * time.Second)
	}
	nw.add("deep", 0, func(c *Config) { c.ImproveInterval = 4 * time.Second })
	nw.run(2 * time.Second)
	nw.checkTree()
	if d := nw.status("deep").Depth; d != 5 {
		t.Fatalf("deep joined at depth %d, want 5 (under the chain)", d)
	}
	// Room opens at depth 2: the hub gets a second slot, taken by a relay
	// with a free slot of its own.
	nw.nodes["hub"].cfg.Slots = 2
	nw.add("room", 1)
	nw.run(2 * time.Second)
	if s := nw.status("room"); s.Parent != "hub" {
		t.Fatalf("room attached under %q, want hub", s.Parent)
	}
	nw.stream(30 * time.Second)
	nw.checkTree()
	if s := nw.status("deep"); s.Parent != "room" || s.Depth != 3 {
		t.Fatalf("deep: parent %q depth %d, want room at depth 3", s.Parent, s.Depth)
	}
	moves := 0
	for _, e := range nw.events["deep"] {
		if e.Type == EvAttached && e.Moved {
			moves++
		}
	}
	if moves != 1 {
		t.Fatalf("deep moved %d times, want once", moves)
	}
	nw.checkComplete("deep", nw.got["deep"][0], nw.seq-1)
}

// A leaf whose report does not change repeats it once per StatusKeepalive,
// not every StatusInterval; a change goes out at the next StatusInterval.
func TestUnchangedStatusIsOnlyKeptAlive(t *testing.T) {
	nw := newNetwork(t)
	nw.nodes[root].cfg.Slots = 1
	nw.add("a", 2)
	nw.run(2 * time.Second)
	statuses := 0
	nw.tamper = func(from, to PeerID, m *Message) *Message {
		if from == "a" && m.Type == MsgStatus {
			statuses++
		}
		return m
	}
	nw.stream(6 * time.Second)
	cfg := DefaultConfig()
	if want := int(6 * time.Second / cfg.StatusKeepalive); statuses < want-1 || statuses > want+1 {
		t.Fatalf("a sent %d statuses in 6 s, want about %d (one per keepalive)", statuses, want)
	}
	statuses = 0
	nw.add("b", 0)
	nw.run(time.Second)
	if s := nw.status("b"); s.Parent != "a" {
		t.Fatalf("b attached under %q, want a", s.Parent)
	}
	if nw.nodes[root].Status().Subtree != 3 {
		t.Fatalf("root counts %d in its subtree, want 3", nw.nodes[root].Status().Subtree)
	}
}

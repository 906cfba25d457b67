// Peers arriving, leaving and dying, and the simulator's picture of the
// tree, kept from their events.

package sim

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// meshConfig is node i's mesh.Config.
func (s *Sim) meshConfig(i int, slots int) mesh.Config {
	c := s.cfg.Mesh
	c.Self = mesh.PeerInfo{ID: s.peerID(i)}
	c.Root = mesh.PeerInfo{ID: s.rootID}
	c.Broadcast = s.broadcast
	c.Key = s.key.Public().(ed25519.PublicKey)
	c.Verify = s.verify.verify
	c.Slots = slots
	c.Rand = rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	return c
}

func (s *Sim) addRoot() error {
	upload := int64(float64(s.cfg.SourceSlots) * float64(s.cfg.Bitrate) * s.cfg.Headroom)
	c := s.centres[0]
	x, y := s.near(c)
	s.rootID = s.peerID(root)
	n, err := mesh.New(s.meshConfig(root, s.cfg.SourceSlots))
	if err != nil {
		return fmt.Errorf("sim: broadcaster: %w", err)
	}
	s.nodes = append(s.nodes, node{
		n: n, info: mesh.PeerInfo{ID: s.rootID},
		slots: int32(s.cfg.SourceSlots), upload: upload, nsPerByte: 8e9 / float64(upload),
		left: -1, play: playback{first: -1}, parent: -1, attachTo: -1, parentGoneAt: -1, attachedPos: -1, presentPos: -1,
	})
	s.pos = append(s.pos, point{x, y})
	s.phases[0] = append(s.phases[0], root)
	// A media chunk's size on the wire, for the direct latency.
	probe := chunk.Chunk{Broadcast: s.broadcast, Seq: 1 << 20, Wallclock: epoch.UnixNano(), Payload: make([]byte, s.chunkSize), Signature: make([]byte, ed25519.SignatureSize)}
	s.srcSer = int64(float64((&mesh.Message{Type: mesh.MsgChunk, Chunk: &probe}).Size()) * 8e9 / float64(upload))
	return nil
}

// near draws a point around a centre, on the plane.
func (s *Sim) near(c [2]float64) (float32, float32) {
	size := float64(s.cfg.PlaneSize) / 1e6
	sd := float64(s.cfg.Spread) / 1e6
	x := min(max(c[0]+s.pop.NormFloat64()*sd, 0), size)
	y := min(max(c[1]+s.pop.NormFloat64()*sd, 0), size)
	return float32(x), float32(y)
}

func (s *Sim) place() (float32, float32) {
	if s.pop.Float64() < s.cfg.Scattered {
		size := float64(s.cfg.PlaneSize) / 1e6
		return float32(s.pop.Float64() * size), float32(s.pop.Float64() * size)
	}
	u := s.pop.Float64()
	r := 0
	for r < len(s.weights)-1 && u >= s.weights[r] {
		r++
	}
	return s.near(s.centres[r])
}

// arrive adds a viewer: it gets the root and a few attached viewers as
// candidates and starts joining at once.
func (s *Sim) arrive() {
	i := len(s.nodes)
	u := s.pop.Float64()
	k := 0
	for k < len(s.classCum)-1 && u >= s.classCum[k] {
		k++
	}
	cls := s.cfg.Classes[k]
	upload := cls.MinUpload
	if cls.MaxUpload > cls.MinUpload {
		upload += s.pop.Int64N(cls.MaxUpload - cls.MinUpload + 1)
	}
	slots := 0
	if cls.Relay {
		slots = min(mesh.SlotsFor(upload, s.cfg.Bitrate, s.cfg.Headroom), s.cfg.MaxSlots)
		if s.cfg.Stripes > 1 {
			// Interior in one tree only: the relays take the trees in turn.
			if s.relays%(s.cfg.Stripes+s.cfg.Parity) != s.cfg.stripe {
				slots = 0
			}
			s.relays++
		}
	}
	if !s.addNode(i, k, slots, upload) {
		return
	}
	nd := &s.nodes[i]
	first := s.nextArrival < len(s.arrivals)
	switch {
	case s.forgersLeft > 0 && slots > 0 && first:
		nd.forger = true
		s.forgersLeft--
	case s.paddersLeft > 0 && slots > 0 && first:
		nd.padder = true
		s.paddersLeft--
	}
	nd.presentPos = int32(len(s.present))
	s.present = append(s.present, int32(i))
	s.m.joins++
	s.join(int32(i))
}

// addNode makes node i, of class k, with its machine and place; false (and
// s.err set) if the machine refused its config.
func (s *Sim) addNode(i, k, slots int, upload int64) bool {
	x, y := s.place()
	n, err := mesh.New(s.meshConfig(i, slots))
	if err != nil {
		s.err = fmt.Errorf("sim: viewer %d: %w", i, err)
		return false
	}
	s.nodes = append(s.nodes, node{
		n: n, info: mesh.PeerInfo{ID: s.peerID(i)}, class: uint8(k),
		slots: int32(slots), upload: upload, nsPerByte: 8e9 / float64(upload),
		arrived: s.now, left: -1, play: playback{first: -1, split: s.m.killSeq}, parent: -1, attachTo: -1, parentGoneAt: -1,
		withheldAt: -1, attachedPos: -1, presentPos: -1,
	})
	s.pos = append(s.pos, point{x, y})
	s.nodes[i].direct = s.prop(root, int32(i)) + s.srcSer
	return true
}

// join hands a new node what a directory would (the root and some attached
// viewers), starts it and puts it in a tick phase.
func (s *Sim) join(i int32) {
	n := s.nodes[i].n
	cands := append(s.scratch[:0], s.nodes[root].info)
	s.pick = s.pick[:0]
	if len(s.attached) <= s.cfg.Candidates {
		s.pick = append(s.pick, s.attached...)
	} else {
		for len(s.pick) < s.cfg.Candidates {
			c := s.attached[s.rng.IntN(len(s.attached))]
			dup := false
			for _, p := range s.pick {
				dup = dup || p == c
			}
			if !dup {
				s.pick = append(s.pick, c)
			}
		}
	}
	for _, p := range s.pick {
		cands = append(cands, s.nodes[p].info)
	}
	s.scratch = cands
	now := s.time()
	n.AddCandidates(now, cands...)
	n.Tick(now)
	s.drain(i, nil)
	// Phases go by blocks of consecutive arrivals: their nodes were
	// allocated one after the other, so a tick walks memory in order.
	p := (int(i) / s.tickBlock) % len(s.phases)
	s.phases[p] = append(s.phases[p], i)
}

// depart takes viewer i out: abruptly (it vanishes; its connections may
// reset) or gracefully (it calls Leave and its last messages still go out).
func (s *Sim) depart(i int32, graceful bool) {
	nd := &s.nodes[i]
	s.m.leaves++
	s.addTally(i, s.settle(i, s.now))
	st := nd.n.Stats()
	s.m.addStats(&st)
	nd.txCut = s.now
	if graceful {
		s.m.graceful++
		nd.n.Leave(s.time())
		s.drain(i, nil)
		for _, f := range nd.flows { // its last messages still go, in order
			for _, q := range f.q[f.head:] {
				s.transmit(i, f.to, q.msg, max(s.now, nd.busy), q.at)
			}
		}
		nd.flows = nil
		nd.txCut = max(s.now, nd.busy)
	} else if s.rng.Float64() < s.cfg.ResetProb {
		s.m.resets++
		s.resetLinks(i)
	}
	for _, f := range nd.followers {
		s.nodes[f].parentGoneAt = s.now
	}
	if nd.parent >= 0 {
		s.unfollow(i)
	}
	s.setAttached(i, false)
	// Out of present: swap-remove.
	last := s.present[len(s.present)-1]
	s.present[nd.presentPos] = last
	s.nodes[last].presentPos = nd.presentPos
	s.present = s.present[:len(s.present)-1]
	nd.presentPos = -1
	nd.gone = true
	nd.left = s.now
	nd.n = nil
	nd.holds, nd.children, nd.followers, nd.flows = nil, nil, nil, nil
}

// resetLinks sends PeerDown to the departed node's neighbours, one one-way
// delay later.
func (s *Sim) resetLinks(i int32) {
	nd := &s.nodes[i]
	s.pick = s.pick[:0]
	add := func(j int32) {
		if j < 0 || j == i || s.nodes[j].gone {
			return
		}
		for _, p := range s.pick {
			if p == j {
				return
			}
		}
		s.pick = append(s.pick, j)
	}
	add(nd.parent)
	add(nd.attachTo)
	for _, c := range nd.children {
		add(c)
	}
	for _, f := range nd.followers {
		add(f)
	}
	for _, j := range s.pick {
		s.push(event{at: s.now + s.prop(i, j), kind: evDown, to: j, from: i})
	}
}

func (s *Sim) setAttached(i int32, on bool) {
	nd := &s.nodes[i]
	switch {
	case i == root:
	case on && nd.attachedPos < 0:
		nd.attachedPos = int32(len(s.attached))
		s.attached = append(s.attached, i)
	case !on && nd.attachedPos >= 0:
		last := s.attached[len(s.attached)-1]
		s.attached[nd.attachedPos] = last
		s.nodes[last].attachedPos = nd.attachedPos
		s.attached = s.attached[:len(s.attached)-1]
		nd.attachedPos = -1
	}
}

// unfollow removes node i from its parent's followers.
func (s *Sim) unfollow(i int32) {
	p := s.nodes[i].parent
	s.nodes[i].parent = -1
	if p < 0 {
		return
	}
	s.nodes[p].followers = removeInt32(s.nodes[p].followers, i)
}

func removeInt32(l []int32, v int32) []int32 {
	for k, x := range l {
		if x == v {
			l[k] = l[len(l)-1]
			return l[:len(l)-1]
		}
	}
	return l
}

func (s *Sim) onEvent(i int32, e *mesh.Event) {
	nd := &s.nodes[i]
	if s.cfg.Trace != nil {
		s.trace(i, e)
	}
	switch e.Type {
	case mesh.EvAttached:
		p := s.index(e.Peer)
		s.noteWithheld(i, p)
		if nd.parent != p {
			s.unfollow(i)
			if p >= 0 {
				nd.parent = p
				s.nodes[p].followers = append(s.nodes[p].followers, i)
			}
		}
		nd.attachTo = -1
		s.setAttached(i, true)
		if nd.parentGoneAt >= 0 {
			s.m.rejoin.AddDuration(time.Duration(s.now - nd.parentGoneAt))
			nd.parentGoneAt = -1
		} else if e.Rejoin {
			s.m.rejoinsOther++
		}
	case mesh.EvParentLost:
		s.unfollow(i)
		s.setAttached(i, false)
		if int(e.Loss) < len(s.m.lost) {
			s.m.lost[e.Loss]++
		}
	case mesh.EvDetached:
		s.unfollow(i)
		s.setAttached(i, false)
	case mesh.EvChildAdded:
		if c := s.index(e.Peer); c >= 0 {
			nd.children = append(nd.children, c)
		}
		if nd.n.Holding() > int(nd.slots) {
			s.m.overSlots++
		}
	case mesh.EvChildRemoved:
		if c := s.index(e.Peer); c >= 0 {
			nd.children = removeInt32(nd.children, c)
		}
	case mesh.EvForged:
		s.m.forgedEvents++
	case mesh.EvLoopRefused:
		s.m.loopRefused++
	}
}

// trace tells Config.Trace about an event of the traced viewer or of its
// parent or grandparent, with the traced viewer's ancestors as the
// simulator's picture has them.
func (s *Sim) trace(i int32, e *mesh.Event) {
	role, chain := s.traceRole(i)
	if role == "" {
		return
	}
	s.cfg.Trace(fmt.Sprintf("%.3fs n%d (%s) %s peer=%s depth=%d loss=%s rejoin=%v moved=%v; n%d's ancestors %v",
		float64(s.now)/1e9, i, role, e.Type, e.Peer, e.Depth, e.Loss, e.Rejoin, e.Moved, s.cfg.TraceNode, chain))
}

// traceLate tells Config.Trace about a chunk the traced viewer, its parent
// or grandparent delivered more than a third of the playout delay after
// it was cut.
func (s *Sim) traceLate(i int32, seq uint64, lat int64) {
	if role, _ := s.traceRole(i); role != "" {
		s.cfg.Trace(fmt.Sprintf("%.3fs n%d (%s) late chunk %d, %d ms", float64(s.now)/1e9, i, role, seq, lat/1e6))
	}
}

// traceRole says what viewer i is to the traced one (self, parent,
// grandparent, or "": nothing traced), and gives the traced viewer's
// ancestors, nearest first.
func (s *Sim) traceRole(i int32) (string, []int32) {
	t := s.cfg.TraceNode
	if t <= 0 || int(t) >= len(s.nodes) {
		return "", nil
	}
	var chain []int32
	for p := s.nodes[t].parent; p >= 0 && len(chain) < 32; p = s.nodes[p].parent {
		chain = append(chain, p)
	}
	switch {
	case i == t:
		return "self", chain
	case len(chain) > 0 && i == chain[0]:
		return "parent", chain
	case len(chain) > 1 && i == chain[1]:
		return "grandparent", chain
	}
	return "", nil
}

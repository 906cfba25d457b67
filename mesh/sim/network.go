// The modelled network: propagation, each node's uplink (a fair queue per
// destination, taking turns one message a round, at the node's upload rate),
// loss and the order it keeps on a link, and forgers.

package sim

import (
	"math"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// prop is the one-way propagation delay between two nodes.
func (s *Sim) prop(a, b int32) int64 {
	pa, pb := s.pos[a], s.pos[b]
	dx, dy := float64(pa.x-pb.x), float64(pa.y-pb.y)
	return s.minOneWay + int64(math.Sqrt(dx*dx+dy*dy)*1e6)
}

// send puts a message on the sender's uplink and schedules its arrival.
func (s *Sim) send(from int32, e mesh.Envelope) {
	to := s.index(e.To.ID)
	if to < 0 || to == from {
		s.m.badDest++
		return
	}
	sn := &s.nodes[from]
	msg := e.Msg
	switch {
	case msg.Type == mesh.MsgChunk && sn.forger && !msg.Chunk.IsInit():
		msg = s.forge(msg.Chunk)
	case msg.Type == mesh.MsgChunk && sn.padder:
		msg = s.pad(msg.Chunk)
	case sn.sybil:
		if msg = lie(msg); msg == nil {
			return
		}
	}
	if msg.Type == mesh.MsgAttach {
		sn.attachTo = to
	}
	if s.cfg.Uplink == UplinkFair && (sn.busy > s.now || sn.txPending) {
		s.enqueue(from, to, msg)
		return
	}
	s.transmit(from, to, msg, max(s.now, sn.busy), s.now)
}

// transmit sends msg from the sender's uplink starting at start (it was
// handed to the uplink at queued) and schedules its arrival.
func (s *Sim) transmit(from, to int32, msg *mesh.Message, start, queued int64) {
	sn := &s.nodes[from]
	size := msg.Size()
	if msg.Type == mesh.MsgChunk {
		if pad := s.padOf(msg); pad > 0 {
			size += pad
			s.m.padSent += uint64(pad)
		} else if s.padded != nil && !sn.padder {
			s.m.padRelayed += uint64(s.excess(msg, size))
		}
	}
	if wait := start - queued; wait > s.m.maxBacklog[min(from, 1)] {
		s.m.maxBacklog[min(from, 1)] = wait // [0] the broadcaster, [1] any viewer
		if from > 0 {
			s.m.backlogNode, s.m.backlogAt = from, s.now
		}
	}
	ser := int64(float64(size) * sn.nsPerByte)
	sn.busy = start + ser
	// end: its last byte has left; headLeft: the first fragment has
	// (ForwardCut, cut.go; otherwise the two are the same).
	end, headLeft := s.cutTimes(from, msg, size, start, ser)
	prop := s.prop(from, to)
	at := headLeft + prop
	tail := end + prop
	lost := false
	if s.cfg.Loss > 0 {
		if u := s.rng.Float64(); u < s.lossProb(size) {
			// Retransmitted after a round trip; under cut-through the
			// head is held back only if its first fragment lost a packet.
			firstFrag := (s.cfg.Fragment + s.cfg.PacketSize - 1) / s.cfg.PacketSize
			if at == tail || s.firstLost(u) <= firstFrag {
				at += 2 * prop
			}
			tail += 2 * prop
			lost = true
			s.m.lostMsgs++
		}
	}
	if lost || sn.holdMax > s.now {
		held := s.fifo(sn, to, at, lost)
		tail += held - at
		at = held
	}
	if msg.Type == mesh.MsgChunk {
		if !msg.Chunk.IsInit() {
			// Under cut-through the copy's first byte is out when its
			// head is less one fragment (cut.go).
			first := min(start, headLeft-int64(float64(s.cfg.Fragment)*sn.nsPerByte))
			s.hops.add(first-queued, end-first, prop)
		}
		sn.chunkSent += uint64(size)
		s.m.chunkBytes += uint64(size)
		s.m.chunkMsgs++
	} else {
		sn.ctrlSent += uint64(size)
		s.m.ctrlBytes += uint64(size)
		s.m.ctrlMsgs++
	}
	if s.traceSend != nil {
		s.traceSend(from, to, msg, start, end)
	}
	s.push(event{at: at, kind: evMessage, to: to, from: from, msg: s.inFlight.put(msg), sent: end, gap: gapUS(at, tail)})
}

// enqueue puts a message in the sender's queue for its destination, for
// the fair uplink: the queues take turns, one message each per round.
func (s *Sim) enqueue(from, to int32, msg *mesh.Message) {
	sn := &s.nodes[from]
	k := -1
	for j := range sn.flows {
		if sn.flows[j].to == to {
			k = j
			break
		}
	}
	if k < 0 {
		k = len(sn.flows)
		if k < cap(sn.flows) {
			sn.flows = sn.flows[:k+1]
			sn.flows[k].to, sn.flows[k].head, sn.flows[k].q = to, 0, sn.flows[k].q[:0]
		} else {
			sn.flows = append(sn.flows, flow{to: to})
		}
	}
	f := &sn.flows[k]
	if len(f.q) == cap(f.q) && int(f.head) >= len(f.q)/2 {
		// Full, and at least half of it already sent: move the rest to the
		// front rather than grow (a queue that never empties would grow
		// for ever).
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	f.q = append(f.q, queued{msg: msg, at: s.now})
	if !sn.txPending {
		sn.txPending = true
		s.push(event{at: max(s.now, sn.busy), kind: evUplink, to: from})
	}
}

// round sends one message from each of node i's queues, back to back, and
// comes back when they have gone.
func (s *Sim) round(i int32) {
	sn := &s.nodes[i]
	sn.txPending = false
	if sn.gone {
		sn.flows = nil
		return
	}
	k := 0
	for j := range sn.flows {
		f := &sn.flows[j]
		q := f.q[f.head]
		f.q[f.head] = queued{}
		if f.head++; int(f.head) == len(f.q) {
			f.q, f.head = f.q[:0], 0
		}
		s.transmit(i, f.to, q.msg, max(s.now, sn.busy), q.at)
		if len(f.q) > 0 {
			sn.flows[k], sn.flows[j] = sn.flows[j], sn.flows[k]
			k++
		}
	}
	sn.flows = sn.flows[:k]
	if k > 0 {
		sn.txPending = true
		s.push(event{at: sn.busy, kind: evUplink, to: i})
	}
}

// fifo keeps a link in order: no message arrives before one sent earlier
// on the same link that loss held back. It records a new hold when this
// message is itself held.
func (s *Sim) fifo(sn *node, to int32, at int64, lost bool) int64 {
	k := 0
	found := -1
	sn.holdMax = 0
	for _, h := range sn.holds {
		if h.until <= s.now {
			continue // every later message arrives after it anyway
		}
		if h.to == to {
			at = max(at, h.until)
			found = k
		}
		sn.holds[k] = h
		sn.holdMax = max(sn.holdMax, h.until)
		k++
	}
	sn.holds = sn.holds[:k]
	switch {
	case found >= 0:
		sn.holds[found].until = at
	case lost:
		sn.holds = append(sn.holds, hold{to: to, until: at})
	default:
		return at
	}
	sn.holdMax = max(sn.holdMax, at)
	return at
}

// lossProb is the probability that a message of size bytes loses at least
// one of its packets.
func (s *Sim) lossProb(size int) float64 {
	k := (size + s.cfg.PacketSize - 1) / s.cfg.PacketSize
	for len(s.lossP) <= k {
		s.lossP = append(s.lossP, 1-math.Pow(1-s.cfg.Loss, float64(len(s.lossP))))
	}
	return s.lossP[k]
}

// firstLost returns which packet (1, 2, …) of a message was the first
// lost, given the draw u that found it lost (u < lossProb(size)): u is
// uniform below that, and P(first loss ≤ k) is lossP[k].
func (s *Sim) firstLost(u float64) int {
	k := 1
	for k < len(s.lossP)-1 && u >= s.lossP[k] {
		k++
	}
	return k
}

// forge returns a message carrying a copy of c with a broken signature,
// one per sequence number.
func (s *Sim) forge(c *chunk.Chunk) *mesh.Message {
	k := c.Seq % uint64(len(s.forged))
	if f := s.forged[k]; f != nil && f.Seq == c.Seq {
		return s.forgedMsg[k]
	}
	f := &chunk.Chunk{Broadcast: c.Broadcast, Seq: c.Seq, Wallclock: c.Wallclock, Flags: c.Flags, Payload: c.Payload}
	f.Signature = append([]byte(nil), c.Signature...)
	f.Signature[0] ^= 0xff
	s.forged[k] = f
	s.forgedMsg[k] = &mesh.Message{Type: mesh.MsgChunk, Chunk: f}
	return s.forgedMsg[k]
}

func (s *Sim) isForged(c *chunk.Chunk) bool {
	f := s.forged[c.Seq%uint64(len(s.forged))]
	return f == c
}

// The broadcaster's stream, and what each node delivers of it.

package sim

import (
	"crypto/ed25519"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// publish cuts, signs and publishes the next chunk (and the init chunk
// first).
func (s *Sim) publish() {
	if s.now >= s.end {
		return
	}
	r := s.nodes[root].n
	now := s.time()
	if s.published == 0 {
		c := &chunk.Chunk{Broadcast: s.broadcast, Seq: 0, Wallclock: now.UnixNano(), Flags: chunk.FlagInit, Payload: make([]byte, initPayload)}
		c.Sign(s.key)
		s.origInit = c
		_ = r.Publish(now, c)
		s.m.streamBytes += uint64(c.Size())
		s.drain(root, nil)
	}
	s.published++
	seq := uint64(s.published)
	// Every media chunk carries the same zero payload: nothing reads its
	// bytes but the one signature check per chunk (verify.go), and the
	// nodes' windows, whose stale slots keep old chunks alive, would
	// otherwise hold a payload per chunk ever cut (375 MB for ten
	// minutes). The signature covers the sequence number and wallclock,
	// so each chunk's is still its own.
	if s.payload == nil {
		s.payload = make([]byte, s.chunkSize)
	}
	c := &chunk.Chunk{Broadcast: s.broadcast, Seq: seq, Wallclock: now.UnixNano(), Payload: s.payload}
	if every := int64(s.cfg.KeyframeInterval / s.cfg.ChunkInterval); every <= 1 || (s.published-1)%every == 0 {
		c.Flags |= chunk.FlagKeyframe
	}
	// Signed without chunk.Sign's cached encoding (as much again): the
	// simulator never puts a chunk's bytes on a wire, and Size is the
	// same without it.
	c.Signature = ed25519.Sign(s.key, c.SigningBytes())
	s.orig[seq%uint64(len(s.orig))] = c
	if err := r.Publish(now, c); err != nil {
		s.err = err
		return
	}
	s.m.streamBytes += uint64(c.Size())
	s.drain(root, nil)
}

// deliver records a chunk that viewer i's node delivered.
func (s *Sim) deliver(i int32, c *chunk.Chunk) {
	if i == root {
		return
	}
	if s.isForged(c) {
		s.m.forgedDelivered++
	}
	if c.IsInit() {
		return
	}
	now := s.now
	if s.deliverAt > now {
		now = s.deliverAt // cut-through: held whole when its last byte arrives
	}
	s.m.neededBytes += uint64(c.Size())
	if s.fragment != nil {
		s.fragment(i, c.Seq, now) // under stripes: a fragment, played once enough are in
		return
	}
	s.play(i, c.Seq, c.Wallclock-epoch.UnixNano(), now)
}

// play records that viewer i holds media chunk seq, cut at wall, from now
// on: latency, stretch, start-up and its playback record.
func (s *Sim) play(i int32, seq uint64, wall, now int64) {
	nd := &s.nodes[i]
	if nd.gone {
		return
	}
	lat := now - wall
	s.m.latencyAll.add(float64(lat) / 1e6)
	if wall >= nd.arrived {
		s.m.latency.add(float64(lat) / 1e6)
	}
	s.m.stretch.add(float64(lat) / float64(nd.direct))
	po := int64(s.cfg.Playout)
	if nd.play.first < 0 {
		// Playback starts here: this chunk (a keyframe, normally) and the
		// ones after it whose deadline is still ahead count.
		nd.play.first = now
		nd.play.lo = seq
		if d := now - po; d > 0 {
			ci := int64(s.cfg.ChunkInterval)
			nd.play.lo = max(nd.play.lo, uint64((d+ci-1)/ci+1))
		}
		s.m.join.AddDuration(time.Duration(now - nd.arrived))
	}
	onTime := now <= wall+po
	if s.cfg.Trace != nil && lat > int64(s.cfg.Playout)/3 {
		s.traceLate(i, seq, lat)
	}
	nd.play.note(seq, onTime)
	if onTime && nd.play.start == 0 && seq >= nd.play.lo {
		// The first chunk the player can show at its playout delay: the
		// picture starts here.
		nd.play.start = seq
		s.m.startup.AddDuration(time.Duration(now - nd.arrived))
	}
}

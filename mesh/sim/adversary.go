// Adversaries and mass failure: sybils, padders, killing a fraction of the
// viewers at once, and the broadcaster's beat that lets a starving viewer
// tell a withholding parent from a quiet broadcast.

package sim

import (
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// padField is the unknown field a padder appends to a chunk: past every
// field number chunk.proto uses.
const padField = 99

// scheduleAdversaries draws the sybils' arrival times (uniform over the
// arrival window, like viewers') and schedules the kill and the beats.
func (s *Sim) scheduleAdversaries() {
	cfg := &s.cfg
	if cfg.Sybils > 0 {
		s.sybilTimes = make([]int64, cfg.Sybils)
		for i := range s.sybilTimes {
			s.sybilTimes[i] = s.rng.Int64N(int64(cfg.ArrivalWindow) + 1)
		}
		slices.Sort(s.sybilTimes)
		s.push(event{at: s.sybilTimes[0], kind: evSybil})
	}
	if cfg.KillFraction > 0 && cfg.KillAt > 0 {
		s.push(event{at: int64(cfg.KillAt), kind: evKill})
	}
	if cfg.BeatInterval > 0 {
		s.push(event{at: int64(cfg.BeatInterval), kind: evBeat})
	}
	if cfg.Padders > 0 {
		s.padded = make([]*mesh.Message, 64)
	}
}

// arriveSybil adds a sybil: a well-connected peer with as many slots as a
// viewer can have, which joins like a viewer (and is handed out by the
// directory once attached) but is no viewer: not present, never churned,
// its playback not counted.
func (s *Sim) arriveSybil() {
	i := len(s.nodes)
	k := len(s.cfg.Classes) - 1
	cls := s.cfg.Classes[k]
	if !s.addNode(i, k, s.cfg.MaxSlots, cls.MaxUpload) {
		return
	}
	s.nodes[i].sybil = true
	s.m.sybils++
	s.join(int32(i))
}

// lie is what a sybil sends instead of m, or nil for nothing: it claims all
// the capacity there is and the biggest subtree, answers pings with depth 0
// and a time from the future, never answers a receipt with its edge, and
// instead of each chunk sends a heartbeat (which says, truly, what it
// holds), so that its children stay.
func lie(m *mesh.Message) *mesh.Message {
	switch m.Type {
	case mesh.MsgChunk:
		return &mesh.Message{Type: mesh.MsgPath, Depth: 1, Seq: m.Chunk.Seq + 1}
	case mesh.MsgAttach, mesh.MsgStatus:
		x := *m
		x.Capacity, x.Free = math.MaxUint32, math.MaxUint32
		if m.Type == mesh.MsgStatus {
			x.Subtree = math.MaxUint32
		}
		return &x
	case mesh.MsgPong:
		x := *m
		x.Depth, x.Free, x.Seq = 0, math.MaxUint32, 0
		x.Time = m.Time + int64(3600e9)
		return &x
	case mesh.MsgEdge:
		return nil
	}
	return m
}

// pad returns a padder's copy of a chunk message: the chunk as decoded
// (chunk.Decode) from its canonical bytes followed by PadBytes of an
// unknown field, one copy per sequence number. What a receiver forwards of
// it is whatever the chunk package makes of such bytes, which the run
// measures (extra.pad_bytes_relayed).
func (s *Sim) pad(c *chunk.Chunk) *mesh.Message {
	k := c.Seq % uint64(len(s.padded))
	if m := s.padded[k]; m != nil && m.Chunk.Seq == c.Seq && m.Chunk.IsInit() == c.IsInit() {
		return m
	}
	b := append([]byte(nil), c.Bytes()...)
	b = protowire.AppendTag(b, padField, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, s.cfg.PadBytes))
	d, err := chunk.Decode(b)
	if err != nil {
		s.err = err
		return &mesh.Message{Type: mesh.MsgChunk, Chunk: c}
	}
	m := &mesh.Message{Type: mesh.MsgChunk, Chunk: d}
	m.Excess = len(b) - m.Size() // what the receiver's decoder would find
	s.padded[k] = m
	return m
}

// padOf returns how many bytes a padder's message carries beyond its
// chunk's canonical encoding: PadBytes and the field's tag and length.
func (s *Sim) padOf(m *mesh.Message) int {
	if s.padded == nil || m.Type != mesh.MsgChunk {
		return 0
	}
	if p := s.padded[m.Chunk.Seq%uint64(len(s.padded))]; p == m {
		return protowire.SizeTag(padField) + protowire.SizeBytes(s.cfg.PadBytes)
	}
	return 0
}

// killMany kills KillFraction of the viewers present, abruptly.
func (s *Sim) killMany() {
	top, below := s.topSubtrees()
	k := int(math.Round(s.cfg.KillFraction * float64(len(s.present))))
	s.m.killed = uint64(k)
	for range k {
		if len(s.present) == 0 {
			return
		}
		i := s.present[s.pop.IntN(len(s.present))]
		s.depart(i, false)
	}
	// What the kill took at the top: over twenty seeds of the 10,000-viewer
	// kill, the viewers stalled over 2 s were almost all in the runs where
	// it took one of the broadcaster's children (BENCHMARKS.md, "Session
	// 20").
	for j, c := range top {
		if s.nodes[c].gone {
			s.m.killedTop++
			s.m.killedTopBelow += uint64(below[j])
		}
	}
	// Stalls from here on are the failure's: the first chunk whose
	// deadline is after now.
	hi, _ := s.dueUpTo(s.now)
	s.m.killSeq = hi + 1
	for _, i := range s.present {
		s.nodes[i].play.split = s.m.killSeq
	}
}

// topSubtrees returns the broadcaster's children and how many viewers
// each has below it.
func (s *Sim) topSubtrees() (top []int32, below []int) {
	idx := make(map[int32]int)
	for _, i := range s.present {
		if s.nodes[i].parent == root {
			idx[i] = len(top)
			top = append(top, i)
			below = append(below, 0)
		}
	}
	s.newWalk()
	for _, i := range s.present {
		j := i
		for d := s.depthOf(i); d > 1; d-- {
			j = s.nodes[j].parent
		}
		if k, ok := idx[j]; ok && j != i {
			below[k]++
		}
	}
	return top, below
}

// beat gives every viewer the live edge as the broadcaster's chat beat
// would: the chunk it cut BeatLag ago (a beat takes some time to spread).
func (s *Sim) beat() {
	lag := int64(s.cfg.BeatLag / s.cfg.ChunkInterval)
	edge := s.published - lag
	if edge <= 0 {
		return
	}
	now := s.time()
	for _, i := range s.present {
		nd := &s.nodes[i]
		nd.n.LiveEdge(now, uint64(edge)+1)
		s.setWake(i)
	}
}

// excess is how many bytes an honest node's chunk message of size bytes
// carries beyond the canonical encoding of the chunk the broadcaster
// published: what it would relay of a padder's pad.
func (s *Sim) excess(m *mesh.Message, size int) int {
	o := s.orig[m.Chunk.Seq%uint64(len(s.orig))]
	if m.Chunk.IsInit() {
		o = s.origInit
	}
	if o == nil || o == m.Chunk || o.Seq != m.Chunk.Seq {
		return 0
	}
	return max(size-(&mesh.Message{Type: mesh.MsgChunk, Chunk: o}).Size(), 0)
}

// noteWithheld times a viewer's stay under sybils: from its attaching
// under one (withholding starts there) to its attaching under an honest
// parent.
func (s *Sim) noteWithheld(i, parent int32) {
	nd := &s.nodes[i]
	switch {
	case nd.sybil || parent < 0:
	case s.nodes[parent].sybil:
		if nd.withheldAt < 0 {
			nd.withheldAt = s.now
		}
	case nd.withheldAt >= 0:
		s.m.rejoinWithheld.AddDuration(time.Duration(s.now - nd.withheldAt))
		nd.withheldAt = -1
	}
}

// adversaryExtra adds the honest viewers' longest stalls to a report and,
// when the run had adversaries or a kill, what they did.
func (s *Sim) adversaryExtra(r *report.Report, honest, adv tally, stalls *report.Sample, stalled int) {
	r.Extra["stall_max_ms"] = stalls.Q(1)
	r.Extra["stall_p99_ms"] = stalls.Q(0.99)
	r.Extra["stalled_viewers"] = float64(stalled)
	if w := s.m.worst; w.chunks > 0 {
		// Whose it was and when it began (media chunk q is due at
		// (q-1)·ChunkInterval + Playout): where to point --trace.
		r.Extra["stall_worst_node"] = float64(w.node)
		r.Extra["stall_worst_at_s"] = (float64(w.from-1)*float64(s.cfg.ChunkInterval) + float64(s.cfg.Playout)) / 1e9
	}
	if s.cfg.Sybils == 0 && s.cfg.Padders == 0 && s.cfg.KillFraction == 0 {
		return
	}
	all := honest
	all.add(adv)
	m := &s.m
	r.Extra["continuity_all"] = report.Ratio(float64(all.onTime), float64(all.due))
	r.Extra["sybils"] = float64(m.sybils)
	r.Extra["padders"] = float64(s.cfg.Padders)
	r.Extra["killed"] = float64(m.killed)
	if s.cfg.KillAt > 0 && s.cfg.KillFraction > 0 {
		r.Extra["killed_top"] = float64(m.killedTop)
		r.Extra["killed_top_below"] = float64(m.killedTopBelow)
	}
	r.Extra["pad_bytes_sent"] = float64(m.padSent)
	r.Extra["pad_bytes_relayed"] = float64(m.padRelayed)
	r.Extra["withheld_rejoins"] = float64(m.rejoinWithheld.Len())
	if m.killSeq > 0 {
		w := m.worstAfter
		r.Extra["stall_after_kill_max_ms"] = s.stallMs(tally{stall: w.chunks})
		r.Extra["stalled_after_kill"] = float64(m.stalledAfter)
		r.Extra["stalled_over_2s_after_kill"] = float64(m.longAfter)
		if w.chunks > 0 {
			r.Extra["stall_after_kill_node"] = float64(w.node)
			r.Extra["stall_after_kill_at_s"] = (float64(w.from-1)*float64(s.cfg.ChunkInterval) + float64(s.cfg.Playout)) / 1e9
		}
	}
}

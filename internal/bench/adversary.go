// Adversaries among the viewers (sybils, padders), the mass kill, the
// soak's samples of the process, and what the report says of them: the
// honest viewers' longest stalls, their rejoins after a sybil withheld,
// what viewers that stayed lost.

package bench

import (
	"context"
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// role is what a viewer is.
type role uint8

const (
	honest role = iota
	sybil       // claims all the capacity there is, lies in pongs, forwards no chunk
	padder      // pads every chunk frame it sends
)

// sybilSlots is how many children a sybil's node takes (it claims more).
const sybilSlots = 16

// adversaries is which peers are sybils (for the rejoin measure) and the
// pad bytes the padders sent.
type adversaries struct {
	sybils     map[mesh.PeerID]bool // under run.mu
	padSent    uint64
	padRelayed uint64 // bytes honest nodes sent beyond the chunk's frame as published
	mu         sync.Mutex
}

// relayedPad counts what an honest node's chunk frame of size bytes carries
// beyond the frame the broadcaster published: pad it relayed.
func (r *run) relayedPad(seq uint64, size int) {
	r.mu.Lock()
	var canon int
	if seq < uint64(len(r.frame)) {
		canon = r.frame[seq]
	}
	r.mu.Unlock()
	if canon > 0 && size > canon {
		r.adv.mu.Lock()
		r.adv.padRelayed += uint64(size - canon)
		r.adv.mu.Unlock()
	}
}

// roleOf spreads the sybils and the padders evenly over the first
// arrivals (viewers 1..n); later arrivals (churn) are honest.
func (r *run) roleOf(idx, n int) role {
	at := func(k int, offset float64) bool {
		for j := range k {
			if idx == 1+int((float64(j)+offset)*float64(n)/float64(k))%n {
				return true
			}
		}
		return false
	}
	switch {
	case idx > n:
		return honest
	case r.cfg.Sybils > 0 && at(r.cfg.Sybils, 0.5):
		return sybil
	case r.cfg.Padders > 0 && at(r.cfg.Padders, 0.25):
		return padder
	}
	return honest
}

// sendFilter is the p2p.SendFilter that makes a real node an adversary of
// its role, or nil for an honest one.
func (r *run) sendFilter(v *viewer) p2p.SendFilter {
	switch v.role {
	case sybil:
		return func(_ mesh.PeerID, m *mesh.Message) (*mesh.Message, []byte) { return lie(m), nil }
	case padder:
		return func(_ mesh.PeerID, m *mesh.Message) (*mesh.Message, []byte) {
			if m.Type != mesh.MsgChunk {
				return m, nil
			}
			f := padFrame(m, r.cfg.PadBytes)
			r.adv.mu.Lock()
			r.adv.padSent += uint64(len(f) - m.Size())
			r.adv.mu.Unlock()
			return m, f
		}
	}
	return nil
}

// lie is what a sybil sends instead of m, or nil for nothing: it claims all
// the capacity there is and the biggest subtree, answers pings with depth 0
// and a time from the future, never answers a receipt with its edge, and
// instead of each chunk sends a heartbeat (which says, truly, what it
// holds), so that its children stay. (mesh/sim's sybils do the same.)
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
		x.Time = m.Time + int64(time.Hour)
		return &x
	case mesh.MsgEdge:
		return nil
	}
	return m
}

// padFrame is a chunk message's frame with pad bytes of an unknown field
// (99) appended to the chunk: the signature still verifies.
func padFrame(m *mesh.Message, pad int) []byte {
	c := append([]byte(nil), m.Chunk.Bytes()...)
	c = protowire.AppendTag(c, 99, protowire.BytesType)
	c = protowire.AppendBytes(c, make([]byte, pad))
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.VarintType)
	msg = protowire.AppendVarint(msg, uint64(mesh.MsgChunk))
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendBytes(msg, c)
	return append(binary.AppendUvarint(nil, uint64(len(msg))), msg...)
}

// massKill kills KillFraction of the honest viewers present at KillAt,
// all at once.
func (r *run) massKill(ctx context.Context, sw swarm) {
	if r.cfg.KillFraction <= 0 || !sleepUntil(ctx, r.t0.Add(r.cfg.KillAt)) {
		return
	}
	r.mu.Lock()
	n := 0
	for _, v := range r.present {
		if v.role == honest {
			n++
		}
	}
	r.mu.Unlock()
	k := int(math.Round(r.cfg.KillFraction * float64(n)))
	for range k {
		r.killOne(sw)
	}
	r.mu.Lock()
	r.killed = k
	r.mu.Unlock()
	r.progress("%s: killed %d of %d viewers at once at %v", r.cfg.Mode, k, n, r.cfg.KillAt)
}

// noteParent times a viewer's stay under sybils (withholding starts when
// it attaches to one); under r.mu, with v.mu held by the caller.
func (r *run) noteParent(v *viewer, parent mesh.PeerID, now time.Time) {
	switch {
	case r.adv.sybils[parent]:
		if v.withheldAt.IsZero() {
			v.withheldAt = now
		}
	case !v.withheldAt.IsZero():
		r.rejoinW.AddDuration(now.Sub(v.withheldAt))
		v.withheldAt = time.Time{}
	}
}

// soakSamples are the process's RSS and goroutines, sampled every
// Config.Sample.
type soakSamples struct {
	mu  sync.Mutex
	at  []time.Duration // since the start
	rss []uint64
	gor []int
}

func (r *run) sampleLoop(ctx context.Context) {
	if r.cfg.Sample <= 0 {
		return
	}
	tk := time.NewTicker(r.cfg.Sample)
	defer tk.Stop()
	for {
		r.takeSample()
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

func (r *run) takeSample() {
	r.soak.mu.Lock()
	defer r.soak.mu.Unlock()
	r.soak.at = append(r.soak.at, time.Since(r.t0))
	r.soak.rss = append(r.soak.rss, rss())
	r.soak.gor = append(r.soak.gor, runtime.NumGoroutine())
}

// soakReport puts the samples at the start (the first once the arrivals
// are done), the middle and the end into the report, with the most.
func (r *run) soakReport(rep *report.Report) {
	s := &r.soak
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.at) == 0 {
		return
	}
	first := 0
	for first < len(s.at)-1 && s.at[first] < r.cfg.ArrivalWindow {
		first++
	}
	mid := first
	for mid < len(s.at)-1 && s.at[mid] < (s.at[first]+s.at[len(s.at)-1])/2 {
		mid++
	}
	last := len(s.at) - 1
	var most uint64
	maxG := 0
	for i := first; i <= last; i++ {
		most, maxG = max(most, s.rss[i]), max(maxG, s.gor[i])
	}
	mb := func(b uint64) float64 { return round4(float64(b) / (1 << 20)) }
	rep.Extra["soak_samples"] = float64(last - first + 1)
	rep.Extra["rss_start_mb"], rep.Extra["rss_mid_mb"], rep.Extra["rss_end_mb"], rep.Extra["rss_max_mb"] = mb(s.rss[first]), mb(s.rss[mid]), mb(s.rss[last]), mb(most)
	rep.Extra["goroutines_start"], rep.Extra["goroutines_mid"], rep.Extra["goroutines_end"], rep.Extra["goroutines_max"] = float64(s.gor[first]), float64(s.gor[mid]), float64(s.gor[last]), float64(maxG)
	rep.Extra["soak_start_s"], rep.Extra["soak_mid_s"], rep.Extra["soak_end_s"] = round4(s.at[first].Seconds()), round4(s.at[mid].Seconds()), round4(s.at[last].Seconds())
}

// stallOf is a viewer's longest stall: the longest run of consecutive due
// chunks not held by their deadline, in chunks, from the first chunk held
// by its deadline (the first the player shows at its playout delay; what
// came before it, already late, is start-up, as in the simulator). Under
// v.mu.
func (r *run) stallOf(v *viewer, stop time.Time) int {
	po := int64(r.cfg.Playout)
	run, most, started := 0, 0, false
	for seq := int(v.firstSeq); seq < r.published; seq++ {
		deadline := r.wallclock[seq] + po
		if deadline < v.first.UnixNano() || deadline > stop.UnixNano() {
			continue
		}
		if at := v.recvAt[seq]; at != 0 && at <= deadline {
			run, started = 0, true
			continue
		}
		if started {
			run++
			most = max(most, run)
		}
	}
	return most
}

// adversaryReport adds the honest viewers' longest stalls, what the viewers
// that stayed the whole run lost, the rejoins after a sybil withheld, the
// adversaries and the soak's samples. Under r.mu.
func (r *run) adversaryReport(rep *report.Report, end time.Time) {
	var stalls report.Sample
	stalled, stayed, stayedMissed := 0, 0, 0
	for _, v := range r.viewers {
		if v.role != honest {
			continue
		}
		v.mu.Lock()
		stop := end
		if v.dead {
			stop = v.end
		}
		if !v.first.IsZero() {
			s := r.stallOf(v, stop)
			stalls.AddDuration(time.Duration(s) * r.cfg.ChunkInterval)
			if s > 0 {
				stalled++
			}
			if !v.dead {
				stayed++
				stayedMissed += r.missedBy(v, stop)
			}
		}
		v.mu.Unlock()
	}
	rep.Extra["stall_max_ms"], rep.Extra["stall_p99_ms"] = stalls.Q(1), stalls.Q(0.99)
	rep.Extra["stalled_viewers"] = float64(stalled)
	rep.Extra["stayed_viewers"], rep.Extra["stayed_missed"] = float64(stayed), float64(stayedMissed)
	rep.WithheldRejoinMs = r.rejoinW.QuantilesOrNil()
	if r.cfg.Sybils > 0 || r.cfg.Padders > 0 || r.cfg.KillFraction > 0 {
		rep.Extra["sybils"], rep.Extra["padders"] = float64(r.cfg.Sybils), float64(r.cfg.Padders)
		rep.Extra["killed"] = float64(r.killed)
		rep.Extra["withheld_rejoins"] = float64(r.rejoinW.Len())
		r.adv.mu.Lock()
		rep.Extra["pad_bytes_sent"] = float64(r.adv.padSent)
		rep.Extra["pad_bytes_relayed"] = float64(r.adv.padRelayed)
		r.adv.mu.Unlock()
	}
	r.soakReport(rep)
}

// missedBy counts the chunks due to a viewer (from its first on, deadline
// before stop) that it never got. Under v.mu.
func (r *run) missedBy(v *viewer, stop time.Time) int {
	po := int64(r.cfg.Playout)
	k := 0
	for seq := int(v.firstSeq); seq < r.published; seq++ {
		if d := r.wallclock[seq] + po; d >= v.first.UnixNano() && d <= stop.UnixNano() && v.recvAt[seq] == 0 {
			k++
		}
	}
	return k
}

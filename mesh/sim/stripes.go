// Stripes: the stream split over several trees, SplitStream-wise.
//
// Each chunk is cut into Stripes fragments plus Parity parity fragments
// (one: their XOR), and each fragment index has a tree of its own: a Sim of its own
// here, whose machines carry a stream of Bitrate/Stripes in chunks of a
// Stripes-th of the size, at the same cadence. The trees share their
// viewers draw for draw (Sim.pop): the same places, classes, arrivals,
// departures and kill, so viewer i of one tree is viewer i of every other.
// A relaying viewer is interior in one tree only, the relays taking the
// trees in turn, with its whole upload there (so Stripes times the slots a
// whole-stream tree would give it) and no slot in the others. The
// broadcaster's upload, the same as for one tree, is shared among the
// trees by slots.
//
// A viewer holds a chunk once any Stripes of its Stripes+Parity fragments are
// in: one dead relay costs the viewers below it one fragment a chunk, which
// the parity makes up, and a viewer stalls only while Parity+1 of its
// trees fail it at once. The first tree's Sim keeps the players (its nodes'
// playback records and the latency, start-up and stall figures); every
// tree hands it the fragments its viewers deliver.
//
// The trees run in one event loop, the earliest event of any tree first,
// so a chunk is held at the time its Stripes-th fragment arrived.
//
// What the model leaves out: the trees do not share an uplink (a viewer's
// control messages in the trees where it is a leaf do not queue behind
// the fragments it relays in its own; they are a few per cent of its
// bytes), and the broadcaster's trees each have the upload of their slots.

package sim

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// maxStripes bounds Config.Stripes.
const maxStripes = 16

// fragWindow is how many recent chunks a viewer's fragment counts cover.
const fragWindow = 64

// fragCount is how many fragments of chunk seq a viewer holds.
type fragCount struct {
	seq uint32
	n   uint8
}

// striped is a run of Stripes+Parity trees.
type striped struct {
	cfg   Config
	trees []*Sim
	// counts: viewer i's fragments of chunk seq at [i*fragWindow +
	// seq%fragWindow].
	counts []fragCount
}

func newStriped(cfg Config) (*striped, error) {
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k, trees := cfg.Stripes, cfg.Stripes+cfg.Parity
	st := &striped{cfg: cfg}
	// The broadcaster's upload, as for one tree, in slots of a stripe,
	// dealt out to the trees.
	total := mesh.SlotsFor(int64(float64(cfg.SourceSlots)*float64(cfg.Bitrate)*cfg.Headroom), cfg.Bitrate/int64(k), cfg.Headroom)
	for t := range trees {
		c := cfg
		c.stripe = t
		c.Bitrate = cfg.Bitrate / int64(k)
		c.MaxSlots = cfg.MaxSlots * k
		c.SourceSlots = max(1, total/trees+b2i(t < total%trees))
		c.Progress = nil
		s, err := New(c)
		if err != nil {
			return nil, err
		}
		s.fragment = st.fragment
		st.trees = append(st.trees, s)
	}
	return st, nil
}

// fragment counts a fragment of chunk seq viewer i delivered at; the
// Stripes-th is the chunk.
func (st *striped) fragment(i int32, seq uint64, at int64) {
	need := st.cfg.Stripes
	for len(st.counts) < (int(i)+1)*fragWindow {
		st.counts = append(st.counts, make([]fragCount, fragWindow)...)
	}
	f := &st.counts[int(i)*fragWindow+int(seq%fragWindow)]
	switch {
	case uint64(f.seq) > seq:
		return // a straggler from a window ago
	case uint64(f.seq) < seq:
		*f = fragCount{seq: uint32(seq)}
	}
	f.n++
	if int(f.n) == need {
		p := st.trees[0]
		if int(i) >= len(p.nodes) {
			// Cannot happen while the trees draw their viewers alike.
			p.err = fmt.Errorf("sim: stripes: viewer %d is not in the first tree: the trees' viewers diverged", i)
			return
		}
		p.play(i, seq, int64(seq-1)*int64(p.cfg.ChunkInterval), at)
	}
}

// runUntil runs every tree's events up to virtual time t, earliest first
// (ties: the lower tree first).
func (st *striped) runUntil(ctx context.Context, t time.Duration) error {
	until := min(int64(t), st.trees[0].end)
	var n uint64
	for {
		var next *Sim
		at := int64(math.MaxInt64)
		for _, s := range st.trees {
			if s.q.Len() > 0 && s.q.top().at < at {
				next, at = s, s.q.top().at
			}
		}
		if next == nil || at > until {
			break
		}
		ev := next.q.pop()
		next.now = ev.at
		next.handle(&ev)
		next.events++
		if err := cmp.Or(next.err, st.trees[0].err); err != nil {
			return err // the first tree's: a fragment another tree delivered
		}
		if n++; n&0x3fff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	for _, s := range st.trees {
		s.now = max(s.now, until)
	}
	return nil
}

// report is the first tree's report, whose players are the run's, with
// what belongs to all the trees put together: the stream's bitrate, the
// broadcaster's upload over the whole stream, the deepest tree, and each
// tree's own depth and source upload in Extra.
func (st *striped) report() *report.Report {
	p := st.trees[0]
	r := p.Report()
	r.BitrateBps = st.cfg.Bitrate
	var srcSent, stream, chunkB, ctrlB, dup, need float64
	killedTop, killedBelow := 0.0, 0.0
	for t, s := range st.trees {
		var tr *report.Report
		if t == 0 {
			tr = r
		} else {
			tr = s.Report()
		}
		name := "stripe" + strconv.Itoa(t) + "_"
		r.Extra[name+"max_depth"] = float64(tr.MaxDepth)
		r.Extra[name+"max_depth_settled"] = tr.Extra["max_depth_settled"]
		r.Extra[name+"source_slots"] = float64(s.cfg.SourceSlots)
		r.Extra[name+"source_upload_ratio"] = tr.SourceUploadRatio
		r.Extra[name+"rejoin_p99_ms"] = 0
		if tr.RejoinMs != nil {
			r.Extra[name+"rejoin_p99_ms"] = tr.RejoinMs.P99
		}
		killedTop += tr.Extra["killed_top"]
		killedBelow += tr.Extra["killed_top_below"]
		r.MaxDepth = max(r.MaxDepth, tr.MaxDepth)
		srcSent += float64(s.nodes[root].chunkSent)
		if t < st.cfg.Stripes {
			stream += float64(s.m.streamBytes)
		}
		chunkB += float64(s.m.chunkBytes)
		ctrlB += float64(s.m.ctrlBytes)
		dup += float64(s.m.dupBytes)
		need += float64(s.m.neededBytes)
	}
	r.SourceUploadRatio = report.Ratio(srcSent, stream)
	r.OverheadRatio = report.Ratio(ctrlB, chunkB)
	r.DuplicateRatio = report.Ratio(dup, need)
	r.Extra["stripes"] = float64(st.cfg.Stripes)
	r.Extra["parity"] = float64(st.cfg.Parity)
	if _, ok := r.Extra["killed_top"]; ok {
		// Summed over the trees: the broadcaster's children the kill took
		// in any tree.
		r.Extra["killed_top"] = killedTop
		r.Extra["killed_top_below"] = killedBelow
	}
	return r
}

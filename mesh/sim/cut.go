// Cut-through forwarding (Config.Forward = ForwardCut) and the per-hop
// breakdown of a chunk's delay.
//
// Under ForwardStore (the default) a chunk message arrives, and its
// receiver Steps, when its last byte has arrived: each hop adds the whole
// chunk's serialisation at the sender. Under ForwardCut the chunk travels
// in fragments of Config.Fragment bytes, each checked on arrival against a
// hash committed in the signed header (docs/ARCHITECTURE.md, "Cut-through
// forwarding"), so a relay may pass a fragment on as soon as it has it. The
// simulator keeps one event per message and computes both ends of it:
//
//   - head: when the first fragment has arrived, i.e. the copy started
//     leaving at start and its first fragment took Fragment × 8 / upload.
//     The receiver Steps then (it has verified bytes to forward).
//   - tail: when the last byte has arrived. The copy cannot finish leaving
//     before the sender itself held the chunk's last fragment (its own
//     tail) plus one fragment's serialisation, and the last fragments of
//     the copies of one chunk to several children leave one after
//     another. The delivery (latency, playback) is counted at the tail.
//
// The uplink is busy for the copy's bytes only (start + size×8/upload):
// when the copy is held back by its input, other copies use the gaps, as
// the interleaved fragments of parallel streams would. A lost packet or a
// hold on the link delays head and tail alike.
package sim

import (
	"math"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// Forward is how a relay passes a chunk on.
type Forward uint8

const (
	// ForwardStore passes a chunk on once all of it has arrived.
	ForwardStore Forward = iota
	// ForwardCut passes each fragment on as soon as it has arrived and
	// verified.
	ForwardCut
)

func (f Forward) String() string {
	if f == ForwardCut {
		return "cut"
	}
	return "store"
}

// DefaultFragment is the fragment size of ForwardCut: 8 KiB, eight
// fragments to a 62.5 KB chunk of 2.5 Mb/s in 200 ms. At 10k viewers it
// gave a latency p99 of 673 and 722 ms (seeds 1, 2) where 16 KiB gave 779
// and 794, 32 KiB 754 (seed 1) and 4 KiB 685 (seed 1): the first fragment
// out sooner, and a lost packet less often in it.
const DefaultFragment = 8 << 10

// cutRing is how many recent chunks each node remembers the tail of.
const cutRing = 8

// cutRec is when one node held the whole of one chunk, and when the last
// of its input-bound copies of it finished leaving.
type cutRec struct {
	c    *chunk.Chunk
	tail int64
	last int64
	j, m int32 // the current batch of copies: j of m sent (cutTimes)
}

// cutOf returns node i's record slot for chunk c (nil: never recorded,
// or overwritten: the chunk is whole, as at the broadcaster).
func (s *Sim) cutOf(i int32, c *chunk.Chunk) *cutRec {
	k := int(i)*cutRing + int(c.Seq%cutRing)
	if k >= len(s.cut) || s.cut[k].c != c {
		return nil
	}
	return &s.cut[k]
}

// cutArrive records that node i is taking chunk c whose tail arrives at
// tail; it returns the slot's previous content and whether it replaced
// it, for cutUndo when the node did not take the chunk after all.
func (s *Sim) cutArrive(i int32, c *chunk.Chunk, tail int64) (old cutRec, replaced bool) {
	k := int(i)*cutRing + int(c.Seq%cutRing)
	if k >= len(s.cut) {
		s.cut = append(s.cut, make([]cutRec, len(s.nodes)*cutRing-len(s.cut))...)
	}
	if s.cut[k].c == c {
		return cutRec{}, false // the copy it has, came first
	}
	old = s.cut[k]
	s.cut[k] = cutRec{c: c, tail: tail}
	return old, true
}

func (s *Sim) cutUndo(i int32, c *chunk.Chunk, old cutRec) {
	s.cut[int(i)*cutRing+int(c.Seq%cutRing)] = old
}

// cutTimes returns, for a chunk message of size bytes leaving node from's
// uplink at start with its bytes taking ser, when its last byte leaves
// (end) and when its first fragment has left (headLeft).
//
// The copies of one chunk that a relay has to send when the first of them
// starts (queued for other children, or produced by the same step) form a
// batch, sent a fragment each in turn: the fair uplink's rounds (one
// message per peer) at the grain of the wire's frames, which are
// fragments now, as parallel streams to the children share the link.
// Copy j (1…m) of a batch starting at t0 has its head out at t0 + j·f and
// its last byte at t0 + m·ser − (m − j)·f, i.e. its place in the uplink's
// order (start + ser) plus (m − j)·(ser − f) for the later copies' rests
// sent in between. Messages to other peers between two copies shift both
// by their own time.
func (s *Sim) cutTimes(from int32, msg *mesh.Message, size int, start, ser int64) (end, headLeft int64) {
	end = start + ser
	if s.cfg.Forward != ForwardCut || msg.Type != mesh.MsgChunk || size <= s.cfg.Fragment {
		return end, end
	}
	frag := int64(float64(s.cfg.Fragment) * s.nodes[from].nsPerByte)
	r := s.cutOf(from, msg.Chunk)
	if r == nil {
		// The broadcaster's own chunk, or one held longer than the ring:
		// whole here. Its record only keeps the batch.
		s.cutArrive(from, msg.Chunk, math.MinInt64/2)
		r = s.cutOf(from, msg.Chunk)
	}
	if r.j >= r.m {
		r.j, r.m = 0, int32(1+s.queuedCopies(from, msg.Chunk))
	}
	r.j++
	j, m := int64(r.j), int64(r.m)
	headLeft = start + frag - (j-1)*(ser-frag)
	end += (m - j) * (ser - frag)
	if r.tail+frag > end || r.last+frag > end {
		// Bound by its input: the last fragment goes on once it is in,
		// after the last fragments of the copies before it.
		end = max(end, r.tail+frag, r.last+frag)
	}
	r.last = max(r.last, end)
	return end, headLeft
}

// queuedCopies counts the messages carrying chunk c that node i has yet to
// send: in its uplink's queues and later in the Ready being drained.
func (s *Sim) queuedCopies(i int32, c *chunk.Chunk) int {
	n := 0
	for _, f := range s.nodes[i].flows {
		for _, q := range f.q[f.head:] { // before head: sent
			if q.msg.Type == mesh.MsgChunk && q.msg.Chunk == c {
				n++
			}
		}
	}
	if s.draining == i {
		for _, e := range s.drainRest {
			if e.Msg.Type == mesh.MsgChunk && e.Msg.Chunk == c {
				n++
			}
		}
	}
	return n
}

// hops is the per-hop breakdown of the live chunks' delay, over every
// media chunk message sent: the wait in the uplink's queue, the time on
// the uplink (serialisation; under ForwardCut with any wait for input),
// and propagation.
type hops struct {
	wait, ser, prop *hist
	sum             [3]float64 // ms
}

func (h *hops) init() {
	h.wait = newHist(0.1, 50_000) // ms, 0.1 ms up to 5 s
	h.ser = newHist(0.1, 50_000)
	h.prop = newHist(0.1, 5_000)
}

func (h *hops) add(wait, ser, prop int64) {
	for k, v := range [3]int64{wait, ser, prop} {
		ms := float64(v) / 1e6
		h.sum[k] += ms
		[3]*hist{h.wait, h.ser, h.prop}[k].add(ms)
	}
}

func (h *hops) extra(x map[string]float64) {
	for k, name := range [3]string{"hop_wait", "hop_uplink", "hop_prop"} {
		g := [3]*hist{h.wait, h.ser, h.prop}[k]
		x[name+"_p50_ms"] = g.q(0.5)
		x[name+"_p99_ms"] = g.q(0.99)
		x[name+"_mean_ms"] = round4(h.sum[k] / float64(max(g.n, 1)))
	}
}

// gapUS is the head-to-tail gap of a message in whole microseconds,
// rounded up (so the tail is never early), as the event carries it.
func gapUS(head, tail int64) uint32 {
	if tail <= head {
		return 0
	}
	return uint32(min((tail-head+999)/1000, math.MaxUint32))
}

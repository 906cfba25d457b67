package inorder

import (
	"bytes"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// Config bounds how long and how much a Queue waits for a missing chunk.
type Config struct {
	// MaxWait is how long the oldest chunk waiting behind a gap may wait
	// before the gap is given up (default 2 s).
	MaxWait time.Duration
	// MaxPending bounds the chunks held behind a gap (default 256).
	MaxPending int
}

// Item is one media chunk released in order.
type Item struct {
	Chunk *chunk.Chunk // the media chunk; nil only for an end marker without payload
	// Init is the init segment the chunk was cut for (the latest init chunk
	// whose Seq is not after the chunk's, taking effect at a keyframe).
	Init []byte
	// NewInit is set on the first item and when Init changed: a decoder
	// must be (re)configured.
	NewInit bool
	// Gap is set when chunks before this one were given up: the media
	// timeline jumps here.
	Gap bool
	// End is set on the last item of the broadcast.
	End bool
}

type pending struct {
	c       *chunk.Chunk
	arrival time.Time
}

// Queue releases chunks in sequence. The zero value is not usable: use New.
type Queue struct {
	cfg     Config
	started bool
	ended   bool
	gap     bool   // the next release follows a given-up gap
	next    uint64 // next seq to release, once started
	floor   uint64 // before start: ignore chunks below this
	inits   map[uint64][]byte
	cur     []byte // init in force for released items
	pending map[uint64]pending
}

// New returns an empty Queue.
func New(cfg Config) *Queue {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	return &Queue{cfg: cfg, inits: map[uint64][]byte{}, pending: map[uint64]pending{}}
}

// Ended reports whether the end of the broadcast has been released.
func (q *Queue) Ended() bool { return q.ended }

// Next returns the sequence number the queue waits for, and whether it has
// started at all.
func (q *Queue) Next() (uint64, bool) { return q.next, q.started }

// Push takes one chunk and returns the items it releases, in order. A chunk
// already released, given up or held is ignored, as is everything after the
// end.
func (q *Queue) Push(now time.Time, c *chunk.Chunk) []Item {
	if q.ended || c == nil {
		return nil
	}
	if c.IsInit() {
		if old, ok := q.inits[c.Seq]; !ok || !bytes.Equal(old, c.Payload) {
			q.inits[c.Seq] = c.Payload
		}
		q.pruneInits()
		if !q.started {
			return q.Tick(now)
		}
		return nil
	}
	if (q.started && c.Seq < q.next) || (!q.started && c.Seq < q.floor) {
		return nil
	}
	if _, dup := q.pending[c.Seq]; dup {
		return nil
	}
	q.pending[c.Seq] = pending{c: c, arrival: now}
	return q.Tick(now)
}

// Tick releases what can be released at now, giving up a gap that has
// waited too long. Push calls it; call it also when no chunk arrives.
func (q *Queue) Tick(now time.Time) []Item {
	var out []Item
	for !q.ended {
		if !q.started && !q.start() {
			q.trim()
			return out
		}
		out = q.drain(out)
		if q.ended || len(q.pending) == 0 {
			return out
		}
		// q.next is missing and later chunks wait behind it.
		oldest := now
		for _, p := range q.pending {
			if p.arrival.Before(oldest) {
				oldest = p.arrival
			}
		}
		if now.Sub(oldest) < q.cfg.MaxWait && len(q.pending) <= q.cfg.MaxPending {
			return out
		}
		q.started, q.floor, q.gap = false, q.next+1, true
	}
	return out
}

// start picks the first keyframe at or after floor whose init is known.
func (q *Queue) start() bool {
	best, found := uint64(0), false
	for seq, p := range q.pending {
		if seq < q.floor {
			delete(q.pending, seq)
			continue
		}
		usable := (p.c.IsKeyframe() && q.initFor(seq) != nil) || p.c.Flags&chunk.FlagEnd != 0
		if usable && (!found || seq < best) {
			best, found = seq, true
		}
	}
	if !found {
		return false
	}
	for seq := range q.pending {
		if seq < best {
			delete(q.pending, seq)
		}
	}
	q.started, q.next = true, best
	return true
}

// trim keeps the chunks held before a start within MaxPending, dropping the
// oldest.
func (q *Queue) trim() {
	for len(q.pending) > q.cfg.MaxPending {
		low := uint64(0)
		first := true
		for seq := range q.pending {
			if first || seq < low {
				low, first = seq, false
			}
		}
		delete(q.pending, low)
		q.floor = low + 1
	}
}

func (q *Queue) drain(out []Item) []Item {
	for {
		p, ok := q.pending[q.next]
		if !ok {
			return out
		}
		delete(q.pending, q.next)
		q.next++
		c := p.c
		it := Item{Chunk: c, Gap: q.gap, End: c.Flags&chunk.FlagEnd != 0}
		q.gap = false
		if init := q.initFor(c.Seq); init != nil && (q.cur == nil || (c.IsKeyframe() && !bytes.Equal(init, q.cur))) {
			q.cur, it.NewInit = init, true
		}
		it.Init = q.cur
		if it.End && len(c.Payload) == 0 {
			it.Chunk = nil
		}
		out = append(out, it)
		if it.End {
			q.ended = true
			clear(q.pending)
			return out
		}
		q.pruneInits()
	}
}

// initFor returns the latest init whose Seq is not after seq.
func (q *Queue) initFor(seq uint64) []byte {
	var best []byte
	var bestSeq uint64
	for s, b := range q.inits {
		if s <= seq && (best == nil || s >= bestSeq) {
			best, bestSeq = b, s
		}
	}
	return best
}

// pruneInits forgets inits that can no longer apply: all but the latest at
// or before the next release, and at most 8 in all.
func (q *Queue) pruneInits() {
	if !q.started {
		for len(q.inits) > 8 {
			q.dropOldestInit()
		}
		return
	}
	var keep uint64
	found := false
	for s := range q.inits {
		if s <= q.next && (!found || s > keep) {
			keep, found = s, true
		}
	}
	for s := range q.inits {
		if found && s < keep {
			delete(q.inits, s)
		}
	}
	for len(q.inits) > 8 {
		q.dropOldestInit()
	}
}

func (q *Queue) dropOldestInit() {
	low, first := uint64(0), true
	for s := range q.inits {
		if first || s < low {
			low, first = s, false
		}
	}
	delete(q.inits, low)
}

package sim

// winBits is how many of the newest sequence numbers a playback record
// keeps bits for: enough to take back, at the end of a viewer's time, the
// chunks it counted whose deadline had not come yet (Playout ÷
// ChunkInterval of them, which Config.validate bounds).
const winBits = 256

// playback is a viewer's record of chunks, kept in counters and a small
// window of bits so that a delivery costs no allocation and touches no
// memory beyond the viewer's own struct.
//
// A chunk counts from the viewer's first chunk on: sequence numbers from
// lo = max(first seq received, first whose deadline is after the first
// receipt). Received and on-time counts cover every counted chunk; those
// whose deadline is after the viewer's end are taken back when it settles.
type playback struct {
	first    int64                // receipt of the first chunk; -1 before
	lo       uint64               // first sequence number that counts
	top      uint64               // highest sequence number received
	received uint64               // counted chunks received
	onTime   uint64               // counted chunks received by their deadline
	recv     [winBits / 64]uint64 // bit k: seq top-k received
	on       [winBits / 64]uint64 // bit k: seq top-k received on time

	// start is the first chunk held by its deadline, from which on
	// stalls count (0: none yet); see advance.
	start uint64

	// Stalls (advance): runs of consecutive counted chunks not held by
	// their deadline, up to checked, from start on.
	checked  uint64
	run      uint64
	maxRun   uint64
	maxStart uint64 // first sequence number of the longest run

	// With a kill (Config.KillAt): the longest run of chunks from split,
	// the first whose deadline came after the kill, on: what the failure
	// cost, apart from the arrival burst.
	split         uint64
	maxAfter      uint64
	maxAfterStart uint64
}

// advance counts the stalls up to hi, the last sequence number whose
// deadline has passed: a chunk not held by its deadline extends the
// current run, one held ends it. A stall is time without a picture after
// the picture started: the runs count from the first chunk held by its
// deadline (start), which is the first the player can show at its
// playout delay. The chunks a joiner gets before that, already late (its
// parent's backfill from a keyframe seconds old), never played: that time
// is its start-up (metrics' startup), not a stall. It must be called
// before the chunks it looks at leave the window (within winBits chunks
// of the newest).
func (p *playback) advance(hi uint64) {
	if p.first < 0 || p.start == 0 {
		p.checked = max(p.checked, hi)
		return
	}
	for q := max(p.checked+1, p.lo, p.start); q <= hi; q++ {
		onTime := false
		if q <= p.top {
			if k := p.top - q; k < winBits {
				onTime = p.on[k/64]&(1<<(k%64)) != 0
			} else {
				onTime = true // out of the window: cannot happen while advance keeps up
			}
		}
		if onTime {
			p.run = 0
		} else {
			p.run++
			if p.run > p.maxRun {
				p.maxRun, p.maxStart = p.run, q+1-p.run
			}
			if p.split > 0 && q >= p.split {
				if r := min(p.run, q+1-p.split); r > p.maxAfter {
					p.maxAfter, p.maxAfterStart = r, q+1-r
				}
			}
		}
	}
	p.checked = max(p.checked, hi)
}

// note records chunk seq received (on time or not).
func (p *playback) note(seq uint64, onTime bool) {
	if seq > p.top {
		shift(&p.recv, seq-p.top)
		shift(&p.on, seq-p.top)
		p.top = seq
	}
	if seq < p.lo {
		return
	}
	p.received++
	if onTime {
		p.onTime++
	}
	if k := p.top - seq; k < winBits {
		p.recv[k/64] |= 1 << (k % 64)
		if onTime {
			p.on[k/64] |= 1 << (k % 64)
		}
	}
}

// settle returns the counts for the chunks lo..hi: due, received, on time.
func (p *playback) settle(hi uint64) (due, received, onTime uint64) {
	if hi < p.lo {
		return 0, 0, 0
	}
	received, onTime = p.received, p.onTime
	// Take back the counted chunks beyond hi (deadline after the end).
	for q := max(hi+1, p.lo); q <= p.top; q++ {
		k := p.top - q
		if k >= winBits {
			continue // cannot happen while Playout/ChunkInterval < winBits
		}
		if p.recv[k/64]&(1<<(k%64)) != 0 {
			received--
		}
		if p.on[k/64]&(1<<(k%64)) != 0 {
			onTime--
		}
	}
	return hi - p.lo + 1, received, onTime
}

// shift moves every bit k of w to k+n, dropping what falls off.
func shift(w *[winBits / 64]uint64, n uint64) {
	if n >= winBits {
		*w = [winBits / 64]uint64{}
		return
	}
	ws, bs := int(n/64), n%64
	for i := len(w) - 1; i >= 0; i-- {
		var v uint64
		if src := i - ws; src >= 0 {
			v = w[src] << bs
			if bs > 0 && src > 0 {
				v |= w[src-1] >> (64 - bs)
			}
		}
		w[i] = v
	}
}

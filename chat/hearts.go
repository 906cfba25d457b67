package chat

import "time"

// Hearts are paced like presence (presence.go): the broadcaster's beats
// tell a node outside a tree how often to send its taps, scaled with the
// audience so that the topic carries about heartRate heart messages a
// second however many watch. A node in a tree sends none: its taps go up
// the tree (Config.Tap).
const (
	heartRate = 100
	minHeart  = time.Second
	maxHeart  = 30 * time.Second
	// ownTapsFor is how long this node's own taps are looked for in the
	// broadcaster's total (its pages floated them at once) before they are
	// given up on.
	ownTapsFor = 30 * time.Second
)

func heartInterval(audience int) time.Duration {
	return min(max(time.Duration(audience)*time.Second/heartRate, minHeart), maxHeart)
}

// maxMomentAhead bounds how far ahead of the clock that judges it a heart's
// moment may be (clocks differ by this much) before it is not believed.
const maxMomentAhead = 5 * time.Second

// Taps are taps made while their tapper watched the frame captured At (the
// broadcast's wallclock; zero: not said), for the tree (Config.Tap).
type Taps struct {
	N  int
	At time.Time
}

// maxTapBatches bounds the batches of taps the machine holds for the
// shell between two drains; more fold into the last.
const maxTapBatches = 64

// heart counts this node's taps, made while watching the frame captured at
// (zero: not said). With a tree (Config.Tap) they go up it with the mesh's
// statuses, by the second of their moment; without, over the topic,
// aggregated once per heart interval with the mean of their moments. A
// moment this node's clock finds in the future or further behind than the
// way they go can carry is dropped: the taps are then placed where they
// reach the broadcaster.
func (m *machine) heart(now time.Time, n int, at time.Time) {
	if n <= 0 {
		return
	}
	n = min(n, MaxHearts)
	m.ownTaps = min(m.ownTaps+uint64(n), 10*MaxHearts)
	m.ownTapsAt = now
	lag := maxStreamLag
	if m.cfg.Tap != nil {
		lag = maxTreeLag
	}
	if !at.IsZero() && (at.Sub(now) > maxMomentAhead || now.Sub(at) > lag) {
		at = time.Time{}
	}
	if m.cfg.Tap != nil {
		at = at.Truncate(time.Second)
		if k := len(m.rd.taps); k > 0 && (m.rd.taps[k-1].At.Equal(at) || k >= maxTapBatches) {
			m.rd.taps[k-1].N += n
			return
		}
		m.rd.taps = append(m.rd.taps, Taps{N: n, At: at})
		return
	}
	take := min(n, MaxHearts-m.pendingHearts)
	if take <= 0 {
		return
	}
	m.pendingHearts += take
	if !at.IsZero() {
		if m.pendingAtN == 0 {
			m.pendingAtBase = at
		}
		// Within maxStreamLag+maxMomentAhead of one another: the sum of
		// up to MaxHearts of them in ms is far inside an int64.
		m.pendingAtSum += int64(take) * at.Sub(m.pendingAtBase).Milliseconds()
		m.pendingAtN += take
	}
}

// riseTo takes a new heart total and floats its rise, less this node's own
// taps (its pages floated those when they were tapped).
func (m *machine) riseTo(now time.Time, total uint64) {
	if total <= m.hearts {
		return
	}
	rise := total - m.hearts
	m.hearts = total
	if m.ownTaps > 0 && now.Sub(m.ownTapsAt) > ownTapsFor {
		m.ownTaps = 0 // lost on the way (a relay died): stop looking
	}
	own := min(rise, m.ownTaps)
	m.ownTaps -= own
	if rise > own {
		m.emit(&Hearts{Count: int(min(rise-own, 1<<31-1)), Total: total})
	}
}

// flushHearts sends the taps of a node outside a tree over the topic,
// aggregated, at the pace the broadcaster asks for.
func (m *machine) flushHearts(now time.Time) {
	if m.pendingHearts > 0 && m.synced && now.Sub(m.lastHeartFlush) >= m.heartEvery() {
		m.lastHeartFlush = now
		h := &wireHeart{Count: uint32(m.pendingHearts)}
		if m.pendingAtN > 0 {
			// The count-weighted mean of the moments said: one message
			// per interval is the topic's pace, so the replay places an
			// interval's taps (a second at most at a small audience) at
			// one moment.
			h.At = m.pendingAtBase.Add(time.Duration(m.pendingAtSum/int64(m.pendingAtN)) * time.Millisecond).UnixNano()
		}
		m.send(now, envelope{Heart: h})
		m.pendingHearts, m.pendingAtSum, m.pendingAtN = 0, 0, 0
	}
}

// heartEvery is how often a node outside a tree sends its taps: as the
// broadcaster's beat asks, within [minHeart, maxHeart].
func (m *machine) heartEvery() time.Duration {
	if m.haveBeat && m.beat.HeartMS > 0 {
		return min(max(time.Duration(m.beat.HeartMS)*time.Millisecond, minHeart), maxHeart)
	}
	return minHeart
}

// logTreeHearts, on the broadcaster, puts the tree's new hearts in the
// replay's heart log: those whose moment was counted at the second it
// names (momentOf), the rest at now, when they reached it. The moment
// counters are a subtree's claims, summed: their rise is believed only up
// to the total's rise (every tap with a moment is counted in both; more
// moments than hearts means a liar below, and then none is believed), and
// each names a second in the MomentSeconds before now, so nothing is
// placed outside the broadcast's last half minute. (A tap's two counts
// are separate Counts: should a status leave between them, the broadcaster
// sees the total rise without the moment, or the moment without the total,
// and places those taps on arrival; nothing is counted twice.)
func (m *machine) logTreeHearts(now time.Time, in HeartSums) {
	last := m.treeSums
	if in.Total < last.Total {
		return // a stale read; the sums only grow
	}
	m.treeSums = in
	rise := in.Total - last.Total
	if rise == 0 {
		return
	}
	var rises [MomentSeconds]uint64
	var timed uint64
	for k := range in.Moments {
		if in.Moments[k] > last.Moments[k] {
			rises[k] = in.Moments[k] - last.Moments[k]
			if rises[k] > rise-timed { // checked before adding: no sum can wrap
				timed, rises = 0, [MomentSeconds]uint64{}
				break
			}
			timed += rises[k]
		}
	}
	for k, r := range rises {
		if r > 0 {
			m.heartLog.add(momentOf(now, k), r)
		}
	}
	if rise > timed {
		m.heartLog.add(now, rise-timed)
	}
}

// logTopicHearts, on the broadcaster, puts hearts that came over the topic
// in the replay's heart log at their moment, clamped to the maxStreamLag
// before now (a moment ahead of now is now); hearts that said none, at now.
func (m *machine) logTopicHearts(now time.Time, h *wireHeart) {
	m.heartLog.add(momentAt(h.At, now), uint64(h.Count))
}

// momentAt is a message's stream moment (a wallclock in Unix ns, 0 for
// none) as believed beside ref, when it was sent or arrived: none is ref,
// one ahead of ref is ref, one more than maxStreamLag behind is that far.
func momentAt(at int64, ref time.Time) time.Time {
	if at <= 0 {
		return ref
	}
	t := time.Unix(0, at)
	if t.After(ref) {
		return ref
	}
	if ref.Sub(t) > maxStreamLag {
		return ref.Add(-maxStreamLag)
	}
	return t
}

// MaxHeartSeconds bounds a heart log: a count for each second of 36 hours,
// longer than any broadcast whose replay is kept.
const MaxHeartSeconds = 36 * 60 * 60

// HeartLog is what a replay floats: the broadcast's hearts, a count per
// second of the broadcast's wallclock, at the moment their tappers watched
// (the capture time of the frame on their screen) when they said it, and
// as they reached the broadcaster otherwise (about a second after the tap,
// the tree's status pace, or up to a heart interval over the topic).
type HeartLog struct {
	From   time.Time // the first second counted (zero: no hearts)
	Counts []uint32  // the hearts of each second from From
}

// maxLogBefore bounds how far before the first second counted a later
// heart may be placed: a moment is at most maxStreamLag behind the clock
// that placed it, and the log's first second was then at most that.
const maxLogBefore = maxStreamLag + maxMomentAhead

// add counts n hearts in the second of at. A second after MaxHeartSeconds
// is not counted; one up to maxLogBefore before From is put before it, and
// one earlier still (the clock stepped back) counts in the first.
func (l *HeartLog) add(at time.Time, n uint64) {
	at = at.Truncate(time.Second)
	if l.From.IsZero() {
		l.From = at
	}
	if at.Before(l.From) {
		if l.From.Sub(at) > maxLogBefore || len(l.Counts)+int(l.From.Sub(at)/time.Second) > MaxHeartSeconds {
			at = l.From
		} else {
			d := int(l.From.Sub(at) / time.Second)
			l.Counts = append(make([]uint32, d, d+len(l.Counts)), l.Counts...)
			l.From = at
		}
	}
	i := int64(at.Sub(l.From) / time.Second)
	if i >= MaxHeartSeconds {
		return
	}
	for int64(len(l.Counts)) <= i {
		l.Counts = append(l.Counts, 0)
	}
	l.Counts[i] = uint32(min(uint64(l.Counts[i])+min(n, 1<<32-1), 1<<32-1)) // no sum wraps
}

// Total returns the hearts the log counts.
func (l HeartLog) Total() uint64 {
	var t uint64
	for _, c := range l.Counts {
		t += uint64(c)
	}
	return t
}

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

// heart counts this node's taps. With a tree (Config.Tap) they go up it
// with the mesh's statuses; without, over the topic, aggregated once per
// heart interval.
func (m *machine) heart(now time.Time, n int) {
	if n <= 0 {
		return
	}
	n = min(n, MaxHearts)
	m.ownTaps = min(m.ownTaps+uint64(n), 10*MaxHearts)
	m.ownTapsAt = now
	if m.cfg.Tap != nil {
		m.rd.taps += n
		return
	}
	m.pendingHearts = min(m.pendingHearts+n, MaxHearts)
}

// riseTo takes a new heart total and floats its rise, less this node's own
// taps (its pages floated those when they were tapped).
func (m *machine) riseTo(now time.Time, total uint64) {
	if total <= m.hearts {
		return
	}
	rise := total - m.hearts
	m.hearts = total
	if m.isBroadcaster {
		m.heartLog.add(now, rise)
	}
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
	hi := minHeart
	if m.haveBeat && m.beat.HeartMS > 0 {
		hi = min(max(time.Duration(m.beat.HeartMS)*time.Millisecond, minHeart), maxHeart)
	}
	if m.pendingHearts > 0 && m.synced && now.Sub(m.lastHeartFlush) >= hi {
		m.lastHeartFlush = now
		m.send(now, envelope{Heart: &wireHeart{Count: uint32(m.pendingHearts)}})
		m.pendingHearts = 0
	}
}

// MaxHeartSeconds bounds a heart log: a count for each second of 36 hours,
// longer than any broadcast whose replay is kept.
const MaxHeartSeconds = 36 * 60 * 60

// HeartLog is what a replay floats: the broadcast's hearts, a count per
// second of the broadcaster's wallclock, as they reached the broadcaster
// (a tap is counted within about a second of being made, the tree's
// status pace).
type HeartLog struct {
	From   time.Time // the first second counted (zero: no hearts)
	Counts []uint32  // the hearts of each second from From
}

// add counts n hearts at now. A second after MaxHeartSeconds is not
// counted; one before From (the clock stepped back) counts in the first.
func (l *HeartLog) add(now time.Time, n uint64) {
	now = now.Truncate(time.Second)
	if l.From.IsZero() {
		l.From = now
	}
	i := max(int64(now.Sub(l.From)/time.Second), 0)
	if i >= MaxHeartSeconds {
		return
	}
	for int64(len(l.Counts)) <= i {
		l.Counts = append(l.Counts, 0)
	}
	l.Counts[i] = uint32(min(uint64(l.Counts[i])+n, 1<<32-1))
}

// Total returns the hearts the log counts.
func (l HeartLog) Total() uint64 {
	var t uint64
	for _, c := range l.Counts {
		t += uint64(c)
	}
	return t
}

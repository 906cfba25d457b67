package ingest

import (
	"context"
	"slices"
	"time"

	"github.com/peerscope/peerscope/media"
)

// pacer is a media.Sink in front of another: it releases each sample when
// its DTS is due on the clock, stamps it with that time, and, across the
// loops of a file, moves timestamps on so that they keep increasing.
type pacer struct {
	ctx   context.Context
	sink  media.Sink
	clock Clock
	pace  bool // else only the loop offset

	started bool
	t0      time.Time     // when the first sample was released
	d0      time.Duration // its DTS

	tracks []media.Track // as given to the sink
	offset time.Duration // added to this loop's timestamps
	// This loop's extent, in its own (raw) timestamps.
	first          time.Duration
	haveFirst      bool
	last, lastStep map[int]time.Duration
}

func newPacer(ctx context.Context, sink media.Sink, clock Clock, pace bool) *pacer {
	return &pacer{ctx: ctx, sink: sink, clock: clock, pace: pace,
		last: map[int]time.Duration{}, lastStep: map[int]time.Duration{}}
}

// Tracks passes the tracks on the first time; a later loop of the same
// file brings the same tracks, which the sink must not see again (it would
// start a new session).
func (p *pacer) Tracks(tracks []media.Track) error {
	if p.tracks != nil && slices.EqualFunc(p.tracks, tracks, sameTrack) {
		return nil
	}
	p.tracks = tracks
	return p.sink.Tracks(tracks)
}

func sameTrack(a, b media.Track) bool {
	return a.ID == b.ID && a.Codec == b.Codec && a.ClockRate == b.ClockRate && a.ChannelCount == b.ChannelCount &&
		string(a.SPS) == string(b.SPS) && string(a.PPS) == string(b.PPS) && string(a.AudioConfig) == string(b.AudioConfig)
}

func (p *pacer) Sample(s media.Sample) error {
	if !p.haveFirst || s.DTS < p.first {
		p.first, p.haveFirst = s.DTS, true
	}
	if last, ok := p.last[s.Track]; ok && s.DTS > last {
		p.lastStep[s.Track] = s.DTS - last
	}
	p.last[s.Track] = s.DTS

	s.DTS += p.offset
	s.PTS += p.offset
	if !p.pace {
		return p.sink.Sample(s)
	}
	if !p.started {
		p.started, p.t0, p.d0 = true, p.clock.Now(), s.DTS
	}
	due := p.t0.Add(s.DTS - p.d0)
	if wait := due.Sub(p.clock.Now()); wait > 0 {
		if err := p.clock.Sleep(p.ctx, wait); err != nil {
			return err
		}
	}
	s.Wallclock = due
	return p.sink.Sample(s)
}

// nextLoop moves the timeline past the loop that just ended: the next
// loop's first sample lands where this loop's longest track ended.
func (p *pacer) nextLoop() {
	end := p.first
	for id, last := range p.last {
		end = max(end, last+p.lastStep[id])
	}
	p.offset += end - p.first
	p.haveFirst = false
	clear(p.last)
	clear(p.lastStep)
}

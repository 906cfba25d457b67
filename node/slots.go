package node

import (
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// A node's child slots follow the stream's bitrate: its upload budget
// divided by the bitrate, with headroom (Config.slotsFor). Before a
// broadcast says anything the bitrate is Config.Bitrate's default; then it
// is the larger of what the announcement says (the broadcaster's
// publisher measures it) and what this node measures of the chunks it
// delivers, so that a 0.55 Mb/s stream with a 5 Mb/s upload gets six slots
// where the 2.5 Mb/s default gave one (one liar in a single slot would
// hold the whole audience).

// bitrate is what the owner goroutine knows of the stream's bitrate.
type bitrate struct {
	announced, measured int64 // bit/s; 0: not known
	bytes               int64 // payload bytes since the last measure
	media               time.Duration
}

// measureSpan is how much media a measure covers.
const measureSpan = 2 * time.Second

// measure adds a delivered chunk's payload to the measure (owner): every
// measureSpan of media, its bitrate is one more figure the slots follow.
func (b *Broadcast) measure(c *chunk.Chunk) {
	if c.IsInit() || c.Duration <= 0 {
		return
	}
	b.rate.bytes += int64(len(c.Payload))
	b.rate.media += time.Duration(c.Duration)
	if b.rate.media < measureSpan {
		return
	}
	rate := b.rate.bytes * 8 * int64(time.Second) / int64(b.rate.media)
	b.rate.bytes, b.rate.media = 0, 0
	b.bitrateSeen(rate, true)
}

// bitrateSeen takes in a bitrate announced or measured (owner) and
// resizes the node's slots in the tree if they change.
func (b *Broadcast) bitrateSeen(rate int64, measured bool) {
	if rate <= 0 {
		return
	}
	if measured {
		b.rate.measured = rate
	} else {
		b.rate.announced = rate
	}
	slots := b.n.cfg.slotsFor(max(b.rate.announced, b.rate.measured))
	if slots == b.Slots() || b.carrier == nil {
		return
	}
	if err := b.carrier.SetSlots(slots); err != nil {
		b.log.Debug("slots not changed", "slots", slots, "err", err)
		return
	}
	b.log.Info("slots follow the bitrate", "slots", slots, "announced", b.rate.announced, "measured", b.rate.measured)
	b.slotsNow.Store(int64(slots))
}

package whip

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// Limits on what one publisher can make us hold.
const (
	maxAUSize      = 4 << 20 // bytes in one H.264 access unit
	maxAUNALUs     = 512     // NAL units in one access unit
	maxOpusPacket  = 8 << 10
	reorderMaxHeld = 128                    // packets waiting for a gap to fill
	reorderMaxWait = 200 * time.Millisecond // how long a gap may hold packets back
)

// Depacketizer errors. They cost the access unit at hand, never the session.
var (
	errH264Unsupported = errors.New("whip: unsupported H.264 RTP packetization")
	errH264Malformed   = errors.New("whip: malformed H.264 RTP payload")
	errH264TooLarge    = errors.New("whip: H.264 access unit too large")
)

// accessUnit is one H.264 picture as it came off the wire.
type accessUnit struct {
	ts    uint32   // RTP timestamp
	nalus [][]byte // without start codes; owned by the access unit
	lost  bool     // a packet of it, or of an earlier one, was lost
}

// h264Depacketizer assembles H.264 access units from RTP packets in
// sequence order (RFC 6184: single NAL unit packets, STAP-A, FU-A). An
// access unit ends at the marker bit, or when the timestamp moves on if a
// sender forgets the marker. A gap in sequence numbers marks the access
// unit at hand as lost; so does a bad payload.
type h264Depacketizer struct {
	cur     accessUnit
	size    int
	open    bool // cur has packets
	fu      []byte
	inFU    bool
	lastSeq uint16
	seqSeen bool
}

// push takes the next packet and returns the access units it completed
// (at most two: the one a timestamp change closed, and one the marker
// closed). err tells about a payload that was dropped.
func (d *h264Depacketizer) push(p *rtp.Packet) (done []accessUnit, err error) {
	gap := d.seqSeen && p.SequenceNumber != d.lastSeq+1
	d.lastSeq, d.seqSeen = p.SequenceNumber, true
	if gap {
		// What was lost may be the tail of the open access unit or the
		// head of the next one: both are marked.
		d.cur.lost = d.cur.lost || d.open
		d.fu, d.inFU = nil, false
	}
	if d.open && p.Timestamp != d.cur.ts {
		done = append(done, d.finish())
	}
	if !d.open {
		d.cur.ts, d.open = p.Timestamp, true
	}
	if gap {
		d.cur.lost = true
	}
	if len(p.Payload) > 0 { // empty payloads are padding (bandwidth probes)
		if err = d.payload(p.Payload); err != nil {
			d.cur.lost = true
			d.fu, d.inFU = nil, false
		}
	}
	if p.Marker {
		done = append(done, d.finish())
	}
	return done, err
}

func (d *h264Depacketizer) finish() accessUnit {
	au := d.cur
	if d.inFU { // the last fragment never came
		au.lost = true
	}
	d.cur, d.size, d.open, d.fu, d.inFU = accessUnit{}, 0, false, nil, false
	return au
}

func (d *h264Depacketizer) add(nalu []byte) error {
	if len(nalu) == 0 {
		return fmt.Errorf("%w: empty NAL unit", errH264Malformed)
	}
	if nalu[0]&0x80 != 0 {
		return fmt.Errorf("%w: forbidden bit set", errH264Malformed)
	}
	d.size += len(nalu)
	if d.size > maxAUSize || len(d.cur.nalus) >= maxAUNALUs {
		return errH264TooLarge
	}
	d.cur.nalus = append(d.cur.nalus, nalu)
	return nil
}

func (d *h264Depacketizer) payload(b []byte) error {
	switch typ := b[0] & 0x1f; {
	case typ >= 1 && typ <= 23: // a single NAL unit
		if d.inFU {
			return fmt.Errorf("%w: NAL unit inside a fragmented one", errH264Malformed)
		}
		return d.add(append([]byte(nil), b...))

	case typ == 24: // STAP-A: 16-bit size, NAL unit, repeated
		if d.inFU {
			return fmt.Errorf("%w: STAP-A inside a fragmented NAL unit", errH264Malformed)
		}
		rest := b[1:]
		if len(rest) == 0 {
			return fmt.Errorf("%w: empty STAP-A", errH264Malformed)
		}
		for len(rest) > 0 {
			if len(rest) < 2 {
				return fmt.Errorf("%w: STAP-A cut in a size field", errH264Malformed)
			}
			n := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if n == 0 || n > len(rest) {
				return fmt.Errorf("%w: STAP-A unit of %d bytes with %d left", errH264Malformed, n, len(rest))
			}
			if err := d.add(append([]byte(nil), rest[:n]...)); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil

	case typ == 28: // FU-A
		if len(b) < 3 {
			return fmt.Errorf("%w: FU-A of %d bytes", errH264Malformed, len(b))
		}
		start, end := b[1]&0x80 != 0, b[1]&0x40 != 0
		if start && end {
			return fmt.Errorf("%w: FU-A both starts and ends", errH264Malformed)
		}
		switch {
		case start:
			if d.inFU {
				return fmt.Errorf("%w: FU-A starts inside another", errH264Malformed)
			}
			d.fu = append(make([]byte, 0, 2*len(b)), b[0]&0xe0|b[1]&0x1f)
			d.inFU = true
		case !d.inFU:
			return fmt.Errorf("%w: FU-A fragment without its start", errH264Malformed)
		}
		if d.size+len(d.fu)+len(b) > maxAUSize {
			return errH264TooLarge
		}
		d.fu = append(d.fu, b[2:]...)
		if end {
			nalu := d.fu
			d.fu, d.inFU = nil, false
			return d.add(nalu)
		}
		return nil
	}
	return fmt.Errorf("%w: NAL unit type %d (only single NAL units, STAP-A and FU-A: packetization-mode=1)",
		errH264Unsupported, b[0]&0x1f)
}

// isKeyframe reports whether an access unit holds an IDR picture.
func isKeyframe(nalus [][]byte) bool {
	for _, n := range nalus {
		if n[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

// paramSets returns the SPS and PPS an access unit carries, if any.
func paramSets(nalus [][]byte) (sps, pps []byte) {
	for _, n := range nalus {
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	return sps, pps
}

// reorder puts RTP packets back in sequence order. A packet that comes
// after its turn is dropped; a gap is waited for while fewer than
// reorderMaxHeld packets are held and the oldest has waited less than
// reorderMaxWait (NACK retransmissions arrive within that), then skipped.
type reorder struct {
	next    uint16
	started bool
	held    map[uint16]heldPacket
}

type heldPacket struct {
	p  *rtp.Packet
	at time.Time
}

func newReorder() *reorder { return &reorder{held: make(map[uint16]heldPacket)} }

// push returns the packets now ready, in order.
func (r *reorder) push(p *rtp.Packet, now time.Time) []*rtp.Packet {
	if !r.started {
		r.next, r.started = p.SequenceNumber, true
	}
	switch d := int16(p.SequenceNumber - r.next); {
	case d < 0:
		if d < -1000 { // the sender restarted its sequence: follow it
			r.held = make(map[uint16]heldPacket)
			r.next = p.SequenceNumber
		} else {
			return nil // late or duplicate
		}
	case d > 1000:
		r.held = make(map[uint16]heldPacket)
		r.next = p.SequenceNumber
	}
	if _, dup := r.held[p.SequenceNumber]; dup {
		return nil
	}
	r.held[p.SequenceNumber] = heldPacket{p, now}

	var out []*rtp.Packet
	for {
		for {
			h, ok := r.held[r.next]
			if !ok {
				break
			}
			out = append(out, h.p)
			delete(r.held, r.next)
			r.next++
		}
		if len(r.held) == 0 || !r.giveUp(now) {
			return out
		}
		// Skip the gap to the oldest packet held.
		best := int16(32767)
		for seq := range r.held {
			if d := int16(seq - r.next); d < best {
				best = d
			}
		}
		r.next += uint16(best)
	}
}

func (r *reorder) giveUp(now time.Time) bool {
	if len(r.held) >= reorderMaxHeld {
		return true
	}
	for _, h := range r.held {
		if now.Sub(h.at) >= reorderMaxWait {
			return true
		}
	}
	return false
}

// unwrap extends 32-bit RTP timestamps to 64 bits, across wrap-around.
type unwrap struct {
	last    uint32
	ext     int64
	started bool
}

func (u *unwrap) extend(ts uint32) int64 {
	if !u.started {
		u.last, u.ext, u.started = ts, int64(ts), true
		return u.ext
	}
	u.ext += int64(int32(ts - u.last))
	u.last = ts
	return u.ext
}

package cmaf

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/peerscope/peerscope/media"
)

// marshalInit builds the init segment for the current tracks with the
// given H.264 parameter sets, and its RFC 6381 codecs string.
func (p *Packager) marshalInit(sps, pps []byte) ([]byte, string, error) {
	var init fmp4.Init
	var codecs []string
	for _, t := range p.tracks {
		it := &fmp4.InitTrack{ID: t.ID, TimeScale: uint32(t.rate)}
		switch t.Codec {
		case media.H264:
			if len(sps) < 4 || len(pps) == 0 {
				return nil, "", fmt.Errorf("no SPS/PPS")
			}
			it.Codec = &mp4codecs.H264{SPS: sps, PPS: pps}
			codecs = append(codecs, fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3]))
		case media.Opus:
			it.Codec = &mp4codecs.Opus{ChannelCount: t.channels}
			codecs = append(codecs, "opus")
		case media.AAC:
			it.Codec = &mp4codecs.MPEG4Audio{Config: *t.asc}
			codecs = append(codecs, fmt.Sprintf("mp4a.40.%d", t.asc.Type))
		}
		init.Tracks = append(init.Tracks, it)
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), strings.Join(codecs, ","), nil
}

// Box layout of a part, with the trun flags used:
//
//	moof
//	  mfhd                  sequence_number
//	  traf                  (per track with samples, video first)
//	    tfhd                flags 0x020000 default-base-is-moof
//	    tfdt  v1            baseMediaDecodeTime
//	    trun  v1            data-offset, duration, size, [flags (video)], [composition offset]
//	mdat                    each track's samples, contiguous, in traf order
const (
	trunDataOffset = 0x000001
	trunDuration   = 0x000100
	trunSize       = 0x000200
	trunFlags      = 0x000400
	trunCTO        = 0x000800

	// sample_flags: depends_on (bits 24-25), is_non_sync (bit 16).
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// marshalPart writes the open part as moof+mdat into one new buffer.
func (p *Packager) marshalPart() []byte {
	// Size everything first, so the payload is one exact allocation.
	moof, mdat := 8+16, 8
	for _, t := range p.tracks {
		if t.placed == 0 {
			continue
		}
		moof += 8 + 16 + 20 + t.trunSize(p)
		last := t.q[t.placed-1]
		mdat += last.off + last.n
	}
	b := make([]byte, 0, moof+mdat)

	b = box(b, moof, "moof")
	b = box(b, 16, "mfhd")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, p.seq)
	dataOff := moof + 8 // from the start of moof (default-base-is-moof)
	for _, t := range p.tracks {
		if t.placed == 0 {
			continue
		}
		trun := t.trunSize(p)
		b = box(b, 8+16+20+trun, "traf")
		b = box(b, 16, "tfhd")
		b = binary.BigEndian.AppendUint32(b, 0x020000)
		b = binary.BigEndian.AppendUint32(b, uint32(t.ID))
		b = box(b, 20, "tfdt")
		b = binary.BigEndian.AppendUint32(b, 1<<24)
		b = binary.BigEndian.AppendUint64(b, uint64(toTicks(t.q[0].dts-p.origin, t.rate)))

		flags, cto := t.trunFlags(p)
		b = box(b, trun, "trun")
		b = binary.BigEndian.AppendUint32(b, 1<<24|flags)
		b = binary.BigEndian.AppendUint32(b, uint32(t.placed))
		b = binary.BigEndian.AppendUint32(b, uint32(dataOff))
		for i, e := range t.q[:t.placed] {
			b = binary.BigEndian.AppendUint32(b, t.durs[i])
			b = binary.BigEndian.AppendUint32(b, uint32(e.n))
			if flags&trunFlags != 0 {
				f := uint32(flagsNonSync)
				if e.key {
					f = flagsSync
				}
				b = binary.BigEndian.AppendUint32(b, f)
			}
			if cto {
				b = binary.BigEndian.AppendUint32(b, uint32(t.cto(p, e)))
			}
		}
		last := t.q[t.placed-1]
		dataOff += last.off + last.n
	}

	b = box(b, mdat, "mdat")
	for _, t := range p.tracks {
		if t.placed == 0 {
			continue
		}
		last := t.q[t.placed-1]
		b = append(b, t.data[:last.off+last.n]...)
	}
	return b
}

// trunFlags says which per-sample fields the track's trun carries.
func (t *track) trunFlags(p *Packager) (flags uint32, cto bool) {
	flags = trunDataOffset | trunDuration | trunSize
	if !t.IsVideo() {
		return flags, false
	}
	flags |= trunFlags
	for _, e := range t.q[:t.placed] {
		if t.cto(p, e) != 0 {
			return flags | trunCTO, true
		}
	}
	return flags, false
}

func (t *track) trunSize(p *Packager) int {
	flags, cto := t.trunFlags(p)
	per := 8
	if flags&trunFlags != 0 {
		per += 4
	}
	if cto {
		per += 4
	}
	return 8 + 4 + 4 + 4 + per*t.placed
}

// cto is the sample's composition offset in ticks, as a player computes it
// from the two timestamps.
func (t *track) cto(p *Packager, e entry) int32 {
	if e.pts == e.dts {
		return 0
	}
	return int32(toTicks(e.pts-p.origin, t.rate) - toTicks(e.dts-p.origin, t.rate))
}

func box(b []byte, size int, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	return append(b, typ...)
}

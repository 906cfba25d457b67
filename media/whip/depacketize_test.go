package whip

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// pkts builds consecutive RTP packets; each payload is one packet.
func pkts(seq uint16, ts uint32, marker bool, payloads ...[]byte) []*rtp.Packet {
	var out []*rtp.Packet
	for i, p := range payloads {
		out = append(out, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq + uint16(i), Timestamp: ts,
			Marker: marker && i == len(payloads)-1}, Payload: p})
	}
	return out
}

var (
	sps   = []byte{0x67, 0x42, 0xe0, 0x1f, 0xaa}
	pps   = []byte{0x68, 0xce, 0x38, 0x80}
	idr   = append([]byte{0x65}, bytes.Repeat([]byte{0x11}, 3000)...)
	slice = []byte{0x41, 0x9a, 0x02}
)

func stapA(nalus ...[]byte) []byte {
	b := []byte{0x18}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// fuA cuts a NAL unit into FU-A payloads of at most size bytes of data.
func fuA(nalu []byte, size int) [][]byte {
	var out [][]byte
	ind := nalu[0]&0xe0 | 28
	data := nalu[1:]
	for i := 0; i < len(data); i += size {
		end := min(i+size, len(data))
		hdr := nalu[0] & 0x1f
		if i == 0 {
			hdr |= 0x80
		}
		if end == len(data) {
			hdr |= 0x40
		}
		out = append(out, append([]byte{ind, hdr}, data[i:end]...))
	}
	return out
}

// depacketizerCases is the one table the unit test, the fuzz seeds and
// the benchmark share: packet payloads in order, and what comes out.
var depacketizerCases = []struct {
	name     string
	payloads [][]byte // one access unit, marker on the last
	want     [][]byte // NAL units, nil when the unit is dropped as lost
	wantErr  error
}{
	{"single NAL unit", [][]byte{slice}, [][]byte{slice}, nil},
	{"STAP-A then FU-A", append([][]byte{stapA(sps, pps)}, fuA(idr, 1000)...), [][]byte{sps, pps, idr}, nil},
	{"FU-A missing its start", fuA(idr, 1000)[1:], nil, errH264Malformed},
	{"STAP-A with a size past the end", [][]byte{{0x18, 0x00, 0x09, 0x67}}, nil, errH264Malformed},
	{"STAP-B is not packetization-mode 1", [][]byte{{0x19, 0, 0, 0, 1, 0x41}}, nil, errH264Unsupported},
	{"FU-A both start and end", [][]byte{{0x7c, 0xc5, 1, 2}}, nil, errH264Malformed},
	{"forbidden bit", [][]byte{{0xe5, 1}}, nil, errH264Malformed},
}

func TestDepacketizer(t *testing.T) {
	for _, tc := range depacketizerCases {
		t.Run(tc.name, func(t *testing.T) {
			var d h264Depacketizer
			var aus []accessUnit
			var firstErr error
			for _, p := range pkts(100, 9000, true, tc.payloads...) {
				got, err := d.push(p)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				aus = append(aus, got...)
			}
			if !errors.Is(firstErr, tc.wantErr) || (tc.wantErr == nil) != (firstErr == nil) {
				t.Fatalf("error %v, want %v", firstErr, tc.wantErr)
			}
			if len(aus) != 1 {
				t.Fatalf("%d access units, want 1", len(aus))
			}
			au := aus[0]
			if tc.want == nil {
				if !au.lost {
					t.Fatalf("damaged access unit not marked lost: %x", au.nalus)
				}
				return
			}
			if au.lost || au.ts != 9000 || len(au.nalus) != len(tc.want) {
				t.Fatalf("got lost=%v ts=%d %d NALUs, want %d", au.lost, au.ts, len(au.nalus), len(tc.want))
			}
			for i := range tc.want {
				if !bytes.Equal(au.nalus[i], tc.want[i]) {
					t.Fatalf("NALU %d differs", i)
				}
			}
		})
	}
}

func TestDepacketizerLossAndBoundaries(t *testing.T) {
	var d h264Depacketizer
	fu := fuA(idr, 1000)
	// A keyframe whose middle fragment is lost, then a complete P-frame.
	var in []*rtp.Packet
	in = append(in, pkts(10, 0, true, stapA(sps, pps), fu[0], fu[1], fu[2])...)
	in = append(in[:2], in[3:]...) // lose fu[1]
	in = append(in, pkts(14, 3000, true, slice)...)
	var aus []accessUnit
	for _, p := range in {
		got, _ := d.push(p)
		aus = append(aus, got...)
	}
	if len(aus) != 2 || !aus[0].lost || aus[1].lost {
		t.Fatalf("got %d units (lost %v %v), want a lost keyframe then a good P-frame", len(aus), aus[0].lost, aus[len(aus)-1].lost)
	}

	// No marker: the timestamp change closes the unit.
	d = h264Depacketizer{}
	a, _ := d.push(pkts(1, 0, false, slice)[0])
	b, _ := d.push(pkts(2, 3000, true, slice)[0])
	if len(a) != 0 || len(b) != 2 || b[0].ts != 0 || b[1].ts != 3000 {
		t.Fatalf("timestamp boundary: %v %v", a, b)
	}

	// Loss of the first packet of a unit right after a marker marks the
	// next unit.
	d = h264Depacketizer{}
	d.push(pkts(1, 0, true, slice)[0])
	c, _ := d.push(pkts(3, 3000, true, slice)[0])
	if len(c) != 1 || !c[0].lost {
		t.Fatalf("loss at a unit's head not marked: %+v", c)
	}
}

func TestReorder(t *testing.T) {
	t0 := time.Unix(0, 0)
	r := newReorder()
	p := func(seq uint16) *rtp.Packet { return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq}} }
	seqs := func(ps []*rtp.Packet) []uint16 {
		var out []uint16
		for _, p := range ps {
			out = append(out, p.SequenceNumber)
		}
		return out
	}
	check := func(got []*rtp.Packet, want ...uint16) {
		t.Helper()
		g := seqs(got)
		if len(g) != len(want) {
			t.Fatalf("got %v, want %v", g, want)
		}
		for i := range g {
			if g[i] != want[i] {
				t.Fatalf("got %v, want %v", g, want)
			}
		}
	}
	check(r.push(p(65534), t0), 65534)
	check(r.push(p(0), t0))                           // 65535 missing: held
	check(r.push(p(65535), t0), 65535, 0)             // the retransmission fills the gap, across wrap-around
	check(r.push(p(0), t0))                           // duplicate
	check(r.push(p(2), t0))                           // 1 missing
	check(r.push(p(3), t0.Add(reorderMaxWait)), 2, 3) // waited long enough: skip it
	check(r.push(p(1), t0.Add(reorderMaxWait)))       // too late
	check(r.push(p(30000), t0), 30000)                // a restart is followed
}

func TestUnwrap(t *testing.T) {
	var u unwrap
	for _, c := range []struct {
		in   uint32
		want int64
	}{{4294967000, 4294967000}, {100, 4294967396}, {4294967200, 4294967200}, {200, 4294967496}} {
		if got := u.extend(c.in); got != c.want {
			t.Fatalf("extend(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// FuzzH264Depacketizer feeds arbitrary payloads; the fuzz input is split
// into packets at 0xff 0xfe markers, the byte after each marker giving
// the RTP marker bit and a sequence skip.
func FuzzH264Depacketizer(f *testing.F) {
	for _, tc := range depacketizerCases {
		var in []byte
		for _, p := range tc.payloads {
			in = append(in, 0xff, 0xfe, 0)
			in = append(in, p...)
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d h264Depacketizer
		seq, ts := uint16(0), uint32(0)
		for _, chunk := range bytes.Split(data, []byte{0xff, 0xfe}) {
			if len(chunk) == 0 {
				continue
			}
			ctl := chunk[0]
			seq += 1 + uint16(ctl>>5&1)
			if ctl&0x40 != 0 {
				ts += 3000
			}
			aus, _ := d.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: ctl&1 != 0}, Payload: chunk[1:]})
			for _, au := range aus {
				size := 0
				for _, n := range au.nalus {
					if len(n) == 0 || n[0]&0x80 != 0 {
						t.Fatalf("bad NAL unit %x out", n)
					}
					size += len(n)
				}
				if size > maxAUSize || len(au.nalus) > maxAUNALUs {
					t.Fatalf("access unit over the limits: %d bytes, %d NALUs", size, len(au.nalus))
				}
			}
		}
	})
}

func FuzzInspectOffer(f *testing.F) {
	f.Add([]byte(chromeLikeOffer(true)))
	f.Add([]byte(chromeLikeOffer(false)))
	f.Add([]byte("v=0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inspectOffer(data) // must not panic
	})
}

func BenchmarkDepacketizer(b *testing.B) {
	payloads := append([][]byte{stapA(sps, pps)}, fuA(idr, 1100)...)
	ps := pkts(0, 0, true, payloads...)
	var d h264Depacketizer
	b.SetBytes(int64(len(idr)))
	for i := 0; b.Loop(); i++ {
		for _, p := range ps {
			p.SequenceNumber = uint16(i*len(ps)) + p.SequenceNumber%uint16(len(ps))
			p.Timestamp = uint32(i * 3000)
			d.push(p)
		}
	}
}

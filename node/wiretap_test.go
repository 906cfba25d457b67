package node_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/peerscope/peerscope/media"
)

// wiretap is a capture of what the nodes' libp2p connections carry, taken
// on both sides of Noise: "inside" is the plaintext Noise encrypts (the
// muxer's frames with every stream's bytes: the tree's chunks, GossipSub,
// bitswap, announcements), "outside" is what goes on the socket. It does
// not keep the bytes: it counts them and searches them, as they pass, for
// markers of one length (an occurrence split across two writes is found:
// each direction of each connection keeps the tail of what it carried).
type wiretap struct {
	markers [][]byte // all of one length

	mu    sync.Mutex
	conns int                 // connection ends secured through the tap
	bytes map[string]int64    // layer "inside"/"outside" → bytes written
	read  map[string]int64    // the same, read
	hits  map[string][]int    // layer → occurrences of each marker (written and read)
	peers map[peer.ID]peer.ID // local → remote, of every secured end
}

func newWiretap(markers ...[]byte) *wiretap {
	for _, m := range markers {
		if len(m) != len(markers[0]) || len(m) < 2 {
			panic("wiretap: markers of different lengths")
		}
	}
	return &wiretap{markers: markers, bytes: map[string]int64{}, read: map[string]int64{},
		hits: map[string][]int{"inside": make([]int, len(markers)), "outside": make([]int, len(markers))}}
}

// option is the host option that routes a node's connections through the
// tap: Noise (the same protocol ID, so it speaks to any libp2p host) with
// both of its sides recorded. It replaces the node's default security
// (TLS is not offered), so every TCP connection of the node is Noise, and
// tapped.
func (w *wiretap) option() libp2p.Option {
	return libp2p.Security(noise.ID, func(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*tapSecurity, error) {
		tr, err := noise.New(id, key, muxers)
		if err != nil {
			return nil, err
		}
		return &tapSecurity{Transport: tr, w: w}, nil
	})
}

// found returns how often marker i was seen in a layer.
func (w *wiretap) found(layer string, i int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[layer][i]
}

func (w *wiretap) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d connection ends; inside Noise %d bytes written, %d read; on the socket %d written, %d read",
		w.conns, w.bytes["inside"], w.read["inside"], w.bytes["outside"], w.read["outside"])
}

// tapSecurity is Noise with the tap on both sides of it.
type tapSecurity struct {
	*noise.Transport
	w *wiretap
}

var _ sec.SecureTransport = (*tapSecurity)(nil)

func (t *tapSecurity) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.Transport.SecureInbound(ctx, t.w.raw(insecure), p)
	return t.w.secured(c, err)
}

func (t *tapSecurity) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.Transport.SecureOutbound(ctx, t.w.raw(insecure), p)
	return t.w.secured(c, err)
}

func (w *wiretap) raw(c net.Conn) net.Conn {
	return &rawConn{Conn: c, out: w.stream("outside", w.bytes), in: w.stream("outside", w.read)}
}

func (w *wiretap) secured(c sec.SecureConn, err error) (sec.SecureConn, error) {
	if err != nil {
		return c, err
	}
	w.mu.Lock()
	w.conns++
	w.mu.Unlock()
	return &plainConn{SecureConn: c, out: w.stream("inside", w.bytes), in: w.stream("inside", w.read)}, nil
}

// tapStream is one direction of one connection at one layer.
type tapStream struct {
	w     *wiretap
	layer string
	count map[string]int64
	tail  []byte
}

func (w *wiretap) stream(layer string, count map[string]int64) *tapStream {
	return &tapStream{w: w, layer: layer, count: count}
}

func (s *tapStream) feed(p []byte) {
	if len(p) == 0 {
		return
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	s.count[s.layer] += int64(len(p))
	buf := append(s.tail, p...)
	for i, m := range w.markers {
		// The tail is shorter than a marker: whatever is found here
		// ends in p, and was not counted before.
		w.hits[s.layer][i] += bytes.Count(buf, m)
	}
	keep := len(w.markers[0]) - 1
	if len(buf) > keep {
		buf = buf[len(buf)-keep:]
	}
	s.tail = append(s.tail[:0], buf...)
}

// plainConn is a Noise session whose plaintext goes through the tap.
type plainConn struct {
	sec.SecureConn
	out, in *tapStream
}

func (c *plainConn) Write(p []byte) (int, error) {
	n, err := c.SecureConn.Write(p)
	c.out.feed(p[:n])
	return n, err
}

func (c *plainConn) Read(p []byte) (int, error) {
	n, err := c.SecureConn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

// rawConn is the socket under Noise, through the tap.
type rawConn struct {
	net.Conn
	out, in *tapStream
}

func (c *rawConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.feed(p[:n])
	return n, err
}

func (c *rawConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

// seiMarker returns an H.264 SEI NAL unit (user data unregistered) that
// carries marker: what an encoder puts in a stream to tag it, and what the
// packager keeps in the chunk's payload like any other NAL unit. The
// marker must have no zero bytes (no emulation prevention needed).
func seiMarker(marker []byte) []byte {
	uuid := []byte("peerscope-wire!!") // 16 bytes, none zero
	payload := append(append([]byte{}, uuid...), marker...)
	if len(payload) >= 255 || bytes.IndexByte(payload, 0) >= 0 {
		panic("seiMarker: marker too long or with a zero byte")
	}
	nal := []byte{6, 5, byte(len(payload))} // SEI, user_data_unregistered, size
	nal = append(nal, payload...)
	return append(nal, 0x80) // rbsp trailing bits
}

// markedSource plays src with an SEI NAL unit carrying a marker before
// the first slice of every video access unit.
type markedSource struct {
	src media.Source
	sei []byte
}

func (m markedSource) Run(ctx context.Context, sink media.Sink) error {
	return m.src.Run(ctx, &markedSink{Sink: sink, sei: m.sei})
}

type markedSink struct {
	media.Sink
	sei   []byte
	video int
}

func (s *markedSink) Tracks(tracks []media.Track) error {
	for _, tr := range tracks {
		if tr.IsVideo() {
			s.video = tr.ID
		}
	}
	return s.Sink.Tracks(tracks)
}

func (s *markedSink) Sample(smp media.Sample) error {
	if smp.Track != s.video {
		return s.Sink.Sample(smp)
	}
	nalus := make([][]byte, 0, len(smp.NALUs)+1)
	placed := false
	for _, n := range smp.NALUs {
		if len(n) > 0 && !placed && (n[0]&0x1f == 1 || n[0]&0x1f == 5) { // the first slice
			nalus = append(nalus, s.sei)
			placed = true
		}
		nalus = append(nalus, n)
	}
	if !placed {
		nalus = append(nalus, s.sei)
	}
	smp.NALUs = nalus
	return s.Sink.Sample(smp)
}

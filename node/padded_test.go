package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/node"
)

// padBytes is what the padder adds to every chunk it forwards.
const padBytes = 1 << 20

// padder is a host whose tree streams pad every chunk message they carry
// once on is set: chunks alternately get an unknown field of padBytes
// inside the chunk (the signature still verifies: it covers the known
// fields) and around it, in the tree message.
type padder struct {
	host.Host
	on     atomic.Bool
	padded atomic.Int64
}

func (h *padder) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &paddingStream{Stream: s, h: h}, nil
}

type paddingStream struct {
	network.Stream
	h   *padder
	buf []byte // bytes written, not yet a whole frame
}

// Write takes the writer's bytes (frames, cut anywhere), and writes each
// whole frame, padded if it carries a chunk.
func (s *paddingStream) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		n, k := binary.Uvarint(s.buf)
		if k <= 0 || uint64(len(s.buf)-k) < n {
			return len(p), nil
		}
		msg := s.buf[k : k+int(n)]
		out := msg
		if s.h.on.Load() {
			out = s.pad(msg)
		}
		frame := binary.AppendUvarint(nil, uint64(len(out)))
		if _, err := s.Stream.Write(append(frame, out...)); err != nil {
			return 0, err
		}
		s.buf = s.buf[k+int(n):]
	}
}

func (s *paddingStream) pad(msg []byte) []byte {
	var out []byte
	chunked := false
	for rest := msg; len(rest) > 0; {
		num, typ, n := protowire.ConsumeField(rest)
		if n < 0 {
			return msg
		}
		field := rest[:n]
		rest = rest[n:]
		if num != 2 || typ != protowire.BytesType {
			out = append(out, field...)
			continue
		}
		chunked = true
		_, _, tagLen := protowire.ConsumeTag(field)
		c, _ := protowire.ConsumeBytes(field[tagLen:])
		if s.h.padded.Load()%2 == 0 {
			c = protowire.AppendBytes(protowire.AppendTag(bytes.Clone(c), 99, protowire.BytesType), make([]byte, padBytes))
		}
		out = protowire.AppendBytes(protowire.AppendTag(out, 2, protowire.BytesType), c)
	}
	if !chunked {
		return msg
	}
	if s.h.padded.Add(1)%2 == 0 { // the other half: padding around the chunk
		out = protowire.AppendBytes(protowire.AppendTag(out, 99, protowire.BytesType), make([]byte, padBytes))
	}
	return out
}

// frameSizes records, at the child below the viewer, the largest non-media
// part of any chunk frame it received.
type frameSizes struct {
	mu         sync.Mutex
	chunks     int
	maxControl int
}

func (f *frameSizes) Sent(mesh.PeerID, *mesh.Message, int, int) {}
func (f *frameSizes) Received(_ mesh.PeerID, m *mesh.Message, _, control int) {
	if m.Chunk == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunks++
	f.maxControl = max(f.maxControl, control)
}

func (f *frameSizes) get() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chunks, f.maxControl
}

// TestPaddedRelay: a relay that pads every chunk it forwards with 1 MiB
// (alternately inside the chunk and around it in the tree message) has a
// real viewer node below it, which relays to a child. Once the padding
// starts the viewer bans the padder as it would a forger (every relay
// below would pay for the padding again: mesh's EvPadded), goes to the
// broadcaster and plays on; its heap stays where it was (it kept the
// chunks, not the padding) and the child got only canonical chunks (no
// frame carries more than a few hundred bytes besides the media).
//
// Seen failing with ee58606's decoding (chunk.Decode keeping a padded
// chunk's bytes, payload aliasing them) and with the tree's old read path
// (mesh.ReadFrame: a chunk padded around keeps the whole frame): see the
// commit that added it. Since mesh 1.2.0 bans padders, that part is what
// the few padded chunks before the ban cost; without the ban (mesh from
// before 1c5ca63) the viewer stays under the padder for good.
func TestPaddedRelay(t *testing.T) {
	e2e(t)
	root := newNode(t, node.Config{Slots: 1})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "padded", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	id := b.ID()
	proto := protocol.ID(string(p2p.ProtocolID) + "/" + id)
	rootInfo := p2p.Info(root.Host())
	tree := func(h host.Host, slots int, opts ...p2p.Option) *p2p.Tree {
		cfg := mesh.DefaultConfig()
		cfg.Root, cfg.Broadcast, cfg.Slots, cfg.Counters = rootInfo, id, slots, chat.TreeCounters()
		tr, err := p2p.New(h, cfg, append([]p2p.Option{p2p.WithProtocol(proto)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	treeDepth := func(tr *p2p.Tree) int {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, _, err := tr.Status(ctx)
		if err != nil || st.State != "attached" {
			return -1
		}
		return st.Depth
	}

	// The padder takes the broadcaster's one slot; the viewer, sent down
	// to it, relays to one child.
	pad := &padder{Host: testutil.TCPHost(t)}
	padTree := tree(pad, 1)
	waitFor(t, 30*time.Second, "the padder under the broadcaster", func() bool { return treeDepth(padTree) == 1 })
	v := newNode(t, node.Config{Slots: 1})
	w, err := v.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the viewer under the padder", func() bool { return depth(t, w) == 2 })
	sizes := &frameSizes{}
	child := tree(testutil.TCPHost(t), 0, p2p.WithMetrics(sizes))
	child.AddCandidates(p2p.Info(v.Host()))
	waitFor(t, 30*time.Second, "the child under the viewer", func() bool { return treeDepth(child) == 3 })
	waitFor(t, 30*time.Second, "20 chunks at the viewer", func() bool { return received(t, w) >= 20 })

	// What the viewer's windows (the tree's, LL-HLS's 30 s, WHEP's GOP)
	// gain in 12 s of honest chunks is under a megabyte; each padded chunk
	// kept would be one more.
	before, got := heapInUse(), received(t, w)
	pad.on.Store(true)
	waitFor(t, 30*time.Second, "a padded chunk through the padder", func() bool { return pad.padded.Load() >= 1 })
	waitFor(t, 60*time.Second, "the viewer away from the padder, 60 chunks on", func() bool {
		st := status(t, w)
		return st.Parent != pad.ID() && st.Received >= got+60
	})
	grew := int64(heapInUse()) - int64(before)
	n := pad.padded.Load()
	t.Logf("%d chunks padded with %d MiB each before the ban; the viewer's process heap %+.1f MB", n, padBytes>>20, float64(grew)/1e6)
	if grew > 16<<20 {
		t.Errorf("the heap grew %.1f MB over %d padded chunks: the padding is kept", float64(grew)/1e6, n)
	}
	chunks, ctl := sizes.get()
	t.Logf("the child received %d chunk frames, at most %d bytes besides the media", chunks, ctl)
	if ctl > 4<<10 {
		t.Errorf("the viewer forwarded a chunk frame with %d bytes besides the media: the padding", ctl)
	}
	if chunks == 0 {
		t.Error("the child received nothing")
	}
}

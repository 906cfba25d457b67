package p2p_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// TestStreamCapPerPeer: one peer opening twenty streams on a tree, each
// left hanging inside a frame length, gets four; the other sixteen are
// reset at once. (Before the cap every one was held, each with a reader
// goroutine, for as long as the peer liked.)
func TestStreamCapPerPeer(t *testing.T) {
	th := newHost(t)
	tree := startPeer(t, th, testConfig(p2p.Info(th), 2))
	attacker := newHost(t)
	if err := attacker.Connect(t.Context(), peer.AddrInfo{ID: th.ID(), Addrs: th.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var reset atomic.Int32
	for range 20 {
		s, err := attacker.NewStream(t.Context(), th.ID(), p2p.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte{0x80}); err != nil { // a length that never ends
			t.Fatal(err)
		}
		go func(s network.Stream) {
			var b [1]byte
			if _, err := s.Read(b[:]); err != nil {
				reset.Add(1)
			}
		}(s)
	}
	waitFor(t, 10*time.Second, "16 of the 20 streams reset", func() bool { return reset.Load() == 16 })
	if got := tree.n.InboundStreams(); got != 4 {
		t.Fatalf("the tree holds %d inbound streams, want 4", got)
	}
}

// TestPaddedMessageNotKept: a chunk message a relay padded with an unknown
// field of 1 MiB decodes to a chunk that holds its own bytes, not the
// frame: what the window and the players keep is the chunk. (mesh.ReadFrame
// alone keeps the whole frame under the chunk's payload: the test checks
// that too, as its reference.)
func TestPaddedMessageNotKept(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	c := &chunk.Chunk{Broadcast: broadcast, Seq: 7, Wallclock: time.Now().UnixNano(), Flags: chunk.FlagKeyframe,
		Payload: bytes.Repeat([]byte{9}, 60<<10)}
	c.Signature = ed25519.Sign(priv, c.SigningBytes())
	msg := (&mesh.Message{Type: mesh.MsgChunk, Chunk: c}).Marshal(nil)
	padded := protowire.AppendTag(msg, 99, protowire.BytesType)
	padded = protowire.AppendBytes(padded, make([]byte, 1<<20))
	var frame bytes.Buffer
	if err := pbwire.WriteFrame(&frame, padded); err != nil {
		t.Fatal(err)
	}
	raw := frame.Bytes()

	var ref mesh.Message
	if err := mesh.ReadFrame(bufio.NewReader(bytes.NewReader(raw)), &ref); err != nil {
		t.Fatal(err)
	}
	if cap(ref.Chunk.Payload) < 1<<20 {
		t.Fatalf("the reference decoder no longer keeps the frame (payload cap %d): the test checks nothing", cap(ref.Chunk.Payload))
	}

	m, err := p2p.ReadMessage(&network.NullScope{}, bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Chunk
	if kept := max(cap(got.Payload), cap(got.Signature)); kept > 2*c.Size() {
		t.Fatalf("the chunk keeps %d bytes under it; its encoding is %d", kept, c.Size())
	}
	if !bytes.Equal(got.Bytes(), c.Bytes()) {
		t.Fatal("the chunk forwarded is not the canonical encoding")
	}
	if err := got.Verify(broadcast, pub); err != nil {
		t.Fatalf("the copied chunk does not verify: %v", err)
	}
}

// TestFrameCharged: a frame being read is charged to the resource
// manager, under the tree's service, from its length prefix until it is
// decoded; its buffer grows only as far as the bytes that came.
func TestFrameCharged(t *testing.T) {
	th, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics(), p2plimit.Option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = th.Close() })
	startPeer(t, th, testConfig(p2p.Info(th), 2))
	attacker := newHost(t)
	if err := attacker.Connect(t.Context(), peer.AddrInfo{ID: th.ID(), Addrs: th.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := attacker.NewStream(t.Context(), th.ID(), p2p.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	const claimed = 4 << 20
	if _, err := s.Write(append(binary.AppendUvarint(nil, claimed), make([]byte, 100<<10)...)); err != nil {
		t.Fatal(err)
	}
	charged := func() int64 {
		var mem int64
		_ = th.Network().ResourceManager().ViewService(p2plimit.ServiceMesh, func(s network.ServiceScope) error {
			mem = s.Stat().Memory
			return nil
		})
		return mem
	}
	waitFor(t, 10*time.Second, "the frame charged to the tree's service", func() bool { return charged() >= claimed })
	_ = s.Reset()
	waitFor(t, 10*time.Second, "the charge released once the stream is gone", func() bool { return charged() == 0 })
}

// TestTreeLinksProtected: the connections to a node's parent and children
// are protected from the connection manager, which would otherwise trim
// them first when a flood of idle connections passes its high water (they
// are as old and as untagged as any); Close lifts it.
func TestTreeLinksProtected(t *testing.T) {
	rh := newHost(t)
	root := startPeer(t, rh, testConfig(p2p.Info(rh), 1))
	vh := newHost(t)
	viewer := startPeer(t, vh, testConfig(p2p.Info(rh), 0))
	waitFor(t, 10*time.Second, "the viewer attached", func() bool { return viewer.status(t).State == "attached" })
	tag := "peerscope-tree " + string(p2p.ProtocolID)
	if !rh.ConnManager().IsProtected(vh.ID(), tag) || !vh.ConnManager().IsProtected(rh.ID(), tag) {
		t.Fatal("the link between parent and child is not protected")
	}
	_ = root.n.Close()
	if rh.ConnManager().IsProtected(vh.ID(), tag) {
		t.Fatal("still protected after Close")
	}
}

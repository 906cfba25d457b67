package p2p_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// TestIdleWriterClosed: a peer the node answered once (a ping) gets a
// writer; after a minute of the node's clock with nothing more to send, the
// writer closes its stream cleanly (EOF at the peer, not a reset).
func TestIdleWriterClosed(t *testing.T) {
	ah, bh := newHost(t), newHost(t)
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	info := p2p.Info(ah)
	a := startPeerWith(t, ah, testConfig(info, 1), p2p.WithClock(clk))

	got := make(chan *mesh.Message, 1)
	ended := make(chan error, 1)
	bh.SetStreamHandler(p2p.ProtocolID, func(s network.Stream) {
		br := bufio.NewReader(s)
		for {
			var m mesh.Message
			if err := mesh.ReadFrame(br, &m); err != nil {
				ended <- err
				return
			}
			select {
			case got <- &m:
			default:
			}
		}
	})
	if err := bh.Connect(context.Background(), peer.AddrInfo{ID: ah.ID(), Addrs: ah.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := bh.NewStream(context.Background(), ah.ID(), p2p.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(mesh.AppendFrame(nil, &mesh.Message{Type: mesh.MsgPing, Time: 1})); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Type != mesh.MsgPong {
			t.Fatalf("got %v, want a pong", m.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
	if n := a.n.Writers(); n != 1 {
		t.Fatalf("%d writers, want 1", n)
	}
	clk.Advance(30 * time.Second)
	if n := a.n.Writers(); n != 1 {
		t.Fatalf("%d writers after 30 s, want 1", n)
	}
	clk.Advance(31 * time.Second)
	waitFor(t, 10*time.Second, "the idle writer to close", func() bool { return a.n.Writers() == 0 })
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the peer's read ended with %v, want EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not closed")
	}
}

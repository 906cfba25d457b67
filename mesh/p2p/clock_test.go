package p2p_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// fakeClock is a p2p.Clock that moves only when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(time.Duration) p2p.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.tickers = append(c.tickers, ch)
	return fakeTicker(ch)
}

// advance moves the clock on and fires every ticker once.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now, tickers := c.now, c.tickers
	c.mu.Unlock()
	for _, ch := range tickers {
		select {
		case ch <- now:
		default:
		}
	}
}

type fakeTicker chan time.Time

func (t fakeTicker) C() <-chan time.Time { return t }
func (t fakeTicker) Stop()               {}

// TestIdleWriterClosed: a peer the node answered once (a ping) gets a
// writer; after a minute of the node's clock with nothing more to send, the
// writer closes its stream cleanly (EOF at the peer, not a reset).
func TestIdleWriterClosed(t *testing.T) {
	ah, bh := newHost(t), newHost(t)
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	info := p2p.Info(ah)
	a := startPeerWith(t, ah, testConfig(info, 1), p2p.WithClock(clock))

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
	clock.advance(30 * time.Second)
	if n := a.n.Writers(); n != 1 {
		t.Fatalf("%d writers after 30 s, want 1", n)
	}
	clock.advance(31 * time.Second)
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

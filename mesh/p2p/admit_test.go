package p2p_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/mesh/p2p"
)

// allowList is a WithAdmit for the tests: the peers let in, changeable.
type allowList struct {
	mu sync.Mutex
	ok map[peer.ID]bool
}

func (a *allowList) admit(p peer.ID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ok[p] {
		return errors.New("not on the list")
	}
	return nil
}

func (a *allowList) set(p peer.ID, ok bool) {
	a.mu.Lock()
	a.ok[p] = ok
	a.mu.Unlock()
}

// TestAdmit: a root whose WithAdmit lets in one viewer of two feeds that
// one, while the other never gets a parent nor a chunk; once the member is
// refused (Refuse, as a roster update does), it is put out and gets
// nothing more, and the introduce hook ran before each stream it opened.
func TestAdmit(t *testing.T) {
	rh := newHost(t)
	rootInfo := p2p.Info(rh)
	member, outsider := newHost(t), newHost(t)
	list := &allowList{ok: map[peer.ID]bool{member.ID(): true}}
	root := startPeerWith(t, rh, testConfig(rootInfo, 4), p2p.WithAdmit(list.admit))
	var introduced sync.Map
	m := startPeerWith(t, member, testConfig(rootInfo, 0), p2p.WithIntroduce(func(_ context.Context, p peer.ID) error {
		introduced.Store(p, true)
		return nil
	}))
	o := startPeer(t, outsider, testConfig(rootInfo, 0))
	pub := publish(t, root, 50*time.Millisecond)
	defer pub.halt()
	waitFor(t, 20*time.Second, "the member's chunks", func() bool { return m.count() >= 20 })
	if _, ok := introduced.Load(rh.ID()); !ok {
		t.Fatal("the member opened a stream to the root without introducing itself")
	}
	if n := o.count(); n != 0 {
		t.Fatalf("the outsider got %d chunks", n)
	}
	if st := o.status(t); st.Parent != "" {
		t.Fatalf("the outsider has a parent: %s", st.Parent)
	}
	if st := root.status(t); len(st.Children) != 1 {
		t.Fatalf("root's children %v, want the member only", st.Children)
	}

	list.set(member.ID(), false)
	root.n.Refuse(member.ID())
	waitFor(t, 20*time.Second, "the member put out", func() bool { return len(root.status(t).Children) == 0 })
	had := m.count()
	at := pub.published()
	waitFor(t, 20*time.Second, "ten more chunks published", func() bool { return pub.published() >= at+10 })
	if got := m.count(); got > had+2 { // what was in flight
		t.Fatalf("the refused member got %d more chunks", got-had)
	}
}

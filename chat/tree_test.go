package chat

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// machineTree is a one-node tree: the broadcaster's own mesh machine,
// configured with TreeCounters, behind the Tree interface.
type machineTree struct{ m *mesh.Machine }

// treeNow is the machineTree's clock.
var treeNow = time.Unix(1000, 0)

func (t machineTree) Count(name string, n uint64) error    { return t.m.Count(name, n) }
func (t machineTree) SetGauge(name string, v uint64) error { return t.m.SetGauge(name, v) }
func (t machineTree) Status(context.Context) (mesh.Status, mesh.Stats, error) {
	return t.m.Status(), t.m.Stats(), nil
}
func (t machineTree) LiveEdge(seq uint64) { t.m.LiveEdge(treeNow, seq) }

func TestTreeLink(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	cfg := mesh.DefaultConfig()
	cfg.Self, cfg.Root = mesh.PeerInfo{ID: "root"}, mesh.PeerInfo{ID: "root"}
	cfg.Broadcast, cfg.Key, cfg.Slots = "b", pub, 2
	cfg.Counters = TreeCounters()
	m, err := mesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A child whose subtree has 2 nodes and 3 browsers reports 2500
	// hearts: more than its subtree may claim.
	now := time.Unix(1000, 0)
	m.Tick(now)
	if err := m.Step(now, "child", &mesh.Message{Type: mesh.MsgAttach, Capacity: 2, Free: 2}); err != nil {
		t.Fatal(err)
	}
	status := &mesh.Message{Type: mesh.MsgStatus, Capacity: 2, Subtree: 2,
		Counters: []mesh.CounterValue{{Name: TreeHearts, Value: 2500}, {Name: TreeWeb, Value: 3}}}
	if err := m.Step(now, "child", status); err != nil {
		t.Fatal(err)
	}

	l := NewTreeLink(machineTree{m})
	var room Config
	l.Configure(&room)
	room.Tap(7, time.Time{})
	room.Tap(0, time.Time{})
	watched := time.Unix(1000, 0).Add(-3 * time.Second) // a frame 3 s behind
	room.Tap(4, watched)
	l.ReportBrowsers(0) // no browser: nothing to add
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, w, h := room.Audience(), room.WebViewers(), room.Hearts(); a != 2 || w != 3 || h.Total != 2*treeHeartsPerNode+11 {
		t.Fatalf("audience %d, web %d, hearts %d; want 2, 3 and %d", a, w, h.Total, 2*treeHeartsPerNode+11)
	}
	// The 4 taps with a moment are counted by their second too, and the
	// broadcaster reads that second back from the counter.
	h := l.HeartSums()
	for k, n := range h.Moments {
		if want := map[bool]uint64{true: 4}[k == momentIndex(watched)]; n != want {
			t.Fatalf("moment counter %d: %d, want %d", k, n, want)
		}
	}
	if got := momentOf(time.Unix(1001, 0), momentIndex(watched)); !got.Equal(watched) {
		t.Fatalf("the moment counter of %v, read a second after, names %v", watched, got)
	}
	// The broadcaster's first browser is the broadcaster's own page.
	l.ReportBrowsers(1)
	_ = l.Refresh(context.Background())
	if w := l.WebViewers(); w != 3 {
		t.Fatalf("one browser at the broadcaster made web %d, want 3", w)
	}
	l.ReportBrowsers(3)
	_ = l.Refresh(context.Background())
	if w := l.WebViewers(); w != 5 {
		t.Fatalf("three browsers at the broadcaster made web %d, want 5", w)
	}
}

// TestTreeLinkEdge: on the broadcaster, the link reads the live edge from
// its tree (1 + the newest sequence number published, none before the
// first chunk) for the room's beats; on a viewer, the room's LiveEdge goes
// to the tree.
func TestTreeLinkEdge(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	cfg := mesh.DefaultConfig()
	cfg.Self, cfg.Root = mesh.PeerInfo{ID: "root"}, mesh.PeerInfo{ID: "root"}
	cfg.Broadcast, cfg.Key, cfg.Slots = "b", pub, 2
	m, err := mesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tick(treeNow)
	l := NewTreeLink(machineTree{m})
	var room Config
	l.Configure(&room)
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := room.Edge(); e != 0 {
		t.Fatalf("edge %d before the first chunk, want 0", e)
	}
	for _, seq := range []uint64{40, 41} {
		if err := m.Publish(treeNow, &chunk.Chunk{Broadcast: "b", Seq: seq, Flags: chunk.FlagKeyframe, Payload: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := room.Edge(); e != 42 {
		t.Fatalf("edge %d after chunk 41, want 42", e)
	}
	if room.LiveEdge == nil {
		t.Fatal("the link gives the room no LiveEdge")
	}
}

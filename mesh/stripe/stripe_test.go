package stripe_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/mesh/stripe"
)

const broadcast = "test-broadcast"

const base = p2p.ProtocolID + "/" + broadcast

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// member is a host in a striped broadcast and the chunks it was handed.
type member struct {
	h   host.Host
	g   *stripe.Group
	mu  sync.Mutex
	got map[uint64]*chunk.Chunk
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

func config(root mesh.PeerInfo, slots int) mesh.Config {
	cfg := mesh.DefaultConfig()
	cfg.Root = root
	cfg.Broadcast = broadcast
	cfg.Slots = slots
	cfg.ChunkInterval = 50 * time.Millisecond
	return cfg
}

func join(t *testing.T, h host.Host, cfg mesh.Config, spec stripe.Spec, opts ...stripe.Option) *member {
	t.Helper()
	m := &member{h: h, got: make(map[uint64]*chunk.Chunk)}
	g, err := stripe.New(h, cfg, spec, base, func(c *chunk.Chunk) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, dup := m.got[c.Seq]; dup {
			t.Errorf("seq %d handed on twice", c.Seq)
		}
		m.got[c.Seq] = c
	}, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.g = g
	t.Cleanup(func() { _ = g.Close() })
	return m
}

// seeded returns a host whose identity is made from seed: the same peer
// ID, so the same stripe, in every run.
func seeded(t *testing.T, seed byte) host.Host {
	priv, _ := testutil.SeededPeer(seed)
	return testutil.TCPHost(t, libp2p.Identity(priv))
}

// swarm starts a broadcaster with rootSlots whole-stream slots and n
// viewers with two each, all knowing the broadcaster, and waits until every
// viewer is in every tree. The viewers' identities are fixed, and among
// ten of them every stripe of six has a relay (checked).
func swarm(t *testing.T, spec stripe.Spec, rootSlots, n int) (*member, []*member) {
	rh := seeded(t, 100)
	rootInfo := p2p.Info(rh)
	rcfg := config(rootInfo, rootSlots)
	rcfg.Self = rootInfo
	root := join(t, rh, rcfg, spec)
	var vs []*member
	relays := make([]int, spec.Trees())
	for i := range n {
		// Without lending: a relay feeds its own stripe's tree only.
		v := join(t, seeded(t, byte(6+i)), config(rootInfo, 2), spec, stripe.WithLendEvery(-1))
		v.g.AddCandidates(rootInfo)
		vs = append(vs, v)
		relays[v.g.Stripe()]++
	}
	if n >= 10 && slices.Contains(relays, 0) {
		t.Fatalf("the fixed identities leave a stripe without a relay: %v", relays)
	}
	for i, v := range vs {
		testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("viewer %d to attach in every tree", i), func() bool {
			for _, tr := range v.g.Trees() {
				if st, _, err := tr.Status(context.Background()); err != nil || st.Depth < 1 {
					return false
				}
			}
			return true
		})
	}
	return root, vs
}

// publishN publishes chunks 0..n-1 striped by spec, one every 50 ms.
func publishN(t *testing.T, root *member, spec stripe.Spec, n int) {
	t.Helper()
	signer, err := p2p.HostSigner(root.h)
	if err != nil {
		t.Fatal(err)
	}
	for seq := range uint64(n) {
		c := &chunk.Chunk{Broadcast: broadcast, Seq: seq, Wallclock: time.Now().UnixNano(), Flags: chunk.FlagKeyframe,
			Data: uint32(spec.Data), Parity: uint32(spec.Parity), Payload: bytes.Repeat([]byte{byte(seq), 1, 2}, 1000+int(seq))}
		signer.Sign(c)
		if err := root.g.Publish(context.Background(), c); err != nil {
			t.Fatalf("publish %d: %v", seq, err)
		}
		time.Sleep(50 * time.Millisecond) // the stream's cadence, not a wait for a condition
	}
}

func key(t *testing.T, h host.Host) ed25519.PublicKey {
	k, err := p2p.PublicKey(p2p.MeshID(h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestStripedBroadcastDelivers: over real hosts, a 4+2 striped broadcast
// reaches every viewer whole: each chunk assembled once, the broadcaster's
// bytes and signature; each viewer relays in its own stripe only.
func TestStripedBroadcastDelivers(t *testing.T) {
	spec := stripe.Spec{Data: 4, Parity: 2}
	root, vs := swarm(t, spec, 3, 10)
	const chunks = 60
	publishN(t, root, spec, chunks)
	for i, v := range vs {
		testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("viewer %d to assemble every chunk", i), func() bool { return v.count() == chunks })
	}
	pub := key(t, root.h)
	for i, v := range vs {
		v.mu.Lock()
		for seq, c := range v.got {
			if err := c.Verify(broadcast, pub); err != nil || c.IsFragment() {
				t.Errorf("viewer %d seq %d: %v", i, seq, err)
			}
			if want := bytes.Repeat([]byte{byte(seq), 1, 2}, 1000+int(seq)); !bytes.Equal(c.Payload, want) {
				t.Errorf("viewer %d seq %d: another payload", i, seq)
			}
		}
		v.mu.Unlock()
		own := v.g.Stripe()
		for k, tr := range v.g.Trees() {
			st, _, err := tr.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if k != own && len(st.Children) > 0 {
				t.Errorf("viewer %d (stripe %d) feeds %d children in tree %d", i, own, len(st.Children), k)
			}
		}
	}
	if a, ab := vs[0].g.Assembled(); a != chunks || ab != 0 {
		t.Errorf("viewer 0 assembled %d and gave up %d, want %d and 0", a, ab, chunks)
	}
}

// TestStripedPlaysOnAnyN: a viewer that has lost two of its six trees (it
// left them) still gets every chunk, from the four left; with three lost it
// gets none.
func TestStripedPlaysOnAnyN(t *testing.T) {
	spec := stripe.Spec{Data: 4, Parity: 2}
	root, vs := swarm(t, spec, 6, 3) // four fragment slots in each tree: room for all three
	two, three := vs[0], vs[1]
	for _, k := range []int{1, 4} {
		_ = two.g.Trees()[k].Close()
	}
	for _, k := range []int{0, 2, 5} {
		_ = three.g.Trees()[k].Close()
	}
	const chunks = 30
	publishN(t, root, spec, chunks)
	testutil.WaitFor(t, 20*time.Second, "the viewer with four trees to assemble every chunk", func() bool { return two.count() == chunks })
	testutil.WaitFor(t, 20*time.Second, "the whole viewer to assemble every chunk", func() bool { return vs[2].count() == chunks })
	if n := three.count(); n != 0 {
		t.Fatalf("a viewer with three of six trees assembled %d chunks", n)
	}
}

func TestSlotsAndStripes(t *testing.T) {
	spec := stripe.Spec{Data: 4, Parity: 1}
	if got := stripe.Slots(spec, 3, true, "root"); fmt.Sprint(got) != "[3 3 2 2 2]" {
		t.Errorf("the broadcaster's 3 slots over 4+1: %v", got)
	}
	got := stripe.Slots(spec, 2, false, "viewer")
	sum := 0
	for k, s := range got {
		sum += s
		if s != 0 && k != stripe.Of("viewer", 5) {
			t.Errorf("slots in tree %d, not the viewer's stripe", k)
		}
	}
	if sum != 8 {
		t.Errorf("a viewer's 2 whole slots gave %d fragment slots, want 8", sum)
	}
	seen := make([]int, 6)
	for i := range 600 {
		seen[stripe.Of(mesh.PeerID(fmt.Sprint("peer", i)), 6)]++
	}
	for k, n := range seen {
		if n < 60 || n > 140 {
			t.Errorf("stripe %d got %d of 600 peers", k, n)
		}
	}
	for _, bad := range []stripe.Spec{{0, 1}, {4, -1}, {12, 5}} {
		if bad.Check() == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestLendingFillsATreeWithoutRelays: ten viewers none of whose peer IDs
// hashes to stripe 5, so no relay's own slots are in tree 5, where the
// broadcaster has two: the relays lend spare slots there, and every viewer
// gets into every tree. (Without lending, eight stay out of tree 5; with
// lending but without the broadcaster moving a slot to the tree short of
// room, one viewer stayed out in two runs of six.)
func TestLendingFillsATreeWithoutRelays(t *testing.T) {
	spec := stripe.Spec{Data: 4, Parity: 2}
	rh := seeded(t, 100)
	rootInfo := p2p.Info(rh)
	rcfg := config(rootInfo, 3)
	rcfg.Self = rootInfo
	join(t, rh, rcfg, spec)
	var vs []*member
	for i := range 10 {
		v := join(t, seeded(t, byte(101+i)), config(rootInfo, 2), spec, stripe.WithLendEvery(300*time.Millisecond))
		v.g.AddCandidates(rootInfo)
		if v.g.Stripe() == 5 {
			t.Fatalf("viewer %d relays in stripe 5: pick other identities", i)
		}
		vs = append(vs, v)
	}
	start := time.Now()
	defer func() {
		t.Logf("every viewer in tree 5 after %v", time.Since(start))
		if !t.Failed() {
			return
		}
		for i, v := range vs {
			line := fmt.Sprintf("viewer %d stripe %d:", i, v.g.Stripe())
			for k, tr := range v.g.Trees() {
				st, _, _ := tr.Status(context.Background())
				line += fmt.Sprintf(" t%d[d%d c%d r%d]", k, st.Depth, len(st.Children), len(st.Room))
			}
			t.Log(line)
		}
	}()
	for i, v := range vs {
		testutil.WaitFor(t, 90*time.Second, fmt.Sprintf("viewer %d in tree 5", i), func() bool {
			st, _, err := v.g.Trees()[5].Status(context.Background())
			return err == nil && st.Depth >= 1
		})
	}
}

func TestLendPlan(t *testing.T) {
	// states makes the trees' states from children, lent, and which
	// trees it is in ("a") and at the top of ("t").
	states := func(children, lent []int, flags string) []stripe.TreeState {
		var out []stripe.TreeState
		for k := range children {
			out = append(out, stripe.State(children[k], flags[k] != '-', flags[k] == 't', lent[k]))
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		children, lent []int
		flags          string
		total          int
		roomBelow      bool
		want           string
	}{
		// Own tree (0) empty, 8 slots: one free slot lent in each other tree.
		{"spare", []int{0, 0, 0, 0}, []int{0, 0, 0, 0}, "aaaa", 8, false, "[0 1 1 1]"},
		// Lent slots all used: one more each, while 2 stay free at home.
		{"grow", []int{1, 1, 1, 1}, []int{0, 1, 1, 1}, "aaaa", 8, false, "[0 2 2 1]"},
		// A tree it is not in gets nothing.
		{"detached", []int{0, 0, 0, 0}, []int{0, 0, 0, 0}, "a-aa", 8, false, "[0 0 1 1]"},
		// Unused lent slots are taken back before lending again.
		{"unused", []int{0, 0, 0, 0}, []int{0, 3, 0, 0}, "aaaa", 8, false, "[0 1 1 1]"},
		// Home full, no room below: the tree lent most gives one back.
		{"reclaim", []int{4, 1, 3, 0}, []int{0, 1, 3, 0}, "aaaa", 8, false, "[0 1 2 0]"},
		// Between: keeps what is used, lends nothing more.
		{"hold", []int{4, 1, 1, 0}, []int{0, 1, 1, 0}, "aaaa", 8, false, "[0 1 1 0]"},
		// Home full, room below, at the top of tree 2: one idle slot there.
		{"top", []int{8, 0, 0, 0}, []int{0, 0, 0, 0}, "aata", 8, true, "[0 0 1 0]"},
		// The same without room below: nothing.
		{"top-no-room", []int{8, 0, 0, 0}, []int{0, 0, 0, 0}, "aata", 8, false, "[0 0 0 0]"},
		// At the top with its idle slot not taken: no second one.
		{"top-idle", []int{7, 0, 0, 0}, []int{0, 0, 1, 0}, "aata", 8, true, "[0 0 1 0]"},
	} {
		got := fmt.Sprint(stripe.Plan(0, tc.total, states(tc.children, tc.lent, tc.flags), tc.roomBelow))
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestRedealPlan(t *testing.T) {
	for _, tc := range []struct {
		slots, room []int
		want        string
	}{
		{[]int{2, 2, 2, 2, 2, 2}, []int{1, 3, 1, 1, 2, 0}, "[2 1 2 2 2 3]"}, // tree 5 short: from tree 1
		{[]int{2, 2, 2}, []int{1, 1, 0}, "[2 2 2]"},                         // nobody has room to give
		{[]int{1, 3, 2}, []int{5, 0, 2}, "[1 4 1]"},                         // tree 0 has room but one slot
		{[]int{2, 2, 2}, []int{4, 0, 0}, "[1 3 2]"},                         // two short: the donor keeps one
	} {
		if got := fmt.Sprint(stripe.RedealPlan(tc.slots, tc.room)); got != tc.want {
			t.Errorf("slots %v room %v: %s, want %s", tc.slots, tc.room, got, tc.want)
		}
	}
}

// TestTreeTakesItsOwnFragmentsOnly: tree k verifies fragment k of the
// broadcast's striping and nothing else the broadcaster signed. A relay
// that fed tree k another stripe's fragment, or the whole chunk, would
// have its children mark the seq as held in tree k and never get fragment
// k: a withholding the sequence numbers do not show.
func TestTreeTakesItsOwnFragmentsOnly(t *testing.T) {
	priv, pub, id := testutil.Broadcaster(t)
	signer, err := chunk.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(n, p uint32) *chunk.Chunk {
		c := &chunk.Chunk{Broadcast: id, Seq: 9, Data: n, Parity: p, Payload: bytes.Repeat([]byte{3}, 999)}
		signer.Sign(c)
		return c
	}
	whole := sign(4, 2)
	frags, _ := whole.Fragments()
	other, _ := sign(2, 1).Fragments()
	plain := sign(0, 0)
	verify := stripe.TreeVerify(stripe.Spec{Data: 4, Parity: 2}, 2, chunk.NewVerifier(id, pub).Verify)
	if err := verify(frags[2]); err != nil {
		t.Fatalf("tree 2's own fragment: %v", err)
	}
	for name, c := range map[string]*chunk.Chunk{
		"fragment 3":         frags[3],
		"the whole chunk":    whole,
		"an unstriped chunk": plain,
		"fragment 2 of 2+1":  other[2],
		"fragment 2 forged": func() *chunk.Chunk {
			c := frags[2].Clone()
			c.Payload = bytes.Repeat([]byte{4}, len(c.Payload))
			return c
		}(),
	} {
		if err := verify(c); err == nil {
			t.Errorf("tree 2 took %s", name)
		}
	}
}

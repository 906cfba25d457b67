package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/node"
)

// privateParty is a private broadcast's broadcaster and the nodes around
// it, all sharing one in-process mailbox.
type privateParty struct {
	mb   *mailbox.Memory
	root *node.Node
	b    *node.Broadcast
	gate chan struct{}
}

func privateNode(t *testing.T, mb mailbox.Mailbox, slots int) *node.Node {
	t.Helper()
	return newNode(t, node.Config{Slots: slots, Private: node.PrivateConfig{Mailbox: mb, Poll: 100 * time.Millisecond}})
}

func memberOf(account string, n *node.Node) node.Member {
	return node.Member{Account: account, Devices: []*audience.DeviceKey{n.DeviceKey()}}
}

// goPrivate starts a private broadcast of the sample (held back until the
// gate opens) for members, rekeying every rekey.
func goPrivate(t *testing.T, mb *mailbox.Memory, rootSlots int, rekey time.Duration, members ...node.Member) *privateParty {
	t.Helper()
	p := &privateParty{mb: mb, root: privateNode(t, mb, rootSlots), gate: make(chan struct{})}
	b, err := p.root.GoLive(t.Context(), node.LiveConfig{Title: "private", Source: gated{p.gate, sampleSource(t)},
		Private: &node.Audience{Members: members, RekeyEvery: rekey, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	p.b = b
	return p
}

func status(t *testing.T, b *node.Broadcast) node.TreeStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPrivateMembersPlay: a private broadcast of the sample through two
// members, one two hops deep, rekeying every 2 s: both play every part
// (their LL-HLS is plaintext CMAF), across epochs, with nothing that did
// not open.
func TestPrivateMembersPlay(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, bob := privateNode(t, mb, 1), privateNode(t, mb, node.NoRelay)
	p := goPrivate(t, mb, 1, 2*time.Second, memberOf("twitter:1", alice), memberOf("twitter:2", bob))
	var ws []*node.Broadcast
	for i, n := range []*node.Node{alice, bob} {
		w, err := n.Watch(t.Context(), p.b.Link())
		if err != nil {
			t.Fatal(err)
		}
		if !w.Private() {
			t.Fatal("a member's broadcast is not private")
		}
		waitFor(t, 30*time.Second, "member in the tree", func() bool { return depth(t, w) == i+1 })
		ws = append(ws, w)
	}
	first := p.b.Epoch()
	close(p.gate)
	// The deep member's LL-HLS, read by ffprobe while it is live, is the
	// whole clip with no gap across the rekeys.
	if _, err := exec.LookPath("ffprobe"); err == nil {
		waitFor(t, 30*time.Second, "the deep member's first parts", func() bool {
			resp, err := http.Get(ws[1].URLs().HLS)
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "#EXTINF")
		})
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error",
			"-show_entries", "stream=index,codec_name,codec_type:packet=stream_index,pts_time,dts_time,flags",
			"-of", "json", ws[1].URLs().HLS).Output()
		cancel()
		if err != nil {
			t.Fatalf("ffprobe: %v\n%s", err, out)
		}
		checkProbe(t, out)
	} else {
		t.Log("no ffprobe: the deep member's LL-HLS is not probed")
	}
	playedThrough(t, p.b, ws, first)
	// The deep member's LL-HLS serves plaintext CMAF.
	resp, err := http.Get(ws[1].URLs().HLS)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("member's LL-HLS: %s %s", resp.Status, body)
	}
}

// playedThrough waits for the sample's end at the members and the
// broadcaster, then checks that every member played every part, across a
// rekey from epoch first to the broadcaster's newest, with nothing that did
// not open.
func playedThrough(t *testing.T, b *node.Broadcast, ws []*node.Broadcast, first uint32) {
	t.Helper()
	for _, w := range append(ws, b) {
		select {
		case <-w.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the end never came")
		}
	}
	waitFor(t, 10*time.Second, "every part played", func() bool {
		for _, w := range ws {
			if st := status(t, w); st.Received < 45 {
				return false
			}
		}
		return true
	})
	if b.Epoch() == first {
		t.Fatalf("no rekey in the broadcast: still epoch %d", first)
	}
	for _, w := range ws {
		st := status(t, w)
		if st.Undecryptable != 0 {
			t.Fatalf("%d chunks did not open at a member", st.Undecryptable)
		}
		if st.Epoch != b.Epoch() {
			t.Fatalf("member's newest epoch %d, broadcaster's %d", st.Epoch, b.Epoch())
		}
	}
}

// attacker starts a tree node with no token on a private broadcast's tree
// protocol proto, under the broadcaster: what it is fed goes to the channel.
func attacker(t *testing.T, root *node.Node, id string, proto protocol.ID) (*p2p.Tree, chan *chunk.Chunk) {
	t.Helper()
	ah := testutil.TCPHost(t)
	info := p2p.Info(root.Host())
	cfg := mesh.DefaultConfig()
	cfg.Root, cfg.Broadcast, cfg.Slots = info, id, 2
	got := make(chan *chunk.Chunk, 1024)
	att, err := p2p.New(ah, cfg, p2p.WithProtocol(proto),
		p2p.WithDeliver(func(c *chunk.Chunk) {
			select {
			case got <- c:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = att.Close() })
	att.AddCandidates(info)
	return att, got
}

// TestPrivateRefusesOutsiders: a node the audience does not list is told
// at Watch that the broadcast is private (ErrNotMember, with the parent's
// reason), and a plain tree node that skips the presentation and attaches
// to the broadcaster's tree protocol directly gets no parent and no chunk
// while a member plays.
func TestPrivateRefusesOutsiders(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice := privateNode(t, mb, node.NoRelay)
	p := goPrivate(t, mb, 4, time.Minute, memberOf("twitter:1", alice))
	w, err := alice.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	outsider := privateNode(t, mb, 1)
	if _, err := outsider.Watch(t.Context(), p.b.Link()); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("an outsider's Watch: %v, want ErrNotMember", err)
	} else {
		t.Logf("outsider told: %v", err)
	}

	// Nor is the title answered to it.
	_, key, err := link.BroadcasterOf(p.b.ID())
	if err != nil {
		t.Fatal(err)
	}
	if a, err := announce.Fetch(t.Context(), outsider.Host(), peer.AddrInfo{ID: p.root.ID(), Addrs: p.root.Host().Addrs()}, p.b.ID(), key); err == nil {
		t.Fatalf("the outsider got the announcement: %q", a.Title)
	}

	// The attacker: a tree node on the broadcast's protocol, no token.
	att, got := attacker(t, p.root, p.b.ID(), p2p.ProtocolID+"/"+protocol.ID(p.b.ID()))

	waitFor(t, 30*time.Second, "the member in the tree", func() bool { return depth(t, w) == 1 })
	close(p.gate)
	waitFor(t, 30*time.Second, "the member's first 20 parts", func() bool { return status(t, w).Received >= 20 })
	st, _, err := att.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Parent != "" || len(got) != 0 {
		t.Fatalf("the attacker is in the tree: parent %q, %d chunks", st.Parent, len(got))
	}
	if rs := status(t, p.b); len(rs.Children) != 1 {
		t.Fatalf("the broadcaster has %d children, want the member only", len(rs.Children))
	}
}

// TestPrivateRemoval: a member removed mid-broadcast is put out of the
// tree by its parent, gets no keys for the epoch drawn at the removal,
// and is refused with the reason when it tries to watch again; the
// member who stays plays on into the new epoch.
func TestPrivateRemoval(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, carol := privateNode(t, mb, node.NoRelay), privateNode(t, mb, node.NoRelay)
	ma, mc := memberOf("twitter:1", alice), memberOf("twitter:3", carol)
	p := goPrivate(t, mb, 4, time.Hour, ma, mc)
	wa, err := alice.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	wc, err := carol.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "both in the tree", func() bool { return depth(t, wa) == 1 && depth(t, wc) == 1 })
	close(p.gate)
	waitFor(t, 30*time.Second, "carol plays", func() bool { return status(t, wc).Received >= 5 })
	old := p.b.Epoch()
	removedAt := time.Now()
	if err := p.b.SetAudience(t.Context(), []node.Member{ma}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "carol out of the tree", func() bool { return depth(t, wc) != 1 })
	t.Logf("carol put out %v after the removal", time.Since(removedAt).Round(time.Millisecond))
	newEpoch := p.b.Epoch()
	if newEpoch == old {
		t.Fatal("no new epoch at the removal")
	}
	waitFor(t, 30*time.Second, "alice holds the new epoch and plays on", func() bool {
		st := status(t, wa)
		return st.Epoch == newEpoch && st.Received >= 20
	})
	if st := status(t, wc); st.Epoch != old {
		t.Fatalf("carol holds epoch %d (new %d)", st.Epoch, newEpoch)
	}
	// What the tree carried after the switch (alice's store keeps it as it
	// came) does not open with anything carol holds; what it carried
	// before does.
	var before, after int
	var firstAfter time.Time
	for _, h := range alice.ReplayStore().Held(p.b.ID()) {
		c, err := alice.ReplayStore().Chunk(t.Context(), h.CID)
		if err != nil {
			t.Fatal(err)
		}
		have, err := node.OpenWithKeysOf(wc, c)
		switch {
		case c.Epoch == old && (!have || err != nil):
			t.Fatalf("carol cannot open chunk %d of the epoch she had: %v", c.Seq, err)
		case c.Epoch == old:
			before++
		case have && err == nil:
			t.Fatalf("carol opened chunk %d of epoch %d, sealed after her removal", c.Seq, c.Epoch)
		default:
			after++
			if w := time.Unix(0, c.Wallclock); c.Epoch == newEpoch && (firstAfter.IsZero() || w.Before(firstAfter)) {
				firstAfter = w
			}
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("chunks before the switch %d, after %d", before, after)
	}
	t.Logf("carol opens the %d chunks before the switch and none of the %d after; the first sealed in the new epoch was captured %v after the removal",
		before, after, firstAfter.Sub(removedAt).Round(time.Millisecond))
	_ = wc.Close()
	if _, err := carol.Watch(t.Context(), p.b.Link()); !errors.Is(err, node.ErrRefused) {
		t.Fatalf("the removed member's Watch: %v, want ErrRefused", err)
	} else {
		t.Logf("carol told: %v", err)
	}
}

// TestPrivateChat: members of a private broadcast chat on a topic whose
// name is not the broadcast's, sealed; an eavesdropper that knows the
// topic's name, is connected to every member and subscribes gets none of
// it (the members' routers keep it out of the topic), and nothing on the
// public topic.
func TestPrivateChat(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, bob := privateNode(t, mb, 2), privateNode(t, mb, 2)
	p := goPrivate(t, mb, 2, time.Minute, memberOf("twitter:1", alice), memberOf("twitter:2", bob))
	var ws []*node.Broadcast
	for _, n := range []*node.Node{alice, bob} {
		w, err := n.Watch(t.Context(), p.b.Link())
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	topic := ws[0].ChatTopic()
	if !strings.HasPrefix(topic, chat.PrivateTopicPrefix) || strings.Contains(topic, p.b.ID()) || topic != p.b.ChatTopic() {
		t.Fatalf("private topic %q (broadcaster's %q)", topic, p.b.ChatTopic())
	}

	eh := testutil.TCPHost(t)
	ps, err := pubsub.NewGossipSub(t.Context(), eh)
	if err != nil {
		t.Fatal(err)
	}
	var subs []*pubsub.Subscription
	for _, name := range []string{topic, chat.TopicPrefix + p.b.ID()} {
		tp, err := ps.Join(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tp.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	for _, n := range []*node.Node{p.root, alice, bob} {
		if err := eh.Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	heard := make(chan string, 64)
	for _, s := range subs {
		go func() {
			for {
				m, err := s.Next(t.Context())
				if err != nil {
					return
				}
				heard <- string(m.Data)
			}
		}()
	}

	// The room's moderation state is answered to members only.
	stateOf := func(h host.Host) error {
		st, err := h.NewStream(t.Context(), p.root.ID(), protocol.ID(chat.StateProtocol+"/"+p.b.ID()))
		if err != nil {
			return err
		}
		defer st.Close()
		_ = st.CloseWrite()
		_, err = io.ReadAll(st)
		return err
	}
	if err := stateOf(alice.Host()); err != nil {
		t.Fatalf("a member's chat state: %v", err)
	}
	if err := stateOf(eh); err == nil {
		t.Fatal("the eavesdropper got the private room's chat state")
	}

	stream := openChat(t, ws[1], "")
	chatReady(t, ws[0], ws[1])
	waitFor(t, 30*time.Second, "alice's chat to take a comment", func() bool {
		code, _ := postChat(t, ws[0].URLs().Player+"chat/comment", "", map[string]any{"text": "for members only"})
		return code == http.StatusOK
	})
	waitEvent(t, stream, 20*time.Second, "the comment at bob", func(e sseEvent) bool {
		return e.Name == "comment" && strings.Contains(e.Data, "for members only")
	})
	// The broadcaster beats every 2 s on the topic: three beats' time.
	deadline := time.After(6 * time.Second)
	for {
		select {
		case m := <-heard:
			t.Fatalf("the eavesdropper got a message of %d bytes", len(m))
		case <-deadline:
			return
		}
	}
}

// TestPrivateAddMidBroadcast: a device added while the broadcast runs is
// let in within seconds (its token and every epoch's bundle are in the
// mailbox at once) and plays, the backfill of epochs before it included;
// before it was added, the same Watch was refused.
func TestPrivateAddMidBroadcast(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, dave := privateNode(t, mb, 2), privateNode(t, mb, node.NoRelay)
	ma := memberOf("twitter:1", alice)
	p := goPrivate(t, mb, 2, 2*time.Second, ma)
	wa, err := alice.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "alice in the tree", func() bool { return depth(t, wa) == 1 })
	close(p.gate)
	waitFor(t, 30*time.Second, "alice plays", func() bool { return status(t, wa).Received >= 10 })
	if _, err := dave.Watch(t.Context(), p.b.Link()); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("dave before he is added: %v, want ErrNotMember", err)
	}
	added := time.Now()
	if err := p.b.SetAudience(t.Context(), []node.Member{ma, memberOf("twitter:4", dave)}); err != nil {
		t.Fatal(err)
	}
	wd, err := dave.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dave plays", func() bool { return status(t, wd).Received >= 5 })
	t.Logf("dave played %v after he was added", time.Since(added).Round(time.Millisecond))
	if st := status(t, wd); st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open at dave", st.Undecryptable)
	}
}

// TestPrivateChatAhead: a member whose mailbox poll has brought the next
// epoch's keys (out Grace before the broadcaster seals under them)
// comments while another member has not polled yet. The comment is sealed
// under the epoch the video is in, which every member holds, so the other
// member reads it. (Sealed under the newest epoch held, it was ignored by
// every member a poll behind, for good: GossipSub does not deliver a
// message twice. That was the comment taken with 200 that never arrived.)
func TestPrivateChatAhead(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	// alice asks the mailbox once, at Watch; bob every 100 ms.
	alice := newNode(t, node.Config{Slots: 2, Private: node.PrivateConfig{Mailbox: mb, Poll: time.Hour}})
	bob, carol := privateNode(t, mb, node.NoRelay), privateNode(t, mb, node.NoRelay)
	ma, mbob, mc := memberOf("twitter:1", alice), memberOf("twitter:2", bob), memberOf("twitter:3", carol)
	p := &privateParty{mb: mb, root: privateNode(t, mb, 1), gate: make(chan struct{})}
	b, err := p.root.GoLive(t.Context(), node.LiveConfig{Title: "private", Source: gated{p.gate, sampleSource(t, ingest.WithLoop())},
		Private: &node.Audience{Members: []node.Member{ma, mbob, mc}, RekeyEvery: time.Hour, Grace: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	var ws []*node.Broadcast
	for i, n := range []*node.Node{alice, bob} {
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "member in the tree", func() bool { return depth(t, w) == i+1 })
		ws = append(ws, w)
	}
	close(p.gate)
	waitFor(t, 30*time.Second, "both play", func() bool { return status(t, ws[0]).Received >= 5 && status(t, ws[1]).Received >= 5 })
	first := b.Epoch()
	// Removing carol draws a new epoch: bob fetches its keys at once,
	// alice not; the video stays in the first for the 30 s grace.
	if err := b.SetAudience(t.Context(), []node.Member{ma, mbob}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob holds the next epoch's keys", func() bool { return status(t, ws[1]).Epoch == b.Epoch() })
	if st := status(t, ws[0]); st.Epoch != first {
		t.Fatalf("alice holds epoch %d, want %d only", st.Epoch, first)
	}
	seen := openChat(t, ws[0], "")
	chatReady(t, ws[1], ws[0])
	const said = "a poll ahead"
	waitFor(t, 30*time.Second, "bob's room to take the comment", func() bool {
		code, _ := postChat(t, ws[1].URLs().Player+"chat/comment", "", map[string]any{"text": said})
		return code == http.StatusOK
	})
	waitEvent(t, seen, 10*time.Second, "bob's comment at alice", func(e sseEvent) bool {
		return e.Name == "comment" && strings.Contains(e.Data, said)
	})
}

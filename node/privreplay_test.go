package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/node"
)

// swapper is a bare bitswap client on a host of its own, speaking the
// node's bitswap (its /peerscope prefix).
func swapper(t *testing.T, h host.Host) *bitswap.Bitswap {
	t.Helper()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	sw := bitswap.New(t.Context(), bsnet.NewFromIpfsHost(h, bsnet.Prefix("/peerscope")), nil, bs)
	t.Cleanup(func() { _ = sw.Close() })
	return sw
}

// TestPrivateReplayBitswap: a member's node keeps the private broadcast's
// chunks as they came (sealed), and its bitswap serves them to a device of
// the roster but not to a peer outside it, who asks for the same CID.
func TestPrivateReplayBitswap(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice := privateNode(t, mb, 2)
	// A member device that is a bare host: its identity signs its key.
	mh, oh := testutil.TCPHost(t), testutil.TCPHost(t)
	now := time.Now()
	dk, err := audience.NewDeviceKey(rand.Reader, mh.Peerstore().PrivKey(mh.ID()), now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := goPrivate(t, mb, 2, time.Minute, memberOf("twitter:1", alice),
		node.Member{Account: "twitter:9", Devices: []*audience.DeviceKey{dk.Key}})
	w, err := alice.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "alice in the tree", func() bool { return depth(t, w) == 1 })
	close(p.gate)
	var held []cidAndEpoch
	waitFor(t, 60*time.Second, "alice to keep 20 chunks", func() bool {
		held = heldChunks(t, alice, p.b.ID())
		return len(held) >= 20
	})
	for _, h := range held {
		if h.epoch == 0 {
			t.Fatalf("alice's store keeps chunk %s in the clear", h.cid)
		}
	}
	target := held[len(held)-1].cid
	member, outsider := swapper(t, mh), swapper(t, oh)
	for _, h := range []host.Host{mh, oh} {
		if err := h.Connect(t.Context(), peer.AddrInfo{ID: alice.ID(), Addrs: alice.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := member.GetBlock(ctx, target); err != nil {
		t.Fatalf("the member device got no block: %v", err)
	}
	octx, ocancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer ocancel()
	if blk, err := outsider.GetBlock(octx, target); err == nil {
		t.Fatalf("the outsider got block %s", blk.Cid())
	}
}

type cidAndEpoch struct {
	cid   cid.Cid
	epoch uint32
}

// heldChunks lists what n's replay store keeps of broadcast id.
func heldChunks(t *testing.T, n *node.Node, id string) []cidAndEpoch {
	t.Helper()
	var out []cidAndEpoch
	for _, h := range n.ReplayStore().Held(id) {
		c, err := n.ReplayStore().Chunk(t.Context(), h.CID)
		if err != nil {
			continue
		}
		out = append(out, cidAndEpoch{h.CID, c.Epoch})
	}
	return out
}

// TestPrivateReplayLateMember: a device added to the audience after the
// broadcast ended fetches its keys from the mailbox, the replay's sealed
// blocks from the member who watched and the broadcaster, and its VOD
// serves plaintext CMAF (an init segment, parts); the manifest, answered
// to anyone, carries the comments and hearts sealed, and the late
// member's replay page lists both.
func TestPrivateReplayLateMember(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	mb := &mailbox.Memory{}
	alice, dave := privateNode(t, mb, 2), privateNode(t, mb, node.NoRelay)
	ma := memberOf("twitter:1", alice)
	p := goPrivate(t, mb, 2, 3*time.Second, ma)
	w, err := alice.Watch(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "alice in the tree", func() bool { return depth(t, w) == 1 })
	// A comment before the media: the replay keeps it, sealed.
	const said = "only the audience reads this"
	seen := openChat(t, p.b, "")
	waitFor(t, 30*time.Second, "alice's chat to take a comment", func() bool {
		code, _ := postChat(t, w.URLs().Player+"chat/comment", "", map[string]any{"text": said})
		return code == http.StatusOK
	})
	waitEvent(t, seen, 20*time.Second, "the comment at the broadcaster", func(e sseEvent) bool {
		return e.Name == "comment" && strings.Contains(e.Data, said)
	})
	// Hearts too: the replay keeps them, sealed.
	if code, body := postChat(t, w.URLs().Player+"chat/heart", "", map[string]int{"n": 4}); code != http.StatusNoContent {
		t.Fatalf("hearts: %d %s", code, body)
	}
	waitEvent(t, seen, 20*time.Second, "the hearts at the broadcaster", func(e sseEvent) bool {
		return e.Name == "hearts" && strings.Contains(e.Data, `"total":4`)
	})
	close(p.gate)
	for _, b := range []*node.Broadcast{p.b, w} {
		select {
		case <-b.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the end never came")
		}
	}
	if err := p.b.SetAudience(t.Context(), []node.Member{ma, memberOf("twitter:4", dave)}); err != nil {
		t.Fatal(err)
	}
	r, err := dave.Replay(t.Context(), p.b.Link())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Complete():
	case <-time.After(60 * time.Second):
		t.Fatalf("the replay is not complete: %+v", r.Progress())
	}
	if m := r.Manifest(); m.Title != "" || len(m.Comments) == 0 || bytes.Contains(m.Comments, []byte(said)) ||
		len(m.Hearts) != 0 || len(m.SealedHearts) == 0 {
		t.Fatalf("the manifest, answered to anyone: title %q, comments %q, hearts %v, %d bytes of sealed hearts",
			m.Title, m.Comments, m.Hearts, len(m.SealedHearts))
	}
	if got := string(get(t, r.PlayerURL()+"api/comments")); !strings.Contains(got, said) {
		t.Fatalf("the late member's replay comments: %s", got)
	}
	var hearts []struct{ Count int }
	if err := json.Unmarshal(get(t, r.PlayerURL()+"api/hearts"), &hearts); err != nil {
		t.Fatal(err)
	}
	if total := func() (n int) {
		for _, h := range hearts {
			n += h.Count
		}
		return n
	}(); total != 4 {
		t.Fatalf("the late member's replay hearts: %+v, want 4 in all", hearts)
	}
	segs := r.VOD().Segments()
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	srv := httptest.NewServer(r.VOD())
	defer srv.Close()
	body := func(path string) []byte {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || len(b) < 8 {
			t.Fatalf("GET %s: %s, %d bytes", path, resp.Status, len(b))
		}
		return b
	}
	playlist := string(body("/index.m3u8"))
	init := regexp.MustCompile(`init/\d+\.mp4`).FindString(playlist)
	part := regexp.MustCompile(`seg/\d+\.m4s`).FindString(playlist)
	if init == "" || part == "" {
		t.Fatalf("playlist without init or segment:\n%s", playlist)
	}
	if b := body("/" + init); string(b[4:8]) != "ftyp" {
		t.Fatalf("the replay's init is not plaintext CMAF: % x", b[:8])
	}
	if b := body("/" + part); string(b[4:8]) != "moof" && string(b[4:8]) != "styp" {
		t.Fatalf("the replay's segment is not plaintext CMAF: % x", b[:8])
	}
}

// TestPrivateReplayOutsiders: after a private broadcast ends, a node that
// was never in its audience and a member removed mid-broadcast open its
// replay beside a member added after the end. The late member fetches all
// of it; by then the outsider has fetched no chunk and plays nothing, and
// the removed member has fetched nothing sealed after its removal. 24
// hours after the end nothing of it remains on any node that kept it, and
// the replay is refused as expired.
func TestPrivateReplayOutsiders(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	clk := &jumpClock{}
	mb := &mailbox.Memory{}
	mk := func(slots int) *node.Node {
		return newNode(t, node.Config{Slots: slots, Clock: clk, Private: node.PrivateConfig{Mailbox: mb, Poll: 100 * time.Millisecond}})
	}
	root, alice, carol, dave, eve := mk(4), mk(node.NoRelay), mk(node.NoRelay), mk(node.NoRelay), mk(node.NoRelay)
	ma, mc := memberOf("twitter:1", alice), memberOf("twitter:3", carol)
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "private", Source: gated{gate, sampleSource(t)},
		Private: &node.Audience{Members: []node.Member{ma, mc}, RekeyEvery: time.Hour, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	wa, err := alice.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	wc, err := carol.Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "both in the tree", func() bool { return depth(t, wa) == 1 && depth(t, wc) == 1 })
	close(gate)
	waitFor(t, 30*time.Second, "carol plays", func() bool { return status(t, wc).Received >= 5 })
	old := b.Epoch()
	if err := b.SetAudience(t.Context(), []node.Member{ma}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "carol out of the tree", func() bool { return depth(t, wc) != 1 })
	for _, w := range []*node.Broadcast{b, wa} {
		select {
		case <-w.Done():
		case <-time.After(90 * time.Second):
			t.Fatal("the end never came")
		}
	}
	_ = wc.Close()
	after := 0
	for _, h := range heldChunks(t, alice, b.ID()) {
		if h.epoch != old {
			after++
		}
	}
	if after == 0 {
		t.Fatal("alice keeps no chunk sealed after the removal")
	}
	carolHad := heldChunks(t, carol, b.ID())

	if err := b.SetAudience(t.Context(), []node.Member{ma, memberOf("twitter:4", dave)}); err != nil {
		t.Fatal(err)
	}
	// All three open the replay; every holder is connected to each.
	opened := map[string]*node.Replay{}
	for name, n := range map[string]*node.Node{"eve": eve, "carol": carol, "dave": dave} {
		r, err := n.Replay(t.Context(), b.Link())
		if err != nil {
			t.Logf("%s's Replay: %v", name, err)
			continue
		}
		opened[name] = r
	}
	if opened["dave"] == nil {
		t.Fatal("the late member could not open the replay")
	}
	select {
	case <-opened["dave"].Complete():
	case <-time.After(60 * time.Second):
		t.Fatalf("the late member's replay is not complete: %+v", opened["dave"].Progress())
	}
	t.Logf("dave, added after the end: %+v", opened["dave"].Progress())
	if got := heldChunks(t, eve, b.ID()); len(got) != 0 {
		t.Fatalf("the outsider holds %d chunks of the private replay", len(got))
	}
	if r := opened["eve"]; r != nil {
		if p := r.Progress(); p.Fetched != 0 {
			t.Fatalf("the outsider fetched %d chunks", p.Fetched)
		}
		if segs := r.VOD().Segments(); len(segs) > 0 {
			srv := httptest.NewServer(r.VOD())
			resp, err := http.Get(srv.URL + "/index.m3u8")
			if err == nil {
				playlist, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if seg := regexp.MustCompile(`seg/\d+\.m4s`).FindString(string(playlist)); seg != "" {
					if resp, err := http.Get(srv.URL + "/" + seg); err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK && len(body) > 8 {
							t.Fatalf("the outsider's replay served %s: %s, %d bytes", seg, resp.Status, len(body))
						}
					}
				}
			}
			srv.Close()
		}
	}
	for _, h := range heldChunks(t, carol, b.ID()) {
		if h.epoch != old {
			t.Fatalf("the removed member holds chunk %s of epoch %d, sealed after her removal", h.cid, h.epoch)
		}
	}
	if r := opened["carol"]; r != nil {
		t.Logf("carol, removed mid-broadcast: held %d chunks at the end, replay %+v", len(carolHad), r.Progress())
		select {
		case <-r.Complete():
			t.Fatal("the removed member's replay is complete")
		default:
		}
	}

	// A day after the end: nothing of it on the nodes that kept it.
	clk.Add(24*time.Hour + time.Minute)
	for name, n := range map[string]*node.Node{"root": root, "alice": alice, "carol": carol, "dave": dave, "eve": eve} {
		if _, err := n.ReplayStore().Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if u := n.ReplayStore().Usage(); u.Chunks != 0 || u.Bytes != 0 {
			t.Fatalf("%s keeps %+v a day after the end", name, u)
		}
	}
	if _, err := dave.Replay(t.Context(), b.Link()); err == nil {
		t.Fatal("the replay opened a day after the end")
	} else {
		t.Logf("a day after the end: %v", err)
	}
}

package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
)

// wireMarker returns 32 bytes nobody else sends: a kind and 12 random
// bytes in hex.
func wireMarker(kind string) []byte {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return []byte(fmt.Sprintf("%-8.8s%x", kind, b))
}

// TestPrivateWire: a private broadcast through 10 real nodes — the
// broadcaster, six members at depths 1 to 3, three non-members — with
// every libp2p connection tapped inside and outside Noise (wiretap). A
// marker rides in every video frame (an SEI NAL unit) and another in a
// member's comment. The members play (the deepest member's LL-HLS read
// whole by ffprobe, its parts carrying the video marker in the clear);
// the non-members are refused at attach, by the broadcaster and by a
// member relay, hear nothing on the chat topic and get no replay block
// from bitswap; and neither marker is anywhere in what the connections
// carried, not even in the plaintext Noise encrypts.
// TestPrivateWireControl runs the same with a public broadcast and finds
// both markers there: the search can fail.
func TestPrivateWire(t *testing.T) { wireRun(t, true) }

// TestPrivateWireControl is TestPrivateWire's public twin: the tap finds
// the video and comment markers inside Noise (never outside it), and the
// non-members' chat subscription and bitswap get what the private
// broadcast refused them.
func TestPrivateWireControl(t *testing.T) { wireRun(t, false) }

func wireRun(t *testing.T, private bool) {
	e2e(t)
	needTool(t, "ffprobe")
	start := time.Now()
	videoMark, chatMark := wireMarker("PSVIDEO"), wireMarker("PSCHAT")
	tap := newWiretap(videoMark, chatMark)
	log, _ := newLogs(t, slog.LevelInfo)
	mb := &mailbox.Memory{}
	var nodes []*node.Node
	mk := func(name string, slots int) *node.Node {
		n := newNode(t, node.Config{
			Slots: slots,
			// TCP only: every connection is then Noise through the tap
			// (checked at the end), none WebRTC-direct or QUIC.
			Listen:      []string{"/ip4/127.0.0.1/tcp/0"},
			HostOptions: []libp2p.Option{tap.option()},
			Private:     node.PrivateConfig{Mailbox: mb, Poll: 100 * time.Millisecond},
			Logger:      log.With("node", name),
		})
		nodes = append(nodes, n)
		return n
	}
	root := mk("broadcaster", 1)
	// Six members whose slots hang them at depths 1, 2, 2, 3, 3, 3, and
	// three non-members that would relay if they were let in.
	memberSlots := []int{2, 2, 1, node.NoRelay, node.NoRelay, node.NoRelay}
	var members []*node.Node
	var audience []node.Member
	for i, s := range memberSlots {
		m := mk(fmt.Sprintf("member%d", i+1), s)
		members = append(members, m)
		audience = append(audience, memberOf(fmt.Sprintf("twitter:%d", i+1), m))
	}
	var outsiders []*node.Node
	for i := range 3 {
		outsiders = append(outsiders, mk(fmt.Sprintf("outsider%d", i+1), 2))
	}

	gate := make(chan struct{})
	cfg := node.LiveConfig{Title: "wire", Source: gated{gate, markedSource{sampleSource(t), seiMarker(videoMark)}}}
	if private {
		cfg.Private = &node.Audience{Members: audience, RekeyEvery: 3 * time.Second, Grace: 500 * time.Millisecond}
	}
	b, err := root.GoLive(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Each member joins once the one before is in the tree. The slots
	// settle them at depths 1, 2, 2, 3, 3, 3 (the relays climb, the
	// leaves sink); a loaded machine (the race detector on two shared
	// cores) can shuffle the tree for a while, so what is waited for is
	// every member in it, the leaves at depth 2 or more, one at 3.
	var ws []*node.Broadcast
	for i, m := range members {
		w, err := m.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		if w.Private() != private {
			t.Fatalf("member %d: private %v", i+1, w.Private())
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("member %d in the tree", i+1), func() bool { return depth(t, w) >= 1 })
		ws = append(ws, w)
	}
	depths := make([]int, len(ws))
	waitFor(t, 60*time.Second, "the members settled, the leaves two hops down or more", func() bool {
		deepest := 0
		for i, w := range ws {
			depths[i] = depth(t, w)
			if depths[i] < 1 || memberSlots[i] == node.NoRelay && depths[i] < 2 {
				return false
			}
			deepest = max(deepest, depths[i])
		}
		return deepest >= 3
	})
	t.Logf("member depths %v", depths)
	// The deepest leaf is the one ffprobe reads.
	di := 3
	for i := 3; i < len(ws); i++ {
		if depths[i] > depths[di] {
			di = i
		}
	}
	deep := ws[di]
	// Every non-member is connected to every other node, as a peer that
	// found them would be, and, to a private broadcast, refused at attach:
	// by the broadcaster, and by a member relay (member 2, two slots).
	for _, o := range outsiders {
		for _, n := range nodes {
			if n != o {
				if err := o.Host().Connect(t.Context(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !private {
			continue
		}
		for _, via := range []link.Link{b.Link(), {Broadcast: b.ID(), Peers: ws[1].Link().Peers[:1]}} {
			_, err := o.Watch(t.Context(), via)
			if !errors.Is(err, node.ErrNotMember) {
				t.Fatalf("a non-member's Watch through %s: %v, want ErrNotMember", via.Peers[0].ID, err)
			}
			if o == outsiders[0] {
				t.Logf("non-member refused: %v", err)
			}
		}
	}

	// The non-members eavesdrop on the chat topic, its name given to them.
	topic := b.ChatTopic()
	if topic == "" || deep.ChatTopic() != topic {
		t.Fatalf("chat topics: broadcaster %q, member %q", topic, deep.ChatTopic())
	}
	var heardMu sync.Mutex
	heard := map[int][][]byte{}
	for i, o := range outsiders {
		sub, err := node.Eavesdrop(o, topic)
		if err != nil {
			t.Fatal(err)
		}
		go func(sub *pubsub.Subscription) {
			for {
				m, err := sub.Next(t.Context())
				if err != nil {
					return
				}
				heardMu.Lock()
				heard[i] = append(heard[i], m.Data)
				heardMu.Unlock()
			}
		}(sub)
	}

	close(gate)
	mediaFrom := time.Now()
	probedDepth := depth(t, deep)

	// The deep member's LL-HLS, read whole by ffprobe while it is live.
	probed := make(chan []byte, 1)
	go func() {
		defer close(probed)
		waitHLS(t, deep, 30*time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error",
			"-show_entries", "stream=index,codec_name,codec_type:packet=stream_index,pts_time,dts_time,flags",
			"-of", "json", deep.URLs().HLS).Output()
		if err != nil {
			t.Errorf("ffprobe: %v\n%s", err, out)
			return
		}
		probed <- out
	}()

	// The deepest member comments, once its router has peers in
	// the room (a comment published to none is taken and goes nowhere);
	// the broadcaster and another member read it.
	poster := deep
	other := ws[4]
	if other == deep {
		other = ws[5]
	}
	seenAt := []<-chan sseEvent{openChat(t, b, ""), openChat(t, other, "")}
	// (The readers' too: GossipSub gives a message to the peers in the
	// room when it is published, and to those that come later only from
	// its few heartbeats of gossip; under -race at load the other member
	// once came later than that, and never saw the comment.)
	for _, r := range []*node.Broadcast{poster, b, other} {
		chatReady(t, r)
	}
	// Until the room knows its moderation state it answers 503 and takes
	// nothing; a 200 is a comment published, never sent again.
	waitFor(t, 30*time.Second, "the poster's room to take the comment", func() bool {
		code, body := postChat(t, poster.URLs().Player+"chat/comment", "", map[string]any{"text": string(chatMark)})
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("the comment: %d %s", code, body)
		}
		return code == http.StatusOK
	})
	for i, ch := range seenAt {
		waitEvent(t, ch, 20*time.Second, fmt.Sprintf("the comment at reader %d", i), func(e sseEvent) bool {
			return e.Name == "comment" && strings.Contains(e.Data, string(chatMark))
		})
	}

	out, ok := <-probed
	if !ok {
		t.FailNow()
	}
	checkProbe(t, out)
	for _, w := range append(ws, b) {
		select {
		case <-w.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the end never came")
		}
	}
	mediaFor := time.Since(mediaFrom)
	for i, w := range ws {
		st := status(t, w)
		if st.Received < 45 || st.Undecryptable != 0 {
			t.Fatalf("member %d: %d parts played, %d did not open", i+1, st.Received, st.Undecryptable)
		}
		if private && st.Epoch == 0 {
			t.Fatalf("member %d holds no epoch", i+1)
		}
	}
	// What the deep member's players serve is plaintext, with the marker:
	// it was in the payload the broadcaster sealed.
	if part := firstPart(t, deep.URLs().HLS); !bytes.Contains(part, videoMark) {
		t.Fatalf("the deep member's first part (%d bytes) lacks the video marker", len(part))
	}

	// Bitswap: the non-members ask every node they are connected to for a
	// chunk of the replay that a member keeps.
	held := heldChunks(t, members[0], b.ID())
	if len(held) == 0 {
		t.Fatal("the first member keeps no chunk")
	}
	target := held[len(held)/2]
	if private && target.epoch == 0 {
		t.Fatalf("the member keeps chunk %s in the clear", target.cid)
	}
	var wg sync.WaitGroup
	got := make([]error, len(outsiders))
	for i, o := range outsiders {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, got[i] = node.GetBlock(ctx, o, target.cid)
		})
	}
	wg.Wait()

	// The broadcaster's beats go every 2 s: the comment and a beat or two
	// have had time to reach anyone the room let in.
	heardMu.Lock()
	for i := range outsiders {
		var comment bool
		for _, m := range heard[i] {
			comment = comment || bytes.Contains(m, chatMark)
		}
		switch {
		case private && len(heard[i]) > 0:
			t.Errorf("non-member %d heard %d messages on the private topic", i+1, len(heard[i]))
		case private && got[i] == nil:
			t.Errorf("non-member %d got replay block %s", i+1, target.cid)
		case !private && !comment:
			t.Errorf("control: non-member %d did not hear the comment on the public topic (%d messages)", i+1, len(heard[i]))
		case !private && got[i] != nil:
			t.Errorf("control: non-member %d got no replay block: %v", i+1, got[i])
		}
	}
	heardMu.Unlock()

	// Every connection of every node went through the tap.
	conns := 0
	for _, n := range nodes {
		for _, c := range n.Host().Network().Conns() {
			conns++
			if s := c.ConnState().Security; s != noise.ID {
				t.Fatalf("a connection of %s secured by %q, not through the tap", n.ID(), s)
			}
		}
	}
	t.Logf("ffprobe read a member at depth %d; captured: %s; %d connections open at the end; media for %v, the test %v",
		probedDepth, tap, conns/2, mediaFor.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for i, name := range []string{"video", "comment"} {
		in, out := tap.found("inside", i), tap.found("outside", i)
		t.Logf("%s marker: %d times inside Noise, %d on the socket", name, in, out)
		switch {
		case out != 0:
			t.Errorf("the %s marker went on the socket in the clear %d times", name, out)
		case private && in != 0:
			t.Errorf("the %s marker of a private broadcast is inside Noise %d times: a chunk or comment went unsealed", name, in)
		case !private && in == 0:
			t.Errorf("control: the %s marker of a public broadcast is nowhere in the capture", name)
		}
	}
}

// firstPart returns the first media URI of an LL-HLS playlist's body.
func firstPart(t *testing.T, playlist string) []byte {
	t.Helper()
	body := get(t, playlist)
	base, err := url.Parse(playlist)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ref, err := base.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ref.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", ref, resp.Status)
		}
		return b
	}
	t.Fatalf("no segment in\n%s", body)
	return nil
}

// TestPrivateRemoveRelay: a member that relays to another member is
// removed mid-broadcast. Its parent puts it out of the tree, its child
// (still a member) finds another parent and plays on into the new epoch
// with nothing it cannot open, and the removed relay's keys open none of
// what was sealed after the switch (measured: how long after the removal
// the first such chunk was captured).
func TestPrivateRemoveRelay(t *testing.T) {
	e2e(t)
	log, _ := newLogs(t, slog.LevelInfo)
	mb := &mailbox.Memory{}
	mk := func(name string, slots int) *node.Node {
		return newNode(t, node.Config{Slots: slots, Logger: log.With("node", name),
			Private: node.PrivateConfig{Mailbox: mb, Poll: 100 * time.Millisecond}})
	}
	root := mk("broadcaster", 1)
	relay, child := mk("relay", 1), mk("child", node.NoRelay)
	mr, mc := memberOf("twitter:1", relay), memberOf("twitter:2", child)
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "remove a relay", Source: gated{gate, sampleSource(t)},
		Private: &node.Audience{Members: []node.Member{mr, mc}, RekeyEvery: time.Hour, Grace: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var ws []*node.Broadcast
	for i, n := range []*node.Node{relay, child} {
		w, err := n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("member %d in the tree", i+1), func() bool { return depth(t, w) == i+1 })
		ws = append(ws, w)
	}
	wr, wc := ws[0], ws[1]
	if st := status(t, wc); st.Parent != relay.ID() {
		t.Fatalf("the child's parent is %s, not the relay", st.Parent)
	}
	close(gate)
	waitFor(t, 30*time.Second, "the child plays", func() bool { return status(t, wc).Received >= 10 })
	old := b.Epoch()
	removedAt := time.Now()
	if err := b.SetAudience(t.Context(), []node.Member{mc}); err != nil {
		t.Fatal(err)
	}
	newEpoch := b.Epoch()
	if newEpoch == old {
		t.Fatal("no new epoch at the removal")
	}
	waitFor(t, 30*time.Second, "the relay out of the tree", func() bool { return depth(t, wr) != 1 })
	outAfter := time.Since(removedAt)
	var backAfter time.Duration
	waitFor(t, 30*time.Second, "the child under the broadcaster, in the new epoch", func() bool {
		st := status(t, wc)
		if st.Depth == 1 && backAfter == 0 {
			backAfter = time.Since(removedAt)
		}
		return st.Depth == 1 && st.Epoch == newEpoch
	})
	for _, w := range []*node.Broadcast{b, wc} {
		select {
		case <-w.Done():
		case <-time.After(60 * time.Second):
			t.Fatal("the end never came")
		}
	}
	st := status(t, wc)
	t.Logf("relay out %v after the removal, its child under the broadcaster %v after; the child played %d parts, %d did not open",
		outAfter.Round(time.Millisecond), backAfter.Round(time.Millisecond), st.Received, st.Undecryptable)
	if st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open at the child", st.Undecryptable)
	}
	if st.Received < 45 {
		t.Fatalf("the child played %d of the clip's 50 parts", st.Received)
	}
	// What the child keeps, as it came: the removed relay opens what was
	// sealed before the switch and nothing after.
	var before, after int
	var firstAfter time.Time
	for _, h := range child.ReplayStore().Held(b.ID()) {
		c, err := child.ReplayStore().Chunk(t.Context(), h.CID)
		if err != nil {
			t.Fatal(err)
		}
		have, err := node.OpenWithKeysOf(wr, c)
		switch {
		case c.Epoch == old && (!have || err != nil):
			t.Fatalf("the relay cannot open chunk %d of the epoch it had: %v", c.Seq, err)
		case c.Epoch == old:
			before++
		case have && err == nil:
			t.Fatalf("the removed relay opened chunk %d of epoch %d", c.Seq, c.Epoch)
		default:
			after++
			if w := time.Unix(0, c.Wallclock); firstAfter.IsZero() || w.Before(firstAfter) {
				firstAfter = w
			}
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("chunks before the switch %d, after %d", before, after)
	}
	t.Logf("the removed relay opens the %d chunks before the switch and none of the %d after; the first it cannot open was captured %v after the removal",
		before, after, firstAfter.Sub(removedAt).Round(time.Millisecond))
}

package swarm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/replay"
)

// seeds are the fuzz seeds of the protocol's messages (also committed as
// the corpus: PEERSCOPE_WRITE_SEEDS=1 go test -run TestWriteSeeds).
func seeds(t testing.TB) [][]byte {
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	if err != nil {
		t.Fatal(err)
	}
	_, _, id := testutil.Broadcaster(t)
	pid, _, _ := link.BroadcasterOf(id)
	resp := response{manifest: []byte{0x0a, 0x03, 'a', 'b', 'c'}, holders: []peer.AddrInfo{{ID: pid, Addrs: []ma.Multiaddr{a}}}, views: 3, identified: 1}
	return [][]byte{
		request{kind: askManifest, broadcast: id}.encode(),
		request{kind: askView, broadcast: id}.encode(),
		request{kind: askViewNonce, broadcast: id, attestation: []byte("an attestation")}.encode(),
		resp.encode(),
		request{kind: askViewRoot, broadcast: id, root: bytes.Repeat([]byte{7}, 32)}.encode(),
		request{kind: askViewOpen, broadcast: id, openings: []opening{{index: 3, tag: bytes.Repeat([]byte{1}, 32), path: [][]byte{bytes.Repeat([]byte{2}, 32)}}}}.encode(),
		(&response{nonce: bytes.Repeat([]byte{9}, 32), challenge: []uint32{3, 1}}).encode(),
		{0x12, 0x05, '/', 'i', 'p', '4', '/'},
		{},
	}
}

func TestWriteSeeds(t *testing.T) {
	if os.Getenv("PEERSCOPE_WRITE_SEEDS") == "" {
		t.Skip("set PEERSCOPE_WRITE_SEEDS=1 to write testdata/fuzz/FuzzMessages")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzMessages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range seeds(t) {
		body := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMessages(t *testing.T) {
	_, _, id := testutil.Broadcaster(t)
	req, err := decodeRequest(request{kind: askView, broadcast: id}.encode())
	if err != nil || req.kind != askView || req.broadcast != id {
		t.Fatalf("request %+v: %v", req, err)
	}
	for _, bad := range [][]byte{{}, {0x08, 0x07, 0x12, 0x01, 'x'}, {0x08, 0x01}, {0x0a, 0x00, 0x12, 0x01, 'x'}} {
		if _, err := decodeRequest(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("request % x: %v", bad, err)
		}
	}
	req, err = decodeRequest(seeds(t)[2])
	if err != nil || req.kind != askViewNonce || string(req.attestation) != "an attestation" {
		t.Fatalf("a view %+v: %v", req, err)
	}
	if req, err = decodeRequest(seeds(t)[5]); err != nil || len(req.openings) != 1 || req.openings[0].index != 3 || len(req.openings[0].path) != 1 {
		t.Fatalf("openings %+v: %v", req, err)
	}
	if r, err := decodeResponse(seeds(t)[6]); err != nil || len(r.nonce) != 32 || len(r.challenge) != 2 {
		t.Fatalf("a nonce and a challenge %+v: %v", r, err)
	}
	for name, bad := range map[string]request{
		"a short root":    {kind: askViewRoot, broadcast: id, root: []byte("short")},
		"a short tag":     {kind: askViewOpen, broadcast: id, openings: []opening{{tag: []byte("x")}}},
		"a long path":     {kind: askViewOpen, broadcast: id, openings: []opening{{tag: make([]byte, 32), path: make([][]byte, maxPath+1)}}},
		"a short step":    {kind: askViewOpen, broadcast: id, openings: []opening{{tag: make([]byte, 32), path: [][]byte{{1}}}}},
		"an unknown kind": {kind: 6, broadcast: id},
	} {
		if _, err := decodeRequest(bad.encode()); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := decodeResponse((&response{nonce: []byte("short")}).encode()); !errors.Is(err, ErrMalformed) {
		t.Errorf("a short nonce: %v", err)
	}
	resp, err := decodeResponse(seeds(t)[3])
	if err != nil || resp.views != 3 || resp.identified != 1 || len(resp.holders) != 1 || string(resp.manifest) != "\x0a\x03abc" {
		t.Fatalf("response %+v: %v", resp, err)
	}
}

// TestSameBytesAsBefore: the generated code writes a request and a
// response as the hand-written codec of 1.1.0 did (so the protocol ID
// stays).
func TestSameBytesAsBefore(t *testing.T) {
	_, _, id := testutil.Broadcaster(t)
	hand := protowire.AppendTag(nil, 1, protowire.VarintType)
	hand = protowire.AppendVarint(hand, askManifest)
	hand = protowire.AppendTag(hand, 2, protowire.BytesType)
	hand = protowire.AppendString(hand, id)
	if got := (request{kind: askManifest, broadcast: id}).encode(); !bytes.Equal(got, hand) {
		t.Fatalf("request % x, by hand % x", got, hand)
	}
	pid, _, _ := link.BroadcasterOf(id)
	a, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	r := response{manifest: []byte("signed"), holders: []peer.AddrInfo{{ID: pid, Addrs: []ma.Multiaddr{a, a}}}, views: 9}
	hand = protowire.AppendTag(nil, 1, protowire.BytesType)
	hand = protowire.AppendBytes(hand, r.manifest)
	for range 2 {
		hand = protowire.AppendTag(hand, 2, protowire.BytesType)
		hand = protowire.AppendString(hand, a.String()+"/p2p/"+pid.String())
	}
	hand = protowire.AppendTag(hand, 3, protowire.VarintType)
	hand = protowire.AppendVarint(hand, r.views)
	if got := r.encode(); !bytes.Equal(got, hand) {
		t.Fatalf("response % x, by hand % x", got, hand)
	}
}

// TestHoldersCapped: an answer naming more holder addresses than a reader
// takes gives the first ones; the rest are not even parsed.
func TestHoldersCapped(t *testing.T) {
	_, _, id := testutil.Broadcaster(t)
	pid, _, _ := link.BroadcasterOf(id)
	var b []byte
	for i := range maxHolderAddrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, fmt.Sprintf("/ip4/10.0.0.%d/tcp/1/p2p/%s", i%250+1, pid))
	}
	for range 1000 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, "not a multiaddr")
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 5)
	resp, err := decodeResponse(b)
	if err != nil || resp.views != 5 || len(resp.holders) != 1 || len(resp.holders[0].Addrs) != maxHolderAddrs {
		t.Fatalf("%d holders, views %d: %v", len(resp.holders), resp.views, err)
	}
}

// FuzzMessages: any bytes give a request or response, or an ErrMalformed;
// never a panic.
func FuzzMessages(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeRequest(b); err == nil {
			again, err := decodeRequest(req.encode())
			if err != nil || again.kind != req.kind || again.broadcast != req.broadcast || len(again.openings) != len(req.openings) ||
				!bytes.Equal(again.root, req.root) || !bytes.Equal(again.attestation, req.attestation) {
				t.Fatalf("request round trip: %+v → %+v (%v)", req, again, err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if resp, err := decodeResponse(b); err == nil {
			again, err := decodeResponse(resp.encode())
			if err != nil || again.views != resp.views || again.identified != resp.identified || len(again.manifest) != len(resp.manifest) ||
				!bytes.Equal(again.nonce, resp.nonce) || len(again.challenge) != len(resp.challenge) {
				t.Fatalf("response round trip: %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

// noBlocks is a Blocks that has none: the protocol tests fetch no chunk.
type noBlocks struct{}

func (noBlocks) GetBlock(context.Context, cid.Cid) (blocks.Block, error) {
	return nil, replay.ErrNotFound
}

func (noBlocks) GetBlocks(context.Context, []cid.Cid) (<-chan blocks.Block, error) {
	ch := make(chan blocks.Block)
	close(ch)
	return ch, nil
}

func newSwarm(t *testing.T, cfg Config) *Swarm {
	t.Helper()
	cfg.Blocks = noBlocks{}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, p := range Protocols {
		cfg.Host.SetStreamHandler(p, s.Serve)
	}
	return s
}

// servedReplay is a replay of n chunks: its manifest, signed, and the
// chunks.
func servedReplay(t *testing.T, n int) (*replay.Manifest, []byte, []*chunk.Chunk) {
	t.Helper()
	key, _, id := testutil.Broadcaster(t)
	raw, _ := key.Raw()
	start := time.Now().Add(-time.Minute)
	var rec replay.Recorder
	var cs []*chunk.Chunk
	for i := range n {
		c := &chunk.Chunk{Broadcast: id, Seq: uint64(i + 1), Wallclock: start.Add(time.Duration(i) * time.Second).UnixNano(),
			Duration: int64(time.Second), Payload: []byte(fmt.Sprintf("part %d", i))}
		c.Sign(ed25519.PrivateKey(raw))
		rec.Record(c)
		cs = append(cs, c)
	}
	m := rec.Manifest(id, "served", start, nil)
	signed, err := replay.SignManifest(m, ed25519.PrivateKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m, signed, cs
}

// TestServe: over libp2p hosts on loopback, a holder gives the manifest it
// keeps and names the holders it knows (its neighbours first, never the
// asker, never a peer that only asked); a replay it does not hold is
// ErrNoManifest.
func TestServe(t *testing.T) {
	m, signed, _ := servedReplay(t, 1)
	id := m.Broadcast
	neighbour := testutil.Host(t)
	holderHost := testutil.Host(t)
	holderHost.Peerstore().AddAddrs(neighbour.ID(), neighbour.Addrs(), time.Hour)
	holder := newSwarm(t, Config{Host: holderHost,
		Neighbours: func(context.Context, string) []peer.ID { return []peer.ID{neighbour.ID()} }})
	if !holder.Keep(t.Context(), m, signed) || holder.Keep(t.Context(), m, signed) {
		t.Fatal("Keep does not keep the first manifest only")
	}
	info := peer.AddrInfo{ID: holderHost.ID(), Addrs: holderHost.Addrs()}
	for i := range 3 {
		asker := newSwarm(t, Config{Host: testutil.Host(t)})
		got, gotSigned, holders, err := asker.fetchManifest(t.Context(), info, id)
		if err != nil || got.Title != "served" || !bytes.Equal(gotSigned, signed) {
			t.Fatalf("manifest %+v: %v", got, err)
		}
		// Askers before it are not holders: asking proves nothing.
		if len(holders) != 1 || holders[0].ID != neighbour.ID() {
			t.Fatalf("asker %d: holders %v", i, holders)
		}
		if i == 2 {
			if _, _, _, err := asker.fetchManifest(t.Context(), info, id[:len(id)-1]+"x"); !errors.Is(err, ErrNoManifest) {
				t.Fatalf("a replay the peer does not hold: %v", err)
			}
		}
	}
}

// holding is a replay held in memory by an asker: what sendView proves.
func holding(asker *Swarm, m *replay.Manifest, cs []*chunk.Chunk) *Replay {
	r := &Replay{s: asker, id: m.Broadcast, m: m, mem: map[cid.Cid][]byte{}}
	for i, c := range cs {
		r.mem[m.Chunks[i].CID] = c.Bytes()
	}
	return r
}

// cheat runs a view's exchange as a peer without the replay would: it
// commits to leaves, then opens each challenged index with opened(i) and
// the path in what it committed. It returns what the checker answered.
func cheat(t *testing.T, asker *Swarm, to peer.AddrInfo, id string, n int, leaves func(nonce []byte) [][]byte, opened func(nonce []byte, i uint32) []byte) response {
	t.Helper()
	st, err := asker.open(t.Context(), to, ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	br := bufio.NewReader(st)
	ex := func(req request) response {
		if err := pbwire.WriteFrame(st, req.encode()); err != nil {
			t.Fatal(err)
		}
		resp, err := readResponse(br)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := ex(request{kind: askViewNonce, broadcast: id})
	if resp.nonce == nil {
		t.Fatal("no nonce: the checker has nothing to check")
	}
	nonce := resp.nonce
	ls := leaves(nonce)
	root, _ := merkleRoot(ls, nil)
	resp = ex(request{kind: askViewRoot, broadcast: id, root: root})
	_, paths := merkleRoot(ls, resp.challenge)
	req := request{kind: askViewOpen, broadcast: id}
	for k, i := range resp.challenge {
		req.openings = append(req.openings, opening{index: i, tag: opened(nonce, i), path: paths[k]})
	}
	return ex(req)
}

// TestViews: a view counts only when the viewer proves it holds every
// chunk, for its own peer ID; once per peer, and once per account when it
// carries an attestation the checker believes, counted apart; a view
// asked the 1.1.0 way counts nothing. A peer whose view was proven is named
// as a holder. (Before, any peer that asked was a view — and a holder —,
// and peer IDs are free: a client with N keys made N views.)
func TestViews(t *testing.T) {
	const n = 23 // odd at several levels of the tree
	m, signed, cs := servedReplay(t, n)
	id := m.Broadcast
	st, err := replay.Open(replay.Config{Dir: t.TempDir(), Verify: replay.Verify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, c := range cs {
		if _, err := st.Put(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	holderHost := testutil.Host(t)
	viewed := make(chan string, 8)
	holder := newSwarm(t, Config{Host: holderHost, Store: st,
		OnView: func(b string) { viewed <- b },
		Identify: func(att []byte, p peer.ID) (string, bool) {
			name, pid, ok := strings.Cut(string(att), "@")
			return "x:" + name, ok && pid == p.String()
		}})
	holder.Keep(t.Context(), m, signed)
	info := peer.AddrInfo{ID: holderHost.ID(), Addrs: holderHost.Addrs()}
	view := func(asker *Swarm, att string) response {
		t.Helper()
		resp, err := asker.sendView(t.Context(), info, holding(asker, m, cs), []byte(att))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tagsFor := func(p peer.ID) func([]byte) [][]byte {
		return func(nonce []byte) [][]byte {
			out := make([][]byte, n)
			for i, c := range cs {
				out[i] = viewTag(nonce, p, i, c.Bytes())
			}
			return out
		}
	}

	// Sybils: peer IDs asking for views the 1.1.0 way; committing to
	// garbage; to tags made for another peer; to garbage, then opening the
	// challenged chunks' true tags (fetched once challenged): nothing counts.
	other := newSwarm(t, Config{Host: testutil.Host(t)})
	garbage := func([]byte) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = bytes.Repeat([]byte{byte(i)}, 32)
		}
		return out
	}
	for range 5 {
		sybil := newSwarm(t, Config{Host: testutil.Host(t)})
		me := sybil.cfg.Host.ID()
		if _, err := sybil.ask(t.Context(), info, request{kind: askView, broadcast: id}, ProtocolV11); err != nil {
			t.Fatal(err)
		}
		cheat(t, sybil, info, id, n, garbage, func(_ []byte, i uint32) []byte { return garbage(nil)[i] })
		theirs := tagsFor(other.cfg.Host.ID())
		cheat(t, sybil, info, id, n, theirs, func(nonce []byte, i uint32) []byte { return theirs(nonce)[i] })
		cheat(t, sybil, info, id, n, garbage, func(nonce []byte, i uint32) []byte { return tagsFor(me)(nonce)[i] })
	}
	if v := holder.Views(id); v.Total() != 0 || len(viewed) != 0 {
		t.Fatalf("views without a proof counted: %+v", v)
	}

	// Proven views: twice from one peer counts once.
	a := newSwarm(t, Config{Host: testutil.Host(t)})
	for range 2 {
		if resp := view(a, ""); resp.views != 1 || resp.identified != 0 {
			t.Fatalf("a proven view: answered %+v", resp)
		}
	}
	// Identified: bob's two peers count as one account; alice's view on
	// a peer seen anonymously moves it to her account; an attestation
	// issued to someone else is ignored (anonymous).
	b1, b2 := newSwarm(t, Config{Host: testutil.Host(t)}), newSwarm(t, Config{Host: testutil.Host(t)})
	view(b1, "bob@"+b1.cfg.Host.ID().String())
	view(b2, "bob@"+b2.cfg.Host.ID().String())
	x := newSwarm(t, Config{Host: testutil.Host(t)})
	view(x, "carol@"+b1.cfg.Host.ID().String())
	resp := view(a, "alice@"+a.cfg.Host.ID().String())
	if want := (Views{Identified: 2, Anonymous: 1}); holder.Views(id) != want || resp.views != 3 || resp.identified != 2 {
		t.Fatalf("views %+v, answered %d (%d identified); want %+v", holder.Views(id), resp.views, resp.identified, want)
	}
	if len(viewed) != 3 {
		t.Fatalf("OnView heard %d new views, want 3 (a, bob, x)", len(viewed))
	}
	// The 1.1.0 way still reads the counts; a view over 1.1.0 is refused.
	if resp, err := other.ask(t.Context(), info, request{kind: askView, broadcast: id}, ProtocolV11); err != nil || resp.views != 3 {
		t.Fatalf("counts over 1.1.0: %+v, %v", resp, err)
	}
	if _, err := other.ask(t.Context(), info, request{kind: askViewNonce, broadcast: id}, ProtocolV11); err == nil {
		t.Fatal("a view over 1.1.0 was answered")
	}
	// Whoever proved a view holds the replay: the next asker hears of it,
	// once the holder knows where to find it. Its addresses come from
	// libp2p's identify, which the viewer's dial does not wait for on the
	// holder's side: a holder that has not heard them yet names nobody it
	// cannot point to (CI saw 3 of 4 named, the last viewer's identify
	// still on its way).
	for _, s := range []*Swarm{a, b1, b2, x} {
		testutil.WaitFor(t, 10*time.Second, "the holder to learn a viewer's addresses", func() bool {
			return len(holder.cfg.Host.Peerstore().Addrs(s.cfg.Host.ID())) > 0
		})
	}
	_, _, holders, err := other.fetchManifest(t.Context(), info, id)
	if err != nil {
		t.Fatal(err)
	}
	named := map[peer.ID]bool{}
	for _, h := range holders {
		named[h.ID] = true
	}
	if !named[a.cfg.Host.ID()] || !named[b1.cfg.Host.ID()] || named[other.cfg.Host.ID()] || len(named) != 4 {
		t.Fatalf("holders named: %v", holders)
	}
}

// TestMerkle: every leaf of trees of every width up to 40 opens to the
// root, and a leaf moved, changed or given another path does not.
func TestMerkle(t *testing.T) {
	for n := 1; n <= 40; n++ {
		leaves := make([][]byte, n)
		all := make([]uint32, n)
		for i := range leaves {
			leaves[i] = bytes.Repeat([]byte{byte(i + 1)}, 32)
			all[i] = uint32(i)
		}
		root, paths := merkleRoot(leaves, all)
		for i := range n {
			if !merkleCheck(leaves[i], i, n, paths[i], root) {
				t.Fatalf("n=%d: leaf %d does not open", n, i)
			}
			if n > 1 && merkleCheck(leaves[i], (i+1)%n, n, paths[i], root) {
				t.Fatalf("n=%d: leaf %d opens at %d", n, i, (i+1)%n)
			}
			if merkleCheck(bytes.Repeat([]byte{0xee}, 32), i, n, paths[i], root) {
				t.Fatalf("n=%d: another leaf opens at %d", n, i)
			}
			if len(paths[i]) > 0 && merkleCheck(leaves[i], i, n, paths[i][1:], root) {
				t.Fatalf("n=%d: leaf %d opens with a short path", n, i)
			}
		}
	}
}

// TestServePeerCap: a peer that opens ten replay streams and never
// finishes its requests gets four held under the host's resource manager
// (p2plimit.ServiceReplay); six are reset at once. (Before, each waited
// out its 10 s deadline with a goroutine.)
func TestServePeerCap(t *testing.T) {
	h := testutil.LimitedHost(t)
	s := newSwarm(t, Config{Host: h})
	h.SetStreamHandler(ProtocolID, s.Serve)
	reset := testutil.HangingStreams(t, testutil.TCPHost(t), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}, ProtocolID, 10, 0x80)
	testutil.WaitFor(t, 8*time.Second, "six streams reset and four held", func() bool {
		return reset.Load() >= 6 && testutil.ServiceStreams(h, p2plimit.ServiceReplay) == 4
	})
}

// TestFutureEnd: a manifest whose end claims ten years ahead is served for
// 24 hours from when it came, not for ten years. (Before, Expired took the
// claimed end, and the replay stayed served while the node ran.)
func TestFutureEnd(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	raw, _ := key.Raw()
	clk := clock.NewFake(time.Now())
	future := clk.Now().AddDate(10, 0, 0)
	c := &chunk.Chunk{Broadcast: id, Seq: 1, Wallclock: future.UnixNano(), Duration: int64(time.Second), Payload: []byte("x")}
	c.Sign(ed25519.PrivateKey(raw))
	var rec replay.Recorder
	rec.Record(c)
	m := rec.Manifest(id, "from the future", future, nil)
	if !m.Ended.After(future) {
		t.Fatalf("the manifest ends %v", m.Ended)
	}
	signed, err := replay.SignManifest(m, ed25519.PrivateKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	holder := newSwarm(t, Config{Host: testutil.Host(t), Clock: clk})
	asker := newSwarm(t, Config{Host: testutil.Host(t), Clock: clk})
	// One keeps it as if it had watched, the other fetches it.
	theirs, err := replay.DecodeManifest(signed, id, pub)
	if err != nil {
		t.Fatal(err)
	}
	holder.Keep(t.Context(), theirs, signed)
	info := peer.AddrInfo{ID: holder.cfg.Host.ID(), Addrs: holder.cfg.Host.Addrs()}
	fetched, _, _, err := asker.fetchManifest(t.Context(), info, id)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(replay.DefaultTTL - time.Second)
	if !holder.Holds(t.Context(), id) || asker.Expired(fetched) {
		t.Fatal("expired before 24 h")
	}
	clk.Advance(time.Second)
	if holder.Holds(t.Context(), id) {
		t.Error("the holder still serves a replay 24 h after its manifest came")
	}
	if !asker.Expired(fetched) {
		t.Error("the asker takes a manifest fetched 24 h ago for unexpired")
	}
}

// TestOldPeer: a node that speaks only 1.1.0 (it counts any view asked
// of it) still gives a 1.2.0 node the manifest, and gets no view from it:
// the view's stream is refused at negotiation, clearly.
func TestOldPeer(t *testing.T) {
	m, signed, cs := servedReplay(t, 3)
	oldHost := testutil.Host(t)
	old, err := New(Config{Host: oldHost, Blocks: noBlocks{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close() })
	oldHost.SetStreamHandler(ProtocolV11, old.Serve)
	old.Keep(t.Context(), m, signed)
	info := peer.AddrInfo{ID: oldHost.ID(), Addrs: oldHost.Addrs()}
	asker := newSwarm(t, Config{Host: testutil.Host(t)})
	if got, _, _, err := asker.fetchManifest(t.Context(), info, m.Broadcast); err != nil || got.Title != "served" {
		t.Fatalf("the manifest from a 1.1.0 node: %v", err)
	}
	if _, err := asker.sendView(t.Context(), info, holding(asker, m, cs), nil); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Fatalf("a view sent to a 1.1.0 node: %v, want a refused protocol", err)
	}
}

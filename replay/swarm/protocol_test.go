package swarm

import (
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
		request{kind: askProvenView, broadcast: id, proof: bytes.Repeat([]byte{7}, 32), attestation: []byte("an attestation")}.encode(),
		resp.encode(),
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
	if err != nil || req.kind != askProvenView || len(req.proof) != 32 || string(req.attestation) != "an attestation" {
		t.Fatalf("a proven view %+v: %v", req, err)
	}
	if _, err := decodeRequest(request{kind: askProvenView, broadcast: id, proof: []byte("short")}.encode()); !errors.Is(err, ErrMalformed) {
		t.Errorf("a proof of 5 bytes: %v", err)
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
			if err != nil || again.kind != req.kind || again.broadcast != req.broadcast ||
				!bytes.Equal(again.proof, req.proof) || !bytes.Equal(again.attestation, req.attestation) {
				t.Fatalf("request round trip: %+v → %+v (%v)", req, again, err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if resp, err := decodeResponse(b); err == nil {
			again, err := decodeResponse(resp.encode())
			if err != nil || again.views != resp.views || again.identified != resp.identified || len(again.manifest) != len(resp.manifest) {
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

// servedReplay is a one-chunk replay: its manifest, signed, and the chunk.
func servedReplay(t *testing.T) (*replay.Manifest, []byte, *chunk.Chunk) {
	t.Helper()
	key, _, id := testutil.Broadcaster(t)
	raw, _ := key.Raw()
	start := time.Now().Add(-time.Minute)
	c := &chunk.Chunk{Broadcast: id, Seq: 1, Wallclock: start.UnixNano(), Duration: int64(time.Second), Payload: []byte("x")}
	c.Sign(ed25519.PrivateKey(raw))
	var rec replay.Recorder
	rec.Record(c)
	m := rec.Manifest(id, "served", start, nil)
	signed, err := replay.SignManifest(m, ed25519.PrivateKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m, signed, c
}

// TestServe: over libp2p hosts on loopback, a holder gives the manifest it
// keeps and names the holders it knows (its neighbours first, never the
// asker, never a peer that only asked); a replay it does not hold is
// ErrNoManifest.
func TestServe(t *testing.T) {
	m, signed, _ := servedReplay(t)
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

// TestViews: a view counts only with a proof that the viewer holds every
// chunk, bound to its own peer ID; once per peer, and once per account
// when it carries an attestation the holder believes, counted apart; a
// view asked the 1.1.0 way counts nothing. A peer whose view was proven is
// named as a holder. (Before, any peer that asked was a view — and a
// holder —, and peer IDs are free: a client with N keys made N views.)
func TestViews(t *testing.T) {
	m, signed, c := servedReplay(t)
	id := m.Broadcast
	st, err := replay.Open(replay.Config{Dir: t.TempDir(), Verify: replay.Verify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Put(t.Context(), c); err != nil {
		t.Fatal(err)
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
	chunks := func(context.Context, cid.Cid) ([]byte, error) { return c.Bytes(), nil }

	view := func(asker *Swarm, proof []byte, att string) response {
		t.Helper()
		resp, err := asker.ask(t.Context(), info, request{kind: askProvenView, broadcast: id, proof: proof, attestation: []byte(att)}, ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	proofFor := func(p peer.ID) []byte {
		proof, err := viewProof(t.Context(), m, p, chunks)
		if err != nil {
			t.Fatal(err)
		}
		return proof
	}

	// A sybil: ten peer IDs asking for views the 1.1.0 way, ten with a
	// proof computed for another peer, ten with garbage: nothing counts.
	other := newSwarm(t, Config{Host: testutil.Host(t)})
	for range 10 {
		sybil := newSwarm(t, Config{Host: testutil.Host(t)})
		if _, err := sybil.ask(t.Context(), info, request{kind: askView, broadcast: id}, ProtocolV11); err != nil {
			t.Fatal(err)
		}
		view(sybil, proofFor(other.cfg.Host.ID()), "")
		view(sybil, make([]byte, 32), "")
	}
	if v := holder.Views(id); v.Total() != 0 || len(viewed) != 0 {
		t.Fatalf("views without a proof counted: %+v", v)
	}

	// Proven views: twice from one peer counts once.
	a := newSwarm(t, Config{Host: testutil.Host(t)})
	for range 2 {
		if resp := view(a, proofFor(a.cfg.Host.ID()), ""); resp.views != 1 || resp.identified != 0 {
			t.Fatalf("a proven view: answered %+v", resp)
		}
	}
	// Identified: bob's two peers count as one account; alice's view on
	// a peer seen anonymously moves it to her account.
	b1, b2 := newSwarm(t, Config{Host: testutil.Host(t)}), newSwarm(t, Config{Host: testutil.Host(t)})
	view(b1, proofFor(b1.cfg.Host.ID()), "bob@"+b1.cfg.Host.ID().String())
	view(b2, proofFor(b2.cfg.Host.ID()), "bob@"+b2.cfg.Host.ID().String())
	// An attestation issued to someone else is ignored: anonymous.
	x := newSwarm(t, Config{Host: testutil.Host(t)})
	view(x, proofFor(x.cfg.Host.ID()), "carol@"+b1.cfg.Host.ID().String())
	resp := view(a, proofFor(a.cfg.Host.ID()), "alice@"+a.cfg.Host.ID().String())
	if want := (Views{Identified: 2, Anonymous: 1}); holder.Views(id) != want || resp.views != 3 || resp.identified != 2 {
		t.Fatalf("views %+v, answered %d (%d identified); want %+v", holder.Views(id), resp.views, resp.identified, want)
	}
	if len(viewed) != 3 {
		t.Fatalf("OnView heard %d new views, want 3 (a, bob, x)", len(viewed))
	}
	// The 1.1.0 way still reads the counts; a proven view over 1.1.0 is
	// refused.
	if resp, err := other.ask(t.Context(), info, request{kind: askView, broadcast: id}, ProtocolV11); err != nil || resp.views != 3 {
		t.Fatalf("counts over 1.1.0: %+v, %v", resp, err)
	}
	if _, err := other.ask(t.Context(), info, request{kind: askProvenView, broadcast: id, proof: proofFor(other.cfg.Host.ID())}, ProtocolV11); err == nil {
		t.Fatal("a proven view over 1.1.0 was answered")
	}
	// Whoever proved a view holds the replay: the next asker hears of it.
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

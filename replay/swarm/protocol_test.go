package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	resp := response{manifest: []byte{0x0a, 0x03, 'a', 'b', 'c'}, holders: []peer.AddrInfo{{ID: pid, Addrs: []ma.Multiaddr{a}}}, views: 3}
	return [][]byte{
		request{kind: askManifest, broadcast: id}.encode(),
		request{kind: askView, broadcast: id}.encode(),
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
	resp, err := decodeResponse(seeds(t)[2])
	if err != nil || resp.views != 3 || len(resp.holders) != 1 || string(resp.manifest) != "\x0a\x03abc" {
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
			if err != nil || again != req {
				t.Fatalf("request round trip: %+v → %+v (%v)", req, again, err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if resp, err := decodeResponse(b); err == nil {
			again, err := decodeResponse(resp.encode())
			if err != nil || again.views != resp.views || len(again.manifest) != len(resp.manifest) {
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
	cfg.Host.SetStreamHandler(ProtocolID, s.Serve)
	return s
}

// TestServe: over two libp2p hosts on loopback, a holder gives the manifest
// it keeps and names the holders it knows (its neighbours first, never the
// asker); a view is counted once per peer and heard by OnView; a replay it
// does not hold is ErrNoManifest.
func TestServe(t *testing.T) {
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

	neighbour := testutil.Host(t)
	holderHost := testutil.Host(t)
	holderHost.Peerstore().AddAddrs(neighbour.ID(), neighbour.Addrs(), time.Hour)
	viewed := make(chan string, 4)
	holder := newSwarm(t, Config{Host: holderHost,
		Neighbours: func(context.Context, string) []peer.ID { return []peer.ID{neighbour.ID()} },
		OnView:     func(b string) { viewed <- b }})
	if !holder.Keep(t.Context(), m, signed) || holder.Keep(t.Context(), m, signed) {
		t.Fatal("Keep does not keep the first manifest only")
	}
	asker := newSwarm(t, Config{Host: testutil.Host(t)})
	info := peer.AddrInfo{ID: holderHost.ID(), Addrs: holderHost.Addrs()}

	got, gotSigned, holders, err := asker.fetchManifest(t.Context(), info, id)
	if err != nil || got.Title != "served" || !bytes.Equal(gotSigned, signed) {
		t.Fatalf("manifest %+v: %v", got, err)
	}
	if len(holders) != 1 || holders[0].ID != neighbour.ID() {
		t.Fatalf("holders %v", holders)
	}
	for range 2 {
		resp, err := asker.ask(t.Context(), info, request{kind: askView, broadcast: id})
		if err != nil || resp.views != 1 {
			t.Fatalf("views %d: %v", resp.views, err)
		}
	}
	if b := <-viewed; b != id || len(viewed) != 0 || holder.Views(id) != 1 {
		t.Fatalf("view heard for %q, %d more, %d counted", b, len(viewed), holder.Views(id))
	}
	if _, _, _, err := asker.fetchManifest(t.Context(), info, id[:len(id)-1]+"x"); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("a replay the peer does not hold: %v", err)
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

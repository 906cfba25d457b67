package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/link"
)

// testKey is a fixed broadcaster's ID.
func testKey(t testing.TB) (crypto.PrivKey, ed25519.PublicKey, string) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := k.GetPublic().Raw()
	return k, ed25519.PublicKey(raw), pid.String() + ".abcdefgh"
}

// replaySeeds are the fuzz seeds of the replay protocol's messages (also
// committed as the corpus: PEERSCOPE_WRITE_SEEDS=1 go test -run TestWriteReplaySeeds).
func replaySeeds(t testing.TB) [][]byte {
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	if err != nil {
		t.Fatal(err)
	}
	_, _, id := testKey(t)
	pid, _, _ := link.BroadcasterOf(id)
	resp := replayResponse{manifest: []byte{0x0a, 0x03, 'a', 'b', 'c'}, holders: []peer.AddrInfo{{ID: pid, Addrs: []ma.Multiaddr{a}}}, views: 3}
	return [][]byte{
		replayRequest{kind: replayAskManifest, broadcast: id}.marshal(),
		replayRequest{kind: replayAskView, broadcast: id}.marshal(),
		resp.marshal(),
		{0x12, 0x05, '/', 'i', 'p', '4', '/'},
		{},
	}
}

func TestWriteReplaySeeds(t *testing.T) {
	if os.Getenv("PEERSCOPE_WRITE_SEEDS") == "" {
		t.Skip("set PEERSCOPE_WRITE_SEEDS=1 to write testdata/fuzz/FuzzReplayMessages")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReplayMessages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range replaySeeds(t) {
		body := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayMessages(t *testing.T) {
	_, _, id := testKey(t)
	var req replayRequest
	if err := req.unmarshal(replayRequest{kind: replayAskView, broadcast: id}.marshal()); err != nil || req.kind != replayAskView || req.broadcast != id {
		t.Fatalf("request %+v: %v", req, err)
	}
	for _, bad := range [][]byte{{}, {0x08, 0x07, 0x12, 0x01, 'x'}, {0x08, 0x01}} {
		if err := new(replayRequest).unmarshal(bad); !errors.Is(err, ErrBadReplay) {
			t.Errorf("request % x: %v", bad, err)
		}
	}
	var resp replayResponse
	if err := resp.unmarshal(replaySeeds(t)[2]); err != nil || resp.views != 3 || len(resp.holders) != 1 || string(resp.manifest) != "\x0a\x03abc" {
		t.Fatalf("response %+v: %v", resp, err)
	}
}

// FuzzReplayMessages: any bytes give a request or response, or an
// ErrBadReplay; never a panic.
func FuzzReplayMessages(f *testing.F) {
	for _, b := range replaySeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req replayRequest
		if err := req.unmarshal(b); err == nil {
			var again replayRequest
			if err := again.unmarshal(req.marshal()); err != nil || again != req {
				t.Fatalf("request round trip: %+v → %+v (%v)", req, again, err)
			}
		} else if !errors.Is(err, ErrBadReplay) {
			t.Fatal(err)
		}
		var resp replayResponse
		if err := resp.unmarshal(b); err == nil {
			var again replayResponse
			if err := again.unmarshal(resp.marshal()); err != nil || again.views != resp.views || len(again.manifest) != len(resp.manifest) {
				t.Fatalf("response round trip: %v", err)
			}
		} else if !errors.Is(err, ErrBadReplay) {
			t.Fatal(err)
		}
	})
}

package replay

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
)

// TestRecorder: the manifest lists every recorded chunk by the CID of its
// one encoding, the init inline, and ends when the last part's media ends;
// Verify holds the chunks to the key in their broadcast ID.
func TestRecorder(t *testing.T) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.IDFromPrivateKey(priv)
	id := pid.String() + ".rec"
	signer, err := chunk.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	var r Recorder
	if r.Manifest(id, "t", time.Time{}, nil) != nil {
		t.Fatal("a manifest of nothing")
	}
	start := time.Unix(1_800_000_000, 0)
	init := &chunk.Chunk{Broadcast: id, Wallclock: start.UnixNano(), Flags: chunk.FlagInit, Payload: []byte("init")}
	var made []*chunk.Chunk
	for i, c := range []*chunk.Chunk{init,
		{Broadcast: id, Seq: 1, Wallclock: start.UnixNano(), Duration: int64(200 * time.Millisecond), Flags: chunk.FlagKeyframe, Payload: []byte("a")},
		{Broadcast: id, Seq: 2, Wallclock: start.Add(200 * time.Millisecond).UnixNano(), Duration: int64(200 * time.Millisecond), Flags: chunk.FlagEnd, Payload: []byte("b")},
	} {
		signer.Sign(c)
		if err := Verify(c); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		r.Record(c)
		made = append(made, c)
	}
	m := r.Manifest(id, "a title", start, []byte("log"))
	if m.Broadcast != id || m.Title != "a title" || !m.Started.Equal(start) || string(m.Comments) != "log" ||
		!m.Ended.Equal(start.Add(400*time.Millisecond)) || len(m.Chunks) != 3 || string(m.Chunks[0].Init) != "init" {
		t.Fatalf("manifest %+v", m)
	}
	for i, c := range made {
		e := m.Chunks[i]
		if !e.CID.Equals(CIDOf(c.Bytes())) || e.Size != len(c.Bytes()) || m.Check(e, c) != nil {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	forged := made[1].Clone()
	forged.Payload = []byte("x")
	if err := Verify(forged); !errors.Is(err, chunk.ErrBadSignature) {
		t.Fatalf("a changed chunk: %v", err)
	}
}

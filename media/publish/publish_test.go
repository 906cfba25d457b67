package publish

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
)

// broadcast is what a Publisher hands out, as the node would take it: the
// chunks in order, the changes to announce.
type broadcast struct {
	id  string
	key crypto.PubKey

	mu      sync.Mutex
	chunks  []*chunk.Chunk
	changes []Change
}

func newPublisher(t *testing.T, cfg Config) (*Publisher, *broadcast) {
	t.Helper()
	priv, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.IDFromPublicKey(pub)
	b := &broadcast{id: pid.String() + ".test", key: pub}
	signer, err := chunk.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broadcast, cfg.Signer = b.id, signer
	cfg.Publish = func(c *chunk.Chunk) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.chunks = append(b.chunks, c)
		return nil
	}
	cfg.Announce = func(c Change) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.changes = append(b.changes, c)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, b
}

func (b *broadcast) snapshot() ([]*chunk.Chunk, []Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*chunk.Chunk(nil), b.chunks...), append([]Change(nil), b.changes...)
}

// ended reports whether the end was announced.
func (b *broadcast) ended() bool {
	_, cs := b.snapshot()
	for _, c := range cs {
		if c.Ended {
			return true
		}
	}
	return false
}

// check holds the chunks to what a tree expects of its root's: signed by
// the key, in sequence without gaps, one end, on the last chunk.
func (b *broadcast) check(t *testing.T) (parts int) {
	t.Helper()
	chunks, _ := b.snapshot()
	raw, _ := b.key.Raw()
	var next uint64
	for i, c := range chunks {
		if err := c.Verify(b.id, raw); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if c.IsInit() {
			if c.Seq != next {
				t.Fatalf("init chunk %d has seq %d, want %d", i, c.Seq, next)
			}
			continue
		}
		if c.Flags&chunk.FlagEnd != 0 && i != len(chunks)-1 {
			t.Fatalf("chunk %d of %d carries the end", i, len(chunks))
		}
		if len(c.Payload) > 0 {
			parts++
			if c.Seq != next {
				t.Fatalf("part %d has seq %d, want %d", i, c.Seq, next)
			}
			next++
		}
	}
	if len(chunks) == 0 || chunks[len(chunks)-1].Flags&chunk.FlagEnd == 0 {
		t.Fatal("the last chunk does not carry the end")
	}
	return parts
}

// TestOnePublisher: publishers share one slot; one that never sent media
// frees it quietly, one that was cut off has the grace period to come back
// (its successor continues the sequence), and one that ends its stream ends
// the broadcast, with FlagEnd on its last part; a title and the measured
// bitrate are announced.
func TestOnePublisher(t *testing.T) {
	p, b := newPublisher(t, Config{Grace: 300 * time.Millisecond})
	sink, err := p.Publish("whip", "A new title")
	if err != nil {
		t.Fatal(err)
	}
	if _, cs := b.snapshot(); len(cs) != 1 || cs[0].Title != "A new title" || p.Live() != "whip" {
		t.Fatalf("changes %+v, live %q", cs, p.Live())
	}
	if err := p.Admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second publisher: %v", err)
	}
	if _, err := p.Publish("rtmp", ""); !errors.Is(err, ErrBusy) {
		t.Fatalf("second publisher: %v", err)
	}
	// Gone before any media: the slot is free, the broadcast goes on.
	p.Unpublish(errors.New("no camera"))
	if b.ended() || p.Live() != "" {
		t.Fatal("a publisher that sent nothing ended the broadcast")
	}
	if err := sink.Tracks(nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a gone publisher's sink: %v", err)
	}

	// Media, then cut off: the broadcast waits, and a new publisher
	// continues it.
	sink, err = p.Publish("rtmp", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Feed(t, sink, 2*time.Second)
	p.Unpublish(errors.New("connection reset"))
	if b.ended() {
		t.Fatal("ended without the grace period")
	}
	sink, err = p.Publish("whip", "")
	if err != nil {
		t.Fatal(err)
	}
	// Its return stopped the grace period (and one that ran out anyway
	// finds another publisher's generation and does nothing).
	p.mu.Lock()
	stopped := p.graceCancel == nil
	p.mu.Unlock()
	if !stopped || b.ended() {
		t.Fatal("the grace period of a publisher that came back is still running")
	}
	time.Sleep(400 * time.Millisecond) // past the first grace period
	if b.ended() {
		t.Fatal("the first grace period ended the broadcast of its successor")
	}
	testutil.Feed(t, sink, 2*time.Second)
	p.Unpublish(nil)
	if !b.ended() {
		t.Fatal("a publisher that ended its stream did not end the broadcast")
	}
	if err := p.Admit(); !errors.Is(err, ErrEnded) {
		t.Fatalf("publisher after the end: %v", err)
	}
	if err := sink.Tracks(nil); !errors.Is(err, ErrEnded) {
		t.Fatalf("media after the end: %v", err)
	}
	if parts := b.check(t); parts < 15 {
		t.Fatalf("%d parts", parts)
	}
	_, cs := b.snapshot()
	bitrates := 0
	for _, c := range cs {
		if c.Bitrate > 0 {
			bitrates++
		}
	}
	if bitrates == 0 || !cs[len(cs)-1].Ended {
		t.Fatalf("changes %+v: no bitrate, or the end not last", cs)
	}
}

// TestGraceEnds: a publisher cut off that does not come back ends the
// broadcast when the grace period is over; one that is cut off with no
// grace ends it at once.
func TestGraceEnds(t *testing.T) {
	p, b := newPublisher(t, Config{Grace: 100 * time.Millisecond})
	sink, err := p.Publish("whip", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Feed(t, sink, time.Second)
	p.Unpublish(errors.New("ice failed"))
	testutil.WaitFor(t, 10*time.Second, "the grace period to end the broadcast", b.ended)
	b.check(t)

	p, b = newPublisher(t, Config{Grace: -1})
	if sink, err = p.Publish("rtmp", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Feed(t, sink, time.Second)
	p.Unpublish(errors.New("reset"))
	if !b.ended() {
		t.Fatal("a negative grace did not end the broadcast at once")
	}
}

// TestSourceAndStop: a source plays until Stop, which ends the broadcast
// with an end chunk; a failing source's error is kept.
func TestSourceAndStop(t *testing.T) {
	p, b := newPublisher(t, Config{})
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), ingest.WithLoop())
	if err != nil {
		t.Fatal(err)
	}
	p.Play(src)
	testutil.WaitFor(t, 10*time.Second, "parts from the source", func() bool {
		chunks, _ := b.snapshot()
		return len(chunks) > 3
	})
	if p.Live() != "source" {
		t.Fatalf("live %q", p.Live())
	}
	if err := p.Admit(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a publisher while the source plays: %v", err)
	}
	p.Stop()
	if !b.ended() || p.Err() != nil {
		t.Fatalf("ended %v, err %v", b.ended(), p.Err())
	}
	b.check(t)

	p, _ = newPublisher(t, Config{})
	bad, err := ingest.NewFile("bad.ts", bytes.NewReader(bytes.Repeat([]byte{0x47, 1, 2, 3}, 5000)))
	if err != nil {
		t.Fatal(err)
	}
	p.Play(bad)
	testutil.WaitFor(t, 10*time.Second, "the bad source to stop", func() bool { return p.Live() == "" })
	if p.Err() == nil {
		t.Fatal("the source's error is not kept")
	}
}

// TestRTMPKey: the RTMP listener admits the stream key only, and no
// publisher while one is live.
func TestRTMPKey(t *testing.T) {
	p, _ := newPublisher(t, Config{StreamKey: "right"})
	if err := p.ListenRTMP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	dial := func(key string) error {
		u, _ := url.Parse("rtmp://" + p.RTMPAddr().String() + "/live/" + key)
		c := &gortmplib.Client{URL: u, Publish: true}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := c.Initialize(ctx); err != nil {
			return err
		}
		c.Close()
		return nil
	}
	if err := dial("wrong"); err == nil {
		t.Fatal("a wrong key was admitted")
	}
	if err := dial("right"); err != nil {
		t.Fatalf("the stream key was refused: %v", err)
	}
	if _, err := p.Publish("whip", ""); err != nil {
		t.Fatal(err)
	}
	if err := dial("right"); err == nil {
		t.Fatal("an RTMP publisher was admitted while one is live over WHIP")
	}
	if k := NewStreamKey(); len(k) != 20 || k == NewStreamKey() {
		t.Fatalf("stream key %q", k)
	}
}

package replay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/replaypb"
)

// Limits of a manifest.
const (
	// MaxManifestSize bounds an encoded manifest: 24 hours of 200 ms parts
	// (432,000 entries of ~60 bytes) and a long comment log fit.
	MaxManifestSize = 64 << 20
	// MaxEntries bounds the chunks a manifest lists.
	MaxEntries = 1 << 20
	// MaxHeartSeconds bounds the hearts a manifest carries: a count for
	// each second of 36 hours (chat.MaxHeartSeconds).
	MaxHeartSeconds = 36 * 60 * 60
	maxTitle        = 1024
	maxInit         = 1 << 20
	// maxSealedHearts bounds a private manifest's sealed hearts: 36 hours
	// of counts (at most 5 bytes each) and the seal.
	maxSealedHearts = 1 << 20
)

// manifestDomain separates manifest signatures from every other use of the
// broadcaster's key.
const manifestDomain = "peerscope/replay-manifest/1\x00"

// Manifest is what a replay is made of, signed by its broadcaster when the
// broadcast ends: every chunk's CID in sequence order with its timing, the
// init data inline, and the comment log. A replay viewer needs nothing
// else from the broadcaster: each chunk it fetches from anyone is checked
// against its CID here.
type Manifest struct {
	Broadcast string
	Title     string
	Started   time.Time
	Ended     time.Time
	Chunks    []Entry
	// Comments is the chat log (chat.MarshalLog), each comment with its
	// place in the stream.
	Comments []byte
	// Hearts are the hearts, a count for each second from HeartsFrom, at
	// the moment their tappers watched, or as they reached the broadcaster
	// when they did not say (at most MaxHeartSeconds; none from a node
	// older than them, nor in a private broadcast's).
	HeartsFrom time.Time
	Hearts     []uint32
	// SealedHearts are a private broadcast's hearts, MarshalHearts sealed
	// under its replay key (at most 1 MiB).
	SealedHearts []byte
}

// Entry is one chunk of a replay.
type Entry struct {
	CID       cid.Cid
	Seq       uint64
	Wallclock time.Time // capture
	Duration  time.Duration
	Flags     chunk.Flags
	Size      int    // block bytes
	Init      []byte // the init segment, inline, for FlagInit chunks
}

// The wire form is proto/replay.proto's SignedManifest, Manifest and Entry
// (generated code in proto/replaypb). The signature covers the body as it
// was sent, so a node keeps and passes on the signed bytes it got.

func (m *Manifest) marshal() ([]byte, error) {
	pb := &replaypb.Manifest{Broadcast: m.Broadcast, Title: m.Title, Started: pbwire.UnixNano(m.Started),
		Ended: pbwire.UnixNano(m.Ended), Comments: m.Comments, Chunk: make([]*replaypb.Entry, len(m.Chunks))}
	if len(m.Hearts) > 0 {
		pb.HeartsFrom, pb.Hearts = pbwire.UnixNano(m.HeartsFrom), m.Hearts
	}
	pb.SealedHearts = m.SealedHearts
	for i := range m.Chunks {
		e := &m.Chunks[i]
		pb.Chunk[i] = &replaypb.Entry{Cid: e.CID.Bytes(), Seq: e.Seq, Wallclock: e.Wallclock.UnixNano(),
			Duration: int64(e.Duration), Flags: uint32(e.Flags), Size: uint32(e.Size), Init: e.Init}
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(pb)
}

func (m *Manifest) unmarshal(b []byte) error {
	*m = Manifest{}
	// Count the entries before the generated code makes one of each.
	entries := 0
	if err := pbwire.EachField(b, func(num protowire.Number, _ protowire.Type, _ uint64, _ []byte) error {
		if num == 5 {
			entries++
		}
		return nil
	}); err != nil {
		return err
	}
	if entries > MaxEntries {
		return fmt.Errorf("more than %d chunks", MaxEntries)
	}
	var pb replaypb.Manifest
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return err
	}
	switch {
	case pb.Broadcast == "" || len(pb.Broadcast) > maxBroadcastLen:
		return errors.New("bad broadcast ID")
	case len(pb.Title) > maxTitle:
		return errors.New("bad title")
	case len(pb.Hearts) > MaxHeartSeconds:
		return fmt.Errorf("hearts for more than %d seconds", MaxHeartSeconds)
	case len(pb.Hearts) > 0 && pb.HeartsFrom <= 0:
		return errors.New("hearts without their first second")
	case len(pb.SealedHearts) > maxSealedHearts:
		return fmt.Errorf("sealed hearts of %d bytes", len(pb.SealedHearts))
	}
	if len(pb.Hearts) > 0 {
		m.HeartsFrom, m.Hearts = pbwire.FromUnixNano(pb.HeartsFrom), pb.Hearts
	}
	if len(pb.SealedHearts) > 0 {
		m.SealedHearts = pb.SealedHearts
	}
	m.Broadcast, m.Title, m.Comments = pb.Broadcast, pb.Title, pb.Comments
	m.Started, m.Ended = pbwire.FromUnixNano(pb.Started), pbwire.FromUnixNano(pb.Ended)
	m.Chunks = make([]Entry, len(pb.Chunk))
	for i, pe := range pb.Chunk {
		if err := m.Chunks[i].from(pe); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

// MarshalHearts encodes a replay's hearts, a count for each second from
// from, as a private manifest seals them (SealedHearts).
func MarshalHearts(from time.Time, counts []uint32) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&replaypb.Hearts{From: pbwire.UnixNano(from), Counts: counts})
	return b
}

// ParseHearts decodes what MarshalHearts wrote (opened from a manifest's
// SealedHearts), checked as a manifest's hearts are.
func ParseHearts(b []byte) (time.Time, []uint32, error) {
	if len(b) > maxSealedHearts {
		return time.Time{}, nil, fmt.Errorf("%w: hearts of %d bytes", ErrMalformed, len(b))
	}
	var pb replaypb.Hearts
	if err := pbwire.Unmarshal(b, &pb); err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: hearts: %w", ErrMalformed, err)
	}
	switch {
	case len(pb.Counts) == 0 || len(pb.Counts) > MaxHeartSeconds:
		return time.Time{}, nil, fmt.Errorf("%w: hearts for %d seconds", ErrMalformed, len(pb.Counts))
	case pb.From <= 0:
		return time.Time{}, nil, fmt.Errorf("%w: hearts without their first second", ErrMalformed)
	}
	return pbwire.FromUnixNano(pb.From), pb.Counts, nil
}

func (e *Entry) from(pb *replaypb.Entry) error {
	c, err := cid.Cast(pb.Cid)
	switch {
	case err != nil:
		return fmt.Errorf("cid: %w", err)
	case !c.Defined():
		return errors.New("no CID")
	case pb.Duration < 0:
		return errors.New("negative duration")
	case pb.Size > MaxBlockSize:
		return fmt.Errorf("size %d", pb.Size)
	case len(pb.Init) > maxInit:
		return errors.New("init too large")
	}
	*e = Entry{CID: c, Seq: pb.Seq, Wallclock: time.Unix(0, pb.Wallclock), Duration: time.Duration(pb.Duration),
		Flags: chunk.Flags(pb.Flags), Size: int(pb.Size), Init: pb.Init}
	return nil
}

// Sign encodes the manifest and signs it with sign (the broadcaster's
// key: ed25519 over what it is given).
func (m *Manifest) Sign(sign func([]byte) ([]byte, error)) ([]byte, error) {
	body, err := m.marshal()
	if err != nil {
		return nil, fmt.Errorf("replay: encode manifest: %w", err)
	}
	sig, err := sign(append([]byte(manifestDomain), body...))
	if err != nil {
		return nil, fmt.Errorf("replay: sign manifest: %w", err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(&replaypb.SignedManifest{Body: body, Signature: sig})
}

// SignManifest signs with an ed25519 key.
func SignManifest(m *Manifest, key ed25519.PrivateKey) ([]byte, error) {
	return m.Sign(func(b []byte) ([]byte, error) { return ed25519.Sign(key, b), nil })
}

// DecodeManifest decodes a signed manifest and checks it: it must be about
// broadcast and signed by key.
func DecodeManifest(b []byte, broadcast string, key ed25519.PublicKey) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrMalformed, len(b))
	}
	var signed replaypb.SignedManifest
	if err := pbwire.Unmarshal(b, &signed); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrMalformed, err)
	}
	body, sig := signed.Body, signed.Signature
	if len(sig) != ed25519.SignatureSize || len(key) != ed25519.PublicKeySize ||
		!ed25519.Verify(key, append([]byte(manifestDomain), body...), sig) {
		return nil, fmt.Errorf("%w: manifest of %s", ErrBadSignature, clip(broadcast))
	}
	m := &Manifest{}
	if err := m.unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrMalformed, err)
	}
	if m.Broadcast != broadcast {
		return nil, fmt.Errorf("%w: manifest of %q, not %q", ErrMismatch, clip(m.Broadcast), clip(broadcast))
	}
	return m, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Find returns the manifest's entry for a CID.
func (m *Manifest) Find(id cid.Cid) (Entry, bool) {
	for _, e := range m.Chunks {
		if e.CID.Equals(id) {
			return e, true
		}
	}
	return Entry{}, false
}

// Duration returns the media time the replay spans.
func (m *Manifest) Duration() time.Duration {
	var d time.Duration
	for _, e := range m.Chunks {
		if e.Flags&chunk.FlagInit == 0 {
			d += e.Duration
		}
	}
	return d
}

// Check reports whether c is the chunk entry e lists: same broadcast, seq,
// capture, duration and flags. (Its bytes are checked by the CID.)
func (m *Manifest) Check(e Entry, c *chunk.Chunk) error {
	if c.Broadcast != m.Broadcast || c.Seq != e.Seq || c.Wallclock != e.Wallclock.UnixNano() ||
		c.Duration != int64(e.Duration) || c.Flags != e.Flags {
		return fmt.Errorf("%w: chunk %d", ErrMismatch, e.Seq)
	}
	return nil
}

// PutManifest keeps a broadcast's signed manifest (already verified by the
// caller) and records its end: the replay expires TTL after it.
func (s *Store) PutManifest(ctx context.Context, m *Manifest, signed []byte) error {
	if m.Ended.IsZero() {
		return fmt.Errorf("%w: manifest without an end", ErrMalformed)
	}
	if m.Ended.UnixNano()+int64(s.cfg.TTL) <= s.now() {
		return fmt.Errorf("%w: replay of %s", ErrExpired, clip(m.Broadcast))
	}
	if err := s.SetEnd(ctx, m.Broadcast, m.Ended); err != nil {
		return err
	}
	s.mu.Lock()
	s.bcast(m.Broadcast).man = true
	s.mu.Unlock()
	return s.idxPut(bucketManifests, []byte(m.Broadcast), signed)
}

// Manifest returns a broadcast's signed manifest, unless the replay has
// expired (ErrExpired) or none is kept (ErrNotFound).
func (s *Store) Manifest(ctx context.Context, broadcast string) ([]byte, error) {
	s.mu.Lock()
	b := s.bcasts[broadcast]
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, ErrClosed
	case b == nil || !b.man:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no manifest of %s", ErrNotFound, clip(broadcast))
	case b.end != 0 && b.end+int64(s.cfg.TTL) <= s.now():
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: replay of %s", ErrExpired, clip(broadcast))
	}
	s.mu.Unlock()
	v, err := s.idxGet(bucketManifests, []byte(broadcast))
	if err == nil && v == nil {
		err = fmt.Errorf("%w: no manifest of %s", ErrNotFound, clip(broadcast))
	}
	return v, err
}

// Replays returns the broadcasts whose manifest this store keeps and whose
// replay has not expired.
func (s *Store) Replays() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []string
	for id, b := range s.bcasts {
		if b.man && (b.end == 0 || b.end+int64(s.cfg.TTL) > now) {
			out = append(out, id)
		}
	}
	return out
}

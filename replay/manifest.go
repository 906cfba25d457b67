package replay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/pbwire"
)

// Limits of a manifest.
const (
	// MaxManifestSize bounds an encoded manifest: 24 hours of 200 ms parts
	// (432,000 entries of ~60 bytes) and a long comment log fit.
	MaxManifestSize = 64 << 20
	// MaxEntries bounds the chunks a manifest lists.
	MaxEntries = 1 << 20
	maxTitle   = 1024
	maxInit    = 1 << 20
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

// The wire form:
//
//	message Signed   { bytes body = 1; bytes signature = 2; }
//	  // signature: ed25519 over manifestDomain ‖ body
//	message Manifest { string broadcast = 1; string title = 2; int64 started = 3;
//	                   int64 ended = 4; repeated Entry chunk = 5; bytes comments = 6; }
//	message Entry    { bytes cid = 1; uint64 seq = 2; int64 wallclock = 3;
//	                   int64 duration = 4; uint32 flags = 5; uint32 size = 6;
//	                   bytes init = 7; }

func (m *Manifest) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, m.Broadcast)
	if m.Title != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, m.Title)
	}
	b = appendTime(b, 3, m.Started)
	b = appendTime(b, 4, m.Ended)
	var e []byte
	for i := range m.Chunks {
		c := &m.Chunks[i]
		e = e[:0]
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendBytes(e, c.CID.Bytes())
		for j, v := range []uint64{c.Seq, uint64(c.Wallclock.UnixNano()), uint64(c.Duration), uint64(c.Flags), uint64(c.Size)} {
			e = protowire.AppendTag(e, protowire.Number(j+2), protowire.VarintType)
			e = protowire.AppendVarint(e, v)
		}
		if len(c.Init) > 0 {
			e = protowire.AppendTag(e, 7, protowire.BytesType)
			e = protowire.AppendBytes(e, c.Init)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	if len(m.Comments) > 0 {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Comments)
	}
	return b
}

func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(t.UnixNano()))
}

func (m *Manifest) unmarshal(b []byte) error {
	*m = Manifest{}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 6, 1, 2, 5, 6); err != nil {
			return err
		}
		switch num {
		case 1:
			if len(raw) == 0 || len(raw) > maxBroadcastLen || !utf8.Valid(raw) {
				return errors.New("bad broadcast ID")
			}
			m.Broadcast = string(raw)
		case 2:
			if len(raw) > maxTitle || !utf8.Valid(raw) {
				return errors.New("bad title")
			}
			m.Title = string(raw)
		case 3:
			m.Started = time.Unix(0, int64(v))
		case 4:
			m.Ended = time.Unix(0, int64(v))
		case 5:
			if len(m.Chunks) >= MaxEntries {
				return fmt.Errorf("more than %d chunks", MaxEntries)
			}
			var e Entry
			if err := e.unmarshal(raw); err != nil {
				return fmt.Errorf("chunk %d: %w", len(m.Chunks), err)
			}
			m.Chunks = append(m.Chunks, e)
		case 6:
			m.Comments = raw
		}
		return nil
	})
	if err == nil && m.Broadcast == "" {
		err = errors.New("no broadcast ID")
	}
	return err
}

func (e *Entry) unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 7, 1, 7); err != nil {
			return err
		}
		switch num {
		case 1:
			c, err := cid.Cast(raw)
			if err != nil {
				return fmt.Errorf("cid: %w", err)
			}
			e.CID = c
		case 2:
			e.Seq = v
		case 3:
			e.Wallclock = time.Unix(0, int64(v))
		case 4:
			if int64(v) < 0 {
				return errors.New("negative duration")
			}
			e.Duration = time.Duration(v)
		case 5:
			if v > 0xffffffff {
				return errors.New("flags")
			}
			e.Flags = chunk.Flags(v)
		case 6:
			if v > MaxBlockSize {
				return fmt.Errorf("size %d", v)
			}
			e.Size = int(v)
		case 7:
			if len(raw) > maxInit {
				return errors.New("init too large")
			}
			e.Init = raw
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !e.CID.Defined() {
		return errors.New("no CID")
	}
	return nil
}

// Sign encodes the manifest and signs it with sign (the broadcaster's
// key: ed25519 over what it is given).
func (m *Manifest) Sign(sign func([]byte) ([]byte, error)) ([]byte, error) {
	body := m.marshal()
	sig, err := sign(append([]byte(manifestDomain), body...))
	if err != nil {
		return nil, fmt.Errorf("replay: sign manifest: %w", err)
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, body)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, sig)
	return b, nil
}

// SignManifest signs with an ed25519 key.
func SignManifest(m *Manifest, key ed25519.PrivateKey) ([]byte, error) {
	return m.Sign(func(b []byte) ([]byte, error) { return ed25519.Sign(key, b), nil })
}

// DecodeManifest decodes a signed manifest and checks it: it must be about
// broadcast and signed by key. Its byte fields alias b.
func DecodeManifest(b []byte, broadcast string, key ed25519.PublicKey) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrMalformed, len(b))
	}
	var body, sig []byte
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			body = raw
		case 2:
			sig = raw
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrMalformed, err)
	}
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

package chunk

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/bits"
	"testing"
)

var testPub = testKey.Public().(ed25519.PublicKey)

// TestStripedEveryNSubset: a striped chunk's fragments each verify and
// round-trip, and every N of them give back the whole chunk, byte for
// byte, whose signature verifies.
func TestStripedEveryNSubset(t *testing.T) {
	for _, np := range [][2]uint32{{1, 1}, {2, 0}, {3, 1}, {4, 1}, {4, 2}, {5, 3}, {16, 0}, {12, 4}} {
		n, p := np[0], np[1]
		for _, size := range []int{0, 1, 7, 3001, 62_500} {
			whole := striped(40, FlagKeyframe, n, p, payload(size))
			if err := whole.Verify(testBroadcast, testPub); err != nil {
				t.Fatalf("%d+%d, %d bytes: the whole chunk: %v", n, p, size, err)
			}
			frags, err := whole.Fragments()
			if err != nil {
				t.Fatal(err)
			}
			if len(frags) != int(n+p) {
				t.Fatalf("%d fragments for %d+%d", len(frags), n, p)
			}
			for k, f := range frags {
				if err := f.Verify(testBroadcast, testPub); err != nil {
					t.Fatalf("%d+%d, %d bytes: fragment %d: %v", n, p, size, k, err)
				}
				if len(f.Payload) != FragmentLen(size, int(n)) || !f.IsFragment() {
					t.Fatalf("fragment %d: %d bytes", k, len(f.Payload))
				}
				got, err := Decode(f.Bytes())
				if err != nil || !same(got, f) || got.enc == nil {
					t.Fatalf("fragment %d does not round-trip canonically: %v", k, err)
				}
			}
			want := whole.Bytes()
			tried := 0
			for mask := range 1 << (n + p) {
				if bits.OnesCount(uint(mask)) != int(n) || (n+p > 8 && tried > 40) {
					continue
				}
				tried++
				var some []*Chunk
				for k := range frags {
					if mask&(1<<k) != 0 {
						some = append(some, frags[k])
					}
				}
				got, err := Assemble(some)
				if err != nil {
					t.Fatalf("%d+%d, %d bytes, fragments %b: %v", n, p, size, mask, err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("%d+%d, %d bytes, fragments %b: assembled another chunk", n, p, size, mask)
				}
				if err := got.Verify(testBroadcast, testPub); err != nil {
					t.Fatalf("the assembled chunk: %v", err)
				}
			}
		}
	}
}

// TestForgedFragment: whatever a relay changes in a fragment, the next node
// refuses it.
func TestForgedFragment(t *testing.T) {
	whole := striped(41, FlagKeyframe, 4, 2, payload(3001))
	frags, _ := whole.Fragments()
	f := frags[2]
	other := fragment(striped(42, FlagKeyframe, 4, 2, bytes.Repeat([]byte{5}, 3001)), 2)
	for name, change := range map[string]func(*Chunk){
		"payload": func(c *Chunk) { c.Payload = append([]byte{c.Payload[0] ^ 1}, c.Payload[1:]...) },
		// A forger that hashes its own bytes into the list: the signature
		// covers the list.
		"payload-and-hash": func(c *Chunk) {
			c.Payload = bytes.Repeat([]byte{9}, len(c.Payload))
			h := bytes.Clone(c.Hashes)
			copy(h[2*32:], fragment(striped(41, FlagKeyframe, 4, 2, bytes.Repeat([]byte{9}, 3001)), 2).Hashes[2*32:3*32])
			c.Hashes = h
		},
		"stripe":    func(c *Chunk) { c.Stripe = 4 },
		"length":    func(c *Chunk) { c.Length = 3000 },
		"data":      func(c *Chunk) { c.Data = 3 },
		"parity":    func(c *Chunk) { c.Parity = 1 },
		"seq":       func(c *Chunk) { c.Seq++ },
		"epoch":     func(c *Chunk) { c.Epoch = 1 },
		"another's": func(c *Chunk) { c.Payload = other.Payload },
		// What a node that does not know striping does: drops the fields
		// and re-encodes. Under v1 the signature does not verify.
		"unstriped": func(c *Chunk) { c.Data, c.Parity, c.Stripe, c.Length, c.Hashes = 0, 0, 0, 0, nil },
	} {
		d := f.Clone()
		change(d)
		err := d.Verify(testBroadcast, testPub)
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s changed: %v, want ErrBadSignature or ErrMalformed", name, err)
		}
		if err == nil {
			t.Errorf("%s changed: verified", name)
		}
	}
	w := whole.Clone()
	w.Payload = append(bytes.Clone(w.Payload[:100]), w.Payload[100:]...)
	w.Payload[100] ^= 1
	if err := w.Verify(testBroadcast, testPub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a whole striped chunk changed: %v, want ErrBadSignature", err)
	}
	w = whole.Clone()
	w.Data = 0
	if err := w.Verify(testBroadcast, testPub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a whole striped chunk passed off as unstriped: %v, want ErrBadSignature", err)
	}
}

func TestAssembleRefuses(t *testing.T) {
	frags, _ := striped(43, 0, 4, 2, payload(3001)).Fragments()
	others, _ := striped(44, 0, 4, 2, payload(3001)).Fragments()
	if _, err := Assemble(frags[:3]); !errors.Is(err, ErrMalformed) {
		t.Errorf("three of 4+2: %v", err)
	}
	if _, err := Assemble([]*Chunk{frags[0], frags[1], frags[1], frags[1]}); !errors.Is(err, ErrMalformed) {
		t.Errorf("one fragment given three times counts once: %v", err)
	}
	if _, err := Assemble([]*Chunk{frags[0], frags[1], others[2], frags[3]}); !errors.Is(err, ErrMalformed) {
		t.Errorf("fragments of two chunks: %v", err)
	}
	if _, err := Assemble([]*Chunk{striped(43, 0, 4, 2, payload(3001))}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a whole chunk: %v", err)
	}
	if _, err := Assemble(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nothing: %v", err)
	}
	if _, err := signed(1, 0, payload(10)).Fragments(); !errors.Is(err, ErrMalformed) {
		t.Errorf("fragments of an unstriped chunk: %v", err)
	}
	bad := &Chunk{Broadcast: testBroadcast, Data: 12, Parity: 5, Payload: payload(10)}
	if _, err := bad.Fragments(); !errors.Is(err, ErrMalformed) {
		t.Errorf("12+5 fragments: %v", err)
	}
	// More than N: the first N distinct are used, the rest ignored.
	got, err := Assemble(append(append([]*Chunk(nil), frags...), frags...))
	if err != nil || got.Verify(testBroadcast, testPub) != nil {
		t.Errorf("all fragments twice: %v", err)
	}
}

func BenchmarkFragments4Plus2(b *testing.B) {
	c := striped(45, 0, 4, 2, payload(62_500))
	b.SetBytes(62_500)
	for b.Loop() {
		if _, err := c.Fragments(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyFragment(b *testing.B) {
	f := fragment(striped(46, 0, 4, 2, payload(62_500)), 5)
	b.SetBytes(int64(len(f.Payload)))
	for b.Loop() {
		if err := f.Verify(testBroadcast, testPub); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifierRemembersOnlyGoodSignatures: once one fragment of a chunk
// verified, its siblings are checked by their hashes; nothing a forger
// changes rides on the remembered signature.
func TestVerifierRemembersOnlyGoodSignatures(t *testing.T) {
	v := NewVerifier(testBroadcast, testPub)
	frags, _ := striped(47, FlagKeyframe, 4, 2, payload(3001)).Fragments()
	if err := v.Verify(frags[0]); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Chunk){
		"payload": func(c *Chunk) { c.Payload = bytes.Repeat([]byte{1}, len(c.Payload)) },
		"hashes": func(c *Chunk) {
			c.Hashes = append(bytes.Clone(c.Hashes[:32]), bytes.Repeat([]byte{2}, len(c.Hashes)-32)...)
		},
		"signature": func(c *Chunk) { c.Signature = append([]byte{c.Signature[0] ^ 1}, c.Signature[1:]...) },
		"seq":       func(c *Chunk) { c.Seq++ },
		"broadcast": func(c *Chunk) { c.Broadcast = "other" },
	} {
		d := frags[3].Clone()
		change(d)
		if err := v.Verify(d); err == nil {
			t.Errorf("%s changed: verified", name)
		}
	}
	for k, f := range frags {
		if err := v.Verify(f); err != nil {
			t.Errorf("fragment %d: %v", k, err)
		}
	}
	if err := v.Verify(signed(3, 0, payload(30))); err != nil {
		t.Errorf("an unstriped chunk: %v", err)
	}
	bad := signed(3, 0, payload(30)).Clone()
	bad.Payload = payload(31)
	if err := v.Verify(bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("an unstriped chunk changed: %v", err)
	}
}

// BenchmarkVerifyChunkFragments: the six fragments of a 4+2 chunk, each on
// its own (as a tree verifies them) and through one Verifier.
func BenchmarkVerifyChunkFragments(b *testing.B) {
	frags, _ := striped(48, 0, 4, 2, payload(62_500)).Fragments()
	b.Run("alone", func(b *testing.B) {
		for b.Loop() {
			for _, f := range frags {
				if err := f.Verify(testBroadcast, testPub); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("verifier", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			v := NewVerifier(testBroadcast, testPub) // a fresh memory: one ed25519 per chunk, as in a tree
			for _, f := range frags {
				if err := v.Verify(f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

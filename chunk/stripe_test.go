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

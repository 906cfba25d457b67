package erasure

import (
	"bytes"
	"errors"
	"math/bits"
	"math/rand/v2"
	"testing"
)

func shards(rng *rand.Rand, n, size int) [][]byte {
	s := make([][]byte, n)
	for i := range s {
		s[i] = make([]byte, size)
		for k := range s[i] {
			s[i][k] = byte(rng.Uint32())
		}
	}
	return s
}

func encode(t testing.TB, c *Code, data [][]byte) [][]byte {
	t.Helper()
	parity := make([][]byte, c.Parity())
	for j := range parity {
		parity[j] = make([]byte, len(data[0]))
	}
	if err := c.Encode(data, parity); err != nil {
		t.Fatal(err)
	}
	return append(append([][]byte(nil), data...), parity...)
}

// TestEveryNOfNPlusP drops every set of shards it may (each subset of N
// shards is kept once) and checks the data comes back.
func TestEveryNOfNPlusP(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 8; n++ {
		for p := 0; p <= 3; p++ {
			c, err := New(n, p)
			if err != nil {
				t.Fatal(err)
			}
			data := shards(rng, n, 37)
			all := encode(t, c, data)
			for mask := range 1 << (n + p) {
				if bits.OnesCount(uint(mask)) != n {
					continue
				}
				got := make([][]byte, n+p)
				for k := range got {
					if mask&(1<<k) != 0 {
						got[k] = bytes.Clone(all[k])
					}
				}
				if err := c.Reconstruct(got); err != nil {
					t.Fatalf("%d+%d, shards %b: %v", n, p, mask, err)
				}
				for i := range n {
					if !bytes.Equal(got[i], data[i]) {
						t.Fatalf("%d+%d, shards %b: data shard %d differs", n, p, mask, i)
					}
				}
			}
		}
	}
}

// TestFirstParityIsXOR: one parity shard is the XOR of the data, what a
// browser could check without the field's tables.
func TestFirstParityIsXOR(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 16; n++ {
		c, _ := New(n, 2)
		data := shards(rng, n, 64)
		all := encode(t, c, data)
		x := make([]byte, 64)
		for _, s := range data {
			for k, v := range s {
				x[k] ^= v
			}
		}
		if !bytes.Equal(all[n], x) {
			t.Fatalf("%d data shards: the first parity is not their XOR", n)
		}
		if n > 1 && bytes.Equal(all[n+1], x) {
			t.Fatalf("%d data shards: the second parity is the XOR too", n)
		}
	}
}

func TestLargeCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, np := range [][2]int{{16, 4}, {32, 8}, {200, 56}} {
		n, p := np[0], np[1]
		c, err := New(n, p)
		if err != nil {
			t.Fatal(err)
		}
		data := shards(rng, n, 20)
		all := encode(t, c, data)
		for range 20 {
			got := make([][]byte, n+p)
			for _, k := range rng.Perm(n + p)[:n] {
				got[k] = bytes.Clone(all[k])
			}
			if err := c.Reconstruct(got); err != nil {
				t.Fatalf("%d+%d: %v", n, p, err)
			}
			for i := range n {
				if !bytes.Equal(got[i], data[i]) {
					t.Fatalf("%d+%d: data shard %d differs", n, p, i)
				}
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, np := range [][2]int{{0, 1}, {-1, 0}, {1, -1}, {200, 57}} {
		if _, err := New(np[0], np[1]); err == nil {
			t.Fatalf("New(%d, %d) accepted", np[0], np[1])
		}
	}
	c, _ := New(4, 2)
	data := shards(rand.New(rand.NewPCG(1, 1)), 4, 8)
	all := encode(t, c, data)
	few := [][]byte{nil, all[1], nil, all[3], nil, all[5]}
	if err := c.Reconstruct(few); !errors.Is(err, ErrTooFew) {
		t.Fatalf("three of 4+2 shards: %v, want ErrTooFew", err)
	}
	odd := [][]byte{nil, all[1], all[2], all[3], all[4][:7], nil}
	if err := c.Reconstruct(odd); err == nil {
		t.Fatal("shards of different lengths accepted")
	}
	if err := c.Reconstruct(all[:5]); err == nil {
		t.Fatal("five shards for 4+2 accepted")
	}
	if err := c.Encode(data[:3], make([][]byte, 2)); err == nil {
		t.Fatal("three data shards for 4+2 accepted")
	}
}

func BenchmarkEncode4Plus2(b *testing.B) {
	c, _ := New(4, 2)
	data := shards(rand.New(rand.NewPCG(1, 2)), 4, 62_500/4)
	parity := [][]byte{make([]byte, len(data[0])), make([]byte, len(data[0]))}
	b.SetBytes(62_500)
	for b.Loop() {
		_ = c.Encode(data, parity)
	}
}

func BenchmarkReconstructTwoData4Plus2(b *testing.B) {
	c, _ := New(4, 2)
	all := encode(b, c, shards(rand.New(rand.NewPCG(1, 2)), 4, 62_500/4))
	b.SetBytes(62_500)
	for b.Loop() {
		got := [][]byte{nil, all[1], nil, all[3], all[4], all[5]}
		_ = c.Reconstruct(got)
	}
}

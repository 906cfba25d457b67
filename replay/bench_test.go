package replay

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPut stores 62.5 KB chunks (a 200 ms part at 2.5 Mb/s):
// encoding, hashing, the index record and the block file, without the
// signature check.
func BenchmarkPut(b *testing.B) {
	clk := newClock()
	bc := newBroadcaster("bench", 1)
	s, err := Open(Config{Dir: b.TempDir(), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := bc.chunk(0, clk.Now(), 62_500)
	b.SetBytes(62_500)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A clone: a copy would keep c's cached encoding, and every put
		// after the first would be a duplicate of it.
		c2 := c.Clone()
		c2.Seq = uint64(i)
		if _, err := s.Put(context.Background(), c2); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if u := s.Usage(); u.Chunks != b.N {
		b.Fatalf("%d chunks kept of %d put", u.Chunks, b.N)
	}
}

// fill stores n small chunks of one broadcast, ended at the clock's now.
func fill(b *testing.B, s *Store, bc *broadcaster, clk *clock, n int) {
	b.Helper()
	for i := range n {
		if _, err := s.Put(context.Background(), bc.chunk(uint64(i), clk.Now(), 1000)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SetEnd(context.Background(), bc.id, clk.Now()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSweep100k: the sweeper over 100,000 stored chunks — a sweep
// that finds nothing expired (what runs every minute), and the sweep that
// deletes them all 24 hours later.
func BenchmarkSweep100k(b *testing.B) {
	const n = 100_000
	for range b.N {
		b.StopTimer()
		clk := newClock()
		bc := newBroadcaster("bench", 1)
		s, err := Open(Config{Dir: b.TempDir(), Now: clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		fill(b, s, bc, clk, n)
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/n, "ns/put")
		b.StartTimer()
		t0 := time.Now()
		if st, err := s.Sweep(context.Background()); err != nil || st.Chunks != 0 {
			b.Fatal(st, err)
		}
		b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms/idle-sweep")
		clk.Add(DefaultTTL)
		t1 := time.Now()
		st, err := s.Sweep(context.Background())
		if err != nil || st.Chunks != n {
			b.Fatal(st, err)
		}
		b.ReportMetric(float64(time.Since(t1).Milliseconds()), "ms/full-sweep")
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
}

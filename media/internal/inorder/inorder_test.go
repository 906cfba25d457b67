package inorder

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

// A script is a list of steps: "i5:A" an init chunk with Seq 5 and payload
// A, "k5" a keyframe chunk, "p6" a plain chunk, "e9" an empty end chunk,
// "+1500" time passes by that many milliseconds (then Tick). Released items
// print as seq, with "*" for a new init (and its payload), "!" after a gap,
// "$" for the end.
var scripts = []struct {
	name, steps, want string
}{
	{"in order", "i0:A k0 p1 p2 k3 p4", "0*A 1 2 3 4"},
	{"waits for a keyframe and an init", "p1 k2 p3 i2:A", "2*A 3"},
	{"starts at the first keyframe with an init", "k0 p1 k2 i2:A p3", "2*A 3"},
	{"reorders", "i0:A k0 p2 p3 p1 p4", "0*A 1 2 3 4"},
	{"dedupes", "i0:A k0 k0 p1 p1 p2 p0", "0*A 1 2"},
	{"late repair within MaxWait", "i0:A k0 p2 +1000 p3 +900 p1", "0*A 1 2 3"},
	{"gives up a gap and restarts at a keyframe", "i0:A k0 p2 p3 k4 p5 +2000", "0*A !4 5"},
	{"a late chunk after giving up is ignored", "i0:A k0 p2 k3 +2500 p1 p4", "0*A !3 4"},
	{"a new init takes effect at a keyframe", "i0:A k0 p1 i2:B k2 p3", "0*A 1 2*B 3"},
	{"a same init again is no change", "i0:A k0 p1 i2:A k2 p3", "0*A 1 2 3"},
	{"a late init applies from the next keyframe", "i0:A k0 p1 p2 i1:B p3 k4", "0*A 1 2 3 4*B"},
	{"end with no payload", "i0:A k0 p1 e2 p3", "0*A 1 $"},
	{"end waits for the gap", "i0:A k0 e2 p1", "0*A 1 $"},
	{"end alone", "e7", "$"},
}

func TestScripts(t *testing.T) {
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			q := New(Config{})
			now := time.Unix(1000, 0)
			var got []string
			out := func(items []Item) {
				for _, it := range items {
					s := ""
					if it.Gap {
						s += "!"
					}
					if it.End && it.Chunk == nil {
						got = append(got, s+"$")
						continue
					}
					s += fmt.Sprint(it.Chunk.Seq)
					if it.NewInit {
						s += "*" + string(it.Init)
					}
					got = append(got, s)
				}
			}
			for _, st := range strings.Fields(sc.steps) {
				var n uint64
				var payload string
				if st[0] == '+' {
					var ms int
					fmt.Sscan(st[1:], &ms)
					now = now.Add(time.Duration(ms) * time.Millisecond)
					out(q.Tick(now))
					continue
				}
				if i := strings.IndexByte(st, ':'); i > 0 {
					payload = st[i+1:]
					st = st[:i]
				}
				fmt.Sscan(st[1:], &n)
				c := &chunk.Chunk{Seq: n, Payload: []byte("x")}
				switch st[0] {
				case 'i':
					c.Flags, c.Payload = chunk.FlagInit, []byte(payload)
				case 'k':
					c.Flags = chunk.FlagKeyframe
				case 'e':
					c.Flags, c.Payload = chunk.FlagEnd, nil
				}
				out(q.Push(now, c))
			}
			if g := strings.Join(got, " "); g != sc.want {
				t.Fatalf("got  %s\nwant %s", g, sc.want)
			}
		})
	}
}

func TestBounded(t *testing.T) {
	q := New(Config{MaxPending: 10})
	now := time.Unix(0, 0)
	// Never a keyframe: what waits stays bounded.
	for i := range uint64(1000) {
		q.Push(now, &chunk.Chunk{Seq: i, Payload: []byte("x")})
	}
	if len(q.pending) > 10 {
		t.Fatalf("%d pending", len(q.pending))
	}
	// Inits are bounded too.
	for i := range uint64(100) {
		q.Push(now, &chunk.Chunk{Seq: i, Flags: chunk.FlagInit, Payload: []byte{byte(i)}})
	}
	if len(q.inits) > 8 {
		t.Fatalf("%d inits", len(q.inits))
	}
	// A gap with more than MaxPending behind it is given up at once.
	q = New(Config{MaxPending: 10})
	q.Push(now, &chunk.Chunk{Seq: 0, Flags: chunk.FlagInit, Payload: []byte("A")})
	q.Push(now, &chunk.Chunk{Seq: 0, Flags: chunk.FlagKeyframe})
	var got int
	for i := uint64(2); i < 30; i++ {
		f := chunk.Flags(0)
		if i%5 == 0 {
			f = chunk.FlagKeyframe
		}
		got += len(q.Push(now, &chunk.Chunk{Seq: i, Flags: f}))
	}
	if got == 0 || len(q.pending) > 10 {
		t.Fatalf("released %d, %d pending", got, len(q.pending))
	}
}

// Whatever the order and the duplicates, releases are strictly increasing,
// each chunk once, and with no loss every chunk from the first keyframe on
// is released.
func TestShuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		const n = 60
		var arrivals []uint64
		for seq := range uint64(n) {
			arrivals = append(arrivals, seq)
			if rng.IntN(4) == 0 {
				arrivals = append(arrivals, seq) // a duplicate
			}
		}
		// Displace each chunk by up to 8 places: late repairs.
		for i := range arrivals {
			j := min(len(arrivals)-1, i+rng.IntN(8))
			arrivals[i], arrivals[j] = arrivals[j], arrivals[i]
		}
		q := New(Config{MaxWait: time.Hour})
		now := time.Unix(0, 0)
		q.Push(now, &chunk.Chunk{Seq: 0, Flags: chunk.FlagInit, Payload: []byte("A")})
		var got []uint64
		for _, seq := range arrivals {
			c := &chunk.Chunk{Seq: seq, Payload: []byte("x")}
			if seq%10 == 0 {
				c.Flags = chunk.FlagKeyframe
			}
			for _, it := range q.Push(now, c) {
				got = append(got, it.Chunk.Seq)
			}
		}
		if len(got) == 0 {
			t.Fatalf("round %d: nothing released", round)
		}
		first := got[0]
		if first%10 != 0 {
			t.Fatalf("round %d: started at %d, not a keyframe", round, first)
		}
		for i, seq := range got {
			if seq != first+uint64(i) {
				t.Fatalf("round %d: released %v", round, got)
			}
		}
		if got[len(got)-1] != n-1 {
			t.Fatalf("round %d: stopped at %d", round, got[len(got)-1])
		}
	}
}

package clock

import (
	"testing"
	"time"
)

// fired reports whether the pacer's ticker has fired.
func fired(p *Pacer) bool {
	select {
	case <-p.C():
		return true
	default:
		return false
	}
}

func TestPacerTicksWhenDue(t *testing.T) {
	const maxWait = time.Second
	start := time.Unix(1_700_000_000, 0)
	clk := NewFake(start)
	p := NewPacer(clk, 50*time.Millisecond, maxWait)
	defer p.Stop()
	clk.Advance(50 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no first tick after the floor")
	}
	// Nothing due for 250 ms: no tick before then.
	now := clk.Now()
	p.Ticked(now, now.Add(250*time.Millisecond))
	for range 4 {
		clk.Advance(50 * time.Millisecond)
		if fired(p) {
			t.Fatalf("a tick at %v, 250 ms due", clk.Now().Sub(now))
		}
	}
	clk.Advance(50 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick when due")
	}
	// Something due sooner arrives: the ticker is moved earlier, never
	// closer than the floor.
	now = clk.Now()
	p.Ticked(now, now.Add(time.Hour))
	clk.Advance(20 * time.Millisecond)
	p.Changed(clk.Now(), clk.Now()) // due at once
	clk.Advance(40 * time.Millisecond)
	if fired(p) {
		t.Fatal("a tick closer than the floor")
	}
	clk.Advance(10 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick a floor after something fell due")
	}
	// A later deadline leaves the armed tick alone; nothing due waits at
	// most max.
	now = clk.Now()
	p.Ticked(now, now.Add(time.Hour))
	p.Changed(now, now.Add(2*maxWait))
	clk.Advance(maxWait - time.Millisecond)
	if fired(p) {
		t.Fatal("a tick before max with nothing due")
	}
	clk.Advance(time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick after max")
	}
}

// TestPacerWithoutMax: with no max, nothing due (a machine's "never", far
// past the clock's range) means no tick at all, and an input that makes
// something due wakes it a floor later.
func TestPacerWithoutMax(t *testing.T) {
	clk := NewFake(time.Unix(1_700_000_000, 0))
	p := NewPacer(clk, 250*time.Millisecond, 0)
	defer p.Stop()
	clk.Advance(250 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no first tick after the floor")
	}
	never := time.Unix(1<<62, 0)
	p.Ticked(clk.Now(), never)
	for range 24 {
		clk.Advance(time.Hour)
		if fired(p) {
			t.Fatalf("a tick %v on with nothing due", clk.Now().Sub(time.Unix(1_700_000_000, 0)))
		}
	}
	p.Changed(clk.Now(), never) // still nothing: left alone
	p.Changed(clk.Now(), clk.Now().Add(10*time.Second))
	clk.Advance(10*time.Second - time.Millisecond)
	if fired(p) {
		t.Fatal("a tick before the due time")
	}
	clk.Advance(time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick at the due time")
	}
}

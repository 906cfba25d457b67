package p2p

import (
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/clock"
)

// fired reports whether the pacer's ticker has fired.
func fired(p *pacer) bool {
	select {
	case <-p.C():
		return true
	default:
		return false
	}
}

func TestPacerTicksWhenDue(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clk := clock.NewFake(start)
	p := newPacer(clk, 50*time.Millisecond)
	defer p.Stop()
	clk.Advance(50 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no first tick after the floor")
	}
	// Nothing due for 250 ms: no tick before then.
	now := clk.Now()
	p.ticked(now, now.Add(250*time.Millisecond))
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
	p.ticked(now, now.Add(time.Hour))
	clk.Advance(20 * time.Millisecond)
	p.changed(clk.Now(), clk.Now()) // due at once
	clk.Advance(40 * time.Millisecond)
	if fired(p) {
		t.Fatal("a tick closer than the floor")
	}
	clk.Advance(10 * time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick a floor after something fell due")
	}
	// A later deadline leaves the armed tick alone; nothing due waits at
	// most maxTickWait.
	now = clk.Now()
	p.ticked(now, now.Add(time.Hour))
	p.changed(now, now.Add(2*maxTickWait))
	clk.Advance(maxTickWait - time.Millisecond)
	if fired(p) {
		t.Fatal("a tick before maxTickWait with nothing due")
	}
	clk.Advance(time.Millisecond)
	if !fired(p) {
		t.Fatal("no tick after maxTickWait")
	}
}

package clock

import (
	"context"
	"testing"
	"time"
)

func TestFakeTickerAndSleep(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	tk := f.NewTicker(time.Second)
	woke := make(chan error, 1)
	go func() { woke <- f.Sleep(context.Background(), 3*time.Second) }()
	for f.sleepers() == 0 {
		time.Sleep(time.Millisecond) // wait for the goroutine to register, not for time to pass
	}
	f.Advance(500 * time.Millisecond)
	select {
	case <-tk.C():
		t.Fatal("ticked before its period")
	default:
	}
	f.Advance(600 * time.Millisecond)
	if got := <-tk.C(); !got.Equal(time.Unix(1001, 100e6)) {
		t.Fatalf("tick at %v", got)
	}
	select {
	case <-woke:
		t.Fatal("woke before its time")
	default:
	}
	f.Advance(2 * time.Second)
	if err := <-woke; err != nil {
		t.Fatal(err)
	}
	tk.Stop()
	f.Advance(time.Hour)
	select {
	case <-tk.C():
		t.Fatal("a stopped ticker ticked")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Second); err != context.Canceled {
		t.Fatalf("sleep with a done context: %v", err)
	}
}

func (f *Fake) sleepers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sleeps)
}

func TestSleepUntil(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	if !SleepUntil(context.Background(), f, f.Now()) {
		t.Fatal("a time already come must not wait")
	}
	woke := make(chan bool, 1)
	go func() { woke <- SleepUntil(context.Background(), f, f.Now().Add(2*time.Second)) }()
	for f.sleepers() == 0 {
		time.Sleep(time.Millisecond) // wait for the goroutine to register, not for time to pass
	}
	f.Advance(time.Second)
	select {
	case <-woke:
		t.Fatal("woke a second early")
	default:
	}
	f.Advance(time.Second)
	if !<-woke {
		t.Fatal("SleepUntil reported false with ctx live")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if SleepUntil(ctx, f, f.Now()) || SleepUntil(ctx, f, f.Now().Add(time.Hour)) {
		t.Fatal("SleepUntil reported true with ctx ended")
	}
}

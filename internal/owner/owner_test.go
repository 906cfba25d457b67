package owner

import (
	"context"
	"errors"
	"testing"
)

var errClosed = errors.New("closed")

func TestCall(t *testing.T) {
	done := make(chan struct{})
	in := New(1, done, errClosed)
	stopped := make(chan struct{})
	state := 0
	go func() {
		defer close(stopped)
		for {
			select {
			case f := <-in.Calls():
				f()
			case <-done:
				return
			}
		}
	}()
	for range 10 {
		if err := in.Call(context.Background(), func() { state++ }); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	if err := in.Call(context.Background(), func() { got = state }); err != nil || got != 10 {
		t.Fatalf("state %d, err %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := New(0, make(chan struct{}), errClosed) // nobody takes its calls
	if err := block.Call(ctx, func() {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a done context: %v", err)
	}
	close(done)
	<-stopped
	if err := in.Call(context.Background(), func() {}); !errors.Is(err, errClosed) {
		t.Fatalf("after the owner stopped: %v", err)
	}
}

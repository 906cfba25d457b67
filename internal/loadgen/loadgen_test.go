package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenLoop: requests keep being sent on schedule while earlier ones
// are stuck, and the stuck time counts in their latency.
func TestOpenLoop(t *testing.T) {
	var calls atomic.Int64
	// The first request is held until all 50 have been sent: a
	// closed-loop generator would never get there.
	release := make(chan struct{})
	r, err := Run(context.Background(), Config{Rate: 500, Duration: 100 * time.Millisecond, Workers: 64,
		Do: func(ctx context.Context, i int) error {
			if calls.Add(1) == 50 {
				close(release)
			}
			if i == 0 {
				<-release
				return errors.New("slow")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 50 || r.Errors != 1 || r.FirstError != "slow" {
		t.Fatalf("%+v", r)
	}
	if r.Max < r.P50 || r.P99 < r.P50 {
		t.Fatalf("percentiles out of order: %+v", r)
	}
}

func TestRefuses(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

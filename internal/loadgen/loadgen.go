package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Config is a run.
type Config struct {
	Rate     float64       // requests per second
	Duration time.Duration // how long to send
	// Workers bounds the requests in flight; a due request waits for one
	// (and that wait counts in its latency). Default 512.
	Workers int
	// Do sends request i and reports whether it failed.
	Do func(ctx context.Context, i int) error
}

// Result is what a run measured.
type Result struct {
	Sent     int           `json:"sent"`
	Errors   int           `json:"errors"`
	Achieved float64       `json:"achieved_rps"` // answered ÷ wall time
	Wall     time.Duration `json:"-"`
	// Latency percentiles in milliseconds, from due time to answer.
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// FirstError is an example of what failed.
	FirstError string `json:"first_error,omitempty"`
}

// Run sends at cfg.Rate for cfg.Duration and waits for the answers.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Do == nil {
		return Result{}, errors.New("loadgen: rate, duration and Do are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 512
	}
	n := int(math.Round(cfg.Rate * cfg.Duration.Seconds()))
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for j := range jobs {
				err := cfg.Do(ctx, j.i)
				lat[j.i] = time.Since(j.due)
				if err != nil {
					failed[j.i] = true
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
			}
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	sent := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break loop
			}
		}
		jobs <- job{i, due}
		sent++
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	r := Result{Sent: sent, Wall: wall}
	var ok []time.Duration
	for i := 0; i < sent; i++ {
		if failed[i] {
			r.Errors++
		}
		ok = append(ok, lat[i])
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if len(ok) == 0 {
		return r, fmt.Errorf("loadgen: nothing sent")
	}
	slices.Sort(ok)
	pct := func(p float64) float64 {
		k := int(math.Ceil(p*float64(len(ok)))) - 1
		return float64(ok[max(k, 0)]) / 1e6
	}
	r.P50, r.P90, r.P99, r.P999, r.Max = pct(0.50), pct(0.90), pct(0.99), pct(0.999), float64(ok[len(ok)-1])/1e6
	r.Achieved = float64(sent-r.Errors) / wall.Seconds()
	return r, ctx.Err()
}

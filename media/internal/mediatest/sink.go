package mediatest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/peerscope/peerscope/media"
)

// Sink is a media.Sink that records what an ingest hands it: the tracks,
// every sample, and the first breach of the order a sink is owed (Tracks
// once, then samples). The ingests' tests (rtmp, whip, broadcaster) use it.
type Sink struct {
	mu      sync.Mutex
	tracks  []media.Track
	samples []media.Sample
	calls   int // Tracks calls
	bad     error
	notify  chan struct{}
}

var _ media.Sink = (*Sink)(nil)

// NewSink returns an empty Sink.
func NewSink() *Sink { return &Sink{notify: make(chan struct{}, 1)} }

// Tracks records the tracks.
func (s *Sink) Tracks(t []media.Track) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.tracks = t
	return nil
}

// Sample records a sample.
func (s *Sink) Sample(smp media.Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls != 1 && s.bad == nil {
		s.bad = errors.New("sample before Tracks, or Tracks twice")
	}
	s.samples = append(s.samples, smp)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// Snapshot returns the tracks and a copy of the samples so far.
func (s *Sink) Snapshot() ([]media.Track, []media.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tracks, append([]media.Sample(nil), s.samples...)
}

// Err returns the first breach of order seen: a sample before Tracks, or
// after a second Tracks.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

// WaitFor waits until cond holds for the samples so far and returns them;
// it fails tb once within has passed, naming what it waited for.
func (s *Sink) WaitFor(tb testing.TB, within time.Duration, what string, cond func([]media.Sample) bool) []media.Sample {
	tb.Helper()
	deadline := time.After(within)
	for {
		_, got := s.Snapshot()
		if cond(got) {
			return got
		}
		select {
		case <-s.notify:
		case <-deadline:
			tb.Fatalf("within %v: %s (have %d samples)", within, what, len(got))
		}
	}
}

// WaitSamples waits until the sink holds at least n samples and returns
// them; it fails tb once within has passed.
func (s *Sink) WaitSamples(tb testing.TB, n int, within time.Duration) []media.Sample {
	tb.Helper()
	return s.WaitFor(tb, within, fmt.Sprintf("%d samples", n), func(got []media.Sample) bool { return len(got) >= n })
}

// Logger returns a logger that writes to tb.Log, so that a component's
// logs show with -v or when its test fails.
// What is logged once the test's cleanups have run is dropped: a
// library's goroutine (pion's connection-state callback, in a CI run of
// media/whip's TestAnswerPrefersH264) may log after the test returned, and
// testing panics on a Log after the test has completed.
func Logger(tb testing.TB, level slog.Level) *slog.Logger {
	w := &logWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type logWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

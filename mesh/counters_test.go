package mesh

import (
	"errors"
	"strings"
	"testing"
)

func TestCounterConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		counters []Counter
	}{
		{"no name", []Counter{{Kind: CounterEvents}}},
		{"no kind", []Counter{{Name: "a"}}},
		{"unknown kind", []Counter{{Name: "a", Kind: 3}}},
		{"twice", []Counter{{Name: "a", Kind: CounterEvents}, {Name: "a", Kind: CounterGauge}}},
		{"long name", []Counter{{Name: strings.Repeat("n", maxCounterName+1), Kind: CounterGauge}}},
		{"name not UTF-8", []Counter{{Name: "a\xff", Kind: CounterGauge}}},
		{"too many", make([]Counter, maxListLen+1)},
	} {
		cfg := newNetwork(t).config("x", 1)
		cfg.Counters = tc.counters
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New gave %v, want ErrInvalidConfig", tc.name, err)
		}
	}
	n := newNetwork(t).add(root, 3)
	if err := n.Count("web", 1); !errors.Is(err, ErrUnknownCounter) {
		t.Errorf("Count on a gauge: %v", err)
	}
	if err := n.SetGauge("hearts", 1); !errors.Is(err, ErrUnknownCounter) {
		t.Errorf("SetGauge on events: %v", err)
	}
	if err := n.Count("likes", 1); !errors.Is(err, ErrUnknownCounter) {
		t.Errorf("Count on an unknown name: %v", err)
	}
	if n.Status().Counters["hearts"] != 0 || n.Status().Counters["web"] != 0 {
		t.Errorf("refused counts were counted: %v", n.Status().Counters)
	}
}

// A status from a 1.0.0 node's encoder, with hearts (16) and web (17), is
// read without them: those fields are retired, and a 1.1.0 tree carries its
// counters in field 18 only.
func TestRetiredCounterFieldsAreSkipped(t *testing.T) {
	var m Message
	if err := m.Unmarshal(cat(typ(MsgStatus), fv(8, 3), fv(16, 5), fv(17, 7), fs(16, "x"), f64(17))); err != nil {
		t.Fatal(err)
	}
	if !equalMessages(&m, &Message{Type: MsgStatus, Subtree: 3}) {
		t.Fatalf("decoded %s", describe(&m))
	}
}

package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// smallConfig is a short run of a thin stream through a few hosts.
func smallConfig(nodes int, d time.Duration) Config {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Duration = nodes, d
	cfg.ArrivalWindow = 500 * time.Millisecond
	cfg.Bitrate = 400_000
	cfg.ChunkInterval = 100 * time.Millisecond
	cfg.Playout = time.Second
	return cfg
}

// TestRunModes runs every mode briefly on a few hosts and checks that the
// stream arrives and the figures are sane.
func TestRunModes(t *testing.T) {
	for _, mode := range Modes {
		t.Run(mode, func(t *testing.T) {
			cfg := smallConfig(6, 4*time.Second)
			cfg.Mode = mode
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r.JSON())
			if r.Extra["chunks_due"] == 0 {
				t.Fatal("no chunk was due")
			}
			// Gossipsub may lose a chunk while its mesh forms; the others must not.
			if mode != "gossipsub" && r.DeliveredRatio < 1 {
				t.Errorf("delivered_ratio %v", r.DeliveredRatio)
			}
			if r.DeliveredRatio < 0.9 {
				t.Errorf("delivered_ratio %v", r.DeliveredRatio)
			}
			if r.SourceUploadRatio <= 0 {
				t.Errorf("source_upload_ratio %v", r.SourceUploadRatio)
			}
			if mode == "tree" && (r.MaxDepth < 1 || r.SourceUploadRatio > 5) {
				t.Errorf("tree: max_depth %d, source_upload_ratio %v", r.MaxDepth, r.SourceUploadRatio)
			}
		})
	}
}

func TestParseSlotMix(t *testing.T) {
	mix, err := ParseSlotMix("0:0.3, 3:0.5,8:0.2")
	if err != nil || len(mix) != 3 || mix[2] != (SlotShare{8, 0.2}) {
		t.Fatalf("%v %v", mix, err)
	}
	for _, bad := range []string{"", "3", "x:1", "-1:0.5", "2:-1"} {
		if _, err := ParseSlotMix(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestChatConfigRefused: --chat needs the tree and time after the arrivals.
func TestChatConfigRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Chat = true
	cfg.Mode = "star"
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("chat in star mode: %v", err)
	}
	cfg.Mode = "tree"
	cfg.Duration, cfg.ArrivalWindow = 30*time.Second, 10*time.Second
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("chat with 20 s after the arrivals: %v", err)
	}
}

// TestPrivateTree: a private broadcast rekeying every second through a
// few hosts: every chunk due opens at every viewer across the rekeys.
func TestPrivateTree(t *testing.T) {
	cfg := smallConfig(6, 5*time.Second)
	cfg.Private, cfg.RekeyEvery = true, time.Second
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r.JSON())
	if r.Extra["private_epochs"] < 3 || r.Extra["private_undecryptable"] != 0 || r.Extra["private_opened"] == 0 {
		t.Errorf("epochs %v, opened %v, undecryptable %v", r.Extra["private_epochs"], r.Extra["private_opened"], r.Extra["private_undecryptable"])
	}
	if r.DeliveredRatio < 1 {
		t.Errorf("delivered_ratio %v", r.DeliveredRatio)
	}
}

// TestStripedTree: the stream over 4+2 trees through a few hosts, a third
// of the viewers killed halfway: every chunk due is assembled at every
// viewer that stayed, no fragment arrives twice, and the broadcaster's
// upload is its slots' (here enough for every viewer in every tree, so the
// run does not hang on which stripes the random peer IDs fall in).
func TestStripedTree(t *testing.T) {
	cfg := smallConfig(12, 6*time.Second)
	cfg.Stripes, cfg.Parity = 4, 2
	cfg.SourceSlots = 17 // 68 fragment slots, 11 or 12 in each of the six trees
	cfg.KillFraction, cfg.KillAt = 0.3, 3*time.Second
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r.JSON())
	if r.Extra["chunks_due"] == 0 || r.Continuity < 1 || r.DeliveredRatio < 1 {
		t.Errorf("chunks due %v, continuity %v, delivered %v", r.Extra["chunks_due"], r.Continuity, r.DeliveredRatio)
	}
	if r.DuplicateRatio > 0.01 {
		t.Errorf("duplicate ratio %v: fragments of different trees counted as copies?", r.DuplicateRatio)
	}
	if r.Extra["kills"] != 3 {
		t.Errorf("%v killed, want 3", r.Extra["kills"])
	}
	cfg.Chat = true
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("stripes with chat: %v", err)
	}
}

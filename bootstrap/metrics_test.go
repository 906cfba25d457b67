package bootstrap_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/testutil"
)

// TestDaemonMetrics: with --metrics the daemon serves Prometheus its
// figures on that address and nowhere else: requests by route and code
// (a listing, an announcement, an unknown endpoint), the announcement's
// group commit, what is live, the event streams open, the database pools
// and the host's peers; the public API has no /metrics.
func TestDaemonMetrics(t *testing.T) {
	cfg := bootstrap.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.Metrics = "127.0.0.1:0"
	cfg.Host.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	var out testutil.Buffer
	cfg.Out = &out
	d, err := bootstrap.NewDaemon(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-d.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready in 30 s")
	}
	// Ready closes before the operator is told: wait for the line.
	if d.MetricsURL() == "" {
		t.Fatal("no metrics URL with Config.Metrics set")
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), d.MetricsURL()); {
		if time.Now().After(deadline) {
			t.Fatalf("the operator is not told where the metrics are (%q):\n%s", d.MetricsURL(), out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.IDFromPrivateKey(priv)
	c := &api.Client{Base: d.URL(), Key: priv}
	id := pid.String() + ".m1"
	if _, err := c.Announce(ctx, id, announcement(id, "Harbour at noon", time.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.List(ctx, api.Query{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(d.URL() + "/api/v1/nothing-here"); code != http.StatusNotFound {
		t.Fatalf("an unknown endpoint answered %d", code)
	}
	// An event stream held open while scraping.
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, d.URL()+"/api/v1/events", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %s", stream.Status)
	}

	code, text := get(d.MetricsURL())
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	metrics := parseMetrics(text)
	for name, want := range map[string]float64{
		`peerscope_bootstrap_http_requests_total{code="200",route="GET /api/v1/broadcasts"}`:      2,
		`peerscope_bootstrap_http_requests_total{code="200",route="PUT /api/v1/broadcasts/{id}"}`: 1,
		`peerscope_bootstrap_http_requests_total{code="404",route="/api/"}`:                       1,
		`peerscope_bootstrap_live_broadcasts`:                                                     1,
		`peerscope_bootstrap_event_streams`:                                                       1,
		`peerscope_bootstrap_store_group_size_count`:                                              1,
		`peerscope_bootstrap_store_commit_errors_total`:                                           0,
		`peerscope_bootstrap_scrape_errors`:                                                       0,
	} {
		got, ok := metrics[name]
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{
		`go_sql_open_connections{db_name="writer"}`,
		`go_sql_open_connections{db_name="readers"}`,
		`peerscope_bootstrap_peers`,
		`peerscope_bootstrap_relay_reservations`,
		`peerscope_bootstrap_attestation_key_age_seconds`,
		`peerscope_bootstrap_http_request_seconds_count{route="GET /api/v1/broadcasts"}`,
		`process_resident_memory_bytes`,
	} {
		if _, ok := metrics[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if code, body := get(d.URL() + "/metrics"); code == http.StatusOK && strings.Contains(body, "peerscope_bootstrap_") {
		t.Error("the public API serves the metrics")
	}
}

// parseMetrics reads Prometheus' text format into name{labels} → value.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

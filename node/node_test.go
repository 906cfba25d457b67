package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/media/sample"
	"github.com/peerscope/peerscope/node"
)

// newNode starts a loopback node that the test closes.
func newNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	cfg.NoHTTPS = true
	n, err := node.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// gated holds a source back until the gate opens, so the tree can form
// before the media flows.
type gated struct {
	gate <-chan struct{}
	src  media.Source
}

func (g gated) Run(ctx context.Context, sink media.Sink) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.src.Run(ctx, sink)
}

func sampleSource(t *testing.T, opts ...ingest.Option) media.Source {
	t.Helper()
	src, err := ingest.NewFile("sample.ts", bytes.NewReader(sample.TS()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// waitFor polls cond until it holds or within passes (testutil.WaitFor).
var waitFor = testutil.WaitFor

func depth(t *testing.T, b *node.Broadcast) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Status(ctx)
	if err != nil {
		return -1
	}
	return st.Depth
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return body
}

// TestSampleThroughTheTree streams the sample clip from a broadcaster
// through four viewers whose slots force one of them three hops deep, and
// has ffprobe read that viewer's LL-HLS to the end: H.264 and Opus, every
// packet, timestamps that only go forward. Its /metrics must say depth 3,
// its page's api/status the title, and then that the broadcast ended.
func TestSampleThroughTheTree(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	testutil.NeedTool(t, "ffprobe", "ffmpeg")
	const title = "Test pattern → 3 hops"
	root := newNode(t, node.Config{Slots: 1})
	gate := make(chan struct{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: title, Source: gated{gate, sampleSource(t)}})
	if err != nil {
		t.Fatal(err)
	}
	// One slot at the root and 2+1 among the viewers: four viewers fit
	// only if one of them is three hops deep, and none can be deeper.
	link := b.Link()
	var viewers []*node.Broadcast
	for _, slots := range []int{2, 1, node.NoRelay, node.NoRelay} {
		v := newNode(t, node.Config{Slots: slots})
		w, err := v.Watch(t.Context(), link)
		if err != nil {
			t.Fatal(err)
		}
		if w.Announcement().Title != title {
			t.Fatalf("viewer's title %q, want %q", w.Announcement().Title, title)
		}
		viewers = append(viewers, w)
	}
	var deep *node.Broadcast
	waitFor(t, 30*time.Second, "every viewer in the tree, one 3 hops deep", func() bool {
		deep = nil
		for _, v := range viewers {
			switch d := depth(t, v); {
			case d < 1:
				return false
			case d == 3:
				deep = v
			}
		}
		return deep != nil
	})
	t.Logf("deep viewer: %s", deep.URLs().Player)

	// Its metrics parse, and say where it is.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(get(t, strings.TrimSuffix(deep.URLs().Player, deep.URLs().Path)+"/metrics")))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	if got := gaugeFor(t, families, "peerscope_tree_depth", b.ID()); got != 3 {
		t.Fatalf("metrics: depth %v, want 3", got)
	}

	close(gate)
	probeLive(t, deep.URLs().HLS)

	var st player.Status
	if err := json.Unmarshal(get(t, deep.URLs().Status), &st); err != nil {
		t.Fatal(err)
	}
	if st.Title != title {
		t.Fatalf("api/status title %q, want %q", st.Title, title)
	}
	for _, v := range append(viewers, b) {
		select {
		case <-v.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the end never came", v.URLs().Player)
		}
	}
	waitFor(t, 10*time.Second, "api/status to say ended", func() bool {
		var st player.Status
		return json.Unmarshal(get(t, deep.URLs().Status), &st) == nil && st.Ended
	})
	families, err = parser.TextToMetricFamilies(bytes.NewReader(get(t, strings.TrimSuffix(deep.URLs().Player, deep.URLs().Path)+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	if n := counterFor(t, families, "peerscope_chunks_received_total", b.ID()); n < 40 {
		t.Fatalf("metrics: %v chunks received", n)
	}
	if n := histogramCount(families, "peerscope_live_latency_seconds", b.ID()); n < 40 {
		t.Fatalf("metrics: %d latency observations", n)
	}
}

func labelled(families map[string]*dto.MetricFamily, name, broadcast string) []*dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "broadcast" && l.GetValue() == broadcast {
				out = append(out, m)
			}
		}
	}
	return out
}

func gaugeFor(t *testing.T, families map[string]*dto.MetricFamily, name, broadcast string) float64 {
	t.Helper()
	ms := labelled(families, name, broadcast)
	if len(ms) != 1 {
		t.Fatalf("metrics: %d series of %s for the broadcast", len(ms), name)
	}
	return ms[0].GetGauge().GetValue()
}

func counterFor(t *testing.T, families map[string]*dto.MetricFamily, name, broadcast string) float64 {
	t.Helper()
	ms := labelled(families, name, broadcast)
	if len(ms) != 1 {
		t.Fatalf("metrics: %d series of %s for the broadcast", len(ms), name)
	}
	return ms[0].GetCounter().GetValue()
}

func histogramCount(families map[string]*dto.MetricFamily, name, broadcast string) uint64 {
	ms := labelled(families, name, broadcast)
	if len(ms) != 1 {
		return 0
	}
	return ms[0].GetHistogram().GetSampleCount()
}

type probe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		PTS         string `json:"pts_time"`
		DTS         string `json:"dts_time"`
		Flags       string `json:"flags"`
	} `json:"packets"`
}

// checkProbe wants H.264 and Opus, each packet's DTS after the last by
// about a frame (no gap), no negative time, several keyframes, and the
// clip read to its end.
// probeLive waits for a live LL-HLS playlist's first parts, then has
// ffprobe read it to the broadcast's end and checks what it found
// (checkProbe).
func probeLive(t *testing.T, hlsURL string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the first parts at "+hlsURL, func() bool {
		resp, err := http.Get(hlsURL)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("#EXTINF"))
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error",
		"-show_entries", "stream=index,codec_name,codec_type:packet=stream_index,pts_time,dts_time,flags",
		"-of", "json", hlsURL).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	checkProbe(t, out)
}

func checkProbe(t *testing.T, out []byte) {
	t.Helper()
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	codecs := map[int]string{}
	for _, s := range p.Streams {
		codecs[s.Index] = s.CodecName
	}
	video, audio := -1, -1
	for i, c := range codecs {
		switch c {
		case "h264":
			video = i
		case "opus":
			audio = i
		}
	}
	if video < 0 || audio < 0 {
		t.Fatalf("streams %v, want h264 and opus", codecs)
	}
	byStream := map[int][][2]float64{}
	keyframes := 0
	for _, pk := range p.Packets {
		dts, err1 := strconv.ParseFloat(pk.DTS, 64)
		pts, err2 := strconv.ParseFloat(pk.PTS, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("packet %+v", pk)
		}
		byStream[pk.StreamIndex] = append(byStream[pk.StreamIndex], [2]float64{dts, pts})
		if pk.StreamIndex == video && strings.HasPrefix(pk.Flags, "K") {
			keyframes++
		}
	}
	for _, idx := range []int{video, audio} {
		pks := byStream[idx]
		sort.SliceStable(pks, func(i, j int) bool { return pks[i][0] < pks[j][0] })
		if len(pks) < 20 {
			t.Fatalf("%s: %d packets", codecs[idx], len(pks))
		}
		frame := 1.0 / 30
		if idx == audio {
			frame = 0.020
		}
		for i := 1; i < len(pks); i++ {
			step := pks[i][0] - pks[i-1][0]
			if step <= 0 || step > 2.5*frame {
				t.Fatalf("%s: packet %d: dts %.4f after %.4f: a gap", codecs[idx], i, pks[i][0], pks[i-1][0])
			}
			if pks[i][0] < 0 || pks[i][1] < 0 {
				t.Fatalf("%s: negative timestamps %v", codecs[idx], pks[i])
			}
		}
		span := pks[len(pks)-1][0] - pks[0][0]
		t.Logf("%s: %d packets from %.2f s to %.2f s", codecs[idx], len(pks), pks[0][0], pks[len(pks)-1][0])
		if span < 4 || pks[len(pks)-1][0] < sample.Duration-1 {
			t.Fatalf("%s: read %.2f s, up to %.2f of the clip's %d s", codecs[idx], span, pks[len(pks)-1][0], sample.Duration)
		}
	}
	if keyframes < 3 {
		t.Fatalf("%d keyframes", keyframes)
	}
}

// TestCloseLeavesNoGoroutine starts a broadcaster and a viewer, plays a
// little, and closes both twice: nothing they started may remain.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx := context.Background()
	root, err := node.New(ctx, node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := node.New(ctx, node.Config{NoHTTPS: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := root.GoLive(ctx, node.LiveConfig{Title: "leak check", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	w, err := viewer.Watch(ctx, b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "chunks at the viewer", func() bool {
		st, err := w.Status(ctx)
		return err == nil && st.Received >= 5
	})
	resp, err := http.Get(w.URLs().HLS)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, n := range []*node.Node{viewer, root} {
		for range 2 {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
	if _, err := viewer.Watch(ctx, b.Link()); err == nil {
		t.Fatal("Watch on a closed node")
	}
	if _, err := root.GoLive(ctx, node.LiveConfig{Source: sampleSource(t)}); err == nil {
		t.Fatal("Broadcast on a closed node")
	}
}

// TestIdentityPersists: a node with a DataDir keeps its peer ID.
func TestIdentityPersists(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	for range 2 {
		n, err := node.New(t.Context(), node.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID().String())
		if n.HTTPSURL() == "" || n.TLSFingerprint() == "" {
			t.Fatal("no HTTPS")
		}
		n.Close()
	}
	if ids[0] != ids[1] {
		t.Fatalf("peer IDs %v differ", ids)
	}
	if fi, err := os.Stat(dir + "/" + node.IdentityFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
}

// TestConfigRefused checks that New and Broadcast refuse what cannot work.
func TestConfigRefused(t *testing.T) {
	for _, cfg := range []node.Config{
		{Upload: -1}, {Headroom: 0.5}, {Slots: -2}, {CertFile: "x"}, {HTTP: "nonsense:address:1"},
		{Listen: []string{"/not/a/multiaddr"}},
	} {
		cfg.NoHTTPS = true
		if n, err := node.New(t.Context(), cfg); err == nil {
			n.Close()
			t.Errorf("New(%+v) took it", cfg)
		}
	}
	n := newNode(t, node.Config{})
	for _, bc := range []node.LiveConfig{
		{},
		{Source: sampleSource(t), WHIP: true},
		{Source: sampleSource(t), Bitrate: -1},
		{RTMP: "nonsense:address:1"},
	} {
		if b, err := n.GoLive(t.Context(), bc); err == nil {
			b.Close()
			t.Errorf("GoLive(%+v) took it", bc)
		}
	}
	if len(n.Broadcasts()) != 0 {
		t.Fatalf("%d broadcasts left behind", len(n.Broadcasts()))
	}
}

// TestWatchUnreachable: a link to nobody fails with ErrUnreachable, and one
// to this node's own broadcast with ErrJoined.
func TestWatchUnreachable(t *testing.T) {
	root := newNode(t, node.Config{})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Watch(t.Context(), b.Link()); err == nil {
		t.Fatal("watched its own broadcast")
	}
	gone := newNode(t, node.Config{})
	link := b.Link()
	link.Peers[0].ID = gone.ID()
	link.Peers[0].Addrs = gone.Host().Addrs()
	gone.Close()
	v := newNode(t, node.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := v.Watch(ctx, link); err == nil || !strings.Contains(err.Error(), "no peer of the link answered") {
		t.Fatalf("Watch through a closed node: %v", err)
	}
}

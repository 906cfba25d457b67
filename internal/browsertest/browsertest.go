package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Chromium is the browser used: $PEERSCOPE_CHROMIUM, or Debian's.
func Chromium() string {
	if p := os.Getenv("PEERSCOPE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// Dir returns tests/browser in this repository.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("browsertest: cannot locate the repository")
	}
	// internal/browsertest/browsertest.go → the repository root.
	return filepath.Join(filepath.Dir(file), "..", "..", "tests", "browser"), nil
}

// Missing says what a browser test lacks, or "" when it can run.
func Missing() string {
	if _, err := os.Stat(Chromium()); err != nil {
		return fmt.Sprintf("no Chromium at %s (apt-get install chromium)", Chromium())
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "no node (apt-get install nodejs)"
	}
	dir, err := Dir()
	if err != nil {
		return err.Error()
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		return fmt.Sprintf("no playwright-core in %s/node_modules (run npm ci there)", dir)
	}
	return ""
}

// Need skips tb when a browser cannot be run (and fails it under CI).
func Need(tb testing.TB) {
	tb.Helper()
	if m := Missing(); m != "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("browsertest: %s; .ci/run installs it", m)
		}
		tb.Skipf("browsertest: %s", m)
	}
}

// Run runs node on a script of tests/browser with args and returns the
// last line it printed on stdout; its stderr goes to the test log.
func Run(ctx context.Context, tb testing.TB, script string, args ...string) ([]byte, error) {
	tb.Helper()
	Need(tb)
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PEERSCOPE_CHROMIUM="+Chromium())
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if stderr.Len() > 0 {
		tb.Logf("%s stderr:\n%s", script, stderr.Bytes())
	}
	if err != nil {
		return nil, fmt.Errorf("browsertest: node %s: %w", script, err)
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	return lines[len(lines)-1], nil
}

// Play is what play.mjs reports.
type Play struct {
	URL          string   `json:"url"`
	Error        string   `json:"error"`
	Mode         string   `json:"mode"`         // "whep" or "hls"
	StartupMs    *int     `json:"startupMs"`    // page script start → first frame, as the page saw it
	FirstFrameMs int      `json:"firstFrameMs"` // navigation → first frame, seen from outside
	Audio        string   `json:"audio"`
	Advanced     float64  `json:"advanced"` // seconds of currentTime advance while watched
	Stalls       int      `json:"stalls"`   // times currentTime stood still for over a second
	MaxStallMs   int      `json:"maxStallMs"`
	Errors       []string `json:"errors"`
	Title        string   `json:"title"`
	Note         string   `json:"note"` // the page's note to the viewer
	Ended        bool     `json:"ended"`
	Overlay      string   `json:"overlay"`
	Log          []string `json:"log"`
	LatencyMs    *struct {
		Min, Median, Max, N int
	} `json:"latencyMs"`
	// PeerID and Peer are the page's light node in ?mode=p2p (web/peer).
	PeerID string    `json:"peerID"`
	Peer   *PeerLeaf `json:"peer"`
}

// PeerLeaf is the state of a page's light node (web/peer's stats()).
type PeerLeaf struct {
	State    string   `json:"state"`
	Parent   string   `json:"parent"`
	Depth    int      `json:"depth"`
	Path     []string `json:"path"`
	Children []string `json:"children"`
	Highest  int      `json:"highest"`
	Chunks   int      `json:"chunks"`
	Forged   int      `json:"forged"`
	Pulls    int      `json:"pulls"`
	Rejoins  int      `json:"rejoins"`
	Attaches int      `json:"attaches"`
	Receipts int      `json:"receipts"` // sent to the grandparent (mesh 1.2.0)
	Withheld int      `json:"withheld"` // parents left for withholding the stream
	Refused  []int    `json:"refused"`
	Skipped  int      `json:"skipped"`
	Verifier string   `json:"verifier"` // "webcrypto" or "libp2p": which code checked the signatures
}

// PlayOptions says what to watch.
type PlayOptions struct {
	URL        string
	Seconds    int    // how long to watch after the first frame (default 20)
	EndWait    int    // then wait up to this many seconds for the page to show the end
	Screenshot string // a PNG of the page while playing, if set
}

// PlayPage opens the page in Chromium and watches it play.
func PlayPage(ctx context.Context, tb testing.TB, o PlayOptions) (Play, error) {
	tb.Helper()
	if o.Seconds == 0 {
		o.Seconds = 20
	}
	args := []string{"--url", o.URL, "--seconds", fmt.Sprint(o.Seconds), "--end-wait", fmt.Sprint(o.EndWait)}
	if o.Screenshot != "" {
		args = append(args, "--screenshot", o.Screenshot)
	}
	out, err := Run(ctx, tb, "play.mjs", args...)
	if err != nil {
		return Play{}, err
	}
	var p Play
	if err := json.Unmarshal(out, &p); err != nil {
		return Play{}, fmt.Errorf("browsertest: play.mjs printed %q: %w", out, err)
	}
	if p.Error != "" {
		return p, fmt.Errorf("browsertest: play.mjs: %s", p.Error)
	}
	return p, nil
}

package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// pageStep is what tests/browser/audience.mjs reports after a step.
type pageStep struct {
	Step     string          `json:"step"`
	State    string          `json:"state"`
	Audience *audienceAnswer `json:"audience"`
	Status   string          `json:"status"`
	Error    string          `json:"error"`
	Panel    string          `json:"panel"`
	Errors   []string        `json:"errors"`
	Sizes    []struct {
		Size       string  `json:"size"`
		Sideways   bool    `json:"sideways"`
		PanelWidth float64 `json:"panelWidth"`
		Viewport   float64 `json:"viewport"`
	} `json:"sizes"`
	PageErrors []string `json:"pageErrors"`
}

// pageControl drives audience.mjs: each report waits for the test's next
// instruction.
type pageControl struct {
	t       *testing.T
	reports chan pageStep
	replies chan map[string]any
	done    chan []byte // the script's last line
	failed  chan error
}

func startPageControl(t *testing.T) (*pageControl, string) {
	c := &pageControl{t: t, reports: make(chan pageStep), replies: make(chan map[string]any),
		done: make(chan []byte, 1), failed: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s pageStep
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case c.reports <- s:
		case <-r.Context().Done():
			return
		}
		select {
		case d := <-c.replies:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(d)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// next waits for the script's next report.
func (c *pageControl) next(want string) pageStep {
	c.t.Helper()
	select {
	case s := <-c.reports:
		if s.Step != want {
			c.t.Fatalf("the page reported %q (%+v), want %q", s.Step, s, want)
		}
		return s
	case out := <-c.done:
		c.t.Fatalf("audience.mjs ended before %q: %s", want, out)
	case err := <-c.failed:
		c.t.Fatalf("audience.mjs before %q: %v", want, err)
	case <-time.After(90 * time.Second):
		c.t.Fatalf("no %q from the page", want)
	}
	return pageStep{}
}

// do tells the waiting script what to do next and waits for its report.
func (c *pageControl) do(d map[string]any, want string) pageStep {
	c.t.Helper()
	select {
	case c.replies <- d:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("the page did not wait for %v", d)
	}
	if want == "" {
		return pageStep{}
	}
	return c.next(want)
}

// TestGoLiveAudienceBrowser: the go-live page, in Chromium over the node's
// HTTPS server (a phone's way in), of a private broadcast rooted at bob's
// node, signed in to a real bootstrap. It shows who may watch (@alice, one
// device); bob goes live from it with the fake camera, types @carol and
// presses Add: carol's node, refused before, is let in within seconds and
// plays the page's video. Bob presses Remove by her name: her node is put
// out of the tree, the epoch changes at once (rekeys every 3 s besides),
// and nothing sealed after it opens with the keys she holds, while chunks
// from before do. Ticking "everyone who follows you and whom you follow
// back" lets her in again, shown as such, with no Remove by her name. A
// wrong key's page and a public broadcast's (its key typed in) say so, and
// so does the page for a handle nobody has; the page scrolls nowhere
// sideways at 390x844, 1024x768 and 768x1024, and logs no error (but the
// browser's own line for that 400).
func TestGoLiveAudienceBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	cfg := node.Config{Bootstrap: []string{svc.URL()}, Slots: 2}
	alice, carol := newNode(t, cfg), newNode(t, cfg)
	signIn(t, alice, "100")
	signIn(t, carol, "300")
	bob, b, public := privateWHIP(t, svc, 3*time.Second)
	if _, err := carol.Watch(t.Context(), b.Link()); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("carol before she is added: %v, want ErrNotMember", err)
	}

	ctl, ctlURL := startPageControl(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	go func() {
		out, err := browsertest.Run(ctx, t, "audience.mjs", "--url", bob.HTTPSURL()+"/broadcast/#key="+b.StreamKey(), "--control", ctlURL)
		if err != nil {
			ctl.failed <- err
			return
		}
		ctl.done <- out
	}()
	names := func(s pageStep) string {
		if s.Audience == nil {
			return "(none)"
		}
		return strings.Join(s.Audience.handles(), ",")
	}

	s := ctl.next("loaded")
	if names(s) != "@alice/1/named" || !strings.Contains(s.Panel, "@alice") || !strings.Contains(s.Panel, "1 device") ||
		!strings.Contains(s.Panel, "Private") {
		t.Fatalf("the page at first: %s, shows %q (error %q)", names(s), s.Panel, s.Error)
	}
	s = ctl.do(map[string]any{"do": "golive"}, "live")
	waitFor(t, 30*time.Second, "the page's chunks at bob's node", func() bool { return status(t, b).Received > 3 })

	// Carol, by her handle.
	added := time.Now()
	s = ctl.do(map[string]any{"do": "add", "handle": "carol"}, "added")
	if names(s) != "@alice/1/named,@carol/1/named" || s.Error != "" || !strings.Contains(s.Status, "@carol can watch now") {
		t.Fatalf("after Add: %s, says %q (error %q)", names(s), s.Status, s.Error)
	}
	var w *node.Broadcast
	var tried time.Time
	waitFor(t, 30*time.Second, "carol let in", func() bool {
		if time.Since(tried) < 500*time.Millisecond {
			return false // as a person would try again
		}
		tried = time.Now()
		var err error
		w, err = carol.Watch(t.Context(), b.Link())
		if err != nil && !errors.Is(err, node.ErrNotMember) && !errors.Is(err, node.ErrRefused) {
			t.Fatalf("carol's Watch: %v", err)
		}
		return err == nil
	})
	in := time.Since(added)
	waitFor(t, 30*time.Second, "carol plays", func() bool { return status(t, w).Received >= 5 })
	plays := time.Since(added)
	if st := status(t, w); st.Undecryptable != 0 {
		t.Fatalf("%d chunks did not open at carol", st.Undecryptable)
	}
	t.Logf("carol let in %v after the test told the page to Add, playing %v after it", in.Round(time.Millisecond), plays.Round(time.Millisecond))

	// The sizes, with the panel full.
	s = ctl.do(map[string]any{"do": "sizes"}, "sizes")
	if len(s.Sizes) != 3 {
		t.Fatalf("sizes: %+v", s.Sizes)
	}
	for _, z := range s.Sizes {
		if z.Sideways || z.PanelWidth > z.Viewport {
			t.Errorf("at %s the page scrolls sideways (panel %.0f of %.0f)", z.Size, z.PanelWidth, z.Viewport)
		}
	}

	// Carol out, by the Remove next to her name.
	old := b.Epoch()
	removed := time.Now()
	s = ctl.do(map[string]any{"do": "remove", "handle": "@carol"}, "removed")
	if names(s) != "@alice/1/named" || s.Error != "" || !strings.Contains(s.Status, "@carol can no longer watch") {
		t.Fatalf("after Remove: %s, says %q (error %q)", names(s), s.Status, s.Error)
	}
	waitFor(t, 30*time.Second, "carol out of the tree", func() bool { return depth(t, w) != 1 })
	out := time.Since(removed)
	newEpoch := b.Epoch()
	if newEpoch == old {
		t.Fatalf("no new epoch at the removal (still %d)", old)
	}
	// Nothing sealed in an epoch after the one in force at the removal
	// opens with the keys carol holds; what came before does.
	var before, after int
	var firstAfter time.Time
	waitFor(t, 30*time.Second, "chunks sealed after the removal", func() bool {
		before, after, firstAfter = 0, 0, time.Time{}
		for _, h := range bob.ReplayStore().Held(b.ID()) {
			c, err := bob.ReplayStore().Chunk(t.Context(), h.CID)
			if err != nil || c.Epoch == 0 {
				continue
			}
			have, err := node.OpenWithKeysOf(w, c)
			switch {
			case c.Epoch > old && have && err == nil:
				t.Fatalf("carol opened chunk %d of epoch %d, sealed after her removal (epoch %d then)", c.Seq, c.Epoch, old)
			case c.Epoch > old:
				after++
				if wc := time.Unix(0, c.Wallclock); firstAfter.IsZero() || wc.Before(firstAfter) {
					firstAfter = wc
				}
			case have && err == nil:
				before++
			}
		}
		return after >= 5
	})
	if before == 0 {
		t.Fatal("no chunk of carol's epochs")
	}
	t.Logf("carol out of the tree %v after the test told the page to Remove; epoch %d → %d; she opens none of %d chunks sealed since (the first captured %v after the Remove), and opened %d before",
		out.Round(time.Millisecond), old, newEpoch, after, firstAfter.Sub(removed).Round(time.Millisecond), before)
	_ = w.Close()
	if _, err := carol.Watch(t.Context(), b.Link()); err == nil {
		t.Fatal("carol, removed, watches again")
	}

	// Everyone who follows each other with bob: carol again, not by name.
	follow(t, svc, bob, "twitter:300")
	follow(t, svc, carol, "twitter:200")
	s = ctl.do(map[string]any{"do": "mutuals"}, "mutuals")
	if names(s) != "@alice/1/named,@carol/1" || s.Error != "" || !strings.Contains(s.Panel, "you follow each other") ||
		!strings.Contains(s.Panel, "follows you and whom you follow back") {
		t.Errorf("after ticking mutuals: %s, shows %q (error %q)", names(s), s.Panel, s.Error)
	}

	// A wrong key's page, a public broadcast's.
	s = ctl.do(map[string]any{"do": "open", "url": bob.HTTPURL() + "/broadcast/#key=not-the-key"}, "opened")
	if !strings.Contains(s.Error, "stream key was refused") || s.Audience != nil {
		t.Errorf("a wrong key's page: error %q, audience %v", s.Error, s.Audience)
	}
	s = ctl.do(map[string]any{"do": "open", "url": bob.HTTPURL() + "/broadcast/", "key": public.StreamKey()}, "opened")
	if s.Audience == nil || s.Audience.Private || !strings.Contains(s.Panel, "Public") || !strings.Contains(s.Panel, "directory") ||
		!strings.Contains(s.Panel, "peerscope broadcast --private") || len(s.PageErrors) != 0 {
		t.Errorf("a public broadcast's page: %q, errors %q", s.Panel, s.PageErrors)
	}

	// Someone nobody knows: the page says so in plain words. (The browser
	// logs the 400 it was answered; the only error allowed, after this.)
	if len(s.Errors) != 0 {
		t.Errorf("the go-live page logged errors: %q", s.Errors)
	}
	s = ctl.do(map[string]any{"do": "add", "handle": "@nobody"}, "added")
	if !strings.Contains(s.Error, "Nobody with @nobody has signed in") || names(s) != "@alice/1/named,@carol/1" {
		t.Errorf("adding @nobody: %s, says %q (error %q)", names(s), s.Status, s.Error)
	}

	s = ctl.do(map[string]any{"do": "end"}, "")
	var result struct {
		Done   bool
		Error  string
		Errors []string
		Steps  []string
	}
	select {
	case line := <-ctl.done:
		if err := json.Unmarshal(line, &result); err != nil {
			t.Fatalf("audience.mjs printed %s: %v", line, err)
		}
	case err := <-ctl.failed:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("audience.mjs did not end")
	}
	if !result.Done || result.Error != "" {
		t.Fatalf("audience.mjs: %+v", result)
	}
	for _, e := range result.Errors { // none before @nobody (above)
		if !strings.Contains(e, "status of 400") || len(result.Errors) > 1 {
			t.Errorf("the go-live page logged %q", e)
		}
	}
	if !slices.Equal(result.Steps, []string{"loaded", "live", "added", "sizes", "removed", "mutuals", "opened", "opened", "added"}) {
		t.Errorf("steps %q", result.Steps)
	}
	_ = alice
}

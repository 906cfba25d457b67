package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// TestMapPage finds a broadcast on the directory's map (the bootstrap's
// page, tests/browser/map.mjs) at a phone's size and both tablets': a node
// goes live with a location (as `peerscope broadcast --location` does),
// others are listed elsewhere or nowhere; its dot is where its rounded
// point puts it on the equirectangular outline, a click (on the phone:
// Tab and Enter) shows its title and broadcaster, and Watch opens it. No
// console error, no sideways scroll. PEERSCOPE_SHOTS=DIR keeps the map at
// each size.
func TestMapPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	alice := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: time.Second})
	signIn(t, alice, "100") // three anonymous listings per network are the most
	const title = "Harbour at noon"
	where := api.Location{Lat: -33.8688, Lon: 151.2093} // kept as -33.9, 151.2
	live, err := alice.GoLive(t.Context(), node.LiveConfig{Title: title, Source: sampleSource(t, ingest.WithLoop()), Location: &where})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	announceAt(t, svc.URL(), 50, "Street market in Lisbon", &api.Location{Lat: 38.72, Lon: -9.14})
	announceAt(t, svc.URL(), 51, "Morning run by the river", &api.Location{Lat: 40.71, Lon: -74.01})
	announceAt(t, svc.URL(), 52, "Jazz rehearsal", nil)
	anyone := &api.Client{Base: svc.URL()}
	waitFor(t, 30*time.Second, "alice's broadcast listed with its place", func() bool {
		list, err := anyone.List(t.Context(), api.Query{Text: "harbour"})
		return err == nil && len(list) == 1 && list[0].Location != nil
	})

	args := []string{"--page", svc.URL() + "/", "--title", title}
	if dir := os.Getenv("PEERSCOPE_SHOTS"); dir != "" {
		args = append(args, "--shots", dir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := browsertest.Run(ctx, t, "map.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("map.mjs took %s", time.Since(start).Round(100*time.Millisecond))
	var r struct {
		Error, Opened string
		Errors        []string
		Sizes         []struct {
			Size, Label, Note, Card, CardTitle, Watch string
			Dots                                      int
			At                                        struct{ X, Y, Ratio float64 }
			Tabbed, Sideways, ListHidden              bool
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%+v", r)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("console errors %q", r.Errors)
	}
	if len(r.Sizes) != 3 {
		t.Fatalf("%d sizes looked at", len(r.Sizes))
	}
	wantX, wantY := (151.2+180)/360, (90+33.9)/180
	for _, s := range r.Sizes {
		if s.Sideways {
			t.Errorf("%s: scrolls sideways", s.Size)
		}
		if s.Dots != 3 || !strings.Contains(s.Note, "1 more did not say where") {
			t.Errorf("%s: %d dots, note %q; want 3, and the one without a place counted", s.Size, s.Dots, s.Note)
		}
		if math.Abs(s.At.X-wantX) > 0.01 || math.Abs(s.At.Y-wantY) > 0.01 || math.Abs(s.At.Ratio-2) > 0.02 {
			t.Errorf("%s: the dot at %+v of the map, want %.3f,%.3f of a 2:1 box", s.Size, s.At, wantX, wantY)
		}
		if !strings.HasPrefix(s.Label, title+", by Alice") || s.CardTitle != title || !strings.Contains(s.Card, "LIVE") ||
			!strings.Contains(s.Watch, "/w/"+live.ID()+"/") {
			t.Errorf("%s: label %q, card %q, watch %q", s.Size, s.Label, s.Card, s.Watch)
		}
		if !s.ListHidden {
			t.Errorf("%s: the list shows under the map", s.Size)
		}
		if s.Size == "phone" && !s.Tabbed {
			t.Errorf("phone: the dot cannot be reached with Tab")
		}
	}
	if !strings.Contains(r.Opened, "/w/"+live.ID()+"/") {
		t.Errorf("Watch opened %q", r.Opened)
	}
}

// announceAt lists a live broadcast in the bootstrap's directory as a node
// not signed in would (signed by a key made from seed), at a place (nil:
// none said).
func announceAt(t *testing.T, base string, seed byte, title string, at *api.Location) {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	id := pid.String() + ".anon" + strconv.Itoa(int(seed))
	l := link.Link{Broadcast: id, Peers: []peer.AddrInfo{{ID: pid, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9")}}}}
	c := &api.Client{Base: base, Key: priv}
	if _, err := c.Announce(t.Context(), id, api.ListingUpdate{Title: title, Link: l.String(), Started: time.Now(), Version: 1, Location: at}); err != nil {
		t.Fatal(err)
	}
}

// TestStudioPlace goes live from the phone studio with a place typed in
// (tests/browser/studio-place.mjs, fake camera, 390x844): a place off the
// map is refused as it is typed, a good one goes with Go live, and the
// broadcast's dot then shows on the directory's map, where the point
// rounded to 0.1° puts it, and opens its card.
func TestStudioPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time browser test")
	}
	browsertest.Need(t)
	svc := startBootstrap(t)
	n := newNode(t, node.Config{Bootstrap: []string{svc.URL()}, DirectoryInterval: 300 * time.Millisecond})
	b, err := n.GoLive(t.Context(), node.LiveConfig{WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const title = "Quai de Seine"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := browsertest.Run(ctx, t, "studio-place.mjs", "--url", b.URLs().BroadcasterPage, "--map", svc.URL()+"/", "--title", title)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("studio-place.mjs took %s", time.Since(start).Round(100*time.Millisecond))
	var r struct {
		Error, Refused, Invalid, Accepted, Card string
		Errors                                  []string
		At                                      struct{ X, Y float64 }
		StudioSideways, MapSideways             bool
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%+v", r)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if len(r.Errors) > 0 {
		t.Errorf("console errors %q", r.Errors)
	}
	if !strings.Contains(r.Refused, "between -90 and 90") || r.Invalid != "true" || strings.Contains(r.Accepted, "between") {
		t.Errorf("typing the place: refused %q (aria-invalid %q), then %q", r.Refused, r.Invalid, r.Accepted)
	}
	if r.Card != title || math.Abs(r.At.X-(2.4+180)/360) > 0.01 || math.Abs(r.At.Y-(90-48.9)/180) > 0.01 {
		t.Errorf("on the map: card %q at %+v", r.Card, r.At)
	}
	if r.StudioSideways || r.MapSideways {
		t.Errorf("sideways scroll: studio %v, map %v", r.StudioSideways, r.MapSideways)
	}
	l, err := (&api.Client{Base: svc.URL()}).Broadcast(t.Context(), b.ID())
	if err != nil || l.Location == nil || *l.Location != (api.Location{Lat: 48.9, Lon: 2.4}) {
		t.Errorf("listed: %+v %v", l, err)
	}
}

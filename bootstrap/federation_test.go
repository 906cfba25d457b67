package bootstrap_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/internal/pgtest"
	"github.com/peerscope/peerscope/internal/testutil"
)

// federating is a tweak that makes a bootstrap federate with urls and log
// into logs.
func federating(logs *testutil.Buffer, fc bootstrap.FederationConfig, urls ...string) func(*bootstrap.ServerConfig) {
	return func(c *bootstrap.ServerConfig) {
		fc.Peers = urls
		c.Federation = fc
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
}

// waitFor asks f until it says yes, for up to d (a generous bound; the
// figure that matters is measured by the caller).
func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not hoping for one
	}
}

// listed returns the live listing id in e's directory, as anyone reads it.
func (e *env) listed(id string) *api.Listing {
	e.t.Helper()
	c := &api.Client{Base: e.url}
	list, err := c.List(context.Background(), api.Query{Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range list {
		if l.ID == id {
			return l
		}
	}
	return nil
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestFederation: two communities; B federates with A. A broadcast
// announced on A is in B's directory within 5 s (at the default 1 s
// interval), marked as from A, and verifiable to its broadcaster from what
// B keeps; B exports none of it again; a new title on A reaches B; ending
// it on A removes it from B.
func TestFederation(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		a := newEnv(t, nil)
		logs := &testutil.Buffer{}
		b := newEnv(t, federating(logs, bootstrap.FederationConfig{}, a.url))
		ctx := context.Background()
		alice := a.node(1)
		id := alice.broadcastID("fed1")
		t0 := time.Now()
		if _, err := alice.c.Announce(ctx, id, announcement(id, "Harbour at dawn", a.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the broadcast is not in B's directory", func() bool { return b.listed(id) != nil })
		took := time.Since(t0)
		t.Logf("announced on A, listed on B after %s", took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("listed on B after %s, over 5 s", took)
		}
		l := b.listed(id)
		if l.Origin == nil || l.Origin.URL != a.url || l.Origin.Bootstrap != a.svc.Keys.ID() || !strings.HasPrefix(a.url, "http://"+l.Origin.Name) ||
			l.Title != "Harbour at dawn" || l.Broadcaster != alice.id.String() || l.Link != announcement(id, "", time.Time{}, 0).Link {
			t.Fatalf("B lists %+v (origin %+v)", l, l.Origin)
		}
		if own := a.listed(id); own == nil || own.Origin != nil {
			t.Fatalf("A lists its own broadcast as %+v", own)
		}
		// Anyone can check B's copy: the broadcaster signed it for A.
		var proof api.FederatedProof
		if code := getJSON(t, b.url+"/api/v1/federated/"+id, &proof); code != http.StatusOK {
			t.Fatalf("proof: %d", code)
		}
		v, err := proof.Signed.Verify(proof.Origin.Bootstrap, b.clock.Now(), time.Minute)
		if err != nil || v.Broadcaster != alice.id || v.Update.Title != "Harbour at dawn" || proof.Origin.Bootstrap != a.svc.Keys.ID() {
			t.Fatalf("proof %+v: %+v, %v", proof, v, err)
		}
		// Not exported again: B's export holds its own broadcasts only.
		var x api.FederationExport
		if getJSON(t, b.url+api.FederationPath, &x); x.Version != api.FederationVersion || x.Bootstrap != b.svc.Keys.ID() || len(x.Broadcasts) != 0 {
			t.Fatalf("B exports %+v", x)
		}
		if n := b.count("broadcasts"); n != 0 {
			t.Fatalf("B holds %d broadcasts of its own", n)
		}
		// A new title reaches B.
		a.clock.Advance(time.Second)
		b.clock.Advance(time.Second)
		if _, err := alice.c.Announce(ctx, id, announcement(id, "Harbour at noon", a.clock.Now(), 2)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the new title is not on B", func() bool { l := b.listed(id); return l != nil && l.Title == "Harbour at noon" })
		// Ending it on A removes it from B.
		end := announcement(id, "Harbour at noon", a.clock.Now().Add(-time.Second), 3)
		end.Ended = a.clock.Now()
		t0 = time.Now()
		if _, err := alice.c.Announce(ctx, id, end); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the ended broadcast is still on B", func() bool { return b.listed(id) == nil })
		t.Logf("ended on A, gone from B after %s", time.Since(t0).Round(time.Millisecond))
		if n := b.count("federated"); n != 0 {
			t.Fatalf("B keeps %d federated rows after the end", n)
		}
		if code := getJSON(t, b.url+"/api/v1/federated/"+id, &proof); code != http.StatusNotFound {
			t.Fatalf("proof of an ended broadcast: %d", code)
		}
		if strings.Contains(logs.String(), "refused") {
			t.Fatalf("B refused something of A:\n%s", logs)
		}
	})
}

// signedFor signs u as n's node signs a listing for the bootstrap whose
// fingerprint is boot, as a bootstrap keeps it.
func signedFor(t *testing.T, n *node, boot, id string, u api.ListingUpdate, now time.Time) api.SignedListing {
	t.Helper()
	body, _ := json.Marshal(u)
	path := "/api/v1/broadcasts/" + id
	r, _ := http.NewRequest(http.MethodPut, "http://boot.example"+path, bytes.NewReader(body))
	if err := api.SignRequest(r, body, n.key, boot, now); err != nil {
		t.Fatal(err)
	}
	return api.SignedListing{Path: path, Peer: r.Header.Get(api.HeaderPeer), Time: r.Header.Get(api.HeaderTime),
		Nonce: r.Header.Get(api.HeaderNonce), Signature: r.Header.Get(api.HeaderSignature), Body: body}
}

// fingerprint is a made-up community's bootstrap ID.
func fingerprint(seed byte) string {
	return api.Fingerprint(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public().(ed25519.PublicKey))
}

// hostile is a "community" whose bootstrap answers what the test says.
type hostile struct {
	mu     sync.Mutex
	answer []byte
	reads  atomic.Int64
	srv    *httptest.Server
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.FederationPath {
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		b := h.answer
		h.mu.Unlock()
		defer h.reads.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostile) serve(t *testing.T, x any) {
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.answer = b
	h.mu.Unlock()
}

// TestFederationForged: a hostile community serves, beside one honest
// entry, entries it forged or may not pass on — another key's signature,
// a changed title, a private broadcast, an entry signed for a community B
// does not federate with, an entry of A's (whose bootstrap signed it for
// A) — and B refuses each with a log line and stores none of them.
// Without Verify's checks, B lists them (seen: with the signature check
// taken out, the changed title, the other key's and the other
// community's entries were listed; with the private check out, the
// private one).
func TestFederationForged(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHostile(t)
		a := newEnv(t, nil)
		logs := &testutil.Buffer{}
		b := newEnv(t, federating(logs, bootstrap.FederationConfig{Every: 100 * time.Millisecond}, h.srv.URL))
		hid, elsewhere := fingerprint(21), fingerprint(22)
		now := b.clock.Now()
		carol, dave, erin, frank, grace, alice := b.node(3), b.node(4), b.node(5), b.node(6), b.node(7), a.node(1)
		honest := carol.broadcastID("good")
		forgedKey := signedFor(t, carol, hid, dave.broadcastID("dave"), announcement(dave.broadcastID("dave"), "Not Dave's", now, 1), now)
		forgedKey.Peer = dave.id.String() // the path's broadcaster, but carol's signature
		retitled := signedFor(t, erin, hid, erin.broadcastID("erin"), announcement(erin.broadcastID("erin"), "Quiet evening", now, 1), now)
		retitled.Body = bytes.Replace(retitled.Body, []byte("Quiet evening"), []byte("Buy cheap pills"), 1)
		priv := announcement(frank.broadcastID("frnk"), "Family only", now, 1)
		priv.Private = true
		private := signedFor(t, frank, hid, frank.broadcastID("frnk"), priv, now)
		otherCommunity := signedFor(t, grace, elsewhere, grace.broadcastID("grce"), announcement(grace.broadcastID("grce"), "Elsewhere", now, 1), now)
		// A real announcement on A, its record as A exports it.
		aid := alice.broadcastID("alic")
		if _, err := alice.c.Announce(context.Background(), aid, announcement(aid, "Alice on A", a.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		var ax api.FederationExport
		getJSON(t, a.url+api.FederationPath, &ax)
		if len(ax.Broadcasts) != 1 {
			t.Fatalf("A exports %+v", ax)
		}
		forged := map[string]api.SignedListing{"another key's signature": forgedKey, "a changed title": retitled, "private": private,
			"signed for a community not federated with": otherCommunity, "signed for A, passed on by another": ax.Broadcasts[0]}
		entries := []api.SignedListing{signedFor(t, carol, hid, honest, announcement(honest, "Honest one", now, 1), now)}
		for _, s := range forged {
			entries = append(entries, s)
		}
		h.serve(t, api.FederationExport{Version: api.FederationVersion, Bootstrap: hid, Broadcasts: entries})
		waitFor(t, 30*time.Second, "the honest entry is not listed", func() bool { return b.listed(honest) != nil })
		for what, s := range forged {
			id := strings.TrimPrefix(s.Path, "/api/v1/broadcasts/")
			if b.listed(id) != nil {
				t.Errorf("%s: listed", what)
			}
			if !strings.Contains(logs.String(), "entry refused") || !strings.Contains(logs.String(), id) {
				t.Errorf("%s: no log line refusing %s", what, id)
			}
		}
		if n := b.count("federated"); n != 1 {
			t.Errorf("%d federated rows, want the honest one", n)
		}
		t.Logf("B's log:\n%s", logs)
		// Each refusal is logged once, however often the export is read.
		n, r0 := strings.Count(logs.String(), `msg="federation: entry refused`), h.reads.Load()
		waitFor(t, 30*time.Second, "the export is not read again", func() bool { return h.reads.Load() >= r0+3 })
		if b.count("federated") != 1 {
			t.Errorf("%d federated rows after reading again", b.count("federated"))
		}
		if m := strings.Count(logs.String(), `msg="federation: entry refused`); m != n || n != len(forged) {
			t.Errorf("%d refusals logged for %d forged entries, then %d", n, len(forged), m)
		}
	})
}

// TestFederationBounds: what a federated community can push is bounded:
// entries past MaxEntries are refused, an export over MaxBytes or of
// another version is refused whole (and what it listed before stays
// only until it ages), a community that does not answer in Timeout holds
// nothing up.
func TestFederationBounds(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHostile(t)
		logs := &testutil.Buffer{}
		b := newEnv(t, federating(logs, bootstrap.FederationConfig{Every: 100 * time.Millisecond, MaxEntries: 3, MaxBytes: 64 << 10}, h.srv.URL))
		hid := fingerprint(31)
		now := b.clock.Now()
		var entries []api.SignedListing
		var ids []string
		for i := range 5 {
			n := b.node(byte(40 + i))
			id := n.broadcastID(fmt.Sprintf("bnd%d", i))
			ids = append(ids, id)
			entries = append(entries, signedFor(t, n, hid, id, announcement(id, fmt.Sprintf("Number %d", i), now.Add(-time.Duration(i)*time.Second), 1), now))
		}
		h.serve(t, api.FederationExport{Version: api.FederationVersion, Bootstrap: hid, Broadcasts: entries})
		waitFor(t, 30*time.Second, "the first 3 entries are not listed", func() bool { return b.count("federated") == 3 })
		var listed []string
		for _, id := range ids {
			if b.listed(id) != nil {
				listed = append(listed, id)
			}
		}
		if !slices.Equal(listed, ids[:3]) || !strings.Contains(logs.String(), "over the cap of 3") {
			t.Fatalf("listed %v of %v; log:\n%s", listed, ids, logs)
		}
		// Over the size bound: refused whole, the rows kept until they age.
		big := entries[:1]
		big[0].Body = bytes.Repeat([]byte(" "), 70<<10)
		h.serve(t, api.FederationExport{Version: api.FederationVersion, Bootstrap: hid, Broadcasts: big})
		waitFor(t, 30*time.Second, "no log of the oversized export", func() bool { return strings.Contains(logs.String(), "over 65536 bytes") })
		if b.count("federated") != 3 {
			t.Fatalf("%d rows after an oversized export", b.count("federated"))
		}
		// Another version: refused whole too.
		h.serve(t, map[string]any{"federation": 2, "bootstrap": hid, "broadcasts": []any{}})
		waitFor(t, 30*time.Second, "no log of the other version", func() bool { return strings.Contains(logs.String(), "federation version 2") })
		// The rows age out, the community being unreadable.
		b.clock.Advance(bootstrap.DefaultLiveTTL + time.Second)
		waitFor(t, 30*time.Second, "aged rows stay", func() bool { return b.count("federated") == 0 })
		if b.listed(ids[0]) != nil {
			t.Fatal("an aged entry is listed")
		}
	})
}

// TestFederatedCardPage: B's directory page, in Chromium at a phone's
// size and two tablets', shows a broadcast federated from A with where it
// comes from, its Watch link on A, under the page's own policy, without a
// console error or sideways scrolling (tests/browser/pages.mjs).
func TestFederatedCardPage(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	a := newEnv(t, nil)
	b := newEnv(t, federating(&testutil.Buffer{}, bootstrap.FederationConfig{Every: 100 * time.Millisecond}, a.url))
	alice := a.node(1)
	id := alice.broadcastID("card")
	if _, err := alice.c.Announce(context.Background(), id, announcement(id, "Harbour at dawn", a.clock.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the broadcast is not on B", func() bool { return b.listed(id) != nil })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args := []string{"--wait", "1500", "--sizes", "phone,tablet,portrait", "--page", "directory=" + b.url + "/"}
	if shots := os.Getenv("PEERSCOPE_SHOTS"); shots != "" {
		args = append(args, "--shots", shots) // to look at
	}
	out, err := browsertest.Run(ctx, t, "pages.mjs", args...)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Error string
		Pages []struct {
			Name, Size, All    string
			Errors, Violations []string
			Sideways           bool
		}
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Error != "" || len(r.Pages) != 3 {
		t.Fatalf("pages.mjs printed %s (%v)", out, err)
	}
	from := "from " + strings.TrimPrefix(a.url, "http://")
	for _, p := range r.Pages {
		if len(p.Errors) > 0 || len(p.Violations) > 0 || p.Sideways {
			t.Errorf("at %s: violations %q, errors %q, sideways scroll %v", p.Size, p.Violations, p.Errors, p.Sideways)
		}
		if !strings.Contains(p.All, "Harbour at dawn") || !strings.Contains(p.All, from) {
			t.Errorf("at %s the page does not show the card %q: %q", p.Size, from, p.All)
		}
	}
}

// TestFederationSlowCommunity: a community that never answers, one that
// redirects elsewhere and one whose fingerprint is not the pinned one hold
// nothing up: each read ends at Timeout (or at once) with a log line, and
// A's broadcast is listed on B all the same.
func TestFederationSlowCommunity(t *testing.T) {
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(stuck.Close)
	a := newEnv(t, nil)
	moved := httptest.NewServer(http.RedirectHandler(a.url+api.FederationPath, http.StatusFound))
	t.Cleanup(moved.Close)
	logs := &testutil.Buffer{}
	pinned := strings.Replace(a.url, "127.0.0.1", "localhost", 1) + "#pin=" + fingerprint(41)
	b := newEnv(t, federating(logs, bootstrap.FederationConfig{Every: 100 * time.Millisecond, Timeout: 300 * time.Millisecond},
		stuck.URL, moved.URL, pinned, a.url))
	alice := a.node(1)
	id := alice.broadcastID("slow")
	t0 := time.Now()
	if _, err := alice.c.Announce(context.Background(), id, announcement(id, "Harbour at dawn", a.clock.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the broadcast is not on B", func() bool { l := b.listed(id); return l != nil && l.Origin.URL == a.url })
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("listed on B after %s", took)
	}
	waitFor(t, 30*time.Second, "no log of the three failures", func() bool {
		l := logs.String()
		return strings.Contains(l, "deadline exceeded") && strings.Contains(l, "302 Found") && strings.Contains(l, "not the pinned")
	})
	if n := b.count("federated"); n != 1 {
		t.Errorf("%d federated rows, want 1", n)
	}
}

// TestFederationExport: a bootstrap exports its public live listings
// alone — not a private one, an ended one, one whose signed body holds a
// finer location than the directory shows, nor what it read from another
// community — each verifying for its fingerprint; a broadcast listed both
// here and by a community federated with is listed once, as here.
func TestFederationExport(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		a := newEnv(t, nil)
		b := newEnv(t, federating(&testutil.Buffer{}, bootstrap.FederationConfig{Every: 100 * time.Millisecond}, a.url))
		ctx := context.Background()
		now := a.clock.Now()
		// Each from a network of its own: anonymous live listings are
		// capped per network.
		pub, priv, ended, fine, both := a.node(1).from("10.0.0.1"), a.node(2).from("10.0.0.2"), a.node(3).from("10.0.0.3"),
			a.node(4).from("10.0.0.4"), a.node(5).from("10.0.0.5")
		announce := func(n *node, nonce string, f func(*api.ListingUpdate)) string {
			id := n.broadcastID(nonce)
			u := announcement(id, "On A: "+nonce, now, 1)
			f(&u)
			if _, err := n.c.Announce(ctx, id, u); err != nil {
				t.Fatal(err)
			}
			return id
		}
		pubID := announce(pub, "pub", func(u *api.ListingUpdate) { u.Location = &api.Location{Lat: 48.9, Lon: 2.4} })
		announce(priv, "priv", func(u *api.ListingUpdate) { u.Private = true })
		announce(ended, "end", func(u *api.ListingUpdate) { u.Ended = now })
		announce(fine, "fine", func(u *api.ListingUpdate) { u.Location = &api.Location{Lat: 48.8566, Lon: 2.3522} })
		bothID := announce(both, "both", func(*api.ListingUpdate) {})
		var x api.FederationExport
		getJSON(t, a.url+api.FederationPath, &x)
		var got []string
		for _, s := range x.Broadcasts {
			v, err := s.Verify(a.svc.Keys.ID(), a.clock.Now(), time.Minute)
			if err != nil {
				t.Fatalf("A's own entry does not verify: %v", err)
			}
			got = append(got, v.ID)
		}
		slices.Sort(got)
		want := []string{pubID, bothID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("A exports %v, want %v", got, want)
		}
		// The same broadcast announced on B too: listed once, as B's own.
		bb := b.node(5)
		if _, err := bb.c.Announce(ctx, bothID, announcement(bothID, "On B", now, 2)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "A's entries are not on B", func() bool { return b.count("federated") == 2 })
		c := &api.Client{Base: b.url}
		list, err := c.List(ctx, api.Query{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, l := range list {
			seen = append(seen, l.ID)
			if l.ID == bothID && (l.Origin != nil || l.Title != "On B") {
				t.Errorf("the broadcast listed on both is shown as %+v", l)
			}
			if l.ID == pubID && (l.Origin == nil || l.Location == nil || *l.Location != (api.Location{Lat: 48.9, Lon: 2.4})) {
				t.Errorf("A's public broadcast is shown as %+v", l)
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, want) {
			t.Fatalf("B lists %v, want %v once each", seen, want)
		}
	})
}

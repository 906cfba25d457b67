package bootstrap_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestListingLocation: a broadcaster may put its broadcast on the map; the
// directory keeps the point rounded to 0.1°, refuses one off the map
// (storing nothing), and a listing without one (every listing of an older
// node) stays as it was, with no location in its JSON.
func TestListingLocation(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		t0 := e.clock.Now()

		a1 := alice.broadcastID("map1")
		u := announcement(a1, "Harbour at dusk", t0, 1)
		u.Location = &api.Location{Lat: 48.8566, Lon: 2.3522}
		res, err := alice.c.Announce(ctx, a1, u)
		if err != nil {
			t.Fatal(err)
		}
		if l := res.Listing.Location; l == nil || *l != (api.Location{Lat: 48.9, Lon: 2.4}) {
			t.Fatalf("answered location %+v, want 48.9,2.4", l)
		}
		got, err := bob.c.Broadcast(ctx, a1)
		if err != nil {
			t.Fatal(err)
		}
		if l := got.Location; l == nil || *l != (api.Location{Lat: 48.9, Lon: 2.4}) {
			t.Fatalf("listed location %+v, want 48.9,2.4", l)
		}

		// Off the map, or not a number: refused, and nothing stored (the
		// listing keeps its old version and place; a new one is not made).
		before := e.count("broadcasts")
		for _, bad := range []api.Location{{Lat: 90.5, Lon: 0}, {Lat: -91, Lon: 0}, {Lat: 0, Lon: 180.01}, {Lat: 0, Lon: -200}} {
			u := announcement(a1, "Harbour at dusk", t0, 5)
			u.Location = &bad
			_, err := alice.c.Announce(ctx, a1, u)
			mustStatus(t, err, http.StatusBadRequest, "")
			if !strings.Contains(err.Error(), "between") {
				t.Errorf("%+v: %v, want a message saying the range", bad, err)
			}
			a2 := alice.broadcastID("map2")
			u2 := announcement(a2, "Elsewhere", t0, 1)
			u2.Location = &bad
			_, err = alice.c.Announce(ctx, a2, u2)
			mustStatus(t, err, http.StatusBadRequest, "")
		}
		for _, body := range []string{`"lat":"48","lon":2`, `"lat":null,"lon":2`, `"lon":2`, `"lat":1e999,"lon":0`, `"lat":95,"lon":0`} {
			b := `{"title":"x","link":"` + announcement(a1, "", t0, 1).Link + `","started":"` + t0.Format("2006-01-02T15:04:05.999999999Z07:00") + `","viewers":0,"replay_viewers":0,"version":6,"location":{` + body + `}}`
			if status, _ := e.raw(alice, "PUT", "/api/v1/broadcasts/"+a1, "application/json", []byte(b)); status != http.StatusBadRequest {
				t.Errorf("location {%s}: %d, want 400", body, status)
			}
		}
		if n := e.count("broadcasts"); n != before {
			t.Fatalf("%d broadcasts after refusals, want %d", n, before)
		}
		got, _ = bob.c.Broadcast(ctx, a1)
		if got.Version != 1 || got.Title != "Harbour at dusk" || *got.Location != (api.Location{Lat: 48.9, Lon: 2.4}) {
			t.Fatalf("after refusals: %+v", got)
		}

		// A listing as an older node makes it: no location field at all.
		b1 := bob.broadcastID("old1")
		if _, err := bob.c.Announce(ctx, b1, announcement(b1, "No place said", t0, 1)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(e.url + "/api/v1/broadcasts/" + b1)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["location"]; ok || resp.StatusCode != http.StatusOK {
			t.Fatalf("a listing without a location: %d %s", resp.StatusCode, raw)
		}

		// Moving the dot shows at once, and so does taking it off the map.
		u.Version, u.Location = 2, &api.Location{Lat: -33.87, Lon: 151.21}
		if _, err := alice.c.Announce(ctx, a1, u); err != nil {
			t.Fatal(err)
		}
		live, _ := bob.c.List(ctx, api.Query{Text: "harbour"})
		if len(live) != 1 || live[0].Location == nil || *live[0].Location != (api.Location{Lat: -33.9, Lon: 151.2}) {
			t.Fatalf("moved: %+v", live)
		}
		u.Version, u.Location = 3, nil
		if _, err := alice.c.Announce(ctx, a1, u); err != nil {
			t.Fatal(err)
		}
		live, _ = bob.c.List(ctx, api.Query{Text: "harbour"})
		if len(live) != 1 || live[0].Location != nil {
			t.Fatalf("unshared: %+v", live)
		}
	})
}

// TestParseLocation: what `peerscope broadcast --location` takes.
func TestParseLocation(t *testing.T) {
	for in, want := range map[string]api.Location{
		"48.8566,2.3522": {Lat: 48.9, Lon: 2.4}, " -33.87 , 151.21 ": {Lat: -33.9, Lon: 151.2},
		"90,180": {Lat: 90, Lon: 180}, "-90,-180": {Lat: -90, Lon: -180},
	} {
		got, err := api.ParseLocation(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "48.85", "north,east", "91,0", "0,181", "NaN,0", "0,Inf", "1,2,3"} {
		if _, err := api.ParseLocation(in); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
	_ = math.Pi
}

package community_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
)

// TestListingLocationOldBootstrap: a bootstrap older than listings'
// locations refuses an update that has one (its strict decoder takes no
// unknown field). The node then lists the broadcast without it, rather
// than not at all. The older bootstrap is a real one behind a front that
// answers such updates as the older version did, word for word.
func TestListingLocationOldBootstrap(t *testing.T) {
	svc := startBootstrap(t, nil)
	target, err := url.Parse(svc.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int64
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var fields map[string]json.RawMessage
		if r.Method == http.MethodPut && json.Unmarshal(body, &fields) == nil && fields["location"] != nil {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"bad_request","message":"bootstrap: bad request: JSON: json: unknown field \"location\""}}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer old.Close()

	key, self := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{old.URL}, Key: key, Node: &fakeNode{}, ListingInterval: 50 * time.Millisecond})
	reader := &api.Client{Base: svc.URL()}
	id := self.String() + ".old1"
	ended := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "Off the map", Link: linkOf(id, self), Started: time.Now().Add(-time.Minute),
				Location: &api.Location{Lat: 48.9, Lon: 2.4}}
		}})
	}()
	waitFor(t, "the listing, without its place", func() bool {
		l := listed(t, reader, api.Query{}, id)
		return l != nil && l.Title == "Off the map" && l.Location == nil
	})
	// Renewals do not try the place again.
	before := refused.Load()
	versions := map[uint64]bool{}
	waitFor(t, "three renewals", func() bool {
		if l := listed(t, reader, api.Query{}, id); l != nil {
			versions[l.Version] = true
		}
		return len(versions) >= 3
	})
	close(ended)
	<-done
	if before != 1 || refused.Load() != 1 {
		t.Errorf("the place was offered %d times (%d before the renewals), want once", refused.Load(), before)
	}
}

package community_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
)

func still(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 32, 18)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestThumbnail: a still handed to the listing loop reaches the directory
// once the broadcast is listed there.
func TestThumbnail(t *testing.T) {
	svc := startBootstrap(t, nil)
	key, self := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{svc.URL()}, Key: key, Node: &fakeNode{}, ListingInterval: 50 * time.Millisecond})
	reader := &api.Client{Base: svc.URL()}
	id := self.String() + ".thumb1"
	ended, done := make(chan struct{}), make(chan struct{})
	stills := make(chan []byte, 1)
	stills <- still(t) // before the listing: sent after it
	go func() {
		defer close(done)
		c.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Stills: stills, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "With a still", Link: linkOf(id, self), Started: time.Now().Add(-time.Minute)}
		}})
	}()
	waitFor(t, "the listing with its still", func() bool {
		l := listed(t, reader, api.Query{}, id)
		return l != nil && l.Thumbnail == api.ThumbnailTag(still(t))
	})
	close(ended)
	<-done
}

// TestThumbnailOldBootstrap: a bootstrap older than thumbnails answers
// their route as it answers any unknown one; the broadcast is listed and
// renewed as before, and the node stops sending stills after the first
// refusal. The older bootstrap is a real one behind a front answering the
// route word for word as the older version did.
func TestThumbnailOldBootstrap(t *testing.T) {
	svc := startBootstrap(t, nil)
	target, err := url.Parse(svc.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int64
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/thumbnail") {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such endpoint: ` + r.Method + ` ` + r.URL.Path + `"}}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer old.Close()

	key, self := newKey(t)
	c := newCommunity(t, community.Config{Bootstraps: []string{old.URL}, Key: key, Node: &fakeNode{}, ListingInterval: 50 * time.Millisecond})
	reader := &api.Client{Base: svc.URL()}
	id := self.String() + ".old2"
	ended, done := make(chan struct{}), make(chan struct{})
	stills := make(chan []byte, 1)
	stills <- still(t)
	go func() {
		defer close(done)
		c.ListLive(t.Context(), community.Live{ID: id, Ended: ended, Stills: stills, Entry: func() api.ListingUpdate {
			return api.ListingUpdate{Title: "No still kept", Link: linkOf(id, self), Started: time.Now().Add(-time.Minute)}
		}})
	}()
	waitFor(t, "the still offered", func() bool { return refused.Load() == 1 })
	stills <- still(t) // not offered again
	versions := map[uint64]bool{}
	waitFor(t, "three renewals, without a still", func() bool {
		if l := listed(t, reader, api.Query{}, id); l != nil && l.Thumbnail == "" {
			versions[l.Version] = true
		}
		return len(versions) >= 3 && len(stills) == 0
	})
	close(ended)
	<-done
	if n := refused.Load(); n != 1 {
		t.Errorf("the still was offered %d times, want once", n)
	}
}

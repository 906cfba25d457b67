package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzLiveNotice: what a node takes off LiveTopic is refused with
// ErrBadRequest or is a listing whose ID names its broadcaster and whose
// link is the broadcast's. Seeds are in testdata/fuzz/FuzzLiveNotice/.
func FuzzLiveNotice(f *testing.F) {
	const id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA.abcd"
	b, _ := json.Marshal(LiveNotice{Listing: &Listing{ID: id, Broadcaster: strings.Split(id, ".")[0], Title: "t",
		Link: "peerscope://" + id, Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Version: 3,
		Who: &Account{Provider: "twitter", Subject: "1", Handle: "@a"}}})
	f.Add(b)
	f.Add([]byte(`{"broadcast":null}`))
	f.Add([]byte(`{"broadcast":{"id":"x.y"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLiveNotice(data)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if p, err := BroadcasterOf(l.ID); err != nil || p.String() != l.Broadcaster || !strings.HasPrefix(l.Link, "peerscope://"+l.ID) {
			t.Fatalf("accepted %+v", l)
		}
		if b, err := EncodeLiveNotice(l); err == nil {
			if l2, err := DecodeLiveNotice(b); err != nil || l2.ID != l.ID || l2.Link != l.Link {
				t.Fatalf("re-encoded notice: %+v, %v", l2, err)
			}
		}
	})
}

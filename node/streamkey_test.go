package node

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestStreamKeyComparison: a WHIP publisher is admitted by its broadcast's
// key only, found among the node's broadcasts by comparing the key with
// every one of theirs (byKeyLocked: localapi.Equal over SHA-256 digests,
// crypto/subtle, no early exit), so that a refusal takes as long whatever
// part of a guess was right: keys one character off at either end, a
// prefix, an extension, another case, and none are refused alike; two
// broadcasts cannot share a key. The time itself is not measured (the
// project asserts nothing on wall-clock time): the comparison is constant
// time by construction.
func TestStreamKeyComparison(t *testing.T) {
	n := newTestNode(t)
	var bs []*Broadcast
	for _, key := range []string{"first-key-aaaaaaaaaa", "second-key-bbbbbbbbb", "third-key-cccccccccc"} {
		b, err := n.GoLive(t.Context(), LiveConfig{WHIP: true, StreamKey: key})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	if _, err := n.GoLive(t.Context(), LiveConfig{WHIP: true, StreamKey: "second-key-bbbbbbbbb"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a second broadcast with the same key: %v, want ErrConfig", err)
	}
	for _, b := range bs {
		if p, err := n.publisherFor(b.StreamKey()); err != nil || p != b.pub {
			t.Fatalf("key %q found %v (%v), want its own broadcast's publisher", b.StreamKey(), p, err)
		}
	}
	post := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, n.HTTPURL()+"/broadcast/whip", strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	key := bs[1].StreamKey()
	for _, wrong := range []string{"x" + key[1:], key[:len(key)-1] + "x", key[:len(key)-1], key + "b", strings.ToUpper(key),
		strings.Repeat("b", 1000), "", " " + key + " x"} {
		if code := post(wrong); code != http.StatusUnauthorized {
			t.Errorf("WHIP with key %q: %d, want 401", wrong, code)
		}
	}
	// The right key passes the key check (and then meets a bad offer).
	if code := post(key); code != http.StatusBadRequest {
		t.Errorf("WHIP with the key: %d, want 400 for the offer", code)
	}
}

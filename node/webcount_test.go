package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/webrtc/v4"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/node"
)

// clientFrom returns an HTTP client whose connections come from another
// loopback address (all of 127.0.0.0/8 is loopback on Linux): another
// client, as far as the node can tell.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// whepOffer returns the SDP offer of a receive-only pion client.
func whepOffer(t *testing.T) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func webViewers(t *testing.T, b *node.Broadcast) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.WebViewers
}

// TestWebViewersByClient plays the attacks on a node's browser count and
// memory from one client: a thousand LL-HLS requests, each with its own
// User-Agent of 48 KiB (the servers take 64 KiB of headers), then sixteen
// WHEP offers at once. The node keeps no header (its heap grows by less
// than 16 MiB), counts that client as one browser, gives it four WHEP
// sessions and counts it as four, and a browser at another address still
// gets a session and counts.
//
// Before, the count was keyed by address and User-Agent and kept the
// header: the requests took 48 MB (with the 1 MiB headers, before
// the servers capped them, a hundred took 107 MB) and counted a thousand
// browsers, and the sixteen offers took every WHEP session and counted
// sixteen more.
func TestWebViewersByClient(t *testing.T) {
	e2e(t)
	n := newNode(t, node.Config{})
	b, err := n.GoLive(t.Context(), node.LiveConfig{Title: "counted", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	waitHLS(t, b, 30*time.Second)
	attacker := clientFrom(t, "127.0.0.2")

	before := heapInUse()
	for i := range 1000 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.URLs().HLS, nil)
		req.Header.Set("User-Agent", fmt.Sprintf("%04d", i)+strings.Repeat("x", 48<<10))
		resp, err := attacker.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("LL-HLS request %d: %s", i, resp.Status)
		}
	}
	attacker.Transport.(*http.Transport).CloseIdleConnections()
	grew := int64(heapInUse()) - int64(before)
	t.Logf("heap after 1,000 requests with 48 KiB User-Agents: %+.1f MB", float64(grew)/1e6)
	if grew > 16<<20 {
		t.Errorf("the heap grew by %.1f MB: the headers are kept", float64(grew)/1e6)
	}
	// The test's own LL-HLS requests (waitHLS, from 127.0.0.1) are the
	// other one.
	if got := webViewers(t, b); got != 2 {
		t.Errorf("one client with a thousand User-Agents and another counts as %d browsers, want 1 + 1", got)
	}

	url := b.URLs().WHEP
	sdp := whepOffer(t)
	codes := make(chan int, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			resp, err := attacker.Post(url, "application/sdp", strings.NewReader(sdp))
			if err != nil {
				codes <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusCreated] != 4 {
		t.Errorf("sixteen WHEP offers from one client: %v, want 4 sessions", got)
	}
	resp, err := clientFrom(t, "127.0.0.1").Post(url, "application/sdp", strings.NewReader(whepOffer(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("a browser at another address: %s", resp.Status)
	}
	if got := webViewers(t, b); got != 5 {
		t.Errorf("the client with its sessions and the other browser (LL-HLS and WHEP) count as %d, want 4 + 1", got)
	}
}

// attested returns a data directory holding a fresh node identity, and an
// attestation of that identity's peer (account name) signed by boot.
func attested(t *testing.T, boot ed25519.PrivateKey, name string) (dir string, att []byte) {
	t.Helper()
	dir = t.TempDir()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, node.IdentityFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	a := &identity.Attestation{Provider: "twitter", Account: name, Handle: "@" + name, Name: name,
		Peer: id, Issued: time.Now().Add(-time.Minute), Expires: time.Now().Add(time.Hour)}
	if err := a.Sign(boot); err != nil {
		t.Fatal(err)
	}
	return dir, a.Marshal()
}

// TestWebViewersReachTheBroadcaster: the browsers a viewer's node serves
// reach the broadcaster's live count through the tree when they come, and
// leave it when they stop fetching (the window after their last request).
// The node's chat loop tells its tree only then: a new LL-HLS client wakes
// it, and it wakes again when the first client it remembers drops out of
// the window (before, it counted every 500 ms).
func TestWebViewersReachTheBroadcaster(t *testing.T) {
	e2e(t)
	root := newNode(t, node.Config{Slots: 1})
	b, err := root.GoLive(t.Context(), node.LiveConfig{Title: "browsers", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newNode(t, node.Config{Slots: 1}).Watch(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	live := func() int {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		v, err := b.ChatViewers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.Live
	}
	waitHLS(t, w, 30*time.Second) // one browser at the viewer (127.0.0.1): its node's own person
	waitFor(t, 30*time.Second, "the viewer's node in the live count", func() bool { return live() == 1 })

	came := time.Now()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		resp, err := clientFrom(t, ip).Get(w.URLs().HLS)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitFor(t, 20*time.Second, "two more browsers in the live count", func() bool { return live() == 3 })
	t.Logf("two browsers reached the broadcaster's count in %v", time.Since(came).Round(time.Millisecond))

	// Nobody fetches any more: out of the count once the window passed.
	waitFor(t, 40*time.Second, "the browsers out of the live count", func() bool { return live() == 1 })
	t.Logf("and left it %v after they came (the window is 10 s)", time.Since(came).Round(time.Millisecond))
}

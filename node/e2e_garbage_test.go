package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"

	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/ingest"
	"github.com/peerscope/peerscope/media/sample"
	"github.com/peerscope/peerscope/node"
)

// TestE2EGarbageInputs throws garbage at every input of one node — RTMP,
// WHIP, SRT, MPEG-TS over UDP, from a pipe (what stdin is) and from files —
// while the same node roots a healthy broadcast. Each input must refuse the
// garbage clearly (a log line, an HTTP 4xx with its reason, the broadcast's
// Err), and meanwhile the healthy broadcast must keep flowing to its viewer
// (its chunk count rising) and the node's HTTP must keep answering.
func TestE2EGarbageInputs(t *testing.T) {
	e2e(t)
	log, logs := newLogs(t, slog.LevelInfo)
	g := newNode(t, node.Config{Logger: log.With("node", "target")})
	ctx := t.Context()
	// Random bytes from a seeded generator, shared by the attackers.
	rng := rand.NewChaCha8([32]byte{'g', 'a', 'r', 'b', 'a', 'g', 'e'})
	var rngMu sync.Mutex
	garbage := func(n int) []byte {
		b := make([]byte, n)
		rngMu.Lock()
		defer rngMu.Unlock()
		_, _ = rng.Read(b)
		return b
	}

	healthy, err := g.GoLive(ctx, node.LiveConfig{Title: "healthy", Source: sampleSource(t, ingest.WithLoop())})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newNode(t, node.Config{}).Watch(ctx, healthy.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the healthy broadcast at its viewer", func() bool { return received(t, w) > 0 })

	// The inputs. RTMP and WHIP on one broadcast; each source on its own.
	ingests, err := g.GoLive(ctx, node.LiveConfig{Title: "RTMP and WHIP", RTMP: "127.0.0.1:0", WHIP: true})
	if err != nil {
		t.Fatal(err)
	}
	srtIn, err := ingest.ListenSRT("127.0.0.1:0", ingest.SRTConfig{StreamID: "srt-key", Latency: time.Second}, ingest.WithLogger(log.With("input", "srt")))
	if err != nil {
		t.Fatal(err)
	}
	srtB, err := g.GoLive(ctx, node.LiveConfig{Title: "SRT", Source: srtIn})
	if err != nil {
		t.Fatal(err)
	}
	udpIn, err := ingest.ListenUDP("127.0.0.1:0", ingest.WithLogger(log.With("input", "udp")))
	if err != nil {
		t.Fatal(err)
	}
	udpB, err := g.GoLive(ctx, node.LiveConfig{Title: "UDP", Source: udpIn})
	if err != nil {
		t.Fatal(err)
	}
	// Pipes (what stdin is): garbage from the start, and the clip, then
	// garbage.
	pipe := func(title string) (*node.Broadcast, *os.File, *os.File) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Close(); pw.Close() })
		b, err := g.GoLive(ctx, node.LiveConfig{Title: title, Source: ingest.NewTS(pr, ingest.WithLogger(log.With("input", title)))})
		if err != nil {
			t.Fatal(err)
		}
		return b, pr, pw
	}
	pipeB, pr, pw := pipe("pipe")
	pipe2B, pr2, pw2 := pipe("pipe, the clip then garbage")
	// Files: random bytes are refused when opened; TS packets (sync bytes
	// right) and an MP4 header over random payloads, looped, when played.
	dir := t.TempDir()
	files := map[string][]byte{"random.ts": garbage(1 << 20)}
	tsLike := garbage(1 << 20)
	for i := 0; i < len(tsLike); i += 188 {
		tsLike[i] = 0x47
	}
	files["packets.ts"] = tsLike
	mp4Like := garbage(1 << 20)
	copy(mp4Like, []byte{0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'})
	files["boxes.mp4"] = mp4Like
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.OpenFile(filepath.Join(dir, "random.ts")); !errors.Is(err, media.ErrBadInput) {
		t.Errorf("OpenFile(random bytes): %v, want media.ErrBadInput", err)
	} else {
		t.Logf("file of random bytes: %v", err)
	}
	var fileBs []*node.Broadcast
	for _, name := range []string{"packets.ts", "boxes.mp4"} {
		src, err := ingest.OpenFile(filepath.Join(dir, name), ingest.WithLoop())
		if err != nil {
			t.Fatalf("OpenFile(%s): %v", name, err)
		}
		b, err := g.GoLive(ctx, node.LiveConfig{Title: name, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		fileBs = append(fileBs, b)
	}

	// The attackers: some stop on their own, RTMP and WHIP go on until the
	// others are done and the healthy broadcast was seen flowing a while.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	rtmpURL, err := url.Parse(ingests.URLs().RTMP)
	if err != nil {
		t.Fatal(err)
	}
	rtmpAddr := rtmpURL.Host
	var rtmpConns, rtmpClosed int
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Random bytes, and the RTMP version byte then random bytes
			// (past the first check of the handshake).
			b := garbage(8 << 10)
			if i%2 == 1 {
				b[0] = 3
			}
			time.Sleep(10 * time.Millisecond) // a steady trickle, not a flood
			closed, err := throwTCP(rtmpAddr, b, 30*time.Second)
			mu.Lock()
			rtmpConns++
			if closed {
				rtmpClosed++
			}
			mu.Unlock()
			if err != nil {
				problem("RTMP: %v", err)
				return
			}
		}
	})
	whipURL := ingests.URLs().WHIP
	var whipAnswers []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(100 * time.Millisecond) // a steady trickle, not a flood
			for _, c := range whipCases(ingests.StreamKey(), garbage) {
				code, body, err := post(whipURL, c.contentType, c.key, c.body)
				if err != nil {
					problem("WHIP %s: %v", c.name, err)
					return
				}
				if code != c.want || len(strings.TrimSpace(body)) < 10 {
					problem("WHIP %s: %d %q, want %d and a reason", c.name, code, body, c.want)
				}
				mu.Lock()
				if len(whipAnswers) < len(whipCases("", garbage)) {
					whipAnswers = append(whipAnswers, fmt.Sprintf("%s → %d %s", c.name, code, strings.TrimSpace(body)))
				}
				mu.Unlock()
			}
		}
	})
	var once sync.WaitGroup
	once.Go(func() {
		// SRT: datagrams that are not SRT, then two publishers that send
		// random bytes and hang up.
		c, err := net.Dial("udp", srtIn.Addr().String())
		if err != nil {
			problem("SRT: %v", err)
			return
		}
		for range 200 {
			_, _ = c.Write(garbage(1316))
		}
		c.Close()
		for range 2 {
			if err := throwSRT(srtIn.Addr().String(), "srt-key", garbage(1<<20)); err != nil {
				problem("SRT publisher: %v", err)
			}
		}
	})
	once.Go(func() {
		// UDP: random datagrams until the source gives up.
		c, err := net.Dial("udp", udpIn.Addr().String())
		if err != nil {
			problem("UDP: %v", err)
			return
		}
		defer c.Close()
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; !ended(udpB) && time.Now().Before(deadline); i++ {
			_, _ = c.Write(garbage(1316))
			if i%16 == 15 {
				time.Sleep(time.Millisecond) // gently, so the socket's buffer keeps up
			}
		}
	})
	for _, p := range []struct {
		b      *node.Broadcast
		r, w   *os.File
		before []byte
	}{{pipeB, pr, pw, nil}, {pipe2B, pr2, pw2, sample.TS()}} {
		in := append(p.before[:len(p.before):len(p.before)], garbage(5<<20)...)
		go func() {
			// More random bytes than the demuxer looks through. The write
			// blocks once the source has stopped reading, until the pipe is
			// closed below.
			_, _ = p.w.Write(in)
			p.w.Close()
		}()
		once.Go(func() {
			select {
			case <-p.b.Done():
			case <-time.After(60 * time.Second):
			}
			p.r.Close()
		})
	}
	onceDone := make(chan struct{})
	go func() { once.Wait(); close(onceDone) }()

	flows := 0
	for finished := false; !finished || flows < 3; flows++ {
		select {
		case <-onceDone:
			finished = true
		default:
		}
		n0 := received(t, w)
		waitFor(t, 20*time.Second, "the healthy broadcast to keep flowing under garbage", func() bool { return received(t, w) >= n0+5 })
		for _, u := range []string{g.HTTPURL() + "/api/broadcasts", g.HTTPURL() + "/metrics", healthy.URLs().HLS} {
			if err := answers(u); err != nil {
				t.Fatalf("while garbage is thrown: %v", err)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("the healthy broadcast flowed on through %d checks (5 chunks each); its viewer has %d chunks", flows, received(t, w))
	for _, p := range problems {
		t.Error(p)
	}

	// What each input said.
	mu.Lock()
	t.Logf("RTMP: %d garbage connections, %d closed by the node", rtmpConns, rtmpClosed)
	for _, a := range whipAnswers {
		t.Logf("WHIP: %s", a)
	}
	mu.Unlock()
	if rtmpClosed == 0 {
		t.Error("RTMP: the node closed no garbage connection")
	}
	for _, want := range []string{"rtmp: connection closed", "whip: malformed offer", "SRT session ended"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log", want)
		}
	}
	// One line of each kind: what an operator reads in the log.
	seen := map[string]bool{}
	for _, l := range strings.Split(logs.String(), "\n") {
		msg, _, _ := strings.Cut(l[strings.Index(l, "msg=")+1:], " node=")
		_, why, _ := strings.Cut(l, "err=")
		why, _, _ = strings.Cut(why, ":")
		if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "SRT") || seen[msg+why] {
			continue
		}
		seen[msg+why] = true
		t.Logf("log: %s", l[strings.Index(l, "level="):])
	}
	if !strings.Contains(logs.String(), "bad input") {
		t.Error("the SRT sessions did not end with bad input")
	}
	if n := received(t, pipe2B); n < 40 {
		t.Errorf("the clip before the garbage: %d chunks, want the 10 s of it", n)
	}
	for _, b := range append([]*node.Broadcast{udpB, pipeB, pipe2B}, fileBs...) {
		select {
		case <-b.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: garbage did not end it", b.Announcement().Title)
		}
		if !errors.Is(b.Err(), media.ErrBadInput) {
			t.Errorf("%s: Err() = %v, want media.ErrBadInput", b.Announcement().Title, b.Err())
		} else {
			t.Logf("%s: %v", b.Announcement().Title, b.Err())
		}
	}
	for _, b := range []*node.Broadcast{ingests, srtB, healthy} {
		if ended(b) || b.Err() != nil {
			t.Errorf("%s: ended %v, err %v: garbage must not end a broadcast that waits for publishers", b.Announcement().Title, ended(b), b.Err())
		}
	}
}

// throwTCP writes b to addr and reads until the other side closes the
// connection (closed) or the deadline passes (not closed).
func throwTCP(addr string, b []byte, deadline time.Duration) (closed bool, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(deadline))
	_, _ = c.Write(b) // the node may hang up before it has read it all
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, nil
	}
	return true, nil
}

// throwSRT publishes b over SRT with streamid key, then hangs up. While the
// listener still holds the last publisher's session it refuses the next
// ("another publisher is live"): that is waited out.
func throwSRT(addr, key string, b []byte) error {
	cfg := srt.DefaultConfig()
	cfg.StreamId = key
	cfg.ReceiverLatency, cfg.PeerLatency = time.Second, time.Second
	var c srt.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err = srt.Dial("srt", addr, cfg); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < len(b); i += 1316 {
		if _, err := c.Write(b[i:min(i+1316, len(b))]); err != nil {
			return err
		}
		if i%(16*1316) == 0 {
			time.Sleep(time.Millisecond) // live mode: not faster than it can take
		}
	}
	// SRT delivers after its latency: let the last bytes through.
	time.Sleep(1500 * time.Millisecond)
	return nil
}

type whipCase struct {
	name, contentType, key string
	body                   []byte
	want                   int
}

// whipCases are offers a WHIP endpoint must refuse, each with its status.
func whipCases(key string, garbage func(int) []byte) []whipCase {
	vp8Only := strings.ReplaceAll(`v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=mid:0
a=sendonly
a=rtpmap:96 VP8/90000
`, "\n", "\r\n")
	return []whipCase{
		{"random bytes", "application/sdp", key, garbage(4 << 10), http.StatusBadRequest},
		{"random bytes, no key", "application/sdp", "", garbage(4 << 10), http.StatusUnauthorized},
		{"random bytes, wrong key", "application/sdp", "not-the-key", garbage(4 << 10), http.StatusUnauthorized},
		{"random bytes as text/plain", "text/plain", key, garbage(4 << 10), http.StatusUnsupportedMediaType},
		{"2 MiB of random bytes", "application/sdp", key, garbage(2 << 20), http.StatusRequestEntityTooLarge},
		{"an offer of VP8 only", "application/sdp", key, []byte(vp8Only), http.StatusNotAcceptable},
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func post(url, contentType, key string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b), nil
}

// answers GETs url and wants 200.
func answers(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

package hls

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerscope/peerscope/chunk"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// mkPart makes a synthetic chunk: 200 ms, a keyframe every 10.
func mkPart(seq uint64) *chunk.Chunk {
	c := &chunk.Chunk{Seq: seq, Wallclock: t0.Add(time.Duration(seq) * 200 * time.Millisecond).UnixNano(),
		Duration: int64(200 * time.Millisecond), Payload: []byte(fmt.Sprintf("part%d;", seq))}
	if seq%10 == 0 {
		c.Flags |= chunk.FlagKeyframe
	}
	return c
}

func initChunk(seq uint64, payload string) *chunk.Chunk {
	return &chunk.Chunk{Seq: seq, Flags: chunk.FlagInit, Payload: []byte(payload)}
}

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	return w
}

func mustPush(t *testing.T, s *Server, cs ...*chunk.Chunk) {
	t.Helper()
	for _, c := range cs {
		if err := s.Push(c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlaylist(t *testing.T) {
	s := newServer(t, Config{})
	mustPush(t, s, initChunk(0, "INIT"))
	for seq := range uint64(23) {
		mustPush(t, s, mkPart(seq))
	}
	w := get(t, s, "/index.m3u8")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	want := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI="init/0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2030-01-02T03:04:05.000Z
` + parts(0, 10) + `#EXTINF:2.00000,
seg/0.m4s
#EXT-X-PROGRAM-DATE-TIME:2030-01-02T03:04:07.000Z
` + parts(10, 20) + `#EXTINF:2.00000,
seg/1.m4s
#EXT-X-PROGRAM-DATE-TIME:2030-01-02T03:04:09.000Z
` + parts(20, 23) + `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/23.m4s"
`
	if got := w.Body.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	// Resources.
	if w := get(t, s, "/init/0.mp4"); w.Code != 200 || w.Body.String() != "INIT" {
		t.Fatalf("init: %d %q", w.Code, w.Body)
	}
	w = get(t, s, "/part/12.m4s")
	if w.Code != 200 || w.Body.String() != "part12;" || w.Header().Get(WallclockHeader) != fmt.Sprint(t0.Add(2400*time.Millisecond).UnixMilli()) {
		t.Fatalf("part: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = get(t, s, "/seg/1.m4s")
	if want := "part10;part11;part12;part13;part14;part15;part16;part17;part18;part19;"; w.Code != 200 || w.Body.String() != want {
		t.Fatalf("seg: %d %q", w.Code, w.Body)
	}
	for _, p := range []string{"/seg/2.m4s", "/seg/9.m4s", "/init/1.mp4", "/part/07.m4s", "/part/-1.m4s", "/part/1.ts", "/seg/x.m4s", "/nope"} {
		if w := get(t, s, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}

	// The end.
	mustPush(t, s, &chunk.Chunk{Seq: 23, Flags: chunk.FlagEnd})
	body := get(t, s, "/index.m3u8").Body.String()
	if !strings.HasSuffix(body, "#EXTINF:0.60000,\nseg/2.m4s\n#EXT-X-ENDLIST\n") || strings.Contains(body, "PRELOAD-HINT") {
		t.Fatalf("ended:\n%s", body)
	}
	if in := s.Info(); !in.Ended || in.Live {
		t.Fatalf("info %+v", in)
	}
}

func parts(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.20000,URI=\"part/%d.m4s\"", i)
		if i%10 == 0 {
			b.WriteString(",INDEPENDENT=YES")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestBadRequests(t *testing.T) {
	s := newServer(t, Config{})
	mustPush(t, s, initChunk(0, "INIT"), mkPart(0))
	for _, q := range []string{
		"_HLS_msn=x", "_HLS_msn=-1", "_HLS_msn=01", "_HLS_msn=1&_HLS_msn=2", "_HLS_part=0",
		"_HLS_msn=0&_HLS_part=a", "_HLS_msn=99", "_HLS_skip=YES", "_HLS_msn=18446744073709551616",
	} {
		if w := get(t, s, "/index.m3u8?"+q); w.Code != 400 {
			t.Errorf("%s: %d, want 400", q, w.Code)
		}
	}
	if w := get(t, s, "/index.m3u8?cachebuster=1"); w.Code != 200 {
		t.Errorf("unknown parameter: %d", w.Code)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", "/index.m3u8", nil))
	if w.Code != 405 {
		t.Errorf("POST: %d", w.Code)
	}
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("OPTIONS", "/index.m3u8", nil))
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS: %d %v", w.Code, w.Header())
	}
	if _, err := NewServer(Config{TargetDuration: 1500 * time.Millisecond}); err == nil {
		t.Error("fractional TargetDuration accepted")
	}
}

func TestBlockingReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Config{MaxBlock: 3 * time.Second})
		mustPush(t, s, initChunk(0, "INIT"), mkPart(0), mkPart(1))

		type result struct {
			code int
			body string
		}
		ask := func(target string) chan result {
			ch := make(chan result, 1)
			go func() {
				w := get(t, s, target)
				ch <- result{w.Code, w.Body.String()}
			}()
			return ch
		}
		// Already there: immediate.
		if r := <-ask("/index.m3u8?_HLS_msn=0&_HLS_part=1"); r.code != 200 {
			t.Fatal(r.code)
		}
		// Part 2 of segment 0 comes when chunk 2 does.
		ch := ask("/index.m3u8?_HLS_msn=0&_HLS_part=2")
		hint := ask("/part/2.m4s")
		synctest.Wait()
		select {
		case r := <-ch:
			t.Fatalf("answered before the part: %d", r.code)
		default:
		}
		time.Sleep(200 * time.Millisecond)
		mustPush(t, s, mkPart(2))
		if r := <-ch; r.code != 200 || !strings.Contains(r.body, `URI="part/2.m4s"`) {
			t.Fatalf("%d\n%s", r.code, r.body)
		}
		if r := <-hint; r.code != 200 || r.body != "part2;" {
			t.Fatalf("preload hint: %d %q", r.code, r.body)
		}
		// A part index past the segment's last part waits for the next
		// segment's first part.
		for seq := uint64(3); seq < 10; seq++ {
			mustPush(t, s, mkPart(seq))
		}
		ch = ask("/index.m3u8?_HLS_msn=0&_HLS_part=10")
		whole := ask("/index.m3u8?_HLS_msn=1")
		synctest.Wait()
		mustPush(t, s, mkPart(10))
		if r := <-ch; r.code != 200 || !strings.Contains(r.body, "seg/0.m4s") {
			t.Fatalf("%d\n%s", r.code, r.body)
		}
		select {
		case r := <-whole:
			t.Fatalf("segment 1 is not complete yet: %d", r.code)
		default:
		}
		// Nothing comes: 503 after MaxBlock.
		start := time.Now()
		if r := <-whole; r.code != 503 || time.Since(start) != 3*time.Second {
			t.Fatalf("%d after %v", r.code, time.Since(start))
		}
		// A far part is not waited for.
		if r := <-ask("/part/50.m4s"); r.code != 404 {
			t.Fatalf("far part: %d", r.code)
		}
		// A request whose client leaves returns at once.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest("GET", "/index.m3u8?_HLS_msn=2", nil).WithContext(ctx))
			close(done)
		}()
		synctest.Wait()
		cancel()
		<-done
		// Close releases waiters.
		ch = ask("/index.m3u8?_HLS_msn=2")
		synctest.Wait()
		s.Close()
		if r := <-ch; r.code != 503 {
			t.Fatalf("after Close: %d", r.code)
		}
	})
}

func TestOutOfOrderAndGaps(t *testing.T) {
	now := t0
	s := newServer(t, Config{Now: func() time.Time { return now }, GapWait: time.Second})
	mustPush(t, s, initChunk(0, "INIT"))
	// Arrive shuffled, some twice.
	for _, seq := range []uint64{0, 2, 1, 1, 4, 3, 0, 5} {
		mustPush(t, s, mkPart(seq))
	}
	body := get(t, s, "/index.m3u8").Body.String()
	if strings.Count(body, "#EXT-X-PART:") != 6 || !strings.Contains(body, `part/6.m4s"`) {
		t.Fatalf("reordered:\n%s", body)
	}
	// Chunk 6 is lost; 7..12 arrive; after GapWait the server resumes at
	// the keyframe (10), after a discontinuity.
	for seq := uint64(7); seq <= 12; seq++ {
		mustPush(t, s, mkPart(seq))
	}
	if body := get(t, s, "/index.m3u8").Body.String(); strings.Contains(body, "part/10.m4s") {
		t.Fatalf("did not wait for the gap:\n%s", body)
	}
	now = now.Add(1100 * time.Millisecond)
	body = get(t, s, "/index.m3u8").Body.String()
	want := "#EXTINF:1.20000,\nseg/0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2030-01-02T03:04:07.000Z\n" +
		"#EXT-X-PART:DURATION=0.20000,URI=\"part/10.m4s\",INDEPENDENT=YES\n"
	if !strings.Contains(body, want) {
		t.Fatalf("no discontinuity:\n%s", body)
	}
	// The lost part and the ones skipped are 404, at once.
	for _, p := range []string{"/part/6.m4s", "/part/8.m4s"} {
		if w := get(t, s, p); w.Code != 404 {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	// A repair that comes too late changes nothing.
	mustPush(t, s, mkPart(6))
	if get(t, s, "/index.m3u8").Body.String() != body {
		t.Fatal("a late chunk changed the playlist")
	}
}

func TestNewInit(t *testing.T) {
	s := newServer(t, Config{})
	mustPush(t, s, initChunk(0, "A"))
	for seq := range uint64(15) {
		mustPush(t, s, mkPart(seq))
	}
	mustPush(t, s, initChunk(20, "B"))
	for seq := uint64(15); seq < 25; seq++ {
		mustPush(t, s, mkPart(seq))
	}
	body := get(t, s, "/index.m3u8").Body.String()
	if !strings.Contains(body, "seg/1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init/20.mp4\"\n") {
		t.Fatalf("no new map:\n%s", body)
	}
	if w := get(t, s, "/init/20.mp4"); w.Body.String() != "B" {
		t.Fatal(w.Body.String())
	}
	if w := get(t, s, "/init/0.mp4"); w.Body.String() != "A" {
		t.Fatal(w.Body.String())
	}
}

func TestWindow(t *testing.T) {
	s := newServer(t, Config{Window: 8 * time.Second, TargetDuration: 2 * time.Second})
	mustPush(t, s, initChunk(0, "INIT"))
	// Keyframes every 10 chunks (2 s); then a stretch without keyframes is
	// cut at the target duration.
	for seq := range uint64(200) {
		c := mkPart(seq)
		if seq >= 100 {
			c.Flags = 0
		}
		mustPush(t, s, c)
	}
	in := s.Info()
	if in.Segments > 6 || in.Bytes > 60*len("part199;") {
		t.Fatalf("window not bounded: %+v", in)
	}
	body := get(t, s, "/index.m3u8").Body.String()
	if strings.Contains(body, "EXTINF:2.2") || !strings.Contains(body, "EXTINF:2.00000") {
		t.Fatalf("segments not cut at the target:\n%s", body)
	}
	if w := get(t, s, "/part/10.m4s"); w.Code != 404 {
		t.Fatalf("old part still served: %d", w.Code)
	}
	// Parts are listed only near the live edge.
	if strings.Count(body, "#EXT-X-PART:") > 3*10+1 {
		t.Fatalf("too many parts listed:\n%s", body)
	}
}

// Memory stays bounded whatever arrives: far-future chunks that never
// connect, floods of duplicates.
func TestBoundedMemory(t *testing.T) {
	now := t0
	s := newServer(t, Config{Now: func() time.Time { return now }})
	mustPush(t, s, initChunk(0, "INIT"), mkPart(0))
	for i := range uint64(10000) {
		mustPush(t, s, mkPart(1000+i*3))
		now = now.Add(time.Millisecond)
	}
	if in := s.Info(); in.Segments > 200 || in.Bytes > 2<<20 {
		t.Fatalf("%+v", in)
	}
}

package bootstrap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/peerscope/peerscope/audience"
)

// TestRosterSurvivesKill: a broadcaster changes its roster as fast as the
// bootstrap takes it, from several goroutines, each version listing the
// account of its number; the bootstrap (a child process, as in
// TestKillDuringWrites) is killed with SIGKILL amid the writes and
// restarted on the same data. The stored roster is at least the newest one
// acknowledged, signed and whole, its members those of its version; an
// older version sent again is refused.
func TestRosterSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	var mu sync.Mutex
	codes := map[string]string{}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Message string }
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		codes[m.To] = m.Message[len(m.Message)-6:]
		mu.Unlock()
	}))
	defer gw.Close()
	c := startChild(t, dir, gw.URL)
	ctx := context.Background()
	e := &env{t: t, url: c.url}
	bob := e.node(40)
	bob.c.Now = time.Now
	const phone = "+15550140" // a private broadcast's broadcaster signs in
	if err := bob.c.PhoneStart(ctx, phone); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	code := codes[phone]
	mu.Unlock()
	if _, err := bob.c.PhoneVerify(ctx, phone, code); err != nil {
		t.Fatal(err)
	}
	id := bob.broadcastID("kill")
	if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "kill", time.Now().Add(-time.Minute), 1)); err != nil {
		t.Fatal(err)
	}
	roster := func(v uint64) []byte {
		fp := audience.Fingerprint{byte(v), byte(v >> 8), byte(v >> 16)}
		r := &audience.Roster{Broadcast: id, Version: v, Issued: time.Now(), Members: []audience.Member{
			{Account: fmt.Sprintf("twitter:%d", v), Devices: []audience.Device{{Peer: bob.id, Fingerprint: fp}}}}}
		if err := r.Sign(bob.key); err != nil {
			t.Error(err)
		}
		return r.Marshal()
	}
	var next, acked, puts atomic.Uint64
	const killAfter = 150
	enough, stop := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := next.Add(1)
				if _, err := bob.c.PutRoster(ctx, id, roster(v)); err != nil {
					continue // stale (a newer one went first), or the bootstrap is down
				}
				for {
					if a := acked.Load(); v <= a || acked.CompareAndSwap(a, v) {
						break
					}
				}
				if puts.Add(1) == killAfter {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d rosters in 2 minutes", puts.Load())
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()

	c2 := startChild(t, dir, gw.URL)
	bob.c.Base = c2.url
	res, err := bob.c.Roster(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := audience.ParseRoster(res.Roster)
	if err != nil || r.Verify(id) != nil {
		t.Fatalf("stored roster: %v", err)
	}
	if r.Version < acked.Load() || res.Version != r.Version || len(r.Members) != 1 || r.Members[0].Account != fmt.Sprintf("twitter:%d", r.Version) {
		t.Fatalf("stored roster %d (%+v), acknowledged %d", r.Version, r.Members, acked.Load())
	}
	_, err = bob.c.PutRoster(ctx, id, roster(acked.Load()))
	mustStatus(t, err, 409, "stale")
	t.Logf("killed after %d acknowledged rosters: the newest acknowledged %d, stored %d", puts.Load(), acked.Load(), r.Version)
}

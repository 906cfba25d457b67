package bootstrap_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
)

// TestCrashChild is the bootstrap process that TestKillDuringWrites kills:
// it runs only when the parent sets PEERSCOPE_CRASH_DATA, serving the API
// from that directory on an ephemeral port it prints, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("PEERSCOPE_CRASH_DATA")
	if dir == "" {
		t.Skip("the child process of TestKillDuringWrites")
	}
	off := bootstrap.Rate{PerSecond: -1}
	svc, err := bootstrap.Open(context.Background(), bootstrap.ServiceConfig{DataDir: dir, HTTP: "127.0.0.1:0",
		Server: bootstrap.ServerConfig{RateIP: off, RatePeer: off, RateAccount: off, RatePhone: off,
			Phone:       bootstrap.HTTPSender{URL: os.Getenv("PEERSCOPE_CRASH_SMS")},
			PhoneLimits: bootstrap.PhoneLimits{MaxSends: 1000}}})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("URL", svc.URL())
	_ = svc.Serve(context.Background()) // until SIGKILL
}

// child is a running bootstrap process.
type child struct {
	cmd *exec.Cmd
	url string
}

func startChild(t *testing.T, dir, sms string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), "PEERSCOPE_CRASH_DATA="+dir, "PEERSCOPE_CRASH_SMS="+sms)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return &child{cmd: cmd, url: u}
		}
		if strings.HasPrefix(sc.Text(), "ERROR") {
			t.Fatal(sc.Text())
		}
	}
	t.Fatalf("the child printed no URL: %v", sc.Err())
	return nil
}

// TestKillDuringWrites kills the bootstrap with SIGKILL while clients sign
// up, follow and announce, restarts it on the same data, and checks that
// every write the API acknowledged is there.
func TestKillDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	// The SMS gateway: the child sends codes here (bootstrap.HTTPSender).
	var codesMu sync.Mutex
	codes := map[string]string{}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ To, Message string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		codesMu.Lock()
		codes[m.To] = m.Message[len(m.Message)-6:]
		codesMu.Unlock()
	}))
	defer gw.Close()
	c := startChild(t, dir, gw.URL)

	e := &env{t: t, url: c.url}
	type acked struct {
		accounts map[string]string   // node seed tag → account key
		follows  map[string][]string // node → followees acknowledged
		versions map[string]uint64   // broadcast → highest acknowledged version
	}
	var mu sync.Mutex
	ack := acked{accounts: map[string]string{}, follows: map[string][]string{}, versions: map[string]uint64{}}
	var writes atomic.Int64
	const killAfter = 300
	enough := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 6
	nodes := make([]*node, workers)
	for w := 0; w < workers; w++ {
		n := e.node(byte(10 + w))
		n.c.Now = time.Now
		nodes[w] = n
		wg.Add(1)
		go func(w int, n *node) {
			defer wg.Done()
			ctx := context.Background()
			phone := fmt.Sprintf("+1555%07d", w)
			signedIn := false
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch {
				case !signedIn:
					if n.c.PhoneStart(ctx, phone) != nil {
						continue
					}
					codesMu.Lock()
					code := codes[phone]
					codesMu.Unlock()
					res, err := n.c.PhoneVerify(ctx, phone, code)
					if err != nil {
						continue
					}
					mu.Lock()
					ack.accounts[n.id.String()] = res.Account.Key()
					mu.Unlock()
					signedIn = true
				case i%2 == 0:
					key := fmt.Sprintf("twitter:%d-%d", w, i)
					if n.c.Follow(ctx, key) == nil {
						mu.Lock()
						ack.follows[n.id.String()] = append(ack.follows[n.id.String()], key)
						mu.Unlock()
					}
				default:
					id := n.broadcastID(fmt.Sprintf("w%d", w))
					v := uint64(i)
					if _, err := n.c.Announce(ctx, id, announcement(id, "crash test", time.Now().Add(-time.Minute), v)); err == nil {
						mu.Lock()
						ack.versions[id] = max(ack.versions[id], v)
						mu.Unlock()
					}
				}
				if writes.Add(1) == killAfter {
					close(enough)
				}
			}
		}(w, n)
	}
	// Kill mid-stream, once a good number of writes went through.
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d writes in 2 minutes", writes.Load())
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()

	c2 := startChild(t, dir, gw.URL)
	ctx := context.Background()
	mu.Lock()
	defer mu.Unlock()
	if len(ack.accounts) == 0 || len(ack.follows) == 0 || len(ack.versions) == 0 {
		t.Fatalf("nothing acknowledged of some kind: %d accounts, %d followers, %d broadcasts", len(ack.accounts), len(ack.follows), len(ack.versions))
	}
	nf := 0
	for _, n := range nodes {
		n.c.Base = c2.url
		id := n.id.String()
		if key, ok := ack.accounts[id]; ok {
			res, err := n.c.Attestation(ctx)
			if err != nil || res.Account.Key() != key {
				t.Errorf("account %s of %s lost: %v", key, id, err)
			}
		}
		if want := ack.follows[id]; len(want) > 0 {
			got, err := n.c.Following(ctx)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, k := range got {
				have[k] = true
			}
			for _, k := range want {
				nf++
				if !have[k] {
					t.Errorf("follow %s of %s lost", k, id)
				}
			}
		}
	}
	for bid, v := range ack.versions {
		var b api.Listing
		resp, err := http.Get(c2.url + "/api/v1/broadcasts/" + bid)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		if err != nil || b.Version < v {
			t.Errorf("broadcast %s: stored version %d, acknowledged %d (%v)", bid, b.Version, v, err)
		}
	}
	t.Logf("killed after %d writes: %d accounts, %d follows, %d broadcasts acknowledged, all there after the restart",
		writes.Load(), len(ack.accounts), nf, len(ack.versions))
}

// TestNonceSurvivesKill: a signed follow is captured on its way to the
// bootstrap; the node unfollows; the bootstrap is killed with SIGKILL and
// restarted on the same data within the clock skew. Sent again, the
// captured follow is refused (its nonce was kept durably before it was
// acted on), and the unfollow stands.
func TestNonceSurvivesKill(t *testing.T) {
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
	n := (&env{t: t, url: c.url}).node(30)
	n.c.Now = time.Now
	const phone = "+15550177"
	if err := n.c.PhoneStart(ctx, phone); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	code := codes[phone]
	mu.Unlock()
	if _, err := n.c.PhoneVerify(ctx, phone, code); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	n.c.HTTP = &http.Client{Transport: rec}
	if err := n.c.Follow(ctx, "twitter:77"); err != nil {
		t.Fatal(err)
	}
	follow, body := rec.last(http.MethodPut)
	if err := n.c.Unfollow(ctx, "twitter:77"); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	c2 := startChild(t, dir, gw.URL)
	status, answer := replay(t, follow, body, c2.url)
	if status != http.StatusUnauthorized {
		t.Errorf("the captured follow, sent again after the restart: %d %s", status, answer)
	}
	n.c.Base, n.c.HTTP = c2.url, nil
	if f, err := n.c.Following(ctx); err != nil || len(f) != 0 {
		t.Fatalf("follows after the replay: %v %v", f, err)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// childArgs, in a child's environment, are the peerscope command line
// (JSON) the test binary runs instead of its tests: a real `peerscope
// bootstrap` process, which a test can kill with SIGKILL.
const childArgs = "PEERSCOPE_TEST_CHILD_ARGS"

// runChild runs the command of childArgs as main does, and returns its
// exit code.
func runChild(spec string) int {
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peerscope: %v\n", err)
	}
	return exitCode(err)
}

// replicaProc is one `peerscope bootstrap` child.
type replicaProc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	out  *strings.Builder
	mu   *sync.Mutex
}

func (p *replicaProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startReplica(t *testing.T, dir, db string) *replicaProc {
	t.Helper()
	spec, _ := json.Marshal([]string{"bootstrap", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0",
		"--data", dir, "--db", db, "--no-rate-limits", "--sms", "off", "--no-relay"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+string(spec))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &replicaProc{cmd: cmd, done: make(chan struct{}), out: &strings.Builder{}, mu: &sync.Mutex{}}
	up := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if _, u, ok := strings.Cut(line, "Directory and HTTP API (--bootstrap): "); ok {
				select {
				case up <- strings.TrimSpace(u):
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-up:
	case <-p.done:
		t.Fatalf("a replica ended before it was up:\n%s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("a replica was not up within a minute:\n%s", p.output())
	}
	return p
}

// subscriber reads the public event stream of one replica, and when the
// stream breaks reconnects to the next with the ID of the last event it
// had, as an EventSource behind a load balancer would.
type subscriber struct {
	urls       []string
	mu         sync.Mutex
	live       map[string]bool
	reconnects int
	opened     chan struct{}
}

func (s *subscriber) run(ctx context.Context, first int) {
	last := ""
	openedOnce := sync.OnceFunc(func() { close(s.opened) })
	for cur, tries := first, 0; ctx.Err() == nil; cur, tries = (cur+1)%len(s.urls), tries+1 {
		if tries > 0 {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
			select { // a client's pause between tries, not a wait for a condition
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.urls[cur]+"/api/v1/events", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			continue
		}
		openedOnce()
		sc := bufio.NewScanner(resp.Body)
		id := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id = v
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var ev struct {
					Kind      string
					Broadcast *api.Listing
				}
				if json.Unmarshal([]byte(data), &ev) == nil && ev.Broadcast != nil && ev.Kind == "live" {
					s.mu.Lock()
					s.live[ev.Broadcast.ID] = true
					s.mu.Unlock()
				}
				last = id
			}
		}
		resp.Body.Close()
	}
}

func (s *subscriber) missing(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if !s.live[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestReplicaFailover: three `peerscope bootstrap` processes on one
// PostgreSQL database, broadcasters announcing go-lives through all three
// (each through the next replica when one fails), a subscriber on each
// replica's event stream. Replica 1 is killed with SIGKILL amid the load.
// Then: every acknowledged announcement is in the directory; the only
// errors broadcasters saw were failed connections to the killed replica
// (each retried on another); every subscriber, including the one whose
// replica died (it reconnects to another with Last-Event-ID), has the
// go-live of every broadcast whose announcement was acknowledged with no
// try in flight at the kill (one that was may have been written,
// unacknowledged, by the killed replica before its notice went out; a
// refused connection sent nothing).
func TestReplicaFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three child processes")
	}
	db := pgtest.DB(t)
	dir := t.TempDir()
	reps := []*replicaProc{startReplica(t, dir, db)} // the first makes the keys the others share
	for range 2 {
		reps = append(reps, startReplica(t, dir, db))
	}
	urls := []string{reps[0].url, reps[1].url, reps[2].url}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*subscriber
	var subsWG sync.WaitGroup
	for i := range reps {
		s := &subscriber{urls: urls, live: map[string]bool{}, opened: make(chan struct{})}
		subs = append(subs, s)
		subsWG.Go(func() { s.run(ctx, i) })
		select {
		case <-s.opened:
		case <-time.After(30 * time.Second):
			t.Fatalf("no event stream on replica %d", i)
		}
	}

	const killed = 1
	var (
		mu        sync.Mutex
		mustSee   []string              // acknowledged, and no try of theirs in flight at the kill
		versions  = map[string]uint64{} // every acknowledged broadcast → its acknowledged version
		connErrs  = map[int]int{}       // replica → failed connections
		apiErrs   []string
		acked     atomic.Int64
		stop      = make(chan struct{})
		workersWG sync.WaitGroup
	)
	const workers = 6
	for w := range workers {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		me, _ := peer.IDFromPrivateKey(priv)
		clients := make([]*api.Client, len(urls))
		for i, u := range urls {
			clients[i] = &api.Client{Base: u, Key: priv, HTTP: &http.Client{Timeout: 10 * time.Second}}
		}
		workersWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s.w%d", me, i)
				u := api.ListingUpdate{Title: "failover", Link: "peerscope://" + id + "?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + me.String(),
					Started: time.Now(), Version: 1}
				inFlight := false // a failed try may have been written
				for try := 0; try < 2*len(urls); try++ {
					r := (w + i + try) % len(urls)
					_, err := clients[r].Announce(context.Background(), id, u)
					if err == nil {
						mu.Lock()
						versions[id] = u.Version
						if !inFlight {
							mustSee = append(mustSee, id)
						}
						mu.Unlock()
						acked.Add(1)
						break
					}
					var ue *url.Error
					mu.Lock()
					if errors.As(err, &ue) {
						connErrs[r]++
						// Refused: nothing was sent. Anything else (a reset,
						// an EOF) may have hit the replica as it died.
						inFlight = inFlight || !errors.Is(err, syscall.ECONNREFUSED)
					} else {
						apiErrs = append(apiErrs, fmt.Sprintf("replica %d: %v", r, err))
					}
					mu.Unlock()
					// The first try may have been written before the kill:
					// the retry is a newer version of the same broadcast.
					u.Version++
				}
			}
		})
	}
	waitAcked := func(n int64) {
		deadline := time.Now().Add(60 * time.Second)
		for acked.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d announcements acknowledged within a minute", acked.Load())
			}
			time.Sleep(10 * time.Millisecond) // polling a counter the workers raise
		}
	}
	waitAcked(100)
	if err := reps[killed].cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-reps[killed].done
	killedAt := acked.Load()
	waitAcked(killedAt + 150)
	close(stop)
	workersWG.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d announcements acknowledged (%d before the kill), %d with no try in flight at the kill; failed connections %v",
		acked.Load(), killedAt, len(mustSee), connErrs)
	if len(apiErrs) > 0 {
		t.Errorf("%d errors beyond failed connections, first: %s", len(apiErrs), apiErrs[0])
	}
	for r, n := range connErrs {
		if r != killed {
			t.Errorf("%d failed connections to replica %d, which was not killed", n, r)
		}
	}

	// No acknowledged write lost: each is in the directory, at least at
	// its acknowledged version.
	c := &api.Client{Base: urls[0]}
	lost := 0
	for id, v := range versions {
		l, err := c.Broadcast(context.Background(), id)
		if err != nil || l.Version < v {
			lost++
			if lost <= 3 {
				t.Errorf("acknowledged %s v%d: %v %v", id, v, l, err)
			}
		}
	}

	// Every subscriber has every go-live acknowledged with no try in flight.
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range subs {
		for {
			miss := s.missing(mustSee)
			if len(miss) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("subscriber %d (reconnected %d times) misses %d of %d go-lives, e.g. %s", i, s.reconnects, len(miss), len(mustSee), miss[0])
				break
			}
			time.Sleep(20 * time.Millisecond) // polling what the subscriber's reader records
		}
	}
	if subs[killed].reconnects == 0 {
		t.Errorf("the killed replica's subscriber never reconnected")
	}
	cancel()
	subsWG.Wait()
}

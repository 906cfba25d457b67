package nat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// labPublic is the range the lab plays the internet on; every process is
// told to take it for public (cmd/peerscope/lab.go).
const labPublic = "198.18.0.0/15"

// lab is a set of network namespaces made by one test run. Every name
// carries the run's tag, so parallel runs do not collide; Close deletes
// them all.
type lab struct {
	t     *testing.T
	tag   string
	mu    sync.Mutex
	names []string
	procs []*proc
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("*** SKIPPED: the NAT test needs root to make network namespaces (CI runs it as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("*** SKIPPED: the NAT test needs %q (apt-get install iproute2 nftables)", tool)
		}
	}
	removeStale(t)
	l := &lab{t: t, tag: fmt.Sprintf("%s%d", labPrefix, os.Getpid())}
	t.Cleanup(l.close)
	return l
}

// labPrefix starts the name of every namespace a lab makes, followed by
// the test process's PID.
const labPrefix = "pslab"

var reLabNS = regexp.MustCompile(`^` + labPrefix + `(\d+)-\S+`)

// removeStale deletes the namespaces of labs whose test process is gone
// (killed before its cleanup ran, e.g. by go test's timeout).
func removeStale(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		m := reLabNS.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // its test still runs
		}
		name := strings.Fields(line)[0]
		if err := exec.Command("ip", "netns", "del", name).Run(); err == nil {
			t.Logf("removed %s, left by an earlier run", name)
		}
	}
}

// run runs a command (ip, nft, sh) and fails the test if it fails.
func (l *lab) run(name string, args ...string) {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// ns makes a namespace with its loopback up and returns its name.
func (l *lab) ns(short string) string {
	l.t.Helper()
	name := l.tag + "-" + short
	l.run("ip", "netns", "add", name)
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
	l.run("ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func (l *lab) close() {
	for _, p := range l.procs {
		p.stop()
	}
	for _, n := range l.names {
		if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v\n%s", n, err, out)
		}
	}
}

// internet makes the public namespace: a bridge with addr (the
// bootstrap's) that routers and public hosts plug into.
func (l *lab) internet(addr string) string {
	pub := l.ns("pub")
	l.run("ip", "-n", pub, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", pub, "addr", "add", addr+"/24", "dev", "br0")
	l.run("ip", "-n", pub, "link", "set", "br0", "up")
	return pub
}

// plug connects namespace ns to the public bridge through a veth named
// ifname (inside ns) with the given public address.
func (l *lab) plug(pub, ns, ifname, addr string, port int) {
	l.t.Helper()
	bridgePort := fmt.Sprintf("p%d", port)
	l.run("ip", "-n", pub, "link", "add", bridgePort, "type", "veth", "peer", "name", ifname, "netns", ns)
	l.run("ip", "-n", pub, "link", "set", bridgePort, "master", "br0", "up")
	l.run("ip", "-n", ns, "addr", "add", addr+"/24", "dev", ifname)
	l.run("ip", "-n", ns, "link", "set", ifname, "up")
}

// NAT kinds.
const (
	// natEIM is plain masquerade: Linux keeps the source port when it can,
	// so a host keeps one public address and port whoever it talks to
	// (endpoint-independent mapping), as most home routers do.
	natEIM = "masquerade"
	// natSymmetric gives every new connection a random public port
	// (endpoint-dependent mapping), as many carrier-grade and mobile NATs.
	natSymmetric = "masquerade fully-random"
)

// home makes a home network behind a NAT router: a router namespace on the
// public bridge at wan, a host namespace at 10.<i>.0.2 behind it, and
// returns the host namespace.
func (l *lab) home(pub string, i int, wan, kind string, blockUDP bool) string {
	l.t.Helper()
	r := l.ns(fmt.Sprintf("r%d", i))
	h := l.ns(fmt.Sprintf("h%d", i))
	l.plug(pub, r, "wan", wan, i)
	lanNet := fmt.Sprintf("10.%d.0", i)
	l.run("ip", "-n", r, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", h)
	l.run("ip", "-n", r, "addr", "add", lanNet+".1/24", "dev", "lan")
	l.run("ip", "-n", r, "link", "set", "lan", "up")
	l.run("ip", "-n", h, "addr", "add", lanNet+".2/24", "dev", "eth0")
	l.run("ip", "-n", h, "link", "set", "eth0", "up")
	l.run("ip", "-n", h, "route", "add", "default", "via", lanNet+".1")
	l.run("ip", "netns", "exec", r, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	// NAT, and the stateful firewall every home router has: what comes
	// in on the WAN side is dropped unless it belongs to a flow from
	// inside. Dropped before conntrack confirms it, an early packet of a
	// hole punch leaves no state that would make the NAT pick another
	// port for the flow from inside (a router that answered it instead
	// would turn every simultaneous open into a port clash).
	udpRule := ""
	if blockUDP {
		// Networks that let no UDP out (some offices, some hotels): QUIC
		// fails, TCP is all there is.
		udpRule = `oifname "wan" meta l4proto udp drop`
	}
	rules := fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" %s
	}
}
table inet fw {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state new drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "wan" ct state new drop
		%s
	}
}
`, kind, udpRule)
	cmd := exec.Command("ip", "netns", "exec", r, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft in %s: %v\n%s\n%s", r, err, rules, out)
	}
	return h
}

// proc is a peerscope process in a namespace, with what it printed.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// start runs bin with args in namespace ns.
func (l *lab) start(name, ns, bin string, args ...string) *proc {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Env = append(os.Environ(), "PEERSCOPE_LAB_PUBLIC="+labPublic)
	// Should the test process die without its cleanup, so do its nodes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text())
			p.out.WriteByte('\n')
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// await waits until p has printed a match of re and returns its first
// submatch (or the whole match).
func (l *lab) await(p *proc, re *regexp.Regexp, within time.Duration, what string) string {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-p.done:
			l.t.Fatalf("%s exited waiting for %s:\n%s", p.name, what, p.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: no %s within %s:\n%s", p.name, what, within, p.output())
		}
	}
}

var (
	reBootAddr = regexp.MustCompile(`(/ip4/198\.18\.0\.1/tcp/4001/p2p/\S+)`)
	reBootPin  = regexp.MustCompile(`Fingerprint: ([0-9a-f]{32})`)
	reLink     = regexp.MustCompile(`(peerscope://\S+)`)
	reRelay    = regexp.MustCompile(`relay: (\d+) reservations · (\d+) circuits open \((\d+) opened\) · ([\d.]+) MB relayed`)
	// A viewer's status line: "3s  depth 1 · 40 chunks · latency 210ms · parent direct · relaying to 0 of 0".
	reStatus = regexp.MustCompile(`(?m)^\s*(\S+)  depth (\d+) · (\d+) chunks · latency (\S+)(?: · parent (direct|relayed))?`)
)

// viewerState is what a viewer's status line says.
type viewerState struct {
	at            time.Duration // since the viewer joined
	depth, chunks int
	latency       string // capture → receipt of the newest chunk
	path          string
}

// statuses returns every status line a viewer printed, oldest first.
func statuses(p *proc) []viewerState {
	var out []viewerState
	for _, m := range reStatus.FindAllStringSubmatch(p.output(), -1) {
		at, _ := time.ParseDuration(m[1])
		d, _ := strconv.Atoi(m[2])
		c, _ := strconv.Atoi(m[3])
		out = append(out, viewerState{at: at, depth: d, chunks: c, latency: m[4], path: m[5]})
	}
	return out
}

func lastStatus(p *proc) (viewerState, bool) {
	all := statuses(p)
	if len(all) == 0 {
		return viewerState{}, false
	}
	return all[len(all)-1], true
}

// firstDirect returns when a viewer's parent link was first direct.
func firstDirect(p *proc) (time.Duration, bool) {
	for _, st := range statuses(p) {
		if st.path == "direct" {
			return st.at, true
		}
	}
	return 0, false
}

// TestNATMatrix builds the lab, runs a bootstrap on the public network,
// two broadcasters behind different NATs and viewers behind others, and
// checks that every viewer gets the video, directly or through the relay.
// It logs the matrix: which pairs connected directly (hole punching, or a
// public peer dialled) and which relay. Two hosts behind endpoint-
// independent NATs must connect directly: that is what hole punching is
// for.
func TestNATMatrix(t *testing.T) {
	l := newLab(t)
	start := time.Now()
	bin := filepath.Join(t.TempDir(), "peerscope")
	build := exec.Command("go", "build", "-o", bin, "github.com/peerscope/peerscope/cmd/peerscope")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built peerscope in %s", time.Since(start).Round(time.Second))

	pub := l.internet("198.18.0.1")
	homes := map[string]string{ // home network → its namespace
		"A (EIM)":         l.home(pub, 1, "198.18.0.11", natEIM, false),
		"B (EIM)":         l.home(pub, 2, "198.18.0.12", natEIM, false),
		"C (symmetric)":   l.home(pub, 3, "198.18.0.13", natSymmetric, false),
		"D (symmetric)":   l.home(pub, 4, "198.18.0.14", natSymmetric, false),
		"E (EIM, no UDP)": l.home(pub, 5, "198.18.0.15", natEIM, true),
		"F (EIM, no UDP)": l.home(pub, 6, "198.18.0.16", natEIM, true),
	}
	open := l.ns("open") // a host on the public network, no NAT
	l.plug(pub, open, "eth0", "198.18.0.50", 50)
	homes["public"] = open

	// The lab's nodes are not signed in: the relay is open to them. Viewers
	// reach the API over plain http on the lab's network, so they pin the
	// bootstrap's fingerprint, as the bootstrap prints it.
	boot := l.start("bootstrap", pub, bin, "bootstrap", "--listen", "/ip4/198.18.0.1/tcp/4001,/ip4/198.18.0.1/udp/4001/quic-v1",
		"--http", "198.18.0.1:8080", "--data", t.TempDir(), "--status-every", "1s", "--open-relay")
	bootAddr := l.await(boot, reBootAddr, 30*time.Second, "bootstrap address")
	pin := l.await(boot, reBootPin, 30*time.Second, "bootstrap fingerprint")
	bootQUIC := strings.Replace(bootAddr, "/tcp/4001/", "/udp/4001/quic-v1/", 1)
	peerFlag := bootAddr + "," + bootQUIC

	// Broadcasters are given the bootstrap's multiaddrs; viewers only its
	// HTTP URL, and ask it for them (/api/v1/info).
	nodeArgs := func(cmd string) []string {
		bootFlag := []string{"--bootstrap-peer", peerFlag}
		if cmd == "watch" {
			bootFlag = []string{"--bootstrap", "http://198.18.0.1:8080#pin=" + pin}
		}
		return append([]string{cmd, "--status-every", "1s", "--data", "", "--http", "127.0.0.1:0"}, bootFlag...)
	}
	// Two broadcasters whose viewers all attach to them (--upload 0), one
	// pair per combination; and a third, behind a symmetric NAT, with one
	// slot, so that its second viewer must attach to the first, a relaying
	// viewer behind another NAT: the tree two hops deep across three NATs,
	// the second hop reached at the address the first viewer advertised
	// in the tree.
	plan := []struct {
		from   string
		upload string // the broadcaster's
		tos    []string
	}{
		{"A (EIM)", "1G", []string{"B (EIM)", "C (symmetric)", "public"}},
		{"D (symmetric)", "1G", []string{"B (EIM)", "C (symmetric)", "public"}},
		// 1 slot: the slots follow the stream's bitrate (the sample's
		// 0.53-0.60 Mb/s, with 1.5x headroom), so 4M gave 4 once it was
		// measured, and the second viewer attached to the broadcaster.
		{"C (symmetric)", "1.2M", nil},
		// Both without UDP: they reach the bootstrap over TCP, and punch
		// over TCP (simultaneous open).
		{"F (EIM, no UDP)", "1G", []string{"E (EIM, no UDP)"}},
	}
	links := map[string]string{}
	var bcs []*proc
	for _, b := range plan {
		args := append(nodeArgs("broadcast"), "-v", "--from", "sample", "--loop", "--https", "off", "--upload", b.upload, "--title", "NAT lab "+b.from)
		bcs = append(bcs, l.start("broadcaster in "+b.from, homes[b.from], bin, args...))
	}
	for _, p := range bcs {
		from := strings.TrimPrefix(p.name, "broadcaster in ")
		links[from] = l.await(p, reLink, 60*time.Second, "link")
		t.Logf("broadcaster in %s has its link %s after the start: %s", from, time.Since(start).Round(time.Second), links[from])
		for _, line := range strings.Split(p.output(), "\n") {
			if strings.Contains(line, "reachability") {
				t.Logf("  %s", line)
			}
		}
	}

	// watcher is a viewer and what is expected of it.
	type watcher struct {
		from, to string // the parent's network → the viewer's
		depth    int
		p        *proc
	}
	var watchers []*watcher
	watch := func(from, to, link string, depth int, upload string, extra ...string) *watcher {
		args := append(append(nodeArgs("watch"), "--upload", upload), append(extra, link)...)
		w := &watcher{from: from, to: to, depth: depth,
			p: l.start(fmt.Sprintf("viewer in %s (%s, depth %d)", to, from, depth), homes[to], bin, args...)}
		watchers = append(watchers, w)
		return w
	}
	for _, b := range plan {
		for _, to := range b.tos {
			watch(b.from, to, links[b.from], 1, "0")
		}
	}
	// The relaying viewer is told it is behind NAT (--reachability
	// private): it takes a relay address at once instead of waiting 17 s
	// for AutoNAT (which the broadcasters go through).
	relaying := watch("C (symmetric)", "B (EIM)", links["C (symmetric)"], 1, "100M", "--reachability", "private")
	var second *watcher // joins once relaying is in the tree

	// Every viewer must get video, at its depth. A pair still relayed is
	// given punchTime after its video started, for hole punching to finish
	// (it starts once the relayed connection is up, and libp2p retries it).
	const punchTime = 12 * time.Second
	deadline := time.Now().Add(100 * time.Second)
	settled := func(w *watcher) (viewerState, bool) {
		st, ok := lastStatus(w.p)
		return st, ok && st.chunks >= 40 && st.path != "" && st.depth == w.depth
	}
	since := map[*watcher]time.Time{}
	for {
		if second == nil {
			if st, ok := lastStatus(relaying.p); ok && st.depth == 1 {
				second = watch("B (EIM), relaying", "A (EIM)", links["C (symmetric)"], 2, "0")
			}
		}
		all := second != nil
		for _, w := range watchers {
			st, ok := settled(w)
			if ok && since[w].IsZero() {
				since[w] = time.Now()
			}
			if !ok || (st.path == "relayed" && time.Since(since[w]) < punchTime) {
				all = false
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("settled %s after the start", time.Since(start).Round(time.Second))
	var failed []string
	if second == nil {
		failed = append(failed, relaying.p.name+" never joined")
	}
	t.Log("NAT matrix (parent's network → viewer's network: how the viewer reaches its parent):")
	for _, w := range watchers {
		st, ok := settled(w)
		path := st.path
		if !ok {
			path = "FAILED"
			failed = append(failed, w.p.name)
		}
		how := ""
		if at, ok := firstDirect(w.p); ok {
			how = fmt.Sprintf(", direct %s after joining", at)
		}
		t.Logf("  %-26s → %-16s %-8s (%d chunks, depth %d, latency %s%s)", w.from, w.to, path, st.chunks, st.depth, st.latency, how)
		// Hole punching between endpoint-independent NATs, and a direct
		// dial to a public viewer, must not fall back to the relay.
		mustBeDirect := (strings.Contains(w.from, "EIM") && strings.Contains(w.to, "EIM")) || w.to == "public"
		if ok && mustBeDirect && st.path != "direct" {
			failed = append(failed, w.p.name+" (must be direct, got "+st.path+")")
		}
	}
	// The relayed pairs' video went through the bootstrap's relay.
	if all := reRelay.FindAllStringSubmatch(boot.output(), -1); len(all) == 0 {
		failed = append(failed, "the bootstrap printed no relay figures")
	} else {
		m := all[len(all)-1]
		t.Logf("bootstrap: %s reservations, %s circuits open (%s opened), %s MB relayed", m[1], m[2], m[3], m[4])
		if mb, _ := strconv.ParseFloat(m[4], 64); mb < 1 {
			failed = append(failed, "the relay carried less than 1 MB with viewers relayed")
		}
	}
	// Video keeps flowing: every viewer's count grows by 10 more chunks.
	counts := map[*watcher]int{}
	for _, w := range watchers {
		st, _ := lastStatus(w.p)
		counts[w] = st.chunks
	}
	grown := time.Now().Add(30 * time.Second)
	for _, w := range watchers {
		for {
			if st, _ := lastStatus(w.p); st.chunks >= counts[w]+10 {
				break
			}
			if time.Now().After(grown) {
				failed = append(failed, w.p.name+" stopped receiving")
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(failed) > 0 {
		for _, p := range bcs {
			t.Logf("--- %s:\n%s", p.name, p.output())
		}
		for _, w := range watchers {
			t.Logf("--- %s:\n%s", w.p.name, w.p.output())
		}
		t.Fatalf("failed: %s\n--- bootstrap:\n%s", strings.Join(failed, "; "), boot.output())
	}
}

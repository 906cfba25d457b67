package mesh

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scripts in testdata/scenarios, in the manner of
// etcd raft's interaction tests: each is a sequence of inputs to a network
// of machines (network_test.go) and the outputs they gave. Run with
// -rewrite to write the outputs the code gives now, then read the diff.
//
// Commands (durations as Go durations):
//
//	add <id> slots=<n> [improve=<d>] [welcome=<k>] [browser]
//	                                   start a node (the first is the broadcaster, "root");
//	                                   welcome: Config.Welcome; browser: its first attach asks
//	                                   for a welcome, as a page's does;
//	                                   or one per input line, "<id> slots=<n> [improve=<d>]"
//	candidates <id> <peer>...          AddCandidates
//	slots <id> <n>                     SetSlots: the node's slots follow a new bitrate
//	run <d> [until=exact|<from>><to>:<type>]
//	                                   deliver and tick in 10 ms steps; stop early once the
//	                                   broadcaster's count is exact, or once such a message is sent
//	stream <d>                         the broadcaster publishes a chunk every 200 ms while running
//	tap <d>                            every live node counts a heart every 50 ms while running
//	set-web mod=<m>                    node i (in the order added) serves i%m web viewers
//	latency <a>-<b>=<d>... [default=<d>]  one-way latency of a pair (both ways)
//	cut|uncut <from> <to>              lose (or stop losing) what one peer sends another
//	forge <from> <to>                  chunks from one peer to another arrive with a forged payload
//	beat                               every node up hears the live edge (LiveEdge), as from the chat beat
//	withhold <id>                      the node sends everything but chunks
//	pad <id>                           the node's chunk frames carry 64 KiB of an unknown field
//	sybil <id>                         the node withholds and lies: the most capacity and subtree
//	                                   in attaches and statuses, depth 0 and a future time in pongs
//	drop <from> <to>                   lose what one peer sent another that is still in flight
//	kill <id> [reset]                  take a node off the network; with reset the others get PeerDown
//	leave <id>                         Leave, then take it off the network
//	deliver from=<a> to=<b> type=<t> [capacity= free= subtree= depth= count= seq= time= flags= lost=
//	        path=(…) counters=(name=v,…)]
//	                                   Step a message into a node; print what it did
//	check [summary]                    the tree invariants (fatal if broken), then the tree (or its size)
//	tree                               the tree as the nodes see it
//	status <id>...                     a node's place: state, parent, depth, subtree, counters
//	events <id>... [type=<t>,…]        the events of each node since the last time they were shown
//	sent <id> [type=<t>]               how many messages of each type a node made since last asked
//	got <id>... [from=first]           the sequence numbers delivered: complete or what is missing
//	stats <id>                         the machine's Stats
//	counters <id>                      the counters' totals at a node, and the hearts tapped
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		nw := newNetwork(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			nw.t = t
			var out strings.Builder
			nw.command(d, &out)
			return out.String()
		})
	})
}

func (nw *network) command(d *datadriven.TestData, out *strings.Builder) {
	switch d.Cmd {
	case "add":
		nw.cmdAdd(d)
	case "candidates":
		id := nw.node(d, 0)
		var peers []PeerInfo
		for _, a := range d.CmdArgs[1:] {
			peers = append(peers, PeerInfo{ID: PeerID(a.Key)})
		}
		nw.nodes[id].AddCandidates(nw.now, peers...)
		nw.drain(id)
	case "slots":
		id := nw.node(d, 0)
		if len(d.CmdArgs) < 2 {
			d.Fatalf(nw.t, "slots: want <id> <n>")
		}
		n, err := strconv.Atoi(d.CmdArgs[1].Key)
		if err != nil {
			d.Fatalf(nw.t, "slots: %v", err)
		}
		if err := nw.nodes[id].SetSlots(nw.now, n); err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
		}
		nw.slots[id] = n
		nw.drain(id)
	case "run":
		nw.cmdRun(d, out)
	case "stream":
		if d.HasArg("keyframes") {
			d.ScanArgs(nw.t, "keyframes", &nw.keyEvery)
		}
		nw.stream(nw.duration(d, 0))
	case "tap":
		fmt.Fprintf(out, "tapped %d\n", nw.tap(nw.duration(d, 0)))
	case "set-web":
		var mod int
		d.ScanArgs(nw.t, "mod", &mod)
		nw.setWeb(mod)
	case "latency":
		nw.cmdLatency(d)
	case "cut", "uncut", "forge":
		m := map[string]map[[2]PeerID]bool{"cut": nw.cut, "uncut": nw.cut, "forge": nw.forge}[d.Cmd]
		m[[2]PeerID{nw.node(d, 0), nw.node(d, 1)}] = d.Cmd != "uncut"
	case "beat":
		// The broadcaster's chat beat: every node up hears the live edge
		// (the next chunk to be cut), as the simulator's beat gives it.
		for id, n := range nw.nodes {
			if !nw.down[id] {
				n.LiveEdge(nw.now, nw.seq)
			}
		}
	case "withhold":
		nw.withhold[nw.node(d, 0)] = true
	case "sybil":
		nw.sybil[nw.node(d, 0)] = true
	case "pad":
		nw.pad[nw.node(d, 0)] = true
	case "drop":
		fmt.Fprintf(out, "dropped %d\n", nw.drop(nw.node(d, 0), nw.node(d, 1)))
	case "kill":
		nw.kill(nw.node(d, 0), d.HasArg("reset"))
	case "leave":
		id := nw.node(d, 0)
		nw.nodes[id].Leave(nw.now)
		nw.drain(id)
		nw.down[id] = true
	case "deliver":
		nw.cmdDeliver(d, out)
	case "check":
		nw.checkTree()
		if d.HasArg("summary") {
			nw.printSummary(out)
		} else {
			nw.printTree(out)
		}
	case "tree":
		nw.printTree(out)
	case "status":
		for i := range d.CmdArgs {
			nw.printStatus(out, nw.node(d, i))
		}
	case "room":
		// Where the node would send a joiner now (Status.Room).
		for i := range d.CmdArgs {
			id := nw.node(d, i)
			var room []PeerID
			for _, p := range nw.status(id).Room {
				room = append(room, p.ID)
			}
			fmt.Fprintf(out, "%s: room %v\n", id, room)
		}
	case "events":
		nw.cmdEvents(d, out)
	case "sent":
		nw.cmdSent(d, out)
	case "got":
		for i := range d.CmdArgs {
			if d.CmdArgs[i].Key != "from" {
				nw.printGot(out, nw.node(d, i), d.HasArg("from"))
			}
		}
	case "stats":
		id := nw.node(d, 0)
		fmt.Fprintf(out, "%s: %+v\n", id, nw.nodes[id].Stats())
	case "counters":
		nw.printCounters(out, nw.node(d, 0))
	default:
		d.Fatalf(nw.t, "unknown command %q", d.Cmd)
	}
}

// node returns the i-th argument as a node that exists.
func (nw *network) node(d *datadriven.TestData, i int) PeerID {
	if i >= len(d.CmdArgs) {
		d.Fatalf(nw.t, "%s: want a node as argument %d", d.Cmd, i+1)
	}
	id := PeerID(d.CmdArgs[i].Key)
	if nw.nodes[id] == nil {
		d.Fatalf(nw.t, "%s: no node %q", d.Cmd, id)
	}
	return id
}

func (nw *network) duration(d *datadriven.TestData, i int) time.Duration {
	if i >= len(d.CmdArgs) {
		d.Fatalf(nw.t, "%s: want a duration", d.Cmd)
	}
	return parseDuration(nw.t, d, d.CmdArgs[i].Key)
}

func parseDuration(t *testing.T, d *datadriven.TestData, s string) time.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "%s: %v", d.Cmd, err)
	}
	return v
}

// cmdAdd starts the node its arguments name, or one per line of its input
// ("<id> slots=<n> [improve=<d>]").
func (nw *network) cmdAdd(d *datadriven.TestData) {
	if len(d.CmdArgs) == 0 {
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			id, args, err := datadriven.ParseLine(line)
			if err != nil {
				d.Fatalf(nw.t, "add: %v", err)
			}
			one := *d
			one.CmdArgs = append([]datadriven.CmdArg{{Key: id}}, args...)
			nw.cmdAdd(&one)
		}
		return
	}
	id := PeerID(d.CmdArgs[0].Key)
	if len(nw.order) == 0 && id != root {
		d.Fatalf(nw.t, "the first node is the broadcaster, %q", root)
	}
	var slots int
	d.ScanArgs(nw.t, "slots", &slots)
	var mods []func(*Config)
	if d.HasArg("improve") {
		var s string
		d.ScanArgs(nw.t, "improve", &s)
		every := parseDuration(nw.t, d, s)
		mods = append(mods, func(c *Config) { c.ImproveInterval = every })
	}
	if d.HasArg("welcome") {
		var k int
		d.ScanArgs(nw.t, "welcome", &k)
		mods = append(mods, func(c *Config) { c.Welcome = k })
	}
	nw.browser[id] = d.HasArg("browser")
	nw.add(id, slots, mods...)
}

func (nw *network) cmdRun(d *datadriven.TestData, out *strings.Builder) {
	limit := nw.duration(d, 0)
	if !d.HasArg("until") {
		nw.run(limit, nil)
		return
	}
	var cond string
	d.ScanArgs(nw.t, "until", &cond)
	var until func() bool
	if cond == "exact" {
		until = nw.countExact
	} else {
		ends, typ, ok := strings.Cut(cond, ":")
		from, to, ok2 := strings.Cut(ends, ">")
		if !ok || !ok2 {
			d.Fatalf(nw.t, "run: until=%q: want exact or <from>><to>:<type>", cond)
		}
		nw.matched = ""
		nw.watch = func(id PeerID, e Envelope) bool {
			return id == PeerID(from) && e.To.ID == PeerID(to) && e.Msg.Type.String() == typ
		}
		defer func() { nw.watch = nil }()
		until = func() bool { return nw.matched != "" }
	}
	took := nw.run(limit, until)
	switch {
	case !until():
		fmt.Fprintf(out, "not %s after %v\n", cond, limit)
	case nw.matched != "":
		fmt.Fprintf(out, "after %v: %s\n", took, nw.matched)
	default:
		fmt.Fprintf(out, "%s after %v\n", cond, took)
	}
}

func (nw *network) cmdLatency(d *datadriven.TestData) {
	for _, a := range d.CmdArgs {
		if len(a.Vals) != 1 {
			d.Fatalf(nw.t, "latency: %s: want <a>-<b>=<duration>", a.Key)
		}
		v := parseDuration(nw.t, d, a.Vals[0])
		if a.Key == "default" {
			nw.defLat = v
			continue
		}
		x, y, ok := strings.Cut(a.Key, "-")
		if !ok {
			d.Fatalf(nw.t, "latency: %s: want <a>-<b>", a.Key)
		}
		p, q := PeerID(x), PeerID(y)
		if p > q {
			p, q = q, p
		}
		nw.lat[[2]PeerID{p, q}] = v
	}
}

// cmdDeliver steps a message made by the script into a node and prints what
// the node did: its messages, its events, and Step's error. What it did then
// goes on the network like anything else.
func (nw *network) cmdDeliver(d *datadriven.TestData, out *strings.Builder) {
	var from, to, typ string
	d.ScanArgs(nw.t, "from", &from)
	d.ScanArgs(nw.t, "to", &to)
	d.ScanArgs(nw.t, "type", &typ)
	m := &Message{}
	for t := MsgChunk; t < maxMsgType; t++ {
		if t.String() == typ {
			m.Type = t
		}
	}
	if m.Type == 0 {
		d.Fatalf(nw.t, "deliver: type %q", typ)
	}
	for _, f := range []struct {
		key string
		v   *uint32
	}{{"capacity", &m.Capacity}, {"free", &m.Free}, {"subtree", &m.Subtree}, {"depth", &m.Depth}, {"count", &m.Count}} {
		if d.HasArg(f.key) {
			var v uint64
			d.ScanArgs(nw.t, f.key, &v)
			*f.v = uint32(v)
		}
	}
	if d.HasArg("seq") {
		d.ScanArgs(nw.t, "seq", &m.Seq)
	}
	if d.HasArg("time") {
		d.ScanArgs(nw.t, "time", &m.Time)
	}
	if d.HasArg("flags") {
		var v uint64
		d.ScanArgs(nw.t, "flags", &v)
		m.Flags = uint32(v)
	}
	if d.HasArg("lost") {
		var s string
		d.ScanArgs(nw.t, "lost", &s)
		m.Lost = PeerID(s)
	}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "path":
			for _, p := range a.Vals {
				m.Path = append(m.Path, PeerInfo{ID: PeerID(p)})
			}
		case "counters":
			for _, c := range a.Vals {
				name, v, _ := strings.Cut(c, "=")
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					d.Fatalf(nw.t, "deliver: counter %q: %v", c, err)
				}
				m.Counters = append(m.Counters, CounterValue{Name: name, Value: n})
			}
		}
	}
	id := PeerID(to)
	if nw.nodes[id] == nil {
		d.Fatalf(nw.t, "deliver: no node %q", to)
	}
	err := nw.nodes[id].Step(nw.now, PeerID(from), m)
	rd := nw.drain(id)
	for _, e := range rd.Messages {
		fmt.Fprintf(out, "%s → %s %s\n", id, e.To.ID, describeMsg(e.Msg))
	}
	printEvents(out, id, rd.Events, nil)
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", err)
	}
}

func (nw *network) cmdEvents(d *datadriven.TestData, out *strings.Builder) {
	var types []string
	for _, a := range d.CmdArgs {
		if a.Key == "type" {
			for _, v := range a.Vals {
				types = append(types, strings.Split(v, ",")...)
			}
		}
	}
	for i, a := range d.CmdArgs {
		if a.Key != "type" {
			nw.printEvents(out, nw.node(d, i), types)
		}
	}
}

// printEvents prints a node's events since they were last shown, those of
// the given types only if any are given.
func (nw *network) printEvents(out *strings.Builder, id PeerID, types []string) {
	evs := nw.events[id][nw.seen[id]:]
	nw.seen[id] = len(nw.events[id])
	printEvents(out, id, evs, types)
}

func printEvents(out *strings.Builder, id PeerID, evs []Event, types []string) {
	for _, e := range evs {
		if len(types) > 0 && !slices.Contains(types, e.Type.String()) {
			continue
		}
		fmt.Fprintf(out, "%s: %s", id, e.Type)
		if e.Peer != "" {
			fmt.Fprintf(out, " %s", e.Peer)
		}
		if e.Type == EvAttached {
			fmt.Fprintf(out, " depth=%d", e.Depth)
		}
		if e.Loss != LossNone {
			fmt.Fprintf(out, " (%s)", e.Loss)
		}
		if e.Rejoin {
			fmt.Fprint(out, " rejoin")
		}
		if e.Moved {
			fmt.Fprint(out, " moved")
		}
		fmt.Fprintln(out)
	}
}

func (nw *network) cmdSent(d *datadriven.TestData, out *strings.Builder) {
	id := nw.node(d, 0)
	var only string
	if d.HasArg("type") {
		d.ScanArgs(nw.t, "type", &only)
	}
	counts := map[MsgType]int{}
	for _, t := range nw.sent[id] {
		counts[t]++
	}
	nw.sent[id] = nil
	fmt.Fprintf(out, "%s:", id)
	for t := MsgChunk; t < maxMsgType; t++ {
		if counts[t] > 0 && (only == "" || t.String() == only) || only == t.String() && counts[t] == 0 {
			fmt.Fprintf(out, " %s %d", t, counts[t])
		}
	}
	fmt.Fprintln(out)
}

// printTree prints the tree from the broadcaster down as the nodes report
// it, each node with its slots and subtree; then the nodes outside it.
func (nw *network) printTree(out *strings.Builder) {
	placed := map[PeerID]bool{}
	var walk func(id PeerID, indent string)
	walk = func(id PeerID, indent string) {
		placed[id] = true
		s := nw.status(id)
		fmt.Fprintf(out, "%s%s: %d slots, subtree %d\n", indent, id, nw.slots[id], s.Subtree)
		for _, c := range s.Children {
			if !nw.down[c] && !placed[c] && nw.status(c).Parent == id {
				walk(c, indent+"  ")
			}
		}
	}
	walk(root, "")
	for _, id := range nw.order {
		switch {
		case nw.down[id]:
			fmt.Fprintf(out, "%s: down\n", id)
		case !placed[id]:
			s := nw.status(id)
			fmt.Fprintf(out, "%s: %s, parent %q\n", id, s.State, s.Parent)
		}
	}
}

// printSummary prints how many nodes are in the tree and how deep it is.
func (nw *network) printSummary(out *strings.Builder) {
	nodes, deepest := 0, 0
	for _, id := range nw.order {
		if !nw.down[id] {
			nodes++
			deepest = max(deepest, nw.status(id).Depth)
		}
	}
	fmt.Fprintf(out, "%d nodes in the tree, %d down, depth up to %d\n", nodes, len(nw.order)-nodes, deepest)
}

func (nw *network) printStatus(out *strings.Builder, id PeerID) {
	s := nw.status(id)
	fmt.Fprintf(out, "%s: %s, parent %q, depth %d, subtree %d, children %v\n", id, s.State, s.Parent, s.Depth, s.Subtree, s.Children)
}

// printGot prints the sequence numbers a node delivered: whether it got
// every one from the first published (or, with fromFirst, from its own
// first) to the last, each once.
func (nw *network) printGot(out *strings.Builder, id PeerID, fromFirst bool) {
	got := slices.Clone(nw.got[id])
	if len(got) == 0 {
		fmt.Fprintf(out, "%s: nothing\n", id)
		return
	}
	first := uint64(0)
	if fromFirst {
		first = got[0]
	}
	slices.Sort(got)
	dups := len(got) - len(slices.Compact(slices.Clone(got)))
	got = slices.Compact(got)
	var missing []string
	for s := first; s < nw.seq; s++ {
		if _, ok := slices.BinarySearch(got, s); !ok {
			missing = append(missing, strconv.FormatUint(s, 10))
		}
	}
	fmt.Fprintf(out, "%s: %d-%d", id, first, nw.seq-1)
	if len(missing) == 0 {
		fmt.Fprint(out, " complete")
	} else {
		fmt.Fprintf(out, " missing %s", strings.Join(missing, ","))
	}
	if dups > 0 {
		fmt.Fprintf(out, ", %d duplicates", dups)
	}
	fmt.Fprintf(out, "; last %d\n", nw.got[id][len(nw.got[id])-1])
}

// printCounters prints the counters' totals at a node; at the broadcaster,
// the hearts tapped and the live count beside them.
func (nw *network) printCounters(out *strings.Builder, id PeerID) {
	s := nw.status(id)
	fmt.Fprintf(out, "%s: hearts %d, web %d, subtree %d\n", id, s.Counters["hearts"], s.Counters["web"], s.Subtree)
	if id != root {
		return
	}
	if nw.tapped > 0 {
		fmt.Fprintf(out, "tapped %d, of which %d not counted\n", nw.tapped, int64(nw.tapped)-int64(s.Counters["hearts"]))
	}
	if nodes, web := nw.live(); nw.countExact() {
		fmt.Fprintf(out, "count exact: %d nodes, %d web\n", nodes, web)
	} else {
		fmt.Fprintf(out, "count off: %d nodes and %d web are live\n", nodes, web)
	}
}

// describeMsg prints a message's type and the fields it uses.
func describeMsg(m *Message) string {
	var b strings.Builder
	b.WriteString(m.Type.String())
	ids := func(ps []PeerInfo) string {
		var s []string
		for _, p := range ps {
			s = append(s, string(p.ID))
		}
		return strings.Join(s, ",")
	}
	switch m.Type {
	case MsgChunk:
		fmt.Fprintf(&b, " seq=%d", m.Chunk.Seq)
	case MsgReject:
		fmt.Fprintf(&b, " %s", m.Reason)
	case MsgAccept, MsgPath:
		fmt.Fprintf(&b, " path=%s depth=%d", ids(m.Path), m.Depth)
	case MsgRedirect, MsgLeave:
		for _, c := range m.Candidates {
			fmt.Fprintf(&b, " %s@%d", c.ID, c.Depth)
		}
	case MsgAttach:
		fmt.Fprintf(&b, " capacity=%d free=%d flags=%d", m.Capacity, m.Free, m.Flags)
	}
	return b.String()
}

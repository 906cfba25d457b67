package sim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// metrics accumulates what the report needs while the run goes.
type metrics struct {
	latency    *hist // ms, per (viewer, chunk cut after the viewer arrived)
	latencyAll *hist // ms, per (viewer, chunk), join backfill included
	stretch    *hist // per (viewer, chunk)
	join       report.Sample
	// startup: arrival → the first chunk held by its deadline (the
	// picture starts; stalls count from there).
	startup report.Sample
	rejoin  report.Sample
	// rejoinWithheld: attached under a sybil → attached under an honest
	// parent, per viewer (withholding starts when it attaches).
	rejoinWithheld report.Sample
	// stalls: each honest viewer that has left: its longest stall (ms).
	stalls []float64
	// worst: the honest viewer with the longest stall of all (left or
	// present), for tracing it (Config.Trace).
	worst worstStall
	// worstAfter: the same from the kill on (Config.KillAt), and how many
	// honest viewers stalled at all then.
	worstAfter       worstStall
	stalledAfterLeft int    // honest viewers that left having stalled since the kill
	stalledAfter     int    // the same with those present, as of the last tallies
	longAfterLeft    int    // honest viewers that left having stalled over 2 s since the kill
	longAfter        int    // the same with those present, as of the last tallies
	killSeq          uint64 // the first chunk due after the kill (0: none yet)
	killedTop        uint64 // the broadcaster's children the kill took…
	killedTopBelow   uint64 // …and the viewers below them then

	streamBytes uint64 // chunk message bytes the broadcaster cut
	chunkBytes  uint64 // chunk message bytes sent, all links
	ctrlBytes   uint64 // other message bytes sent, all links
	chunkMsgs   uint64
	ctrlMsgs    uint64
	neededBytes uint64 // first copies delivered to viewers
	dupBytes    uint64 // copies received again (Stats.Duplicates)

	maxBacklog  [2]int64 // longest wait in an uplink queue: the broadcaster's, any viewer's
	backlogNode int32    // the viewer whose uplink had maxBacklog[1], and when
	backlogAt   int64
	msgEvents   uint64
	droppedGone uint64 // to or from a node that had left
	lostMsgs    uint64 // delayed by a lost packet
	badDest     uint64
	stepErrs    uint64

	joins, leaves, graceful, resets uint64
	rejoinsOther                    uint64 // rejoins after a loss not caused by a departure
	overSlots                       uint64 // a node had more children than slots
	forgedEvents, forgedDelivered   uint64
	loopRefused                     uint64
	lost                            [16]uint64 // EvParentLost by LossReason

	// Tree samples.
	samples    uint64
	maxDepth   int
	maxDepthAt int64 // when maxDepth was first seen
	// maxDepthSettled is the largest depth sampled once the flash crowd of
	// the arrival window has had Warmup to settle.
	maxDepthSettled int
	loops           uint64 // parent chains that came back on themselves
	lastDepth       float64
	lastDisconn     float64
	maxDisconn      float64 // largest fraction of present viewers cut off from the root
	sumDisconn      float64

	settled tally      // viewers that have left
	stats   mesh.Stats // of viewers that have left

	// Adversaries (adversary.go).
	adversaries tally // the padders' own playback, apart from the honest viewers'
	sybils      uint64
	killed      uint64
	padSent     uint64 // pad bytes the padders sent
	padRelayed  uint64 // bytes honest nodes sent beyond the canonical chunk: relayed pad
}

func (m *metrics) init() {
	// Small enough to stay in cache: they are hit once per delivery.
	m.latency = newHist(0.1, 100_000) // 0.1 ms up to 10 s
	m.latencyAll = newHist(0.1, 100_000)
	m.stretch = newHist(0.01, 10_000) // 0.01 up to 100
}

// tally is what viewers' playback records add up to.
type tally struct {
	due, onTime, received uint64
	neverPlayed           uint64
	neverStarted          uint64 // got chunks, but none by its deadline
	maxUpload             float64
	stall                 uint64 // longest stall, in chunks (settle)
	stallFrom             uint64 // its first sequence number
	stallAfter            uint64 // the same from the kill on
	stallAfterFrom        uint64
}

// worstStall is the longest stall seen: how long (chunks), whose, from
// which sequence number.
type worstStall struct {
	chunks uint64
	node   int32
	from   uint64
}

func (w *worstStall) see(i int32, p tally) {
	if p.stall > w.chunks {
		*w = worstStall{chunks: p.stall, node: i, from: p.stallFrom}
	}
}

func (t *tally) add(p tally) {
	t.due += p.due
	t.onTime += p.onTime
	t.received += p.received
	t.neverPlayed += p.neverPlayed
	t.neverStarted += p.neverStarted
	t.maxUpload = max(t.maxUpload, p.maxUpload)
}

// add counts a viewer that has left (or, at the report, is present): the
// honest viewers' and the padders' playback apart, and the honest ones'
// longest stall.
func (s *Sim) addTally(i int32, p tally) {
	if s.nodes[i].padder {
		s.m.adversaries.add(p)
		return
	}
	s.m.settled.add(p)
	s.m.stalls = append(s.m.stalls, s.stallMs(p))
	s.m.worst.see(i, p)
	after, long := s.seeAfter(i, p)
	s.m.stalledAfterLeft += b2i(after)
	s.m.longAfterLeft += b2i(long)
}

// longStallMs is issue 11's bound on an honest viewer's stall after a
// mass failure: the report counts the viewers over it
// (stalled_over_2s_after_kill), all those the bound is about, where the
// longest stall names one.
const longStallMs = 2000

// seeAfter takes a viewer's longest stall since the kill: it reports
// whether it stalled at all then, and whether for over longStallMs.
func (s *Sim) seeAfter(i int32, p tally) (stalled, long bool) {
	s.m.worstAfter.see(i, tally{stall: p.stallAfter, stallFrom: p.stallAfterFrom})
	return p.stallAfter > 0, s.stallMs(tally{stall: p.stallAfter}) > longStallMs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Sim) stallMs(p tally) float64 { return float64(p.stall) * float64(s.cfg.ChunkInterval) / 1e6 }

func (m *metrics) addStats(st *mesh.Stats) { m.stats.Add(st) }

// settle works out viewer i's playback up to time t: which media chunks
// were due (deadline between its first chunk and t) and which it held, on
// time or at all.
func (s *Sim) settle(i int32, t int64) tally {
	nd := &s.nodes[i]
	var p tally
	if t-nd.arrived >= min(int64(s.cfg.MinUploadPresence), s.end/2) {
		ci := int64(s.cfg.ChunkInterval)
		stream := float64(t-nd.arrived) / float64(ci) * float64(s.m.streamBytes) / float64(max(s.published, 1))
		p.maxUpload = float64(nd.chunkSent) / stream
	}
	if nd.play.first < 0 {
		p.neverPlayed = 1
		return p
	}
	hi, ok := s.dueUpTo(t)
	if !ok {
		return p
	}
	p.due, p.received, p.onTime = nd.play.settle(hi)
	if nd.play.start == 0 {
		p.neverStarted = 1
	}
	play := nd.play // settle may be asked again later (Report): advance a copy
	play.advance(hi)
	p.stall, p.stallFrom = play.maxRun, play.maxStart
	p.stallAfter, p.stallAfterFrom = play.maxAfter, play.maxAfterStart
	return p
}

// dueUpTo returns the last media sequence number whose deadline is at or
// before t, if any: media chunk q ≥ 1 is cut at (q-1)·ci, its deadline
// (q-1)·ci + po.
func (s *Sim) dueUpTo(t int64) (uint64, bool) {
	ci, po := int64(s.cfg.ChunkInterval), int64(s.cfg.Playout)
	if t < po || s.published == 0 {
		return 0, false
	}
	return uint64(min((t-po)/ci+1, s.published)), true
}

const inProgress = -2

// sample measures the tree as the events tell it: each present viewer's
// depth following parents, and who is cut off from the root.
func (s *Sim) sample() {
	s.m.samples++
	if hi, ok := s.dueUpTo(s.now); ok {
		for _, i := range s.present {
			s.nodes[i].play.advance(hi) // stalls, before the window moves on
		}
	}
	s.newWalk()
	maxD, sum, n, cut := 0, 0, 0, 0
	for _, i := range s.present {
		d := s.depthOf(i)
		if d < 0 {
			cut++
			continue
		}
		maxD = max(maxD, int(d))
		sum += int(d)
		n++
	}
	if maxD > s.m.maxDepth {
		s.m.maxDepth, s.m.maxDepthAt = maxD, s.now
	}
	if s.now >= int64(s.cfg.ArrivalWindow+s.cfg.Warmup) {
		s.m.maxDepthSettled = max(s.m.maxDepthSettled, maxD)
	}
	if n > 0 {
		s.m.lastDepth = float64(sum) / float64(n)
	}
	if len(s.present) > 0 {
		f := float64(cut) / float64(len(s.present))
		s.m.lastDisconn = f
		s.m.maxDisconn = max(s.m.maxDisconn, f)
		s.m.sumDisconn += f
	}
}

// newWalk starts a walk of the tree as it is now: depthOf's memo of the
// last one no longer holds.
func (s *Sim) newWalk() {
	for len(s.depth) < len(s.nodes) {
		s.depth = append(s.depth, 0)
		s.stamp = append(s.stamp, 0)
	}
	s.gen++
}

// depthOf returns node i's hops from the root following parents, or -1
// when the chain ends at a node that is not attached or has left.
func (s *Sim) depthOf(i int32) int32 {
	stack := s.stack[:0]
	j := i
	var d int32
	for {
		if j == root {
			d = 0
			break
		}
		if s.stamp[j] == s.gen {
			d = s.depth[j]
			break
		}
		nd := &s.nodes[j]
		if nd.gone || nd.parent < 0 {
			d = -1
			break
		}
		s.stamp[j], s.depth[j] = s.gen, inProgress
		stack = append(stack, j)
		j = nd.parent
	}
	if d == inProgress {
		s.m.loops++
		d = -1
	}
	for k := len(stack) - 1; k >= 0; k-- {
		if d >= 0 {
			d++
		}
		s.depth[stack[k]] = d
	}
	s.stack = stack
	if len(stack) == 0 {
		return d // i itself is the root, or not attached
	}
	return s.depth[i]
}

// Report summarises the run so far (the whole run after Run). It may be
// called more than once; viewers still present are settled at the current
// time without being changed.
func (s *Sim) Report() *report.Report {
	p, adv, stalls, stalled, st := s.tallies()
	s.sample()

	m := &s.m
	r := &report.Report{
		Mode:              "sim",
		Nodes:             s.cfg.Nodes,
		DurationS:         time.Duration(s.now).Seconds(),
		BitrateBps:        s.cfg.Bitrate,
		ChunkMs:           float64(s.cfg.ChunkInterval) / 1e6,
		PlayoutMs:         float64(s.cfg.Playout) / 1e6,
		Churn:             s.cfg.Churn,
		Seed:              s.cfg.Seed,
		SourceUploadRatio: report.Ratio(float64(s.nodes[root].chunkSent), float64(m.streamBytes)),
		MaxUploadRatio:    round4(p.maxUpload),
		DeliveredRatio:    report.Ratio(float64(p.received), float64(p.due)),
		Continuity:        report.Ratio(float64(p.onTime), float64(p.due)),
		LatencyMs:         m.latency.quantiles(),
		MaxDepth:          m.maxDepth,
		DuplicateRatio:    report.Ratio(float64(m.dupBytes), float64(m.neededBytes)),
		OverheadRatio:     report.Ratio(float64(m.ctrlBytes), float64(m.chunkBytes)),
		JoinMs:            m.join.Quantiles(),
		RejoinMs:          m.rejoin.QuantilesOrNil(),
		WithheldRejoinMs:  m.rejoinWithheld.QuantilesOrNil(),
		Stretch:           &report.Ratios{P50: m.stretch.q(0.5), P99: m.stretch.q(0.99)},
	}
	r.Extra = map[string]float64{
		"joins":                 float64(m.joins),
		"leaves":                float64(m.leaves),
		"leaves_graceful":       float64(m.graceful),
		"leaves_reset":          float64(m.resets),
		"viewers_end":           float64(len(s.present)),
		"rejoins":               float64(st.Rejoins),
		"rejoins_measured":      float64(m.rejoin.Len()),
		"rejoins_other":         float64(m.rejoinsOther),
		"moves":                 float64(st.Moves),
		"pulls":                 float64(st.Pulls),
		"forged":                float64(st.Forged),
		"forged_delivered":      float64(m.forgedDelivered),
		"duplicates":            float64(st.Duplicates),
		"too_old":               float64(st.TooOld),
		"loop_refused":          float64(m.loopRefused),
		"loops_seen":            float64(m.loops),
		"over_slots":            float64(m.overSlots),
		"lost_down":             float64(m.lost[mesh.LossDown]),
		"lost_silent":           float64(m.lost[mesh.LossSilent]),
		"lost_left":             float64(m.lost[mesh.LossLeft]),
		"lost_forged":           float64(m.lost[mesh.LossForged]),
		"lost_loop":             float64(m.lost[mesh.LossLoop]),
		"lost_withheld":         float64(m.lost[mesh.LossWithheld]),
		"lost_padded":           float64(m.lost[mesh.LossPadded]),
		"lost_slow":             float64(m.lost[mesh.LossSlow]),
		"padded":                float64(st.Padded),
		"withheld":              float64(st.Withheld),
		"never_played":          float64(p.neverPlayed),
		"never_started":         float64(p.neverStarted),
		"startup_p50_ms":        m.startup.Q(0.5),
		"startup_p99_ms":        m.startup.Q(0.99),
		"startup_max_ms":        m.startup.Q(1),
		"chunks_due":            float64(p.due),
		"chunks_late":           float64(p.received - min(p.onTime, p.received)),
		"chunks_missed":         float64(p.due - min(p.received, p.due)),
		"depth_mean_end":        round4(m.lastDepth),
		"max_depth_at_s":        round4(float64(m.maxDepthAt) / 1e9),
		"max_depth_settled":     float64(m.maxDepthSettled),
		"disconnected_end":      round4(m.lastDisconn),
		"disconnected_max":      round4(m.maxDisconn),
		"disconnected_mean":     round4(m.sumDisconn / float64(max(m.samples, 1))),
		"messages":              float64(m.chunkMsgs + m.ctrlMsgs),
		"chunk_messages":        float64(m.chunkMsgs),
		"messages_delayed":      float64(m.lostMsgs),
		"messages_dropped":      float64(m.droppedGone),
		"signature_checks":      float64(s.verify.checks),
		"events":                float64(s.events),
		"published":             float64(s.published),
		"source_slots":          float64(s.cfg.SourceSlots),
		"loss":                  s.cfg.Loss,
		"latency_p999_ms":       m.latency.q(0.999),
		"latency_all_p99_ms":    m.latencyAll.q(0.99),
		"deliveries":            float64(m.latencyAll.n),
		"step_errors":           float64(m.stepErrs),
		"bad_destinations":      float64(m.badDest),
		"source_upload_mbps":    round4(float64(s.nodes[root].upload) / 1e6),
		"source_backlog_max_ms": round4(float64(m.maxBacklog[0]) / 1e6),
		"viewer_backlog_max_ms": round4(float64(m.maxBacklog[1]) / 1e6),
		"viewer_backlog_node":   float64(m.backlogNode),
		"viewer_backlog_at_s":   round4(float64(m.backlogAt) / 1e9),
	}
	s.hops.extra(r.Extra)
	if s.cfg.Forward == ForwardCut {
		r.Extra["fragment_bytes"] = float64(s.cfg.Fragment)
	}
	s.adversaryExtra(r, p, adv, &stalls, stalled)
	return r
}

// tallies settles every viewer still present (without changing it) and
// adds them to those that left: the honest viewers', the padders' own,
// the honest viewers' longest stalls, and every machine's Stats.
func (s *Sim) tallies() (honest, adv tally, stalls report.Sample, stalled int, st mesh.Stats) {
	honest, adv, st = s.m.settled, s.m.adversaries, s.m.stats
	s.m.stalledAfter = s.m.stalledAfterLeft
	s.m.longAfter = s.m.longAfterLeft
	for _, v := range s.m.stalls {
		stalls.Add(v)
		if v > 0 {
			stalled++
		}
	}
	for _, i := range s.present {
		q := s.settle(i, s.now)
		if s.nodes[i].padder {
			adv.add(q)
		} else {
			honest.add(q)
			stalls.Add(s.stallMs(q))
			s.m.worst.see(i, q)
			after, long := s.seeAfter(i, q)
			s.m.stalledAfter += b2i(after)
			s.m.longAfter += b2i(long)
			if q.stall > 0 {
				stalled++
			}
		}
		x := s.nodes[i].n.Stats()
		st.Add(&x)
	}
	rs := s.nodes[root].n.Stats()
	st.Add(&rs)
	return honest, adv, stalls, stalled, st
}

// PeakRSS returns the process's peak resident set (VmHWM), or 0 where
// /proc is not there.
func PeakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

package bench

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

// --- what every mode reports about a viewer ---

// delivered records that v holds chunk c now.
func (r *run) delivered(v *viewer, c *chunk.Chunk) {
	if r.priv != nil && !r.priv.open(v, c) {
		return
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dead || c.Seq >= uint64(len(v.recvAt)) || v.recvAt[c.Seq] != 0 {
		return
	}
	v.recvAt[c.Seq] = now.UnixNano()
	if c.IsInit() {
		return
	}
	if v.first.IsZero() {
		v.first, v.firstSeq = now, c.Seq
	}
}

// received counts a chunk copy (a fragment of tree k's when striped)
// arriving at v (duplicates).
func (r *run) received(v *viewer, seq uint64, k int, bytes int) {
	v.recvBytes.Add(uint64(bytes))
	i := seq*uint64(len(v.parent)) + uint64(k)
	v.mu.Lock()
	dup := i < uint64(len(v.seen)) && v.seen[i]
	if i < uint64(len(v.seen)) {
		v.seen[i] = true
	}
	v.mu.Unlock()
	if dup {
		v.dupBytes.Add(uint64(bytes))
	}
}

// attached records an attachment of v under parent at depth in tree k.
func (r *run) attached(v *viewer, k int, parent mesh.PeerID, depth int) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.parent[k], v.attached[k], v.depth = parent, true, depth
	gone := v.goneAt[k]
	v.goneAt[k] = time.Time{}
	if !gone.IsZero() && !v.dead {
		r.rejoin.AddDuration(now.Sub(gone))
	}
	if !v.dead && v.role == honest {
		r.noteParent(v, parent, now)
	}
	r.maxDepth = max(r.maxDepth, depth)
}

func (r *run) detached(v *viewer, k int) {
	v.mu.Lock()
	v.attached[k] = false
	v.mu.Unlock()
}

// report settles every viewer and fills the report.
func (r *run) report(end time.Time) *report.Report {
	cfg := r.cfg
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &report.Report{
		Mode: cfg.Mode, Nodes: cfg.Nodes, DurationS: cfg.Duration.Seconds(), BitrateBps: cfg.Bitrate,
		ChunkMs: ms(cfg.ChunkInterval), PlayoutMs: ms(cfg.Playout), Churn: cfg.Churn, Seed: cfg.Seed,
		Extra: map[string]float64{},
	}
	var lat, live, join report.Sample
	var due, held, onTime, neverPlayed uint64
	var chunkB, ctrlB, dupB, neededB uint64
	maxUp := 0.0
	po := int64(cfg.Playout)
	perChunk := float64(r.streamB) / float64(max(r.published, 1))
	minPresence := min(cfg.Duration/2, 30*time.Second)
	for _, v := range r.viewers {
		v.mu.Lock()
		stop := end
		if v.dead {
			stop = v.end
		}
		chunkB += v.chunkSent.Load()
		ctrlB += v.ctrlSent.Load()
		dupB += v.dupBytes.Load()
		if v.role != honest {
			v.mu.Unlock() // an adversary is no viewer: its bytes count, its playback does not
			continue
		}
		if present := stop.Sub(v.start); present >= minPresence {
			stream := float64(present) / float64(cfg.ChunkInterval) * perChunk
			maxUp = max(maxUp, float64(v.chunkSent.Load())/stream)
		}
		if v.first.IsZero() {
			neverPlayed++
			v.mu.Unlock()
			continue
		}
		join.AddDuration(v.first.Sub(v.start))
		for seq := 1; seq < r.published; seq++ {
			at := v.recvAt[seq]
			if at != 0 {
				l := time.Duration(at - r.wallclock[seq])
				lat.AddDuration(l)
				if r.wallclock[seq] >= v.start.UnixNano() {
					live.AddDuration(l)
					if cfg.SlowLog != nil && l > cfg.SlowThreshold {
						fmt.Fprintf(cfg.SlowLog, "slow viewer %d slots %d seq %d t=%.1fs lat %.1fms joined %.1fs\n", v.idx, v.slots, seq, float64(r.wallclock[seq]-r.t0.UnixNano())/1e9, ms(l), v.first.Sub(r.t0).Seconds())
					}
				}
				neededB += uint64(perChunk)
			}
			deadline := r.wallclock[seq] + po
			if uint64(seq) < v.firstSeq || deadline < v.first.UnixNano() || deadline > stop.UnixNano() {
				continue
			}
			due++
			if at != 0 {
				held++
				if at <= deadline {
					onTime++
				}
			}
		}
		v.mu.Unlock()
	}
	rep.SourceUploadRatio = report.Ratio(float64(r.root.chunkSent.Load()), float64(r.streamB))
	rep.MaxUploadRatio = round4(maxUp)
	rep.DeliveredRatio = report.Ratio(float64(held), float64(due))
	rep.Continuity = report.Ratio(float64(onTime), float64(due))
	rep.LatencyMs = live.Quantiles()
	rep.MaxDepth = r.maxDepth
	rep.DuplicateRatio = report.Ratio(float64(dupB), float64(neededB))
	chunkB += r.root.chunkSent.Load()
	ctrlB += r.root.ctrlSent.Load()
	rep.OverheadRatio = report.Ratio(float64(ctrlB), float64(chunkB))
	rep.JoinMs = join.Quantiles()
	rep.RejoinMs = r.rejoin.QuantilesOrNil()
	rep.RSSBytes = rss()
	aq := lat.Quantiles()
	rep.Extra["latency_all_p50"], rep.Extra["latency_all_p99"], rep.Extra["latency_all_max"] = aq.P50, aq.P99, aq.Max
	rep.Extra["latency_samples"] = float64(lat.Len())
	rep.Extra["latency_backfill_samples"] = float64(lat.Len() - live.Len())
	rep.Extra["viewers"] = float64(len(r.viewers))
	rep.Extra["kills"] = float64(r.kills)
	rep.Extra["chunks_published"] = float64(r.published)
	rep.Extra["chunks_due"] = float64(due)
	rep.Extra["chunks_missed"] = float64(due - held)
	rep.Extra["chunks_late"] = float64(held - onTime)
	rep.Extra["never_played"] = float64(neverPlayed)
	rep.Extra["rejoins_measured"] = float64(r.rejoin.Len())
	r.adversaryReport(rep, end)
	return rep
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

// cpuTime returns the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss returns the process's resident set size.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

package report

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Quantiles of a distribution in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95,omitempty"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max,omitempty"`
}

// Ratios of a dimensionless distribution (stretch).
type Ratios struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// Report is the summary of one run. Field names are the contract of the
// --json output; add fields, do not rename them.
type Report struct {
	Mode       string  `json:"mode"`
	Nodes      int     `json:"nodes"`
	DurationS  float64 `json:"duration_s"`
	BitrateBps int64   `json:"bitrate_bps"`
	ChunkMs    float64 `json:"chunk_ms"`
	PlayoutMs  float64 `json:"playout_ms"`
	Churn      float64 `json:"churn"`
	Seed       uint64  `json:"seed"`

	// SourceUploadRatio is chunk bytes the broadcaster sent ÷ chunk bytes of the stream.
	SourceUploadRatio float64 `json:"source_upload_ratio"`
	// MaxUploadRatio is the same for the busiest viewer.
	MaxUploadRatio float64 `json:"max_upload_ratio"`
	// DeliveredRatio is chunks received ÷ chunks due, over all viewers
	// (the honest ones: adversaries are not viewers).
	DeliveredRatio float64 `json:"delivered_ratio"`
	// Continuity is chunks held before their playout deadline ÷ chunks
	// due, over the honest viewers.
	Continuity float64 `json:"continuity"`
	// LatencyMs is capture → receipt, over all (viewer, chunk) pairs.
	LatencyMs Quantiles `json:"latency_ms"`
	MaxDepth  int       `json:"max_depth"`
	// DuplicateRatio is chunk bytes received beyond the first copy ÷ chunk bytes needed.
	DuplicateRatio float64 `json:"duplicate_ratio"`
	// OverheadRatio is control bytes ÷ chunk bytes, over all links.
	OverheadRatio float64 `json:"overhead_ratio"`
	// JoinMs is start of a join → first chunk.
	JoinMs Quantiles `json:"join_ms"`
	// RejoinMs is parent gone → attached again; null without churn.
	RejoinMs *Quantiles `json:"rejoin_ms"`
	// WithheldRejoinMs is attached under a withholding peer (a sybil: the
	// withholding starts there) → attached under an honest parent; absent
	// without sybils.
	WithheldRejoinMs *Quantiles `json:"withheld_rejoin_ms,omitempty"`
	// Stretch is tree latency ÷ direct latency from the source (simulator only).
	Stretch *Ratios `json:"stretch,omitempty"`

	// ChatLatencyMs is a comment's send → acceptance at every other node
	// (bench --chat only).
	ChatLatencyMs *Quantiles `json:"chat_latency_ms,omitempty"`
	// HeartsBroadcasterInBps is the broadcaster's inbound chat bytes per
	// second while every node taps hearts 5 times a second (bench --chat).
	HeartsBroadcasterInBps float64 `json:"hearts_broadcaster_in_bps,omitempty"`
	// ViewerCountSettleMs is how long after 10 % of the nodes left abruptly
	// the broadcaster's live count was exact (bench --chat; absent if it
	// never was within 15 s).
	ViewerCountSettleMs float64 `json:"viewer_count_settle_ms,omitempty"`

	WallS    float64 `json:"wall_s"`
	RSSBytes uint64  `json:"rss_bytes"`

	// Extra holds mode-specific figures (counts of moves, rejoins, events…).
	Extra map[string]float64 `json:"extra,omitempty"`
}

// JSON returns the report as one line of JSON.
func (r *Report) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Sample collects values and answers quantiles (nearest rank).
type Sample struct {
	v      []float64
	sorted bool
}

// Add records one value.
func (s *Sample) Add(x float64) { s.v = append(s.v, x); s.sorted = false }

// AddDuration records a duration in milliseconds.
func (s *Sample) AddDuration(d time.Duration) { s.Add(float64(d) / float64(time.Millisecond)) }

// Len is the number of values.
func (s *Sample) Len() int { return len(s.v) }

// Q returns the q-quantile (0..1), or 0 when empty.
func (s *Sample) Q(q float64) float64 {
	if len(s.v) == 0 {
		return 0
	}
	if !s.sorted {
		slices.Sort(s.v)
		s.sorted = true
	}
	i := int(math.Ceil(q*float64(len(s.v)))) - 1
	i = max(0, min(i, len(s.v)-1))
	return round3(s.v[i])
}

// Quantiles returns p50, p95, p99 and max.
func (s *Sample) Quantiles() Quantiles {
	return Quantiles{P50: s.Q(0.50), P95: s.Q(0.95), P99: s.Q(0.99), Max: s.Q(1)}
}

// QuantilesOrNil is Quantiles, or nil for an empty sample.
func (s *Sample) QuantilesOrNil() *Quantiles {
	if len(s.v) == 0 {
		return nil
	}
	q := s.Quantiles()
	return &q
}

// Ratio returns a/b rounded, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

func round3(x float64) float64 { return math.Round(x*10000) / 10000 }

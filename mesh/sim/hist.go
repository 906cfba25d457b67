package sim

import (
	"math"

	"github.com/peerscope/peerscope/internal/report"
)

// hist is a fixed-resolution histogram with an exact overflow, for the
// distributions with one value per (viewer, chunk) — tens of millions of
// values that a report.Sample would keep one by one. Quantiles use the same
// nearest-rank rule as report.Sample and are exact to one bucket.
type hist struct {
	res    float64 // bucket width
	counts []uint32
	n      uint64
	max    float64
	over   report.Sample // values beyond the buckets, exact
}

func newHist(res float64, buckets int) *hist {
	return &hist{res: res, counts: make([]uint32, buckets)}
}

func (h *hist) add(x float64) {
	h.n++
	if x > h.max {
		h.max = x
	}
	if x < 0 {
		x = 0
	}
	i := int(x/h.res + 1e-9) // values on a bucket edge land in that bucket
	if i >= len(h.counts) {
		h.over.Add(x)
		return
	}
	h.counts[i]++
}

// q returns the q-quantile, nearest rank, as its bucket's lower edge.
func (h *hist) q(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return round4(float64(i) * h.res)
		}
	}
	// In the overflow: its own nearest rank among the overflow values.
	// (r-0.5)/len keeps Q's ceil from rounding up past r.
	k := (float64(rank-seen) - 0.5) / float64(h.over.Len())
	return h.over.Q(k)
}

func (h *hist) quantiles() report.Quantiles {
	return report.Quantiles{P50: h.q(0.5), P95: h.q(0.95), P99: h.q(0.99), Max: round4(h.max)}
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

// Counters: what the tree adds up besides its own shape, named by the
// application and opaque to the tree.

package mesh

import (
	"fmt"
	"math"
	"math/bits"
	"unicode/utf8"
)

// CounterKind says how a counter adds up the tree.
type CounterKind uint8

const (
	// CounterEvents counts things that happen (a viewer's taps, say).
	// Machine.Count adds to it; each status carries what was counted in the
	// sender's subtree since its previous status to that parent — a delta,
	// so that a child that changes parents neither counts anything twice nor
	// takes anything back. A node's total (Status.Counters) is everything
	// counted there and reported to it since New: on the broadcaster, the
	// broadcast's. What a child sent a parent that died, before it noticed,
	// is lost (a status is not acknowledged: counting it again could count
	// it twice).
	CounterEvents CounterKind = iota + 1
	// CounterGauge is a level (viewers served outside the tree, say).
	// Machine.SetGauge sets this node's own; each status carries the sum
	// over the sender's subtree, absolute, as Subtree counts nodes. A node's
	// total is its own level plus its children's last reported sums.
	CounterGauge
)

// Counter describes one counter the tree adds up. Every node of a tree must
// configure the same counters (Config.Counters); a node ignores the values
// of counters it does not know.
type Counter struct {
	// Name names the counter on the wire: short, valid UTF-8, unique.
	Name string
	Kind CounterKind
	// MaxPerNode, if not 0, bounds what a child's status may claim: its
	// value is clamped to MaxPerNode × the child's subtree size, so that a
	// child cannot claim more than its subtree could have counted.
	MaxPerNode uint64
}

// CounterValue is one counter in a status: for events the delta since the
// sender's previous status to the same parent, for a gauge the subtree's
// sum. Zero values are not sent.
type CounterValue struct {
	Name  string
	Value uint64
}

// maxCounterName bounds a counter's name in the config; the decoder takes
// up to maxStringLen bytes (and ignores names it does not know).
const maxCounterName = 64

func validateCounters(cs []Counter) error {
	if len(cs) > maxListLen {
		return fmt.Errorf("%w: more than %d counters", ErrInvalidConfig, maxListLen)
	}
	for i, c := range cs {
		switch {
		case c.Name == "" || len(c.Name) > maxCounterName || !utf8.ValidString(c.Name):
			return fmt.Errorf("%w: counter name %q (1 to %d bytes of UTF-8)", ErrInvalidConfig, c.Name, maxCounterName)
		case c.Kind != CounterEvents && c.Kind != CounterGauge:
			return fmt.Errorf("%w: counter %q has no kind", ErrInvalidConfig, c.Name)
		}
		for _, d := range cs[:i] {
			if d.Name == c.Name {
				return fmt.Errorf("%w: counter %q twice", ErrInvalidConfig, c.Name)
			}
		}
	}
	return nil
}

// counterIndex returns the index of a counter in the config, or -1.
func (n *Machine) counterIndex(name string) int {
	for i := range n.cfg.Counters {
		if n.cfg.Counters[i].Name == name {
			return i
		}
	}
	return -1
}

func (n *Machine) counterOf(name string, kind CounterKind) (int, error) {
	i := n.counterIndex(name)
	if i < 0 || n.cfg.Counters[i].Kind != kind {
		return -1, fmt.Errorf("%w: %q", ErrUnknownCounter, name)
	}
	return i, nil
}

// Count adds v to an events counter (CounterEvents) at this node. It goes up
// the tree with the next status, summed with the subtree's, so that the
// broadcaster learns the audience's total without a message per viewer.
func (n *Machine) Count(name string, v uint64) error {
	i, err := n.counterOf(name, CounterEvents)
	if err != nil {
		return err
	}
	n.count(i, v)
	return nil
}

func (n *Machine) count(i int, v uint64) {
	n.totals[i] = addSat(n.totals[i], v)
	if !n.isRoot && v > 0 {
		n.counts[i] = addSat(n.counts[i], v)
		n.statusDirty = true
	}
}

// SetGauge sets this node's own level of a gauge counter (CounterGauge).
// Like Subtree, the subtree's sum goes up the tree with each status.
func (n *Machine) SetGauge(name string, v uint64) error {
	i, err := n.counterOf(name, CounterGauge)
	if err != nil {
		return err
	}
	if v != n.counts[i] {
		n.counts[i], n.statusDirty = v, true
	}
	return nil
}

// counterTotals returns what Status reports: each counter's total here.
func (n *Machine) counterTotals() map[string]uint64 {
	if len(n.cfg.Counters) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(n.cfg.Counters))
	for i, c := range n.cfg.Counters {
		if c.Kind == CounterEvents {
			out[c.Name] = n.totals[i]
		} else {
			out[c.Name] = n.gaugeBelow(i)
		}
	}
	return out
}

// gaugeBelow sums gauge i over this node and its children's subtrees.
func (n *Machine) gaugeBelow(i int) uint64 {
	v := n.counts[i]
	for _, c := range n.children {
		if !c.away() {
			v = addSat(v, c.gauges[i])
		}
	}
	return v
}

// counterValues returns the values a status carries, or nil when they are
// all zero (then a status is exactly what it was before counters existed).
func (n *Machine) counterValues() []CounterValue {
	var out []CounterValue
	for i, c := range n.cfg.Counters {
		v := n.counts[i]
		if c.Kind == CounterGauge {
			v = n.gaugeBelow(i)
		}
		if v > 0 {
			out = append(out, CounterValue{Name: c.Name, Value: v})
		}
	}
	return out
}

// sentCounters forgets the deltas a status just carried: they are on their
// way up.
func (n *Machine) sentCounters() {
	for i, c := range n.cfg.Counters {
		if c.Kind == CounterEvents {
			n.counts[i] = 0
		}
	}
}

// sameCounters reports whether a status about to go (next) says nothing new
// about the counters since the last one sent: no delta, and the gauges'
// sums as they were.
func (n *Machine) sameCounters(next, sent []CounterValue) bool {
	k := 0
	for _, v := range sent {
		if i := n.counterIndex(v.Name); i < 0 || n.cfg.Counters[i].Kind != CounterGauge {
			continue
		}
		if k >= len(next) || next[k] != v {
			return false
		}
		k++
	}
	return k == len(next) // anything left in next is a delta or a new gauge
}

// takeCounters records what a child's status says of the counters, each
// value clamped by its counter's MaxPerNode, and reports whether it changed
// anything this node reports.
func (n *Machine) takeCounters(c *child, vals []CounterValue) (changed bool) {
	if len(n.cfg.Counters) == 0 {
		return false
	}
	got := n.scratch
	clear(got)
	for _, v := range vals {
		if i := n.counterIndex(v.Name); i >= 0 {
			got[i] = addSat(got[i], v.Value)
		}
	}
	for i, spec := range n.cfg.Counters {
		v := got[i]
		if spec.MaxPerNode > 0 {
			v = min(v, mulSat(uint64(c.subtree), spec.MaxPerNode))
		}
		switch spec.Kind {
		case CounterEvents:
			changed = changed || got[i] > 0
			n.count(i, v)
		case CounterGauge:
			changed = changed || c.gauges[i] != v
			c.gauges[i] = v
		}
	}
	return changed
}

func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

package sim

import "github.com/peerscope/peerscope/mesh"

// kind is what an event does.
type kind uint8

const (
	evMessage     kind = iota + 1 // msg arrives at node to from node from
	evDown                        // node to learns that its connection to from was reset
	evTick                        // tick every node of phase to
	evPublish                     // the broadcaster cuts the next chunk
	evArrive                      // the next viewer of the initial arrivals
	evChurnArrive                 // a viewer arrives (churn)
	evChurnLeave                  // a viewer departs (churn)
	evSample                      // sample the tree
	evUplink                      // the next round of node to's fair uplink
	evSybil                       // the next sybil arrives
	evKill                        // KillFraction of the viewers die at once
	evBeat                        // every viewer hears the broadcaster's beat
)

// event is one entry of the heap. Events are values, so pushing one does
// not allocate; equal times pop in insertion order (seq). They hold no
// pointers: a message in flight is a slot of the message table (msgTable),
// so that the heap, a million events in a large run, is never scanned by
// the garbage collector and moving its entries costs no write barriers
// (with the collector busy, as it is at 100,000 nodes, those barriers
// were half of pop's time).
type event struct {
	at   int64 // virtual ns
	seq  uint64
	sent int64 // evMessage: when its last byte left the sender
	to   int32
	from int32
	msg  int32 // evMessage: the message's slot in the msgTable
	kind kind
	gap  uint32 // evMessage under ForwardCut: µs from its head (at) to its last byte arriving
}

// msgTable holds the messages in flight, by slot; free slots are reused.
type msgTable struct {
	msgs []*mesh.Message
	free []int32
}

// put stores m and returns its slot.
func (t *msgTable) put(m *mesh.Message) int32 {
	if k := len(t.free); k > 0 {
		i := t.free[k-1]
		t.free = t.free[:k-1]
		t.msgs[i] = m
		return i
	}
	t.msgs = append(t.msgs, m)
	return int32(len(t.msgs) - 1)
}

// take returns the message in slot i and frees the slot.
func (t *msgTable) take(i int32) *mesh.Message {
	m := t.msgs[i]
	t.msgs[i] = nil
	t.free = append(t.free, i)
	return m
}

// queue is a 4-ary min-heap of events ordered by (at, seq). Four children
// per node halve the depth of a binary heap, and the sift-down compares
// neighbours that share a cache line.
type queue struct {
	ev  []event
	seq uint64
}

func (e *event) less(o *event) bool {
	return e.at < o.at || e.at == o.at && e.seq < o.seq
}

func (q *queue) Len() int { return len(q.ev) }

// top returns the earliest event without removing it.
func (q *queue) top() *event { return &q.ev[0] }

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.ev = append(q.ev, e)
	h := q.ev
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !h[i].less(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() event {
	h := q.ev
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	q.ev = h
	n := len(h)
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if h[j].less(&h[m]) {
				m = j
			}
		}
		if !h[m].less(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top
}

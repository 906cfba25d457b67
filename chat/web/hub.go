package web

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// clientQueue is how many events may wait for one slow HTTP client before
// its newest are dropped.
const clientQueue = 128

// hub fans events out to the open event streams. Its zero value is ready.
type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
	fresh   atomic.Bool // a client came: say the count again
	dropped atomic.Uint64
	onAdd   func() // after a client came (Server.Wake); never blocks
}

type client struct {
	owner bool
	ch    chan []byte
}

func (h *hub) add(owner bool) *client {
	c, added := h.put(owner)
	if added && h.onAdd != nil {
		h.onAdd()
	}
	return c
}

func (h *hub) put(owner bool) (*client, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &client{owner: owner, ch: make(chan []byte, clientQueue)}
	if h.closed {
		close(c.ch)
		return c, false
	}
	if h.clients == nil {
		h.clients = map[*client]struct{}{}
	}
	h.clients[c] = struct{}{}
	h.fresh.Store(true)
	return c, true
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.ch)
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// send formats one server-sent event and queues it for every client.
func (h *hub) send(name string, v any, ownerOnly bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	msg := []byte("event: " + name + "\ndata: " + string(data) + "\n\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if ownerOnly && !c.owner {
			continue
		}
		select {
		case c.ch <- msg:
		default:
			h.dropped.Add(1)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		close(c.ch)
	}
	h.clients = nil
}

package httpserve

import (
	"net/http"
	"net/netip"
	"sync"

	"github.com/peerscope/peerscope/internal/clientip"
)

// PerClient caps what each client holds at once: Acquire takes one of a
// client's max places, the release it returns gives it back. Its zero
// value is not usable; make one with NewPerClient.
type PerClient struct {
	max  int
	mu   sync.Mutex
	held map[netip.Prefix]int
}

// NewPerClient returns a cap of max places per client.
func NewPerClient(max int) *PerClient {
	return &PerClient{max: max, held: map[netip.Prefix]int{}}
}

// Acquire takes a place for r's client and returns its release (safe to
// call more than once), or ok false when the client holds max already.
func (p *PerClient) Acquire(r *http.Request) (release func(), ok bool) {
	c := Client(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[c] >= p.max {
		return nil, false
	}
	p.held[c]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.held[c]--; p.held[c] <= 0 {
				delete(p.held, c)
			}
		})
	}, true
}

// Handler holds a place of r's client while h serves r, and answers 429
// when the client holds max already.
func (p *PerClient) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := p.Acquire(r)
		if !ok {
			http.Error(w, "too many streams open from your address", http.StatusTooManyRequests)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// Held returns how many places r's client holds.
func (p *PerClient) Held(r *http.Request) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[Client(r)]
}

// Client names the client of a request: its IPv4 address, or the /64 of
// its IPv6 address (a host is given a /64, and picks addresses in it) —
// internal/clientip's, which the node's other per-client caps use too.
func Client(r *http.Request) netip.Prefix { return clientip.Prefix(r.RemoteAddr) }

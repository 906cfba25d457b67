package node

import (
	"sync"
	"time"

	"github.com/peerscope/peerscope/internal/clientip"
)

// The browsers a node serves are counted by client (internal/clientip: an
// IPv4 address or an IPv6 /64), never by anything a client sends: a
// client that varies its User-Agent, or opens WHEP sessions, is still one
// client, and a header is never kept.
const (
	// webViewerWindow is how long a client that fetched LL-HLS counts as
	// watching after its last request.
	webViewerWindow = 10 * time.Second
	// browsersPerClient is the most browsers one client counts as: a
	// household behind one address (the WHEP sessions it holds, at most
	// whep's MaxSessionsPerClient, or one for LL-HLS).
	browsersPerClient = 4
	// maxWebClients bounds the LL-HLS clients remembered per broadcast;
	// past it (after dropping those not heard from within the window) a
	// new client is served but not counted.
	maxWebClients = 4096
)

// webClients remembers the LL-HLS clients of a broadcast, by client.
type webClients struct {
	mu   sync.Mutex
	seen map[string]time.Time // client → its last LL-HLS request
}

// touch notes an LL-HLS request from remote (a request's RemoteAddr). It
// reports whether the client is new, or back after the window: whether
// the count may have changed.
func (w *webClients) touch(remote string, now time.Time) bool {
	key := clientip.Key(remote)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]time.Time{}
	}
	last, ok := w.seen[key]
	if !ok && len(w.seen) >= maxWebClients {
		w.prune(now)
		if len(w.seen) >= maxWebClients {
			return false
		}
	}
	w.seen[key] = now
	return !ok || now.Sub(last) > webViewerWindow
}

// expiry returns when the first client remembered stops counting (count
// drops a client past the window), or the zero time when none is.
func (w *webClients) expiry() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, t := range w.seen {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	if first.IsZero() {
		return first
	}
	return first.Add(webViewerWindow + time.Nanosecond)
}

func (w *webClients) prune(now time.Time) {
	for k, t := range w.seen {
		if now.Sub(t) > webViewerWindow {
			delete(w.seen, k)
		}
	}
}

// count returns the browsers served: each client counts as the WHEP
// sessions it holds (whep, per client), or as one if it fetched LL-HLS
// lately, and never as more than browsersPerClient.
func (w *webClients) count(now time.Time, whep map[string]int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(now)
	n := 0
	for client, sessions := range whep {
		if _, hls := w.seen[client]; hls {
			sessions = max(sessions, 1)
		}
		n += min(sessions, browsersPerClient)
	}
	for client := range w.seen {
		if _, counted := whep[client]; !counted {
			n++
		}
	}
	return n
}

package bootstrap

import (
	"sync"
	"time"
)

// listCache keeps the encoded answers of directory listings: at a thousand
// listings a second, most ask what the previous one asked. An entry holds
// until the directory changes in what it lists (a new broadcast, a new
// title, an end, a replay: invalidate) or listCacheAge passes: viewer
// counts, and the live list's own ageing (entries outliving LiveTTL,
// replays expiring), show at most that late. Concurrent misses of one
// query compute it once.
type listCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]*listEntry
}

type listEntry struct {
	gen  uint64
	at   time.Time
	body []byte
	err  error
	done chan struct{} // closed when body is set
}

const (
	listCacheAge     = time.Second
	listCacheEntries = 1024 // distinct queries kept (searches vary)
)

func (c *listCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// get returns the cached answer to key, or computes it with f (once for
// all who ask meanwhile).
func (c *listCache) get(key string, now time.Time, f func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && e.gen == c.gen && now.Sub(e.at) < listCacheAge && !now.Before(e.at) {
		c.mu.Unlock()
		<-e.done
		return e.body, e.err
	}
	if c.entries == nil || len(c.entries) >= listCacheEntries {
		c.entries = make(map[string]*listEntry)
	}
	e = &listEntry{gen: c.gen, at: now, done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()
	e.body, e.err = f()
	close(e.done)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
	return e.body, e.err
}

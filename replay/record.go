package replay

import (
	"sync"
	"time"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
)

// Recorder is the broadcaster's side of a replay: it notes every chunk as
// it is made, and when the broadcast ends, makes the manifest that lists
// them. Safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	entries []Entry
}

// Record notes a chunk the broadcaster made (signed: its encoding is the
// block whose CID the manifest lists).
func (r *Recorder) Record(c *chunk.Chunk) {
	blk := c.Bytes()
	e := Entry{CID: CIDOf(blk), Seq: c.Seq, Wallclock: time.Unix(0, c.Wallclock),
		Duration: time.Duration(c.Duration), Flags: c.Flags, Size: len(blk)}
	if c.IsInit() {
		e.Init = c.Payload
	}
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
}

// Manifest returns the manifest of what was recorded, ended when the last
// chunk's media ends; nil when nothing was. The caller signs it (Sign).
func (r *Recorder) Manifest(broadcast, title string, started time.Time, comments []byte) *Manifest {
	r.mu.Lock()
	entries := r.entries
	r.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	m := &Manifest{Broadcast: broadcast, Title: title, Started: started, Chunks: entries, Comments: comments}
	for _, e := range entries {
		if end := e.Wallclock.Add(e.Duration); end.After(m.Ended) {
			m.Ended = end
		}
	}
	return m
}

// Verify checks a chunk's signature against the key its broadcast ID names
// (what Config.Verify is on a node).
func Verify(c *chunk.Chunk) error {
	_, key, err := link.BroadcasterOf(c.Broadcast)
	if err != nil {
		return err
	}
	return c.Verify(c.Broadcast, key)
}

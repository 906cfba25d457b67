package chat

import (
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/chatpb"
)

// The chat log is what a replay shows: every comment with its place in the
// stream (At, the broadcast's wallclock). The broadcaster's node keeps it
// (Room.Log); the replay manifest carries it encoded with MarshalLog (Log in
// proto/chat.proto), under the broadcaster's signature, so replay viewers
// need not trust whoever serves it.

// MaxLogSize bounds an encoded log.
const MaxLogSize = 64 << 20

// MarshalLog encodes a log for the replay manifest. A comment whose text or
// identity is not UTF-8 (no room accepts one) is left out.
func MarshalLog(log []Comment) []byte {
	pb := &chatpb.Log{Entry: make([]*chatpb.LogEntry, 0, len(log))}
	for i := range log {
		if e := logEntry(&log[i]); e != nil {
			pb.Entry = append(pb.Entry, e)
		}
	}
	b, err := encodeMessage(pb)
	if err != nil {
		return nil // every string was checked above
	}
	return b
}

func logEntry(c *Comment) *chatpb.LogEntry {
	e := &chatpb.LogEntry{Author: []byte(c.ID.Author), Seq: c.ID.Seq, At: pbwire.UnixNano(c.At), Received: pbwire.UnixNano(c.Received),
		Text: c.Text, Broadcaster: c.Author.Broadcaster, Moderator: c.Author.Moderator, Deleted: c.Deleted}
	if id := c.Author.Identity; id != nil {
		e.Provider, e.Account, e.Handle, e.Name, e.Avatar = id.Provider, id.Account, id.Handle, id.Name, id.Avatar
	}
	for _, s := range []string{e.Text, e.Provider, e.Account, e.Handle, e.Name, e.Avatar} {
		if !utf8.ValidString(s) {
			return nil
		}
	}
	return e
}

// ParseLog decodes a log made by MarshalLog.
func ParseLog(b []byte) ([]Comment, error) {
	if len(b) > MaxLogSize {
		return nil, fmt.Errorf("%w: log of %d bytes", ErrTooLarge, len(b))
	}
	var pb chatpb.Log
	if err := decodeMessage(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: log: %w", ErrMalformed, err)
	}
	var log []Comment
	for i, e := range pb.Entry {
		c, err := commentOfEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%w: log: entry %d: %w", ErrMalformed, i, err)
		}
		log = append(log, c)
	}
	return log, nil
}

func commentOfEntry(e *chatpb.LogEntry) (Comment, error) {
	p := peer.ID(e.Author)
	c := Comment{ID: CommentID{Author: p, Seq: e.Seq}, Author: Author{Peer: p, Broadcaster: e.Broadcaster, Moderator: e.Moderator},
		Text: e.Text, At: pbwire.FromUnixNano(e.At), Received: pbwire.FromUnixNano(e.Received), Deleted: e.Deleted}
	if c.ID.Author == "" || c.ID.Seq == 0 || c.Text == "" || c.At.IsZero() {
		return Comment{}, fmt.Errorf("entry without author, seq, text or time")
	}
	id := Identity{Provider: e.Provider, Account: e.Account, Handle: e.Handle, Name: e.Name, Avatar: e.Avatar}
	if id != (Identity{}) {
		if id.Provider == "" || id.Account == "" {
			return Comment{}, fmt.Errorf("identity without provider or account")
		}
		c.Author.Identity = &id
	}
	return c, nil
}

// Due returns the comments of log (sorted by At, as Room.Log returns it)
// that a replay reaching stream time to shows after it showed from: those
// with from < At ≤ to, deleted ones left out.
func Due(log []Comment, from, to time.Time) []Comment {
	i := sort.Search(len(log), func(i int) bool { return log[i].At.After(from) })
	var out []Comment
	for ; i < len(log) && !log[i].At.After(to); i++ {
		if !log[i].Deleted {
			out = append(out, log[i])
		}
	}
	return out
}

package chat

import (
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
)

// The chat log is what a replay shows: every comment with its place in the
// stream (At, the broadcast's wallclock). The broadcaster's node keeps it
// (Room.Log); the replay manifest carries it encoded with MarshalLog,
// under the broadcaster's signature, so replay viewers need not trust
// whoever serves it. Its wire form:
//
//	message Log   { repeated Entry entry = 1; }
//	message Entry {
//	  bytes author = 1;  uint64 seq = 2;  int64 at = 3;  int64 received = 4;
//	  string text = 5;   string provider = 6;  string account = 7;
//	  string handle = 8; string name = 9;  string avatar = 10;
//	  bool broadcaster = 11;  bool moderator = 12;  bool deleted = 13;
//	}

// MaxLogSize bounds an encoded log.
const MaxLogSize = 64 << 20

// MarshalLog encodes a log for the replay manifest.
func MarshalLog(log []Comment) []byte {
	var b []byte
	for i := range log {
		b = appendMessage(b, 1, marshalEntry(&log[i]))
	}
	return b
}

func marshalEntry(c *Comment) []byte {
	var b []byte
	b = pbwire.AppendBytes(b, 1, []byte(c.ID.Author))
	b = pbwire.AppendVarint(b, 2, c.ID.Seq)
	b = pbwire.AppendVarint(b, 3, uint64(pbwire.UnixNano(c.At)))
	b = pbwire.AppendVarint(b, 4, uint64(pbwire.UnixNano(c.Received)))
	b = pbwire.AppendString(b, 5, c.Text)
	if id := c.Author.Identity; id != nil {
		b = pbwire.AppendString(b, 6, id.Provider)
		b = pbwire.AppendString(b, 7, id.Account)
		b = pbwire.AppendString(b, 8, id.Handle)
		b = pbwire.AppendString(b, 9, id.Name)
		b = pbwire.AppendString(b, 10, id.Avatar)
	}
	b = pbwire.AppendBool(b, 11, c.Author.Broadcaster)
	b = pbwire.AppendBool(b, 12, c.Author.Moderator)
	b = pbwire.AppendBool(b, 13, c.Deleted)
	return b
}

// ParseLog decodes a log made by MarshalLog.
func ParseLog(b []byte) ([]Comment, error) {
	if len(b) > MaxLogSize {
		return nil, fmt.Errorf("%w: log of %d bytes", ErrTooLarge, len(b))
	}
	var log []Comment
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 1, 1); err != nil {
			return err
		}
		if num != 1 {
			return nil
		}
		var c Comment
		if err := unmarshalEntry(&c, raw); err != nil {
			return fmt.Errorf("entry %d: %w", len(log), err)
		}
		log = append(log, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: log: %w", ErrMalformed, err)
	}
	return log, nil
}

func unmarshalEntry(c *Comment, b []byte) error {
	var id Identity
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 13, 1, 5, 6, 7, 8, 9, 10); err != nil {
			return err
		}
		switch num {
		case 1:
			p, err := decodePeer(raw)
			if err != nil {
				return err
			}
			c.ID.Author = p
			c.Author.Peer = p
		case 2:
			c.ID.Seq = v
		case 3:
			c.At = pbwire.FromUnixNano(int64(v))
		case 4:
			c.Received = pbwire.FromUnixNano(int64(v))
		case 5:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad text")
			}
			c.Text = string(raw)
		case 6, 7, 8, 9, 10:
			if len(raw) > maxAvatarLen || !validText(raw, false) {
				return fmt.Errorf("field %d: bad identity", num)
			}
			*[]*string{&id.Provider, &id.Account, &id.Handle, &id.Name, &id.Avatar}[num-6] = string(raw)
		case 11:
			c.Author.Broadcaster = v != 0
		case 12:
			c.Author.Moderator = v != 0
		case 13:
			c.Deleted = v != 0
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.ID.Author == "" || c.ID.Seq == 0 || c.Text == "" || c.At.IsZero() {
		return fmt.Errorf("entry without author, seq, text or time")
	}
	if id != (Identity{}) {
		if id.Provider == "" || id.Account == "" {
			return fmt.Errorf("identity without provider or account")
		}
		c.Author.Identity = &id
	}
	return nil
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

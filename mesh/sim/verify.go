package sim

import (
	"crypto/ed25519"

	"github.com/peerscope/peerscope/chunk"
)

// verifyCache runs the real ed25519 check once per *Chunk and hands every
// later node the same verdict: tens of thousands of nodes receive the same
// pointer, and checking it each time would be most of the run. It holds the
// verdicts of the last len(slots) sequence numbers, a few pointers each (a
// forged copy is another pointer, checked for real); a slot taken by a newer
// sequence number forgets the old one.
type verifyCache struct {
	broadcast string
	key       ed25519.PublicKey
	slots     []verdictSlot
	init      verdictSlot // init chunks have their own numbering
	checks    uint64      // real signature checks made
}

const verdictsPerSlot = 4

type verdictSlot struct {
	seq uint64
	n   int
	c   [verdictsPerSlot]*chunk.Chunk
	err [verdictsPerSlot]error
}

func newVerifyCache(broadcast string, key ed25519.PublicKey, seqs int) *verifyCache {
	return &verifyCache{broadcast: broadcast, key: key, slots: make([]verdictSlot, seqs)}
}

// verify is a mesh.Config.Verify.
func (v *verifyCache) verify(c *chunk.Chunk) error {
	s := &v.slots[c.Seq%uint64(len(v.slots))]
	if c.IsInit() {
		s = &v.init
	}
	if s.seq != c.Seq {
		*s = verdictSlot{seq: c.Seq}
	}
	for i := range s.n {
		if s.c[i] == c {
			return s.err[i]
		}
	}
	v.checks++
	err := c.Verify(v.broadcast, v.key)
	i := s.n
	if i == verdictsPerSlot {
		i = int(v.checks % verdictsPerSlot) // full: overwrite one
	} else {
		s.n++
	}
	s.c[i], s.err[i] = c, err
	return err
}

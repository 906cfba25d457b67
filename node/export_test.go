package node

import "github.com/peerscope/peerscope/chunk"

// OpenWithKeysOf opens a chunk with the keys b's node holds for its
// broadcast, as its players would: have is false when none of its epoch
// are there. For tests that show who can read what.
func OpenWithKeysOf(b *Broadcast, c *chunk.Chunk) (have bool, err error) {
	if b.ring == nil {
		return false, nil
	}
	_, have, err = b.ring.open(c)
	return have, err
}

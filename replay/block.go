package replay

import (
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/peerscope/peerscope/chunk"
)

// A chunk is stored and exchanged as one block: its one encoding
// (chunk.Chunk.Bytes, the canonical form of proto/chunk.proto's
// Chunk), so that every node that received the same chunk holds the same
// bytes and thus the same CID. The CID is CIDv1, raw codec, SHA2-256 of
// these bytes.

// maxBroadcastLen bounds a broadcast ID in a block or manifest.
const maxBroadcastLen = chunk.MaxBroadcastLen

// MaxBlockSize bounds a block: a chunk's whole encoding.
const MaxBlockSize = chunk.MaxSize

// DecodeBlock decodes block bytes into a chunk. It checks the form only:
// verify the signature (and the CID) separately.
func DecodeBlock(b []byte) (*chunk.Chunk, error) {
	c, err := chunk.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: block: %w", ErrMalformed, err)
	}
	if c.Broadcast == "" || len(c.Signature) == 0 {
		return nil, fmt.Errorf("%w: block without broadcast or signature", ErrMalformed)
	}
	return c, nil
}

// CIDOf returns the CID of block bytes: CIDv1, raw, SHA2-256.
func CIDOf(b []byte) cid.Cid {
	h, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		panic(err) // SHA2-256 is always there
	}
	return cid.NewCidV1(cid.Raw, h)
}

// Block returns a chunk as a block with its CID.
func Block(c *chunk.Chunk) blocks.Block {
	b := c.Bytes()
	blk, _ := blocks.NewBlockWithCid(b, CIDOf(b))
	return blk
}

// checkCID reports whether b hashes to c (any hash function c names).
func checkCID(c cid.Cid, b []byte) bool {
	got, err := c.Prefix().Sum(b)
	return err == nil && got.Equals(c)
}

package replay

import (
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/mesh"
)

// A chunk is stored and exchanged as one block: the signed chunk in a
// canonical protobuf encoding (every field, in this order, even when zero),
// so that every node that received the same chunk makes the same bytes and
// thus the same CID:
//
//	message Block {
//	  string broadcast = 1; uint64 seq = 2; int64 wallclock = 3;
//	  uint32 flags = 4; int64 duration = 7; bytes payload = 5;
//	  bytes signature = 6;
//	}
//
// The field numbers are those of mesh's Chunk. The CID is CIDv1, raw codec,
// SHA2-256 of these bytes.

// maxBroadcastLen bounds a broadcast ID in a block or manifest.
const maxBroadcastLen = 512

// MaxBlockSize bounds a block: a chunk's largest payload and its header.
const MaxBlockSize = mesh.MaxPayloadSize + 1024

// EncodeChunk returns the block bytes of a signed chunk.
func EncodeChunk(c *mesh.Chunk) []byte {
	n := len(c.Broadcast) + len(c.Payload) + len(c.Signature) + 64
	b := make([]byte, 0, n)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, c.Broadcast)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, c.Seq)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(c.Wallclock))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(c.Flags))
	b = protowire.AppendTag(b, 7, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(c.Duration))
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendBytes(b, c.Payload)
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, c.Signature)
	return b
}

// DecodeChunk decodes block bytes. The payload aliases b. It checks the
// form only: verify the signature (and the CID) separately.
func DecodeChunk(b []byte) (*mesh.Chunk, error) {
	if len(b) > MaxBlockSize {
		return nil, fmt.Errorf("%w: block of %d bytes", ErrMalformed, len(b))
	}
	c := &mesh.Chunk{}
	var seen uint8
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 7, 1, 5, 6); err != nil {
			return err
		}
		if num >= 1 && num <= 7 {
			if seen&(1<<num) != 0 {
				return fmt.Errorf("field %d repeated", num)
			}
			seen |= 1 << num
		}
		switch num {
		case 1:
			if len(raw) == 0 || len(raw) > maxBroadcastLen {
				return fmt.Errorf("broadcast ID of %d bytes", len(raw))
			}
			c.Broadcast = string(raw)
		case 2:
			c.Seq = v
		case 3:
			c.Wallclock = int64(v)
		case 4:
			if v > 0xffffffff {
				return fmt.Errorf("flags %#x", v)
			}
			c.Flags = mesh.ChunkFlags(v)
		case 5:
			if len(raw) > mesh.MaxPayloadSize {
				return fmt.Errorf("payload of %d bytes", len(raw))
			}
			c.Payload = raw
		case 6:
			if len(raw) > 128 {
				return fmt.Errorf("signature of %d bytes", len(raw))
			}
			c.Signature = raw
		case 7:
			c.Duration = int64(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: block: %w", ErrMalformed, err)
	}
	if seen&(1<<1) == 0 || seen&(1<<6) == 0 {
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
func Block(c *mesh.Chunk) blocks.Block {
	b := EncodeChunk(c)
	blk, _ := blocks.NewBlockWithCid(b, CIDOf(b))
	return blk
}

// checkCID reports whether b hashes to c (any hash function c names).
func checkCID(c cid.Cid, b []byte) bool {
	got, err := c.Prefix().Sum(b)
	return err == nil && got.Equals(c)
}

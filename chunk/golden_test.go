package chunk

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// publicGolden is the SHA-256 of the encodings and signing bytes of the
// public chunks below, as the code wrote them before chunks had an epoch
// (8d19a8c): a public chunk (epoch 0) must keep its bytes, its signature and
// so its replay block's CID, or the tree of older nodes, the committed
// corpora and the simulator's figures would all change.
const publicGolden = "7b59b507a47ca022786c276bb402013f897615b81c1df1adaee9b51e139fdbec"

func TestPublicChunkBytesUnchanged(t *testing.T) {
	h := sha256.New()
	for _, c := range []*Chunk{
		signed(0, FlagInit, payload(700)),
		signed(1, 0, payload(200)),
		signed(25, FlagKeyframe, payload(3000)),
		signed(9999, FlagEnd, nil),
		signed(1<<40, FlagKeyframe|FlagEnd, payload(62_500)),
		{},
		{Broadcast: "b", Wallclock: -5, Duration: -1, Signature: []byte{1}},
	} {
		h.Write(c.Bytes())
		h.Write(c.SigningBytes())
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != publicGolden {
		t.Fatalf("public chunks encode or sign differently: digest %s, want %s", got, publicGolden)
	}
}

package pbwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/proto/chunkpb"
)

// TestCheckKnownFields: the generated code takes a known field with the
// wrong wire type as unknown; CheckKnownFields refuses it, and lets a field
// the schema does not know pass.
func TestCheckKnownFields(t *testing.T) {
	wrong := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7) // broadcast is a string
	var c chunkpb.Chunk
	if err := proto.Unmarshal(wrong, &c); err != nil {
		t.Fatalf("the generated code refuses a mistyped field itself now (%v): CheckKnownFields is not needed", err)
	}
	if err := CheckKnownFields(&c); err == nil {
		t.Fatal("a string field sent as a varint passed")
	}
	future := AppendString(AppendString(nil, 1, "b"), 99, "a field from a later version")
	c = chunkpb.Chunk{}
	if err := proto.Unmarshal(future, &c); err != nil {
		t.Fatal(err)
	}
	if err := CheckKnownFields(&c); err != nil || c.Broadcast != "b" {
		t.Fatalf("an unknown field: %v, broadcast %q", err, c.Broadcast)
	}
}

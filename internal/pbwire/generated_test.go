package pbwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/proto/chunkpb"
	"github.com/peerscope/peerscope/proto/replaypb"
)

// TestUnmarshalRefusesWrongWireType: a known field with another wire type
// is refused, at the top and in a nested message; an unknown field passes;
// invalid UTF-8 in a string is refused.
func TestUnmarshalRefusesWrongWireType(t *testing.T) {
	entry := protowire.AppendTag(nil, 1, protowire.BytesType)
	entry = protowire.AppendBytes(entry, []byte{1, 2})
	good := protowire.AppendTag(nil, 1, protowire.BytesType)
	good = protowire.AppendString(good, "b.x")
	good = protowire.AppendTag(good, 5, protowire.BytesType)
	good = protowire.AppendBytes(good, entry)
	good = protowire.AppendTag(good, 99, protowire.VarintType) // unknown: passes
	good = protowire.AppendVarint(good, 7)
	var m replaypb.Manifest
	if err := Unmarshal(good, &m); err != nil || m.Broadcast != "b.x" || len(m.Chunk) != 1 {
		t.Fatalf("%v: %v", &m, err)
	}

	top := protowire.AppendTag(bytes.Clone(good), 3, protowire.BytesType) // started is a varint
	top = protowire.AppendString(top, "x")
	badEntry := protowire.AppendTag(bytes.Clone(entry), 2, protowire.Fixed64Type) // seq is a varint
	badEntry = protowire.AppendFixed64(badEntry, 1)
	nested := protowire.AppendTag(bytes.Clone(good), 5, protowire.BytesType)
	nested = protowire.AppendBytes(nested, badEntry)
	utf := protowire.AppendTag(nil, 2, protowire.BytesType)
	utf = protowire.AppendBytes(utf, []byte{0xff, 0xfe})
	for name, b := range map[string][]byte{"top": top, "nested": nested, "utf-8": utf} {
		if err := Unmarshal(b, &replaypb.Manifest{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, bytes.Repeat([]byte{1}, 300)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	if b, err := ReadFrame(r, 100); err != nil || string(b) != "hello" {
		t.Fatalf("%q, %v", b, err)
	}
	if _, err := ReadFrame(r, 100); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a frame over the limit: %v", err)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{5, 'a'})), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut frame: %v", err)
	}
}

func TestUnixNano(t *testing.T) {
	if UnixNano(time.Time{}) != 0 || !FromUnixNano(0).IsZero() || !FromUnixNano(-5).IsZero() {
		t.Fatal("the zero time is not 0 on the wire")
	}
	now := time.Unix(1_800_000_000, 123)
	if got := FromUnixNano(UnixNano(now)); !got.Equal(now) {
		t.Fatalf("%v back as %v", now, got)
	}
}

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

// TestReadFrameAllocatesAsBytesArrive: a frame that claims 64 MiB and
// brings ten bytes costs the reader about EagerFrame, not 64 MiB (it did:
// the buffer was made from the length prefix alone).
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	claim := binary.AppendUvarint(nil, 64<<20)
	in := append(claim, bytes.Repeat([]byte{7}, 10)...)
	allocated := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), 128<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
				b.Fatalf("a frame cut after 10 bytes: %v", err)
			}
		}
	}).AllocedBytesPerOp()
	if allocated > 2*EagerFrame {
		t.Fatalf("reading a 10-byte stream that claims 64 MiB allocated %d bytes", allocated)
	}
	// Frames that do arrive whole come back exactly, across the doublings.
	for _, n := range []int{0, 1, EagerFrame - 1, EagerFrame, EagerFrame + 1, 3*EagerFrame + 17, 1 << 20} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(i * 7)
		}
		var buf bytes.Buffer
		_ = WriteFrame(&buf, want)
		got, err := ReadFrame(bufio.NewReader(&buf), 2<<20)
		if err != nil || !bytes.Equal(got, want) || len(got) != cap(got) {
			t.Fatalf("%d bytes: got %d (cap %d), %v", n, len(got), cap(got), err)
		}
	}
}

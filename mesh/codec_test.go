package mesh

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil/fuzzseed"
	"github.com/peerscope/peerscope/proto/meshpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The codec tests share one table of messages (codecCases): the round-trip
// test encodes and decodes each, the malformed-input test truncates them,
// the benchmark takes its chunk from it and the fuzz targets are seeded with
// their encodings.

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false,
	"write the codec table's encodings to testdata/fuzz/<FuzzName>/seed-* and exit the test")

const testBroadcast = "bc-7f3a"

// testKey is the broadcaster key of every signed chunk in these tests; a
// fixed seed keeps encodings, and so the committed corpus, reproducible.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func testPub() ed25519.PublicKey { return testKey.Public().(ed25519.PublicKey) }

// testPayload returns n bytes that are not all alike, so a payload that is
// cut or shifted shows.
func testPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + i>>8)
	}
	return p
}

func signedChunk(seq uint64, flags chunk.Flags, payload []byte) *chunk.Chunk {
	c := &chunk.Chunk{Broadcast: testBroadcast, Seq: seq, Wallclock: 1_760_000_000_123_456_789 + int64(seq)*200e6, Duration: 200e6, Flags: flags, Payload: payload}
	c.Sign(testKey)
	return c
}

func peer(id string, addrs ...string) PeerInfo { return PeerInfo{ID: PeerID(id), Addrs: addrs} }

func peers(n int) []PeerInfo {
	p := make([]PeerInfo, n)
	for i := range p {
		p[i] = peer(fmt.Sprintf("12D3KooW%04d", i), fmt.Sprintf("/ip4/198.18.%d.%d/udp/4001/quic-v1", i/250, i%250+1))
	}
	return p
}

func candidates(n int) []Candidate {
	c := make([]Candidate, n)
	for i, p := range peers(n) {
		c[i] = Candidate{PeerInfo: p, Depth: uint32(i/3 + 1), Free: uint32(i % 4), Proven: uint32(i % 3)}
	}
	return c
}

func counterValues(n, size int) []CounterValue {
	c := make([]CounterValue, n)
	for i, name := range strs(n, size) {
		c[i] = CounterValue{Name: name, Value: math.MaxUint64 - uint64(i)}
	}
	return c
}

func strs(n, size int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%03d", i) + strings.Repeat("a", size-3)
	}
	return s
}

type codecCase struct {
	name string
	msg  Message
}

const benchChunkSize = 62500 // 200 ms of a 2.5 Mb/s stream

// codecCases returns the table, freshly built: encoding a chunk caches its
// bytes, so no test sees another's chunks.
func codecCases() []codecCase {
	cases := []codecCase{
		{"chunk/small", Message{Type: MsgChunk, Chunk: signedChunk(1, 0, testPayload(200))}},
		{"chunk/init", Message{Type: MsgChunk, Chunk: signedChunk(0, chunk.FlagInit, testPayload(700))}},
		{"chunk/keyframe", Message{Type: MsgChunk, Chunk: signedChunk(25, chunk.FlagKeyframe, testPayload(3000))}},
		{"chunk/end-empty-payload", Message{Type: MsgChunk, Chunk: signedChunk(9999, chunk.FlagEnd, nil)}},
		{"chunk/zero", Message{Type: MsgChunk, Chunk: &chunk.Chunk{}}},
		{"chunk/62.5KB", Message{Type: MsgChunk, Chunk: signedChunk(42, chunk.FlagKeyframe, testPayload(benchChunkSize))}},
		{"chunk/max-payload", Message{Type: MsgChunk, Chunk: signedChunk(43, 0, testPayload(chunk.MaxPayloadSize))}},
		{"chunk/max-header", Message{Type: MsgChunk, Chunk: &chunk.Chunk{
			Broadcast: strings.Repeat("b", maxStringLen), Seq: math.MaxUint64, Wallclock: math.MinInt64,
			Flags: math.MaxUint32, Payload: []byte{0}, Signature: bytes.Repeat([]byte{0xff}, 128),
		}}},
		{"ping", Message{Type: MsgPing, Time: 1_760_000_000_000_000_000}},
		{"ping/zero", Message{Type: MsgPing}},
		{"ping/negative-time", Message{Type: MsgPing, Time: -1}},
		{"pong", Message{Type: MsgPong, Time: 123456789, Depth: 3, Free: 2}},
		{"pong/seq", Message{Type: MsgPong, Time: 123456789, Depth: 1, Free: 4, Seq: 1501}},
		{"receipt", Message{Type: MsgReceipt, Parent: "12D3KooWparent", Seq: 1501, Count: 5, Subtree: 12}},
		{"receipt/none", Message{Type: MsgReceipt, Parent: "p"}},
		{"receipt/max", Message{Type: MsgReceipt, Parent: PeerID(strings.Repeat("p", maxStringLen)), Seq: math.MaxUint64, Count: math.MaxUint32, Subtree: math.MaxUint32}},
		{"edge", Message{Type: MsgEdge, Seq: 1510}},
		{"attach/withheld", Message{Type: MsgAttach, Seq: 4001, Capacity: 3, Free: 3, Lost: "12D3KooWlost", Flags: AttachWithheld}},
		{"attach/live-edge", Message{Type: MsgAttach, Capacity: 4, Addrs: []string{"/ip4/198.18.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"}}},
		{"attach/backfill", Message{Type: MsgAttach, Seq: 1235, Addrs: []string{"/ip4/198.18.0.2/tcp/4001"}}},
		{"attach/improve", Message{Type: MsgAttach, Seq: 77, Capacity: 8, Flags: AttachImprove}},
		{"attach/rejoin", Message{Type: MsgAttach, Seq: 4001, Capacity: 2, Free: 2, Lost: "12D3KooWlost", Addrs: []string{"/ip4/198.18.0.3/tcp/4001"}}},
		{"attach/max-lost", Message{Type: MsgAttach, Lost: PeerID(strings.Repeat("l", maxStringLen))}},
		{"attach/max-addrs", Message{Type: MsgAttach, Capacity: math.MaxUint32, Addrs: strs(maxListLen, maxStringLen)}},
		{"attach/empty-addr", Message{Type: MsgAttach, Addrs: []string{""}}},
		{"accept", Message{Type: MsgAccept, Depth: 3, Path: []PeerInfo{peer("root", "/ip4/198.18.0.1/tcp/4001"), peer("a"), peer("b", "/dns4/b.example/tcp/443/wss", "/ip4/198.18.0.9/tcp/4001")}}},
		{"accept/max-path", Message{Type: MsgAccept, Depth: maxListLen, Path: peers(maxListLen)}},
		{"accept/empty-peers", Message{Type: MsgAccept, Path: []PeerInfo{{}, {}}}},
		{"accept/max-peer", Message{Type: MsgAccept, Path: []PeerInfo{{ID: PeerID(strings.Repeat("p", maxStringLen)), Addrs: strs(maxListLen, maxStringLen)}}}},
		{"redirect", Message{Type: MsgRedirect, Candidates: candidates(3)}},
		{"redirect/max-candidates", Message{Type: MsgRedirect, Candidates: candidates(maxListLen)}},
		{"redirect/zero-candidate", Message{Type: MsgRedirect, Candidates: []Candidate{{}}}},
		{"leave", Message{Type: MsgLeave}},
		{"leave/candidates", Message{Type: MsgLeave, Candidates: candidates(2)}},
		{"status", Message{Type: MsgStatus, Capacity: 6, Free: 1, Subtree: 1500, Candidates: candidates(5)}},
		{"status/leaf", Message{Type: MsgStatus, Subtree: 1}},
		{"status/vouches", Message{Type: MsgStatus, Capacity: 8, Subtree: 30, Vouches: []Candidate{{PeerInfo: peer("v1"), Depth: 2, Proven: 4}, {PeerInfo: peer("v2"), Depth: 2, Proven: 1}}}},
		{"status/max-vouches", Message{Type: MsgStatus, Vouches: candidates(maxListLen)}},
		{"status/counters", Message{Type: MsgStatus, Capacity: 2, Subtree: 40, Counters: []CounterValue{{"hearts", 1234}, {"web", 17}}, Candidates: candidates(1)}},
		{"status/max-counters", Message{Type: MsgStatus, Subtree: math.MaxUint32, Counters: counterValues(maxListLen, maxStringLen)}},
		{"status/empty-counter", Message{Type: MsgStatus, Counters: []CounterValue{{}}}},
		{"status/utf8", Message{Type: MsgStatus, Counters: []CounterValue{{"cœurs ♥", 3}}, Candidates: []Candidate{{PeerInfo: peer("pair-é", "/dns4/exemple.fr/tcp/443/wss")}}}},
		{"path/heartbeat", Message{Type: MsgPath}},
		{"path", Message{Type: MsgPath, Path: peers(7)}},
		{"pull", Message{Type: MsgPull, Seq: 100, Count: 25}},
		{"pull/max", Message{Type: MsgPull, Seq: math.MaxUint64, Count: math.MaxUint32}},
		{"all-fields", Message{Type: MsgStatus, Chunk: signedChunk(5, 0, testPayload(10)), Seq: 1, Count: 2, Time: 3,
			Capacity: 4, Free: 5, Subtree: 6, Depth: 7, Path: peers(2), Candidates: candidates(2), Addrs: []string{"x"}, Reason: ReasonFull, Flags: 9, Lost: "y", Counters: []CounterValue{{"a", 10}, {"b", 11}}, Parent: "z"}},
	}
	for r := ReasonNone; r <= ReasonNoImprove; r++ {
		cases = append(cases, codecCase{fmt.Sprintf("reject/reason-%d", r), Message{Type: MsgReject, Reason: r}})
	}
	return cases
}

func codecCase1(t testing.TB, name string) Message {
	for _, c := range codecCases() {
		if c.name == name {
			return c.msg
		}
	}
	t.Fatalf("no codec case %q", name)
	return Message{}
}

// normalized returns a copy of m for comparison: empty slices become nil and
// the chunk's cached encoding is dropped, since neither changes what the
// message says.
func normalized(m *Message) Message {
	n := *m
	if m.Chunk != nil {
		c := m.Chunk.Clone()
		c.Payload = nilIfEmpty(c.Payload)
		c.Signature = nilIfEmpty(c.Signature)
		n.Chunk = c
	}
	if len(n.Path) == 0 {
		n.Path = nil
	}
	n.Path = append([]PeerInfo(nil), n.Path...)
	for i := range n.Path {
		if len(n.Path[i].Addrs) == 0 {
			n.Path[i].Addrs = nil
		}
	}
	n.Candidates = append([]Candidate(nil), n.Candidates...)
	for i := range n.Candidates {
		if len(n.Candidates[i].Addrs) == 0 {
			n.Candidates[i].Addrs = nil
		}
	}
	if len(n.Addrs) == 0 {
		n.Addrs = nil
	}
	if len(n.Counters) == 0 {
		n.Counters = nil
	}
	return n
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func equalMessages(a, b *Message) bool {
	na, nb := normalized(a), normalized(b)
	return reflect.DeepEqual(na, nb)
}

// describe prints a message without megabytes of payload.
func describe(m *Message) string {
	n := normalized(m)
	s := fmt.Sprintf("%+v", n)
	if n.Chunk != nil {
		s += fmt.Sprintf(" chunk{%q seq=%d wc=%d flags=%#x payload=%dB sig=%x}",
			n.Chunk.Broadcast, n.Chunk.Seq, n.Chunk.Wallclock, n.Chunk.Flags, len(n.Chunk.Payload), n.Chunk.Signature)
	}
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

func TestCodecRoundTrip(t *testing.T) {
	cases := codecCases()
	seen := map[MsgType]bool{}
	for _, tc := range cases {
		seen[tc.msg.Type] = true
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg
			size := m.Size()
			b := m.Marshal(nil)
			if size != len(b) {
				t.Fatalf("Size() = %d before encoding, len(Marshal) = %d", size, len(b))
			}
			if m.Size() != len(b) {
				t.Fatalf("Size() = %d after encoding, len(Marshal) = %d", m.Size(), len(b))
			}
			if again := m.Marshal([]byte("prefix")); !bytes.Equal(again[6:], b) || string(again[:6]) != "prefix" {
				t.Fatal("a second Marshal, appending to a prefix, gave other bytes")
			}
			var got Message
			if err := got.Unmarshal(b); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !equalMessages(&m, &got) {
				t.Fatalf("round trip changed the message\n got %s\nwant %s", describe(&got), describe(&m))
			}
			// Re-encoding what was decoded gives the same bytes: a relay
			// forwards exactly what it received.
			if re := got.Marshal(nil); !bytes.Equal(re, b) {
				t.Fatalf("re-encoding the decoded message gave other bytes (%d, want %d)", len(re), len(b))
			}
			if got.Size() != len(b) {
				t.Fatalf("decoded Size() = %d, want %d", got.Size(), len(b))
			}
		})
	}
	for typ := MsgChunk; typ < maxMsgType; typ++ {
		if !seen[typ] {
			t.Errorf("the codec table has no %v message", typ)
		}
	}

	// Every case again, as consecutive frames on one stream.
	var stream []byte
	for _, tc := range cases {
		stream = AppendFrame(stream, &tc.msg)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, tc := range cases {
		var got Message
		if err := ReadFrame(r, &got); err != nil {
			t.Fatalf("ReadFrame %s: %v", tc.name, err)
		}
		if !equalMessages(&tc.msg, &got) {
			t.Fatalf("frame %s changed the message\n got %s\nwant %s", tc.name, describe(&got), describe(&tc.msg))
		}
	}
	var m Message
	if err := ReadFrame(r, &m); err != io.EOF {
		t.Fatalf("ReadFrame after the last frame: %v, want io.EOF", err)
	}
}

// TestChunkEncodingShared checks the forwarding path: a chunk is encoded
// once and every message carrying it reuses those bytes, and a received
// chunk is forwarded as the bytes that came in.
func TestChunkEncodingShared(t *testing.T) {
	c := signedChunk(3, chunk.FlagKeyframe, testPayload(5000))
	first := (&Message{Type: MsgChunk, Chunk: c}).Marshal(nil)
	w := c.Bytes()
	if &c.Bytes()[0] != &w[0] {
		t.Fatal("the chunk was encoded twice")
	}
	var got Message
	if err := got.Unmarshal(first); err != nil {
		t.Fatal(err)
	}
	inner := got.Chunk.Bytes()
	if !bytes.Equal(inner, w) {
		t.Fatal("a decoded chunk's encoding differs from the one received")
	}
	if &inner[0] != &first[len(first)-len(inner)] {
		t.Fatal("a decoded chunk does not reuse the received bytes")
	}
	if &got.Chunk.Payload[0] != &first[len(first)-len(got.Chunk.Payload)-len(got.Chunk.Signature)-2] {
		t.Fatal("a decoded chunk's payload was copied")
	}
	// Signing again drops the cached encoding.
	c.Seq = 4
	c.Sign(testKey)
	var re Message
	if err := re.Unmarshal((&Message{Type: MsgChunk, Chunk: c}).Marshal(nil)); err != nil {
		t.Fatal(err)
	}
	if re.Chunk.Seq != 4 || re.Chunk.Verify(testBroadcast, testPub()) != nil {
		t.Fatalf("re-signed chunk was sent with its stale encoding (seq %d)", re.Chunk.Seq)
	}
}

// Raw protobuf builders for the malformed-input table.

func fv(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func fb(num protowire.Number, parts ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), bytes.Join(parts, nil))
}

func fs(num protowire.Number, s string) []byte { return fb(num, []byte(s)) }

func f32(num protowire.Number) []byte {
	return protowire.AppendFixed32(protowire.AppendTag(nil, num, protowire.Fixed32Type), 1)
}

func f64(num protowire.Number) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), 1)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func repeat(n int, part []byte) []byte { return bytes.Repeat(part, n) }

func typ(t MsgType) []byte { return fv(1, uint64(t)) }

// A valid chunk, to build malformed messages around.
var okChunk = cat(fs(1, testBroadcast), fv(2, 1), fv(3, 1), fs(5, "payload"), fb(6, bytes.Repeat([]byte{1}, 64)))

type malformedCase struct {
	name  string
	data  []byte
	frame bool  // data is a stream for ReadFrame rather than a message
	want  error // what the error wraps; ErrMalformed if nil
}

func malformedCases() []malformedCase {
	long := strings.Repeat("x", maxStringLen+1)
	return []malformedCase{
		{name: "empty", data: nil},
		{name: "no type", data: fv(3, 5)},
		{name: "type 0", data: fv(1, 0)},
		{name: "type too large", data: fv(1, uint64(maxMsgType))},
		{name: "type 255", data: fv(1, 255)},
		{name: "type 2^40", data: fv(1, 1<<40)},
		{name: "chunk message without chunk", data: typ(MsgChunk)},
		{name: "chunk message with seq but no chunk", data: cat(typ(MsgChunk), fv(3, 9))},

		{name: "truncated tag", data: cat(typ(MsgPing), []byte{0x80})},
		{name: "truncated varint", data: cat(typ(MsgPing), []byte{5 << 3, 0xff, 0xff})},
		{name: "varint overflow", data: cat(typ(MsgPing), []byte{5 << 3}, bytes.Repeat([]byte{0xff}, 10), []byte{1})},
		{name: "truncated length", data: cat(typ(MsgChunk), []byte{2<<3 | 2, 0x80})},
		{name: "truncated chunk", data: cat(typ(MsgChunk), fb(2, okChunk))[:len(okChunk)/2]},
		{name: "length past end", data: cat(typ(MsgChunk), []byte{2<<3 | 2, 100}, okChunk)},
		{name: "truncated inside chunk payload", data: cat(typ(MsgChunk), fb(2, cat(fs(1, testBroadcast), []byte{5<<3 | 2, 50}, []byte("short"))))},
		{name: "truncated path entry", data: cat(typ(MsgAccept), fb(10, []byte{1<<3 | 2, 9, 'a'}))},
		{name: "field number 0", data: cat(typ(MsgPing), []byte{0 << 3, 1})},
		{name: "field number over 2^29-1", data: cat(typ(MsgPing), protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType), []byte{1})},
		{name: "start group", data: cat(typ(MsgPing), []byte{5<<3 | 3})},
		{name: "end group", data: cat(typ(MsgPing), []byte{5<<3 | 4})},
		{name: "wire type 6", data: cat(typ(MsgPing), []byte{5<<3 | 6, 0})},

		{name: "type as bytes", data: fs(1, "\x02")},
		{name: "type as fixed32", data: cat(f32(1), typ(MsgPing))},
		{name: "chunk as varint", data: cat(typ(MsgChunk), fv(2, 1))},
		{name: "two chunks", data: cat(typ(MsgChunk), fb(2, okChunk), fb(2, fs(1, "other")))},
		{name: "seq as bytes", data: cat(typ(MsgPull), fs(3, "\x01"))},
		{name: "seq as fixed64", data: cat(typ(MsgPull), f64(3))},
		{name: "time as fixed64", data: cat(typ(MsgPing), f64(5))},
		{name: "flags as fixed32", data: cat(typ(MsgAttach), f32(14))},
		{name: "path as varint", data: cat(typ(MsgAccept), fv(10, 1))},
		{name: "candidates as varint", data: cat(typ(MsgRedirect), fv(11, 1))},
		{name: "addrs as varint", data: cat(typ(MsgAttach), fv(12, 1))},
		{name: "reason as bytes", data: cat(typ(MsgReject), fs(13, "x"))},
		{name: "lost as varint", data: cat(typ(MsgAttach), fv(15, 1))},
		{name: "lost as fixed32", data: cat(typ(MsgAttach), f32(15))},
		{name: "counters as varint", data: cat(typ(MsgStatus), fv(18, 1))},
		{name: "parent as varint", data: cat(typ(MsgReceipt), fv(19, 1))},
		{name: "parent as fixed64", data: cat(typ(MsgReceipt), f64(19))},
		{name: "counter name as varint", data: cat(typ(MsgStatus), fb(18, fv(1, 1)))},
		{name: "counter value as bytes", data: cat(typ(MsgStatus), fb(18, fs(2, "x")))},
		{name: "counter value as fixed64", data: cat(typ(MsgStatus), fb(18, f64(2)))},
		{name: "chunk broadcast as varint", data: cat(typ(MsgChunk), fb(2, fv(1, 1)))},
		{name: "chunk seq as bytes", data: cat(typ(MsgChunk), fb(2, fs(2, "x")))},
		{name: "chunk wallclock as fixed64", data: cat(typ(MsgChunk), fb(2, f64(3)))},
		{name: "chunk payload as varint", data: cat(typ(MsgChunk), fb(2, fv(5, 1)))},
		{name: "chunk signature as fixed32", data: cat(typ(MsgChunk), fb(2, f32(6)))},
		{name: "peer id as varint", data: cat(typ(MsgAccept), fb(10, fv(1, 1)))},
		{name: "peer addr as fixed64", data: cat(typ(MsgAccept), fb(10, f64(2)))},
		{name: "candidate peer as varint", data: cat(typ(MsgRedirect), fb(11, fv(1, 1)))},
		{name: "candidate depth as bytes", data: cat(typ(MsgRedirect), fb(11, fs(2, "x")))},
		{name: "candidate free as fixed32", data: cat(typ(MsgRedirect), fb(11, f32(3)))},

		{name: "65 path entries", data: cat(typ(MsgAccept), repeat(maxListLen+1, fb(10, fs(1, "p"))))},
		{name: "65 candidates", data: cat(typ(MsgRedirect), repeat(maxListLen+1, fb(11, fb(1, fs(1, "c")))))},
		{name: "65 vouches", data: cat(typ(MsgStatus), repeat(maxListLen+1, fb(20, fb(1, fs(1, "c")))))},
		{name: "vouches as varint", data: cat(typ(MsgStatus), fv(20, 1))},
		{name: "candidate proven as bytes", data: cat(typ(MsgStatus), fb(20, fs(4, "x")))},
		{name: "65 addrs", data: cat(typ(MsgAttach), repeat(maxListLen+1, fs(12, "/ip4/198.18.0.1/tcp/1")))},
		{name: "65 addrs in a path entry", data: cat(typ(MsgAccept), fb(10, fs(1, "p"), repeat(maxListLen+1, fs(2, "a"))))},
		{name: "65 addrs in a candidate", data: cat(typ(MsgRedirect), fb(11, fb(1, fs(1, "c"), repeat(maxListLen+1, fs(2, "a")))))},
		{name: "65 addrs over two candidate peers", data: cat(typ(MsgRedirect), fb(11, fb(1, repeat(40, fs(2, "a"))), fb(1, repeat(25, fs(2, "a")))))},

		{name: "65 counters", data: cat(typ(MsgStatus), repeat(maxListLen+1, fb(18, fs(1, "c"), fv(2, 1))))},

		{name: "long addr", data: cat(typ(MsgAttach), fs(12, long))},
		{name: "long counter name", data: cat(typ(MsgStatus), fb(18, fs(1, long)))},

		{name: "addr not UTF-8", data: cat(typ(MsgAttach), fs(12, "/ip4/\xff"))},
		{name: "lost not UTF-8", data: cat(typ(MsgAttach), fs(15, "\xc3"))},
		{name: "path id not UTF-8", data: cat(typ(MsgAccept), fb(10, fs(1, "p\xe2\x82")))},
		{name: "path addr not UTF-8", data: cat(typ(MsgAccept), fb(10, fs(1, "p"), fs(2, "\xed\xa0\x80")))},
		{name: "candidate id not UTF-8", data: cat(typ(MsgRedirect), fb(11, fb(1, fs(1, "\x80"))))},
		{name: "counter name not UTF-8", data: cat(typ(MsgStatus), fb(18, fs(1, "c\xc0\xaf"), fv(2, 1)))},
		{name: "chunk broadcast not UTF-8", data: cat(typ(MsgChunk), fb(2, fs(1, "b\xff")))},
		{name: "long path id", data: cat(typ(MsgAccept), fb(10, fs(1, long)))},
		{name: "long path addr", data: cat(typ(MsgAccept), fb(10, fs(1, "p"), fs(2, long)))},
		{name: "long candidate id", data: cat(typ(MsgRedirect), fb(11, fb(1, fs(1, long))))},
		{name: "long candidate addr", data: cat(typ(MsgRedirect), fb(11, fb(1, fs(2, long))))},
		{name: "long lost", data: cat(typ(MsgAttach), fs(15, long))},
		{name: "long parent", data: cat(typ(MsgReceipt), fs(19, long))},
		{name: "parent not UTF-8", data: cat(typ(MsgReceipt), fs(19, "p\xff"))},
		{name: "long broadcast", data: cat(typ(MsgChunk), fb(2, fs(1, long)))},
		{name: "long signature", data: cat(typ(MsgChunk), fb(2, fb(6, make([]byte, 129))))},
		{name: "payload over chunk.MaxPayloadSize", data: cat(typ(MsgChunk), fb(2, fb(5, make([]byte, chunk.MaxPayloadSize+1))))},

		{name: "frame over MaxFrameSize", frame: true, want: ErrFrameTooLarge,
			data: binary.AppendUvarint(nil, MaxFrameSize+1)},
		{name: "frame of 2^62 bytes", frame: true, want: ErrFrameTooLarge,
			data: binary.AppendUvarint(nil, 1<<62)},
		{name: "frame length over 64 bits", frame: true, want: ErrFrameTooLarge,
			data: bytes.Repeat([]byte{0xff}, 11)},
		{name: "frame length prefix too long", frame: true,
			data: cat(bytes.Repeat([]byte{0x80}, 10), []byte{0})},
		{name: "frame length prefix overflows to 0", frame: true,
			data: cat(bytes.Repeat([]byte{0x80}, 9), []byte{2})},
		{name: "empty frame", frame: true, data: []byte{0}},
		{name: "frame with bad message", frame: true, data: cat([]byte{3}, fv(1, 200), []byte{0})},
		{name: "good frame then too large", frame: true, want: ErrFrameTooLarge,
			data: cat(AppendFrame(nil, &Message{Type: MsgPing, Time: 1}), binary.AppendUvarint(nil, MaxFrameSize+1))},
	}
}

func TestCodecMalformed(t *testing.T) {
	for _, tc := range malformedCases() {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = ErrMalformed
			}
			var m Message
			var err error
			if tc.frame {
				r := bufio.NewReader(bytes.NewReader(tc.data))
				for err == nil {
					err = ReadFrame(r, &m)
				}
			} else {
				err = m.Unmarshal(tc.data)
			}
			if !errors.Is(err, want) {
				t.Fatalf("got error %v, want one wrapping %v", err, want)
			}
		})
	}
}

// TestCodecTruncated cuts every encoding in the table short. A cut can fall
// on a field boundary and leave a valid, shorter message; otherwise the
// error must be ErrMalformed. A chunk message has its chunk last, so every
// cut of one must fail.
func TestCodecTruncated(t *testing.T) {
	for _, tc := range codecCases() {
		b := tc.msg.Marshal(nil)
		if len(b) > 1<<16 {
			continue // a cut inside the payload is a cut like any other
		}
		for i := range len(b) {
			var m Message
			err := m.Unmarshal(b[:i])
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s cut to %d bytes: %v does not wrap ErrMalformed", tc.name, i, err)
			}
			if err == nil && tc.msg.Type == MsgChunk && tc.msg.Seq == 0 {
				t.Fatalf("%s cut to %d of %d bytes decoded: %s", tc.name, i, len(b), describe(&m))
			}
		}
		// As a frame, a cut anywhere is an unexpected end of stream.
		f := AppendFrame(nil, &tc.msg)
		for _, i := range []int{1, len(f) / 2, len(f) - 1} {
			var m Message
			if err := ReadFrame(bufio.NewReader(bytes.NewReader(f[:i])), &m); err != io.ErrUnexpectedEOF {
				t.Fatalf("%s frame cut to %d of %d bytes: %v, want io.ErrUnexpectedEOF", tc.name, i, len(f), err)
			}
		}
	}
}

func TestChunkSignVerify(t *testing.T) {
	pub := testPub()
	otherPub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	mutations := []struct {
		name   string
		mutate func(c *chunk.Chunk)
		key    ed25519.PublicKey
		want   error
	}{
		{"broadcast", func(c *chunk.Chunk) { c.Broadcast = "bc-other" }, pub, chunk.ErrWrongBroadcast},
		{"broadcast, checked as that broadcast", func(c *chunk.Chunk) { c.Broadcast = "bc-other" }, pub, chunk.ErrBadSignature},
		{"seq", func(c *chunk.Chunk) { c.Seq++ }, pub, chunk.ErrBadSignature},
		{"wallclock", func(c *chunk.Chunk) { c.Wallclock-- }, pub, chunk.ErrBadSignature},
		{"duration", func(c *chunk.Chunk) { c.Duration++ }, pub, chunk.ErrBadSignature},
		{"flags", func(c *chunk.Chunk) { c.Flags ^= chunk.FlagKeyframe }, pub, chunk.ErrBadSignature},
		{"flags, unknown bit", func(c *chunk.Chunk) { c.Flags |= 1 << 31 }, pub, chunk.ErrBadSignature},
		{"payload byte", func(c *chunk.Chunk) { c.Payload[len(c.Payload)/2] ^= 1 }, pub, chunk.ErrBadSignature},
		{"payload cut", func(c *chunk.Chunk) { c.Payload = c.Payload[:len(c.Payload)-1] }, pub, chunk.ErrBadSignature},
		{"payload extended", func(c *chunk.Chunk) { c.Payload = append(c.Payload, 0) }, pub, chunk.ErrBadSignature},
		{"payload empty", func(c *chunk.Chunk) { c.Payload = nil }, pub, chunk.ErrBadSignature},
		{"signature byte", func(c *chunk.Chunk) { c.Signature[10] ^= 0x80 }, pub, chunk.ErrBadSignature},
		{"signature cut", func(c *chunk.Chunk) { c.Signature = c.Signature[:ed25519.SignatureSize-1] }, pub, chunk.ErrBadSignature},
		{"signature extended", func(c *chunk.Chunk) { c.Signature = append(c.Signature, 0) }, pub, chunk.ErrBadSignature},
		{"signature missing", func(c *chunk.Chunk) { c.Signature = nil }, pub, chunk.ErrBadSignature},
		{"other key", func(c *chunk.Chunk) {}, otherPub, chunk.ErrBadSignature},
	}
	fresh := func() *chunk.Chunk {
		c := signedChunk(17, chunk.FlagKeyframe, testPayload(4096))
		c.Payload = bytes.Clone(c.Payload)
		c.Signature = bytes.Clone(c.Signature)
		return c
	}
	if err := fresh().Verify(testBroadcast, pub); err != nil {
		t.Fatalf("a signed chunk does not verify: %v", err)
	}
	for _, tc := range mutations {
		t.Run(tc.name, func(t *testing.T) {
			c := fresh()
			tc.mutate(c)
			broadcast := testBroadcast
			if tc.want == chunk.ErrBadSignature {
				broadcast = c.Broadcast
			}
			if err := c.Verify(broadcast, tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("Verify after changing the %s: %v, want %v", tc.name, err, tc.want)
			}
		})
	}

	t.Run("round trip", func(t *testing.T) {
		for _, tc := range codecCases() {
			c := tc.msg.Chunk
			if c == nil || len(c.Signature) != ed25519.SignatureSize {
				continue
			}
			b := tc.msg.Marshal(nil)
			var m Message
			if err := m.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if err := m.Chunk.Verify(testBroadcast, pub); err != nil {
				t.Fatalf("%s: decoded chunk does not verify: %v", tc.name, err)
			}
			// A relay that flips one payload byte on the wire is caught.
			if len(m.Chunk.Payload) == 0 {
				continue
			}
			m.Chunk.Payload[len(m.Chunk.Payload)/2] ^= 1 // the payload aliases b
			if err := m.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if err := m.Chunk.Verify(testBroadcast, pub); !errors.Is(err, chunk.ErrBadSignature) {
				t.Fatalf("%s: chunk altered on the wire: %v, want chunk.ErrBadSignature", tc.name, err)
			}
		}
	})
}

func BenchmarkChunkCodec(b *testing.B) {
	msg := codecCase1(b, "chunk/62.5KB")
	enc := msg.Marshal(nil)
	buf := make([]byte, 0, len(enc))

	// Encoding a chunk for the first time: what the broadcaster pays once.
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			msg.Chunk = msg.Chunk.Clone()
			buf = msg.Marshal(buf[:0])
		}
	})
	// Encoding a chunk already encoded: what each forward to a child costs.
	b.Run("MarshalForward", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			buf = msg.Marshal(buf[:0])
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		var m Message
		for b.Loop() {
			if err := m.Unmarshal(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadFrame", func(b *testing.B) {
		frame := AppendFrame(nil, &msg)
		rd := bytes.NewReader(frame)
		r := bufio.NewReaderSize(rd, 64<<10)
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		var m Message
		for b.Loop() {
			rd.Reset(frame)
			r.Reset(rd)
			if err := ReadFrame(r, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg.Chunk.Payload)))
		pub := testPub()
		for b.Loop() {
			if err := msg.Chunk.Verify(testBroadcast, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// maxSeedSize keeps big table cases out of the fuzz seeds: the fuzzer
// mutates small inputs better. maxSeedFileSize keeps the committed corpus
// small.
const (
	maxSeedSize     = 4 << 10
	maxSeedFileSize = 1 << 10
)

func messageSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	for _, tc := range codecCases() {
		if b := tc.msg.Marshal(nil); len(b) <= maxSeedSize {
			seeds[tc.name] = b
		}
	}
	for _, tc := range malformedCases() {
		if !tc.frame && len(tc.data) <= maxSeedSize {
			seeds["malformed/"+tc.name] = tc.data
		}
	}
	return seeds
}

// frameSeeds are a stream of small frames, a few single frames (the
// message seeds cover the rest) and the malformed streams.
func frameSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	var all []byte
	for _, tc := range codecCases() {
		f := AppendFrame(nil, &tc.msg)
		switch tc.name {
		case "chunk/small", "chunk/end-empty-payload", "accept", "redirect", "pull":
			seeds[tc.name] = f
		}
		if len(f) <= 256 && len(all)+len(f) <= maxSeedFileSize {
			all = append(all, f...)
		}
	}
	seeds["stream"] = all
	for _, tc := range malformedCases() {
		if tc.frame {
			seeds["malformed/"+tc.name] = tc.data
		}
	}
	return seeds
}

func FuzzMessageUnmarshal(f *testing.F) {
	for _, b := range messageSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if err := m.Unmarshal(data); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		checkReencode(t, &m)
		checkGenerated(t, data, &m)
	})
}

// checkGenerated checks that the generated code reads what the hand
// decoder accepted as the same message: the hand decoder may refuse more
// (size limits, an unknown type, a field given twice in a chunk), never
// less, and never read it otherwise.
func checkGenerated(t *testing.T, data []byte, m *Message) {
	t.Helper()
	var pb meshpb.Message
	if err := proto.Unmarshal(data, &pb); err != nil {
		t.Fatalf("we accept what the generated code refuses (%v): %s", err, describe(m))
	}
	if got := fromPB(&pb); !equalMessages(got, m) {
		t.Fatalf("the generated code reads\n%s\nwe read\n%s", describe(got), describe(m))
	}
}

// checkReencode checks that a decoded message encodes to Size bytes which
// decode to the same message and encode to the same bytes again.
func checkReencode(t *testing.T, m *Message) {
	t.Helper()
	b := m.Marshal(nil)
	if m.Size() != len(b) {
		t.Fatalf("Size() = %d, len(Marshal) = %d", m.Size(), len(b))
	}
	var m2 Message
	if err := m2.Unmarshal(b); err != nil {
		t.Fatalf("re-encoded message does not decode: %v\n%s", err, describe(m))
	}
	if !equalMessages(m, &m2) {
		t.Fatalf("re-encoding changed the message\n got %s\nwant %s", describe(&m2), describe(m))
	}
	if b2 := m2.Marshal(nil); !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not stable: %x then %x", b, b2)
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, b := range frameSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			var m Message
			err := ReadFrame(r, &m)
			switch {
			case err == nil:
				checkReencode(t, &m)
				continue
			case err == io.EOF, err == io.ErrUnexpectedEOF,
				errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
				return
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

// TestWriteFuzzSeeds writes the table's encodings as seed corpus files when
// run with -write-fuzz-seeds, leaving files that exist alone. The committed
// files pin earlier encodings: whatever the encoder becomes, the decoder must
// keep handling them.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to rewrite testdata/fuzz/*/seed-*")
	}
	for name, seeds := range map[string]map[string][]byte{
		"FuzzMessageUnmarshal": messageSeeds(),
		"FuzzReadFrame":        frameSeeds(),
	} {
		for seed, data := range seeds {
			if len(data) <= maxSeedFileSize {
				fuzzseed.Write(t, name, fuzzseed.Name(seed), data)
			}
		}
	}
}

// TestPaddedChunkExcess: a chunk message whose chunk carries an unknown
// field (a relay's padding) decodes to the same chunk, whose encoding is
// the canonical one again, and Excess says how many bytes the frame carried
// beyond it (what Step takes the sender for a padder on).
func TestPaddedChunkExcess(t *testing.T) {
	c := signedChunk(7, chunk.FlagKeyframe, testPayload(5000))
	canon := (&Message{Type: MsgChunk, Chunk: c}).Marshal(nil)
	padded := append(append([]byte(nil), c.Bytes()...), fb(99, make([]byte, 4096))...)
	frame := AppendFrame(nil, &Message{Type: MsgPing, Time: 1}) // a frame before, as on a stream
	msg := cat(typ(MsgChunk), fb(2, padded))
	frame = append(binary.AppendUvarint(frame, uint64(len(msg))), msg...)
	r := bufio.NewReader(bytes.NewReader(frame))
	var ping, m Message
	if err := ReadFrame(r, &ping); err != nil || ping.Excess != 0 {
		t.Fatalf("ping: %v, excess %d", err, ping.Excess)
	}
	if err := ReadFrame(r, &m); err != nil {
		t.Fatal(err)
	}
	if want := len(msg) - len(canon); m.Excess != want || m.Excess <= maxExcess {
		t.Fatalf("excess %d, want %d (over %d)", m.Excess, want, maxExcess)
	}
	if !bytes.Equal(m.Chunk.Bytes(), c.Bytes()) {
		t.Fatal("the padded chunk does not re-encode to the canonical bytes")
	}
	var plain Message
	if err := plain.Unmarshal(canon); err != nil || plain.Excess != 0 {
		t.Fatalf("canonical message: %v, excess %d", err, plain.Excess)
	}
}

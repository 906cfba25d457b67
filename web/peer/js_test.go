package peer_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/testutil"
	"github.com/peerscope/peerscope/mesh"
)

// vectors is what the Go code says the wire looks like, for the browser's
// code to be held to (test/*.test.js): frames the Go codec writes, with
// what they mean; chunks the broadcaster signed, with their signing bytes,
// and altered or forged ones the verifier must refuse; frames the Go
// decoder refuses.
type vectors struct {
	Broadcast string        `json:"broadcast"`
	Messages  []frameVector `json:"messages"`
	Good      []chunkVector `json:"good"`
	Bad       []chunkVector `json:"bad"`
	Refused   []frameVector `json:"refused"`
}

type frameVector struct {
	Name  string          `json:"name"`
	Frame string          `json:"frame"` // hex, length-delimited
	Want  json.RawMessage `json:"want,omitempty"`
}

type chunkVector struct {
	Name    string `json:"name"`
	Frame   string `json:"frame"`   // hex: a chunk message's frame
	Signing string `json:"signing"` // hex: chunk.SigningBytes, as the broadcaster signed (good) or as the chunk now reads (bad)
}

// jsonMessage is a mesh.Message as the JS test compares it: protobuf-es's
// field names, 64-bit integers as strings.
func jsonMessage(m *mesh.Message) json.RawMessage {
	peer := func(p mesh.PeerInfo) map[string]any {
		return map[string]any{"id": string(p.ID), "addrs": nonNil(p.Addrs)}
	}
	path := []any{}
	for _, p := range m.Path {
		path = append(path, peer(p))
	}
	cands := func(cs []mesh.Candidate) []any {
		out := []any{}
		for _, c := range cs {
			out = append(out, map[string]any{"peer": peer(c.PeerInfo), "depth": c.Depth, "free": c.Free, "proven": c.Proven})
		}
		return out
	}
	counters := []any{}
	for _, c := range m.Counters {
		counters = append(counters, map[string]any{"name": c.Name, "value": itoa(c.Value)})
	}
	b, _ := json.Marshal(map[string]any{
		"type": int(m.Type), "seq": itoa(m.Seq), "count": m.Count, "time": itoa(uint64(m.Time)),
		"capacity": m.Capacity, "free": m.Free, "subtree": m.Subtree, "depth": m.Depth,
		"path": path, "candidates": cands(m.Candidates), "addrs": nonNil(m.Addrs), "reason": int(m.Reason),
		"flags": m.Flags, "lost": string(m.Lost), "counters": counters, "parent": string(m.Parent), "vouches": cands(m.Vouches),
	})
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func hexFrame(m *mesh.Message) string { return hex.EncodeToString(mesh.AppendFrame(nil, m)) }

func makeVectors(t *testing.T) vectors {
	key, _, id := testutil.Broadcaster(t)
	raw, _ := key.Raw()
	priv := ed25519.PrivateKey(raw)
	otherRaw := ed25519.NewKeyFromSeed([]byte(strings.Repeat("y", 32)))

	root := mesh.PeerInfo{ID: "12D3KooWRoot", Addrs: []string{"/ip4/127.0.0.1/udp/4001/webrtc-direct/certhash/uEiAAAA"}}
	mid := mesh.PeerInfo{ID: "12D3KooWMid", Addrs: []string{"/ip4/10.0.0.2/tcp/4001"}}
	v := vectors{Broadcast: id}
	for _, tc := range []struct {
		name string
		m    mesh.Message
	}{
		{"attach from the live edge", mesh.Message{Type: mesh.MsgAttach}},
		{"attach after a loss", mesh.Message{Type: mesh.MsgAttach, Seq: 1235, Lost: "12D3KooWMid"}},
		{"attach of a relay", mesh.Message{Type: mesh.MsgAttach, Seq: 1, Capacity: 4, Free: 3, Addrs: []string{"/ip4/1.2.3.4/tcp/1"}, Flags: mesh.AttachImprove | mesh.AttachClimb, Depth: 6}},
		{"accept", mesh.Message{Type: mesh.MsgAccept, Path: []mesh.PeerInfo{root, mid}, Depth: 1}},
		{"redirect", mesh.Message{Type: mesh.MsgRedirect, Candidates: []mesh.Candidate{{PeerInfo: mid, Depth: 1, Free: 2}, {PeerInfo: root, Depth: 0}}}},
		{"reject", mesh.Message{Type: mesh.MsgReject, Reason: mesh.ReasonFull}},
		{"leave with hints", mesh.Message{Type: mesh.MsgLeave, Candidates: []mesh.Candidate{{PeerInfo: root, Free: 1}}}},
		{"leave", mesh.Message{Type: mesh.MsgLeave}},
		{"status of a leaf", mesh.Message{Type: mesh.MsgStatus, Subtree: 1}},
		{"status with counters", mesh.Message{Type: mesh.MsgStatus, Capacity: 3, Free: 1, Subtree: 9, Candidates: []mesh.Candidate{{PeerInfo: mid, Depth: 2, Free: 1}}, Counters: []mesh.CounterValue{{Name: "hearts", Value: 1 << 40}, {Name: "web", Value: 2}}}},
		{"path", mesh.Message{Type: mesh.MsgPath, Path: []mesh.PeerInfo{root}, Depth: 1}},
		{"heartbeat out of the tree", mesh.Message{Type: mesh.MsgPath, Depth: 1 << 16}},
		{"pull", mesh.Message{Type: mesh.MsgPull, Seq: 77, Count: 12}},
		{"ping", mesh.Message{Type: mesh.MsgPing, Time: 1_700_000_000_123_456_789}},
		{"pong", mesh.Message{Type: mesh.MsgPong, Time: 1_700_000_000_123_456_789, Depth: 3, Free: 1}},
		// What /peerscope/mesh/1.2.0 added.
		{"pong with what the answerer holds", mesh.Message{Type: mesh.MsgPong, Time: 5, Depth: 2, Seq: 1240}},
		{"heartbeat with what the parent holds", mesh.Message{Type: mesh.MsgPath, Depth: 1, Seq: 1236}},
		{"receipt", mesh.Message{Type: mesh.MsgReceipt, Parent: "12D3KooWMid", Seq: 1235, Count: 5, Subtree: 1}},
		{"receipt of nothing yet", mesh.Message{Type: mesh.MsgReceipt, Parent: "12D3KooWMid", Subtree: 1}},
		{"edge", mesh.Message{Type: mesh.MsgEdge, Seq: 1 << 40}},
		{"status with vouches", mesh.Message{Type: mesh.MsgStatus, Capacity: 4, Subtree: 5, Vouches: []mesh.Candidate{{PeerInfo: mid, Depth: 2, Proven: 3}}}},
		{"attach naming a withholder", mesh.Message{Type: mesh.MsgAttach, Seq: 10, Lost: "12D3KooWMid", Flags: mesh.AttachWithheld}},
		{"leave handing over", mesh.Message{Type: mesh.MsgLeave, Flags: mesh.LeaveHandover, Candidates: []mesh.Candidate{{PeerInfo: mid, Depth: 1, Free: 2}}}},
		{"move", mesh.Message{Type: mesh.MsgAttach, Seq: 11, Flags: mesh.AttachImprove}},
	} {
		v.Messages = append(v.Messages, frameVector{Name: tc.name, Frame: hexFrame(&tc.m), Want: jsonMessage(&tc.m)})
	}

	sign := func(c *chunk.Chunk, k ed25519.PrivateKey) *chunk.Chunk {
		c.Signature = ed25519.Sign(k, c.SigningBytes())
		return c
	}
	chunkVec := func(name string, c *chunk.Chunk) chunkVector {
		return chunkVector{Name: name, Frame: hexFrame(&mesh.Message{Type: mesh.MsgChunk, Chunk: c}), Signing: hex.EncodeToString(c.SigningBytes())}
	}
	part := func() *chunk.Chunk {
		return &chunk.Chunk{Broadcast: id, Seq: 41, Wallclock: 1_700_000_000_000_000_000, Duration: 200_000_000, Flags: chunk.FlagKeyframe, Payload: []byte("a CMAF part, or so")}
	}
	v.Good = []chunkVector{
		chunkVec("a keyframe part", sign(part(), priv)),
		chunkVec("an init", sign(&chunk.Chunk{Broadcast: id, Seq: 41, Wallclock: 5, Flags: chunk.FlagInit, Payload: []byte("ftyp moov")}, priv)),
		chunkVec("the end, empty", sign(&chunk.Chunk{Broadcast: id, Seq: 900, Wallclock: -1, Flags: chunk.FlagEnd, Payload: []byte{}}, priv)),
		chunkVec("a private part (epoch 7)", sign(&chunk.Chunk{Broadcast: id, Seq: 1 << 40, Wallclock: 9, Epoch: 7, Payload: []byte("sealed")}, priv)),
	}
	alter := func(name string, f func(c *chunk.Chunk)) chunkVector {
		c := sign(part(), priv).Clone()
		f(c)
		return chunkVec(name, c)
	}
	v.Bad = []chunkVector{
		alter("payload altered", func(c *chunk.Chunk) { c.Payload = []byte("a CMAF part, or sO") }),
		alter("seq altered", func(c *chunk.Chunk) { c.Seq++ }),
		alter("wallclock altered", func(c *chunk.Chunk) { c.Wallclock-- }),
		alter("duration altered", func(c *chunk.Chunk) { c.Duration = 1 }),
		alter("flags altered", func(c *chunk.Chunk) { c.Flags = 0 }),
		alter("epoch added", func(c *chunk.Chunk) { c.Epoch = 1 }),
		alter("signature cut", func(c *chunk.Chunk) { c.Signature = c.Signature[:63] }),
		alter("signature flipped", func(c *chunk.Chunk) { s := append([]byte(nil), c.Signature...); s[10] ^= 1; c.Signature = s }),
		alter("another broadcast of the same key", func(c *chunk.Chunk) { c.Broadcast = strings.TrimSuffix(id, "abcdefgh") + "zzzzzzzz" }),
		chunkVec("signed by another key", sign(part(), otherRaw)),
	}

	long := strings.Repeat("x", 513)
	many := make([]mesh.PeerInfo, 65)
	manyVouches := make([]mesh.Candidate, 65)
	for i := range many {
		many[i] = mesh.PeerInfo{ID: "p"}
		manyVouches[i] = mesh.Candidate{PeerInfo: mesh.PeerInfo{ID: "p"}, Proven: 1}
	}
	for _, tc := range []struct {
		name string
		m    mesh.Message
	}{
		{"a path of 65", mesh.Message{Type: mesh.MsgAccept, Path: many}},
		{"a peer ID of 513 bytes", mesh.Message{Type: mesh.MsgAccept, Path: []mesh.PeerInfo{{ID: mesh.PeerID(long)}}}},
		{"an address of 513 bytes", mesh.Message{Type: mesh.MsgAttach, Addrs: []string{long}}},
		{"65 vouches", mesh.Message{Type: mesh.MsgStatus, Vouches: manyVouches}},
		{"a receipt's parent of 513 bytes", mesh.Message{Type: mesh.MsgReceipt, Parent: mesh.PeerID(long)}},
		{"a vouch's peer ID of 513 bytes", mesh.Message{Type: mesh.MsgStatus, Vouches: []mesh.Candidate{{PeerInfo: mesh.PeerInfo{ID: mesh.PeerID(long)}}}}},
	} {
		v.Refused = append(v.Refused, frameVector{Name: tc.name, Frame: hexFrame(&tc.m)})
		var m mesh.Message
		if err := m.Unmarshal(mesh.AppendFrame(nil, &tc.m)[2:]); err == nil {
			t.Fatalf("%s: the Go decoder takes it: not a refusal to hold the browser to", tc.name)
		}
	}
	// A frame whose length is over mesh.MaxFrameSize.
	over := []byte{}
	for n := uint64(mesh.MaxFrameSize + 1); ; n >>= 7 {
		if n < 0x80 {
			over = append(over, byte(n))
			break
		}
		over = append(over, byte(n&0x7f|0x80))
	}
	v.Refused = append(v.Refused, frameVector{Name: "a frame over MaxFrameSize", Frame: hex.EncodeToString(over)})
	return v
}

// TestJS runs the browser peer's own tests (test/*.test.js, node's test
// runner) against vectors this Go code makes, so the JavaScript is held to
// the Go codec and signatures of this very commit.
func TestJS(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		need(t, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@bufbuild", "protobuf")); err != nil {
		need(t, "web/peer/node_modules (npm ci --ignore-scripts in web/peer)")
	}
	b, err := json.MarshalIndent(makeVectors(t), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "vectors.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob(filepath.Join("test", "*.test.js"))
	cmd := exec.CommandContext(t.Context(), "node", append([]string{"--test"}, tests...)...)
	cmd.Env = append(os.Environ(), "PEERSCOPE_VECTORS="+file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", lastLines(string(out), 10))
}

func need(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("no %s; .ci/run installs it", what)
	}
	t.Skipf("no %s", what)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

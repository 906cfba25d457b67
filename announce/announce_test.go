package announce

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/testutil"
)

// announcements is the one table of cases for the unit and fuzz tests.
var announcements = []Announcement{
	{Title: "Hello", Started: time.Unix(1_900_000_000, 5), Version: 1},
	{Title: "", Version: 7, Ended: true},
	{Title: "Ünïcode ✓ " + strings.Repeat("x", 150), Started: time.Unix(0, 1), Version: 1 << 62, Bitrate: 2_500_000},
}

// signAll signs the table's announcements as broadcast id's.
func signAll(t testing.TB, key crypto.PrivKey, id string) []Signed {
	t.Helper()
	var out []Signed
	for _, a := range announcements {
		a.Broadcast = id
		s, err := Sign(a, key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	for _, s := range signAll(t, key, id) {
		a := s.Announcement
		got, err := Decode(s.Encode(), id, pub)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != a.Title || !got.Started.Equal(a.Started) || got.Ended != a.Ended || got.Version != a.Version || got.Bitrate != a.Bitrate || got.Broadcast != id {
			t.Fatalf("got %+v, want %+v", got.Announcement, a)
		}
		// Another broadcast, another key, a changed byte: refused.
		if _, err := Decode(s.Encode(), id+"x", pub); !errors.Is(err, ErrInvalid) {
			t.Fatalf("another broadcast: %v", err)
		}
		_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
		if _, err := Decode(s.Encode(), id, other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("another key: %v", err)
		}
		enc := s.Encode()
		for i := range enc {
			bad := bytes.Clone(enc)
			bad[i] ^= 0x20
			if _, err := Decode(bad, id, pub); err == nil {
				t.Fatalf("byte %d changed, still verifies", i)
			}
		}
	}
}

// handEncode is the body as the hand-written codec of /peerscope/info/1.0.0
// wrote it (before the generated code): the broadcast and the version
// always, the other fields when set.
func handEncode(a Announcement) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, a.Broadcast)
	if a.Title != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, a.Title)
	}
	if !a.Started.IsZero() {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Started.UnixNano()))
	}
	if a.Ended {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, a.Version)
	if a.Bitrate > 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Bitrate))
	}
	return b
}

// TestSameBytesAsBefore: for every announcement a broadcaster makes (a
// broadcast ID, a version above 0) the generated code writes the bytes the
// hand-written codec wrote, and what that codec wrote decodes the same, so
// the protocol ID need not change: old and new nodes understand each other.
func TestSameBytesAsBefore(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	for _, s := range signAll(t, key, id) {
		a := s.Announcement
		if !bytes.Equal(s.body, handEncode(a)) {
			t.Fatalf("%+v:\ngenerated % x\nby hand   % x", a, s.body, handEncode(a))
		}
		body := handEncode(a)
		sig, _ := key.Sign(append([]byte(domain), body...))
		got, err := Decode(Signed{body: body, sig: sig}.Encode(), id, pub)
		if err != nil || got.Title != a.Title || !got.Started.Equal(a.Started) || got.Ended != a.Ended || got.Version != a.Version || got.Bitrate != a.Bitrate {
			t.Fatalf("%+v decodes as %+v, %v", a, got.Announcement, err)
		}
	}
}

// TestUnknownFields: a newer broadcaster's extra field is skipped, and its
// signature (over the body as sent) still verifies; a known field with
// another wire type is refused, as the hand-written codec refused it.
func TestUnknownFields(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	a := Announcement{Broadcast: id, Title: "t", Version: 3}
	body, err := a.encode()
	if err != nil {
		t.Fatal(err)
	}
	future := protowire.AppendTag(bytes.Clone(body), 99, protowire.BytesType)
	future = protowire.AppendString(future, "from the future")
	sig, err := key.Sign(append([]byte(domain), future...))
	if err != nil {
		t.Fatal(err)
	}
	s := Signed{body: future, sig: sig}
	got, err := Decode(s.Encode(), id, pub)
	if err != nil || got.Title != "t" || got.Version != 3 {
		t.Fatalf("%+v, %v", got.Announcement, err)
	}
	if !bytes.Equal(got.Encode(), s.Encode()) {
		t.Fatal("the announcement is not passed on as it came")
	}
	wrong := protowire.AppendTag(bytes.Clone(body), 5, protowire.BytesType) // version as bytes
	wrong = protowire.AppendString(wrong, "x")
	sig, _ = key.Sign(append([]byte(domain), wrong...))
	if _, err := Decode(Signed{body: wrong, sig: sig}.Encode(), id, pub); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a known field with another wire type: %v", err)
	}
}

func TestCleanTitle(t *testing.T) {
	for in, want := range map[string]string{
		"  Hello\x00 world\n ":                        "Hello world",
		strings.Repeat("é", 300):                      strings.Repeat("é", MaxTitle),
		"\xff\xfeok":                                  "ok",
		"My first \nbroadcast":                        "My first broadcast",
		strings.Repeat("a", MaxTitle-1) + " b" + "cd": strings.Repeat("a", MaxTitle-1),
	} {
		if got := CleanTitle(in); got != want {
			t.Errorf("CleanTitle(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFetch: over two libp2p hosts on loopback, a holder's announcement is
// fetched and verified; one it does not hold is ErrNotHeld; one checked
// against another key is refused.
func TestFetch(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	s, err := Sign(Announcement{Broadcast: id, Title: "over the wire", Version: 2}, key)
	if err != nil {
		t.Fatal(err)
	}
	holder := testutil.Host(t)
	holder.SetStreamHandler(ProtocolID, func(st network.Stream) {
		Serve(st, func(b string) (Signed, bool) { return s, b == id })
	})
	asker := testutil.Host(t)
	info := peer.AddrInfo{ID: holder.ID(), Addrs: holder.Addrs()}
	got, err := Fetch(t.Context(), asker, info, id, pub)
	if err != nil || got.Title != "over the wire" || !bytes.Equal(got.Encode(), s.Encode()) {
		t.Fatalf("fetched %+v, %v", got.Announcement, err)
	}
	if _, err := Fetch(t.Context(), asker, info, id+"x", pub); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("an announcement the peer does not hold: %v", err)
	}
	_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	if _, err := Fetch(t.Context(), asker, info, id, other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("checked against another key: %v", err)
	}
}

// FuzzDecode: any bytes decode to an error or to an announcement that
// encodes back to the same fields; only what the key signed verifies.
func FuzzDecode(f *testing.F) {
	key, pub, id := testutil.Broadcaster(f)
	for _, s := range signAll(f, key, id) {
		f.Add(s.Encode())
		f.Add(s.body)
	}
	striped, err := Sign(Announcement{Broadcast: id, Title: "striped", Version: 3, Stripes: 4, Parity: 2}, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(striped.Encode())
	f.Add(striped.body)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := decodeBody(b); err == nil {
			enc, err := a.encode()
			if err != nil {
				t.Fatalf("%+v decoded but does not encode: %v", a, err)
			}
			again, err := decodeBody(enc)
			if err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", a, err)
			}
			if again.Broadcast != a.Broadcast || again.Title != a.Title || again.Ended != a.Ended ||
				again.Version != a.Version || again.Bitrate != a.Bitrate || !again.Started.Equal(a.Started) ||
				again.Stripes != a.Stripes || again.Parity != a.Parity {
				t.Fatalf("%+v re-encoded reads %+v", a, again)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not an ErrInvalid", err)
		}
		if s, err := Decode(b, id, pub); err == nil {
			// It verified: it must be one we signed (the fuzzer cannot forge).
			if s.Broadcast != id {
				t.Fatalf("verified an announcement about %q", s.Broadcast)
			}
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not an ErrInvalid", err)
		}
	})
}

// TestStriping: the striping travels signed; one the chunks cannot carry,
// or parity without stripes, is refused.
func TestStriping(t *testing.T) {
	key, pub, id := testutil.Broadcaster(t)
	s, err := Sign(Announcement{Broadcast: id, Version: 3, Stripes: 4, Parity: 2}, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(s.Encode(), id, pub)
	if err != nil || got.Stripes != 4 || got.Parity != 2 {
		t.Fatalf("got %+v, %v", got.Announcement, err)
	}
	for _, bad := range [][2]int{{17, 0}, {0, 1}, {12, 5}} {
		s, err := Sign(Announcement{Broadcast: id, Version: 3, Stripes: bad[0], Parity: bad[1]}, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(s.Encode(), id, pub); !errors.Is(err, ErrInvalid) {
			t.Errorf("striped %d+%d: %v", bad[0], bad[1], err)
		}
	}
}

// TestServePeerCap: a peer that opens ten info streams and never finishes
// its requests gets four held under the host's resource manager
// (p2plimit.ServiceInfo); six are reset at once. (Before, each waited out
// its 5 s deadline with a goroutine, however many there were.)
func TestServePeerCap(t *testing.T) {
	holder := testutil.LimitedHost(t)
	holder.SetStreamHandler(ProtocolID, func(st network.Stream) {
		Serve(st, func(string) (Signed, bool) { return Signed{}, false })
	})
	reset := testutil.HangingStreams(t, testutil.TCPHost(t), peer.AddrInfo{ID: holder.ID(), Addrs: holder.Addrs()}, ProtocolID, 10, 0x80)
	testutil.WaitFor(t, 4*time.Second, "six streams reset and four held", func() bool {
		return reset.Load() >= 6 && testutil.ServiceStreams(holder, p2plimit.ServiceInfo) == 4
	})
}

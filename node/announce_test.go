package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
)

// testKey is a fixed broadcaster key, so that fuzz seeds stay valid.
func testKey(t testing.TB) (crypto.PrivKey, ed25519.PublicKey, string) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := k.GetPublic().Raw()
	return k, ed25519.PublicKey(raw), pid.String() + ".abcdefgh"
}

var announcements = []Announcement{
	{Title: "Hello", Started: time.Unix(1_900_000_000, 5), Version: 1},
	{Title: "", Version: 7, Ended: true},
	{Title: "Ünïcode ✓ " + strings.Repeat("x", 150), Started: time.Unix(0, 1), Version: 1 << 62, Bitrate: 2_500_000},
}

func TestAnnouncementRoundTrip(t *testing.T) {
	key, pub, id := testKey(t)
	for _, a := range announcements {
		a.Broadcast = id
		s, err := signAnnouncement(a, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAnnouncement(s.encode(), id, pub)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != a.Title || !got.Started.Equal(a.Started) || got.Ended != a.Ended || got.Version != a.Version || got.Bitrate != a.Bitrate || got.Broadcast != id {
			t.Fatalf("got %+v, want %+v", got.Announcement, a)
		}
		// Another broadcast, another key, a changed byte: refused.
		if _, err := decodeAnnouncement(s.encode(), id+"x", pub); !errors.Is(err, ErrBadAnnouncement) {
			t.Fatalf("another broadcast: %v", err)
		}
		_, other, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
		if _, err := decodeAnnouncement(s.encode(), id, other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadAnnouncement) {
			t.Fatalf("another key: %v", err)
		}
		enc := s.encode()
		for i := range enc {
			bad := bytes.Clone(enc)
			bad[i] ^= 0x20
			if _, err := decodeAnnouncement(bad, id, pub); err == nil {
				t.Fatalf("byte %d changed, still verifies", i)
			}
		}
	}
}

// TestAnnouncementUnknownFields: a newer broadcaster's extra field is
// skipped, and its signature (over the body as sent) still verifies.
func TestAnnouncementUnknownFields(t *testing.T) {
	key, pub, id := testKey(t)
	a := Announcement{Broadcast: id, Title: "t", Version: 3}
	body := a.marshal()
	body = protowire.AppendTag(body, 99, protowire.BytesType)
	body = protowire.AppendString(body, "from the future")
	sig, err := key.Sign(append([]byte(announceDomain), body...))
	if err != nil {
		t.Fatal(err)
	}
	s := signedAnnouncement{body: body, sig: sig}
	got, err := decodeAnnouncement(s.encode(), id, pub)
	if err != nil || got.Title != "t" || got.Version != 3 {
		t.Fatalf("%+v, %v", got.Announcement, err)
	}
}

func TestCleanTitle(t *testing.T) {
	for in, want := range map[string]string{
		"  Hello\x00 world\n ":   "Hello world",
		strings.Repeat("é", 300): strings.Repeat("é", MaxTitle),
		"\xff\xfeok":             "ok",
	} {
		if got := cleanTitle(in); got != want {
			t.Errorf("cleanTitle(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzAnnouncement: any bytes decode to an error or to an announcement
// that encodes back to the same fields; only what the key signed verifies.
func FuzzAnnouncement(f *testing.F) {
	key, pub, id := testKey(f)
	for _, a := range announcements {
		a.Broadcast = id
		s, err := signAnnouncement(a, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.encode())
		f.Add(s.body)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Announcement
		if err := a.unmarshal(b); err == nil {
			var again Announcement
			if err := again.unmarshal(a.marshal()); err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", a, err)
			}
			if again.Broadcast != a.Broadcast || again.Title != a.Title || again.Ended != a.Ended ||
				again.Version != a.Version || again.Bitrate != a.Bitrate || !again.Started.Equal(a.Started) {
				t.Fatalf("%+v re-encoded reads %+v", a, again)
			}
		} else if !errors.Is(err, ErrBadAnnouncement) {
			t.Fatalf("error %v is not an ErrBadAnnouncement", err)
		}
		if s, err := decodeAnnouncement(b, id, pub); err == nil {
			// It verified: it must be one we signed (the fuzzer cannot forge).
			if s.Broadcast != id {
				t.Fatalf("verified an announcement about %q", s.Broadcast)
			}
		} else if !errors.Is(err, ErrBadAnnouncement) {
			t.Fatalf("error %v is not an ErrBadAnnouncement", err)
		}
	})
}

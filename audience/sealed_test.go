package audience

import (
	"bytes"
	"errors"
	"testing"
)

func parseSealed(t testing.TB, b []byte) *Sealed {
	t.Helper()
	s, err := ParseSealed(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChatRoundTrip: a member's comment opens at every other member (who
// got the keys from its own bundle), bound to its author.
func TestChatRoundTrip(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	kb := device(t, bob, 2)
	b, err := e.Wrap(caster.key, kb.Key, t0)
	if err != nil {
		t.Fatal(err)
	}
	bobKeys, err := b.Open(kb, broadcast)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello from alice")
	wire, err := e.Keys().SealChat(seededRand(9), alice.id, msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire, msg) {
		t.Fatal("the comment is in the clear")
	}
	s := parseSealed(t, wire)
	if s.Epoch != 5 {
		t.Fatalf("epoch %d", s.Epoch)
	}
	got, err := bobKeys.OpenChat(alice.id, s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%q, %v", got, err)
	}
}

// TestChatRefusals: a comment passed off as another member's, moved to
// another epoch or broadcast, or altered in any bit is refused.
func TestChatRefusals(t *testing.T) {
	e5, e6 := epoch(t, broadcast, 5, 1), epoch(t, broadcast, 6, 2)
	wire, err := e5.Keys().SealChat(seededRand(9), alice.id, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	s := parseSealed(t, wire)
	if _, err := e5.Keys().OpenChat(bob.id, s); !errors.Is(err, ErrOpen) {
		t.Errorf("another sender: %v", err)
	}
	if _, err := e6.Keys().OpenChat(alice.id, s); !errors.Is(err, ErrWrongEpoch) {
		t.Errorf("another epoch's keys: %v", err)
	}
	moved := *s
	moved.Epoch = 6
	if _, err := e6.Keys().OpenChat(alice.id, &moved); !errors.Is(err, ErrOpen) {
		t.Errorf("relabelled to epoch 6: %v", err)
	}
	other := epoch(t, otherCast, 5, 1) // the same secrets, another broadcast
	if _, err := other.Keys().OpenChat(alice.id, s); !errors.Is(err, ErrOpen) {
		t.Errorf("another broadcast: %v", err)
	}
	if _, err := e5.Keys().OpenReplay(string(alice.id), s); !errors.Is(err, ErrOpen) {
		t.Errorf("a chat message opened as a replay secret: %v", err)
	}
	for i := range 8 * len(wire) {
		f, err := ParseSealed(flipBit(wire, i))
		if err == nil {
			_, err = e5.Keys().OpenChat(alice.id, f)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrOpen) && !errors.Is(err, ErrWrongEpoch) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
	if _, err := e5.Keys().SealChat(seededRand(9), alice.id, make([]byte, MaxChatSize+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a message over the chat's limit: %v", err)
	}
}

// TestChatNoncesAreFresh: two seals of one message differ (the nonce is
// drawn each time), so nothing tells a reader that a comment was repeated.
func TestChatNoncesAreFresh(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	r := seededRand(9)
	a, _ := e.Keys().SealChat(r, alice.id, []byte("same"))
	b, _ := e.Keys().SealChat(r, alice.id, []byte("same"))
	if parseSealed(t, a).Nonce == parseSealed(t, b).Nonce || bytes.Equal(a, b) {
		t.Fatal("a nonce was drawn twice")
	}
}

func TestReplaySecret(t *testing.T) {
	e := epoch(t, broadcast, 5, 1)
	wire, err := e.Keys().SealReplay(seededRand(9), "comments", []byte("the comment log"))
	if err != nil {
		t.Fatal(err)
	}
	s := parseSealed(t, wire)
	if got, err := e.Keys().OpenReplay("comments", s); err != nil || string(got) != "the comment log" {
		t.Fatalf("%q, %v", got, err)
	}
	if _, err := e.Keys().OpenReplay("epochs", s); !errors.Is(err, ErrOpen) {
		t.Fatalf("under another label: %v", err)
	}
	if _, err := e.Keys().OpenChat(alice.id, s); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened as chat: %v", err)
	}
}

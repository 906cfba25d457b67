package audience

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/proto/audiencepb"
)

// token returns a token for p signed by by, valid for an hour from t0.
func token(t testing.TB, b string, p peer.ID, version uint64, by party) *Token {
	t.Helper()
	tok := &Token{Broadcast: b, Peer: p, RosterVersion: version, Issued: t0, Expires: t0.Add(time.Hour)}
	if by.id == caster.id {
		if err := tok.Sign(by.key); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A forgery: the body a broadcaster would sign, signed by another key.
	var err error
	tok.body, err = deterministic.Marshal(&audiencepb.MembershipToken{Broadcast: b, Peer: []byte(p), RosterVersion: version,
		Issued: t0.UnixNano(), Expires: t0.Add(time.Hour).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := signerOf(by.key)
	tok.Signature = s.sign(membershipDomain, tok.body)
	return tok
}

func reparseToken(t testing.TB, tok *Token) *Token {
	t.Helper()
	got, err := ParseToken(tok.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTokenRefusals: a token is good only for its broadcast, its peer,
// before its expiry, and only from the broadcaster.
func TestTokenRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tok       *Token
		broadcast string
		peer      peer.ID
		now       time.Time
		want      error
	}{
		{"valid", token(t, broadcast, alice.id, 1, caster), broadcast, alice.id, t0.Add(time.Minute), nil},
		{"expired", token(t, broadcast, alice.id, 1, caster), broadcast, alice.id, t0.Add(time.Hour), ErrExpired},
		{"another peer's", token(t, broadcast, alice.id, 1, caster), broadcast, bob.id, t0, ErrWrongPeer},
		{"another broadcast's", token(t, otherCast, alice.id, 1, caster), broadcast, alice.id, t0, ErrWrongBroadcast},
		{"forged", token(t, broadcast, alice.id, 1, rogue), broadcast, alice.id, t0, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := reparseToken(t, tc.tok).Verify(tc.broadcast, tc.peer, tc.now); !isErr(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
	tok := &Token{Broadcast: broadcast, Peer: alice.id, RosterVersion: 1, Issued: t0, Expires: t0.Add(time.Hour)}
	if err := tok.Sign(rogue.key); !errors.Is(err, ErrNotBroadcaster) {
		t.Fatalf("signed by another key: %v", err)
	}
	tok.Expires = t0
	if err := tok.Sign(caster.key); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no lifetime: %v", err)
	}
}

// roster returns roster version v of broadcast listing the given members,
// each with one device (its peer and a fingerprint made from its name).
func roster(t testing.TB, v uint64, members ...party) *Roster {
	t.Helper()
	r := &Roster{Broadcast: broadcast, Version: v, Issued: t0}
	for _, m := range members {
		var fp Fingerprint
		copy(fp[:], m.id)
		r.Members = append(r.Members, Member{Account: "twitter:" + m.id.String()[:12], Devices: []Device{{Peer: m.id, Fingerprint: fp}}})
	}
	if err := r.Sign(caster.key); err != nil {
		t.Fatal(err)
	}
	got, err := ParseRoster(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(broadcast); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRosterVersionOnlyGrows: a roster replaces another only with a
// greater version: an older one (which still lists a removed member) and
// another of the same version are refused.
func TestRosterVersionOnlyGrows(t *testing.T) {
	v1, v2, v3 := roster(t, 1, alice, bob), roster(t, 2, alice), roster(t, 3, alice, carol)
	if err := v2.Follows(v1); err != nil {
		t.Fatal(err)
	}
	if err := v3.Follows(v2); err != nil {
		t.Fatal(err)
	}
	if err := v1.Follows(nil); err != nil {
		t.Fatal(err)
	}
	if err := v1.Follows(v2); !errors.Is(err, ErrRosterRollback) {
		t.Fatalf("back from 2 to 1: %v", err)
	}
	if err := roster(t, 2, alice, bob).Follows(v2); !errors.Is(err, ErrRosterRollback) {
		t.Fatalf("another roster 2: %v", err)
	}
	other := &Roster{Broadcast: otherCast, Version: 9, Issued: t0}
	if err := other.Sign(caster.key); err != nil {
		t.Fatal(err)
	}
	if err := other.Follows(v2); !errors.Is(err, ErrWrongBroadcast) {
		t.Fatalf("another broadcast's roster: %v", err)
	}
	if err := other.Verify(broadcast); !errors.Is(err, ErrWrongBroadcast) {
		t.Fatalf("Verify another broadcast's roster: %v", err)
	}
}

// TestRosterAdmits: at attach and on each roster update, a parent admits a
// peer whose token verifies and whom the roster lists; a member removed
// since its token is refused; a token newer than the parent's roster is the
// broadcaster's word for a member added since.
func TestRosterAdmits(t *testing.T) {
	v1, v2 := roster(t, 1, alice, bob), roster(t, 2, alice)
	bobTok := token(t, broadcast, bob.id, 1, caster)
	if err := v1.Admits(bobTok, bob.id, t0); err != nil {
		t.Fatal(err)
	}
	if err := v2.Admits(bobTok, bob.id, t0); !errors.Is(err, ErrNotMember) {
		t.Fatalf("bob removed in roster 2: %v", err)
	}
	if err := v1.Admits(token(t, broadcast, carol.id, 3, caster), carol.id, t0); err != nil {
		t.Fatalf("carol's token from roster 3 at a parent on roster 1: %v", err)
	}
	if err := v1.Admits(token(t, broadcast, carol.id, 1, caster), carol.id, t0); !errors.Is(err, ErrNotMember) {
		t.Fatalf("carol not in roster 1: %v", err)
	}
	if err := v1.Admits(bobTok, alice.id, t0); !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("bob's token presented by alice: %v", err)
	}
	if err := v1.Admits(token(t, broadcast, bob.id, 1, rogue), bob.id, t0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged token: %v", err)
	}
	if !v2.HasPeer(alice.id) || v2.HasPeer(bob.id) || !v1.HasDevice(v1.Members[1].Devices[0].Fingerprint) || v2.HasDevice(v1.Members[1].Devices[0].Fingerprint) {
		t.Fatal("HasPeer, HasDevice")
	}
}

// TestRosterRefusals: a forged roster, and the limits Sign and Parse keep.
func TestRosterRefusals(t *testing.T) {
	v1 := roster(t, 1, alice, bob)
	s, _ := signerOf(rogue.key)
	forged, err := ParseRoster(marshalSigned(v1.body, s.sign(rosterDomain, v1.body)))
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(broadcast); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	dup := &Roster{Broadcast: broadcast, Version: 2, Members: []Member{{Account: "a:1"}, {Account: "a:1"}}}
	dev := Device{Peer: alice.id}
	dupDevice := &Roster{Broadcast: broadcast, Version: 2, Members: []Member{{Account: "a:1", Devices: []Device{dev}}, {Account: "a:2", Devices: []Device{dev}}}}
	tooMany := &Roster{Broadcast: broadcast, Version: 2, Members: []Member{{Account: "a:1", Devices: make([]Device, MaxMemberDevices+1)}}}
	for name, r := range map[string]*Roster{
		"version 0":        {Broadcast: broadcast},
		"account twice":    dup,
		"device twice":     dupDevice,
		"too many devices": tooMany,
		"control in name":  {Broadcast: broadcast, Version: 1, Members: []Member{{Account: "a:\n"}}},
		"long account":     {Broadcast: broadcast, Version: 1, Members: []Member{{Account: strings.Repeat("a", MaxAccountLen+1)}}},
		"bad broadcast":    {Broadcast: "nope", Version: 1},
	} {
		if err := r.Sign(caster.key); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if err := v1.Sign(rogue.key); !errors.Is(err, ErrNotBroadcaster) {
		t.Errorf("signed by another key: %v", err)
	}
}

// TestTopic: the private topic's name is the same in every epoch of a
// broadcast, another with another broadcast secret, and says nothing of
// the broadcast ID.
func TestTopic(t *testing.T) {
	bs := broadcastSecret(t, 1)
	e1, err := NewEpoch(seededRand(1), broadcast, 1, bs)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := NewEpoch(seededRand(2), broadcast, 2, bs)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := NewEpoch(seededRand(2), broadcast, 3, broadcastSecret(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	topic := e1.Keys().Topic()
	if topic != e2.Keys().Topic() || topic == moved.Keys().Topic() || len(topic) != 32 {
		t.Fatalf("topics %q %q %q", topic, e2.Keys().Topic(), moved.Keys().Topic())
	}
	id := strings.ToLower(broadcast)
	for i := 0; i+6 <= len(topic); i++ {
		if strings.Contains(id, topic[i:i+6]) {
			t.Fatalf("the topic %q shares %q with the broadcast ID", topic, topic[i:i+6])
		}
	}
}

package chat

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
)

// TestSwarmTrustRefreshed: rooms have been running; the bootstrap revokes
// alice's attestation, and every node's trust is refreshed with the
// revocation. From then on alice is anonymous everywhere: gone from the
// broadcaster's identified viewers at once, her next comment delivered
// without her name, and her own node comments as anonymous too. Carol,
// not revoked, keeps her name. (Before, a room kept the trust it joined
// with for its whole life.)
func TestSwarmTrustRefreshed(t *testing.T) {
	aliceAtt := attestation(alice.id, "alice", bootKey)
	s := newSwarm(t, map[testPeer][]byte{
		broadcasterPeer: nil,
		alice:           aliceAtt,
		carol:           attestation(carol.id, "carol", bootKey),
	})
	s.advance(2 * time.Second)
	s.advance(time.Second)
	br := s.ms[broadcasterPeer.id]
	if v := br.viewersNow(tickInput{audience: 2}); len(v.Identified) != 2 {
		t.Fatalf("before: %+v", v.Identified)
	}
	a, _ := ParseAttestation(aliceAtt)
	revoked, err := identity.NewTrustSet(identity.KeySet{
		Keys:        []identity.Key{{Public: bootKey.Public().(ed25519.PublicKey)}},
		Revocations: []identity.Revocation{{Attestation: a.ID(), Until: a.Expires}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.ms {
		m.setTrust(s.now, revoked)
	}
	v := br.viewersNow(tickInput{audience: 2})
	if len(v.Identified) != 1 || v.Identified[0].Peer != carol.id {
		t.Fatalf("after the revocation, identified: %+v", v.Identified)
	}
	if s.ms[alice.id].cfg.attested != nil {
		t.Fatal("alice's own node still thinks it is identified")
	}
	s.evs = map[peer.ID][]Event{}
	b, err := commentOf(s.ms[alice.id], s.now, "still me?")
	s.publish(alice.id, b, err)
	b, err = commentOf(s.ms[carol.id], s.now, "me too")
	s.publish(carol.id, b, err)
	got := map[string]*Identity{}
	for _, e := range s.evs[broadcasterPeer.id] {
		if c, ok := e.(*Comment); ok {
			got[c.Text] = c.Author.Identity
		}
	}
	if who, ok := got["still me?"]; !ok || who != nil {
		t.Fatalf("alice's comment after the revocation: delivered %v, as %+v", ok, who)
	}
	if who := got["me too"]; who == nil || who.Handle != "@carol" {
		t.Fatalf("carol's comment: %+v", who)
	}
}

func commentOf(m *machine, now time.Time, text string) ([]byte, error) {
	_, b, err := m.comment(now, text, time.Time{})
	return b, err
}

package bootstrap_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pgtest"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// TestRemovedMemberGetsNoBundle: dave is in roster 1 and the broadcaster
// wraps epochs 1 and 2 for him (2 ahead of a switch); roster 2 removes
// him. From then on the mailbox answers dave 403 — for epoch 2 too, which
// was wrapped for his key and which he could otherwise still open — while
// alice gets both; a bundle for dave's key put after the removal is
// refused, and with it the whole request.
func TestRemovedMemberGetsNoBundle(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, dave := e.node(1), e.node(2), e.node(4)
		e.x.AddUser(xUser("400", "dave"))
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		e.signIn(dave, "400")
		ak, dk := e.deviceKey(alice, 1), e.deviceKey(dave, 4)
		for _, p := range []struct {
			n *node
			k *audience.DevicePrivateKey
		}{{alice, ak}, {dave, dk}} {
			if _, err := p.n.c.PublishDeviceKey(ctx, p.k.Key.Marshal()); err != nil {
				t.Fatal(err)
			}
		}
		id := bob.broadcastID("priv")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, member("twitter:100", ak), member("twitter:400", dk))); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutBundles(ctx, id, append(e.wrap(bob, id, 1, ak, dk), e.wrap(bob, id, 2, ak, dk)...)); err != nil {
			t.Fatal(err)
		}
		if res, err := dave.c.Bundles(ctx, id, 0); err != nil || !slices.Equal(openAll(t, dk, id, res.Bundles), []uint32{1, 2}) {
			t.Fatalf("dave before his removal: %v", err)
		}

		e.clock.Advance(time.Second)
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 2, member("twitter:100", ak))); err != nil {
			t.Fatal(err)
		}
		for _, since := range []uint32{0, 2} {
			res, err := dave.c.Bundles(ctx, id, since)
			mustStatus(t, err, http.StatusForbidden, "forbidden")
			if len(res.Bundles) != 0 {
				t.Fatalf("dave, removed, got %d bundles", len(res.Bundles))
			}
		}
		_, err := dave.c.Roster(ctx, id)
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		if inv, err := dave.c.Invitations(ctx); err != nil || len(inv) != 0 {
			t.Fatalf("dave's invitations after his removal: %+v %v", inv, err)
		}
		if res, err := alice.c.Bundles(ctx, id, 0); err != nil || res.RosterVersion != 2 || !slices.Equal(openAll(t, ak, id, res.Bundles), []uint32{1, 2}) {
			t.Fatalf("alice after dave's removal: %+v %v", res, err)
		}
		before := e.count("bundles")
		_, err = bob.c.PutBundles(ctx, id, e.wrap(bob, id, 3, ak, dk))
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if n := e.count("bundles"); n != before {
			t.Fatalf("%d bundles after a refused put, %d before", n, before)
		}
	})
}

// TestDeviceKeyAttacks: mallory publishes alice's device key as her own
// (attested to mallory's account, the broadcasters who invite mallory
// would wrap for a key alice holds — and alice's key listed under mallory
// lets mallory pass off alice's device as hers); a key naming mallory's
// peer but signed by alice's; an expired key; a key from a node not signed
// in. Each refused, nothing stored. A signed-out node's key is no longer
// served, and an attestation altered or checked against other keys is not
// believed.
func TestDeviceKeyAttacks(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, mallory, anon := e.node(1), e.node(6), e.node(9)
		e.x.AddUser(xUser("666", "mallory"))
		e.signIn(alice, "100")
		e.signIn(mallory, "666")
		ak := e.deviceKey(alice, 1)

		_, err := mallory.c.PublishDeviceKey(ctx, ak.Key.Marshal())
		mustStatus(t, err, http.StatusForbidden, "forbidden")

		// Alice's signed body with mallory's peer in it.
		var s audiencepb.Signed
		var body audiencepb.DeviceKey
		if err := proto.Unmarshal(ak.Key.Marshal(), &s); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(s.Body, &body); err != nil {
			t.Fatal(err)
		}
		body.Peer = []byte(mallory.id)
		s.Body, _ = proto.Marshal(&body)
		forged, _ := proto.Marshal(&s)
		_, err = mallory.c.PublishDeviceKey(ctx, forged)
		mustStatus(t, err, http.StatusBadRequest, "bad_request")

		old, err := audience.NewDeviceKey(seeded(6), mallory.key, e.clock.Now().Add(-48*time.Hour), e.clock.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, err = mallory.c.PublishDeviceKey(ctx, old.Key.Marshal())
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		_, err = anon.c.PublishDeviceKey(ctx, e.deviceKey(anon, 9).Key.Marshal())
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		if n := e.count("device_keys"); n != 0 {
			t.Fatalf("%d device keys stored after refusals", n)
		}

		// Mallory's own key, then her sign-out: no longer served.
		mk := e.deviceKey(mallory, 6)
		entry, err := mallory.c.PublishDeviceKey(ctx, mk.Key.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		// Her attestation, made to say alice's account, fails its signature;
		// under another bootstrap's keys it is not believed at all.
		a, _ := api.ParseDeviceAttestation(entry.Attestation)
		a.Account = "twitter:100"
		altered := *entry.Attestation
		altered.Body = mustJSON(a)
		if _, _, err := (api.DeviceKeyEntry{DeviceKey: entry.DeviceKey, Attestation: &altered}).Open(e.svc.Server.TrustSet(), e.clock.Now()); err == nil {
			t.Fatal("an altered device attestation was believed")
		}
		other, _ := identity.Trust(make([]byte, 32))
		if _, _, err := entry.Open(other, e.clock.Now()); err == nil {
			t.Fatal("a device attestation was believed under another bootstrap's keys")
		}
		if err := mallory.c.SignOut(ctx, false); err != nil {
			t.Fatal(err)
		}
		got, err := alice.c.DeviceKeys(ctx, []string{"twitter:666"}, nil)
		if err != nil || len(got) != 1 || len(got[0].Keys) != 0 {
			t.Fatalf("a signed-out node's key still served: %+v %v", got, err)
		}
	})
}

// TestRosterRefusals: a roster put by someone else than the broadcaster,
// of another broadcast, with a broken signature, for a public or an
// unlisted broadcast, an older version, a request played again: each a
// clear 4xx, and the stored roster (and its members) is still the newest.
func TestRosterRefusals(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, mallory := e.node(1), e.node(2), e.node(6)
		e.signIn(bob, "200")
		ak := e.deviceKey(alice, 1)
		id, public, unlisted := bob.broadcastID("priv"), bob.broadcastID("open"), bob.broadcastID("none")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.Announce(ctx, public, announcement(public, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		bob.c.HTTP = &http.Client{Transport: rec}
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 2, member("twitter:100", ak))); err != nil {
			t.Fatal(err)
		}
		captured, capturedBody := rec.last(http.MethodPut)
		bob.c.HTTP = nil

		mallorys := mallory.broadcastID("priv")
		broken := e.roster(bob, id, 3)
		broken[len(broken)-1] ^= 1
		cases := []struct {
			name   string
			n      *node
			id     string
			roster []byte
			status int
			code   string
		}{
			{"signed by another", mallory, id, e.roster(bob, id, 3), http.StatusForbidden, "forbidden"},
			{"of another broadcast", bob, id, e.roster(bob, public, 3), http.StatusBadRequest, "bad_request"},
			{"another's roster on one's own", mallory, mallorys, e.roster(bob, id, 3), http.StatusBadRequest, "bad_request"},
			{"broken signature", bob, id, broken, http.StatusBadRequest, "bad_request"},
			{"not a roster", bob, id, []byte("roster"), http.StatusBadRequest, "bad_request"},
			{"public broadcast", bob, public, e.roster(bob, public, 3), http.StatusConflict, "not_private"},
			{"unlisted broadcast", bob, unlisted, e.roster(bob, unlisted, 3), http.StatusNotFound, "not_found"},
			{"older version", bob, id, e.roster(bob, id, 1), http.StatusConflict, "stale"},
			{"same version", bob, id, e.roster(bob, id, 2), http.StatusConflict, "stale"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := c.n.c.PutRoster(ctx, c.id, c.roster)
				mustStatus(t, err, c.status, c.code)
			})
		}
		if status, answer := replay(t, captured, capturedBody, e.url); status != http.StatusUnauthorized {
			t.Errorf("a roster put played again: %d %s", status, answer)
		}
		_, err := bob.c.PutBundles(ctx, public, e.wrap(bob, public, 1, ak))
		mustStatus(t, err, http.StatusConflict, "not_private")
		_, err = bob.c.PutBundles(ctx, id, e.wrap(bob, public, 1, ak))
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		r, err := bob.c.Roster(ctx, id)
		if err != nil || r.Version != 2 {
			t.Fatalf("stored roster: %+v %v", r, err)
		}
		for table, want := range map[string]int{"rosters": 1, "audiences": 1, "roster_devices": 1, "bundles": 0} {
			if n := e.count(table); n != want {
				t.Errorf("%d rows in %s, want %d", n, table, want)
			}
		}
	})
}

// TestAudienceNeedsAccount: peer IDs are free, so rosters and bundles —
// kept until 24 h after each end — need a signed-in broadcaster, and an
// account's bundles are bounded in bytes: a put past the bound is refused
// whole.
func TestAudienceNeedsAccount(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.MaxAudienceBytes = 5000 })
		ctx := context.Background()
		alice, bob, anon := e.node(1), e.node(2), e.node(9)
		e.signIn(bob, "200")
		ak := e.deviceKey(alice, 1)
		aid := anon.broadcastID("anon")
		if _, err := anon.c.Announce(ctx, aid, privateAnnouncement(aid, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		_, err := anon.c.PutRoster(ctx, aid, e.roster(anon, aid, 1, member("twitter:100", ak)))
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")
		_, err = anon.c.PutBundles(ctx, aid, e.wrap(anon, aid, 1, ak))
		mustStatus(t, err, http.StatusForbidden, "not_signed_in")

		id := bob.broadcastID("priv")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, member("twitter:100", ak))); err != nil {
			t.Fatal(err)
		}
		for n := uint32(1); n <= 3; n++ { // about 1.4 KB each
			if _, err := bob.c.PutBundles(ctx, id, e.wrap(bob, id, n, ak)); err != nil {
				t.Fatalf("epoch %d: %v", n, err)
			}
		}
		_, err = bob.c.PutBundles(ctx, id, e.wrap(bob, id, 4, ak))
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		if n := e.count("bundles"); n != 3 {
			t.Fatalf("%d bundles after the refused put", n)
		}
		if n := e.count("rosters"); n != 1 {
			t.Fatalf("%d rosters", n)
		}
	})
}

package bootstrap_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// Helpers of the private-audience tests: device keys, rosters and bundles
// made with package audience, as a node would make them.

// seeded is a repeatable randomness source.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// deviceKey makes n's audience device key, valid for a week.
func (e *env) deviceKey(n *node, seed byte) *audience.DevicePrivateKey {
	e.t.Helper()
	now := e.clock.Now()
	k, err := audience.NewDeviceKey(seeded(seed), n.key, now.Add(-time.Minute), now.Add(7*24*time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// member is an account of a roster with its devices' keys.
func member(account string, keys ...*audience.DevicePrivateKey) audience.Member {
	m := audience.Member{Account: account}
	for _, k := range keys {
		m.Devices = append(m.Devices, audience.Device{Peer: k.Key.Peer, Fingerprint: k.Key.Fingerprint()})
	}
	return m
}

// roster signs a roster of broadcast id with caster's key.
func (e *env) roster(caster *node, id string, version uint64, members ...audience.Member) []byte {
	e.t.Helper()
	r := &audience.Roster{Broadcast: id, Version: version, Issued: e.clock.Now(), Members: members}
	if err := r.Sign(caster.key); err != nil {
		e.t.Fatal(err)
	}
	return r.Marshal()
}

// wrap starts epoch n of broadcast id and wraps it for each device key.
func (e *env) wrap(caster *node, id string, n uint32, to ...*audience.DevicePrivateKey) [][]byte {
	e.t.Helper()
	keys := make([]*audience.DeviceKey, len(to))
	for i, k := range to {
		keys[i] = k.Key
	}
	return e.wrapKeys(caster, id, n, keys...)
}

// wrapKeys is wrap for public device keys (as a broadcaster fetched them).
func (e *env) wrapKeys(caster *node, id string, n uint32, to ...*audience.DeviceKey) [][]byte {
	e.t.Helper()
	bs, err := audience.NewBroadcastSecret(seeded(0xbb))
	if err != nil {
		e.t.Fatal(err)
	}
	ep, err := audience.NewEpoch(seeded(byte(n)), id, n, bs)
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]byte
	for _, k := range to {
		b, err := ep.Wrap(caster.key, k, e.clock.Now())
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, b.Marshal())
	}
	return out
}

// openAll opens every bundle with k and returns their epochs.
func openAll(t *testing.T, k *audience.DevicePrivateKey, id string, bundles [][]byte) []uint32 {
	t.Helper()
	var epochs []uint32
	for _, raw := range bundles {
		b, err := audience.ParseBundle(raw)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := b.Open(k, id)
		if err != nil {
			t.Fatalf("bundle of epoch %d: %v", b.Epoch, err)
		}
		epochs = append(epochs, keys.Epoch())
	}
	return epochs
}

func privateAnnouncement(id, title string, started time.Time, version uint64) api.ListingUpdate {
	a := announcement(id, title, started, version)
	a.Private = true
	return a
}

// TestPrivateAudience: a member publishes its device key, attested to its
// account; the broadcaster finds it among its mutuals, puts a roster and
// a bundle; the member sees the invitation, fetches the bundle (the bytes
// the broadcaster signed) and opens it; a non-member gets 403 for the
// bundles and the roster and sees no invitation; the public directory
// lists nothing.
func TestPrivateAudience(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob, carol := e.node(1), e.node(2), e.node(3)
		e.x.AddUser(xUser("300", "carol"))
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		e.signIn(carol, "300")

		// Alice's device key, attested to her account, served unchanged.
		ak := e.deviceKey(alice, 1)
		entry, err := alice.c.PublishDeviceKey(ctx, ak.Key.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		trust := e.svc.Server.TrustSet()
		k, att, err := entry.Open(trust, e.clock.Now())
		if err != nil || k.Fingerprint() != ak.Key.Fingerprint() || att.Account != "twitter:100" || att.Handle != "@alice" || att.Peer != alice.id.String() {
			t.Fatalf("published entry: %+v %v", att, err)
		}
		got, err := bob.c.DeviceKeys(ctx, []string{"twitter:100", "twitter:999"}, []string{"@alice", "@nobody"})
		if err != nil || len(got) != 1 || got[0].Account.Key() != "twitter:100" || len(got[0].Keys) != 1 ||
			!bytes.Equal(got[0].Keys[0].DeviceKey, ak.Key.Marshal()) {
			t.Fatalf("device keys of alice: %+v %v", got, err)
		}
		// What bob's node wraps for: the key as the bootstrap served it, checked.
		served, _, err := got[0].Keys[0].Open(trust, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}

		// Mutuals: alice and bob follow each other; carol follows bob only.
		for _, f := range []struct {
			n   *node
			key string
		}{{alice, "twitter:200"}, {bob, "twitter:100"}, {carol, "twitter:200"}, {bob, "twitter:555"}} {
			if err := f.n.c.Follow(ctx, f.key); err != nil {
				t.Fatal(err)
			}
		}
		mutuals, err := bob.c.Mutuals(ctx)
		if err != nil || len(mutuals) != 1 || mutuals[0].Key() != "twitter:100" || mutuals[0].Handle != "@alice" {
			t.Fatalf("bob's mutuals: %+v %v", mutuals, err)
		}

		// Bob's private broadcast, its roster and a bundle for alice's device.
		// Alice's feed hears that she is invited; the public stream does not.
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/feed", nil)
		if err := api.SignRequest(req, nil, alice.key, e.svc.Keys.ID(), e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		aliceFeed := openSSE(t, req)
		pubReq, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/events", nil)
		public := openSSE(t, pubReq)
		id := bob.broadcastID("priv")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "Just friends", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		invited := audience.Member{Account: got[0].Account.Key(), Devices: []audience.Device{{Peer: served.Peer, Fingerprint: served.Fingerprint()}}}
		if res, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, invited)); err != nil || res.Version != 1 {
			t.Fatalf("roster: %+v %v", res, err)
		}
		if ev := aliceFeed.next(t); ev.Kind != bootstrap.EventInvited || ev.Listing.ID != id || ev.Listing.Who == nil || ev.Listing.Who.Handle != "@bob" {
			t.Fatalf("alice's feed: %+v", ev)
		}
		open := carol.broadcastID("open")
		if _, err := carol.c.Announce(ctx, open, announcement(open, "Everyone", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if ev := public.next(t); ev.Kind != bootstrap.EventLive || ev.Listing.ID != open {
			t.Fatalf("the public stream's next event: %+v", ev)
		}
		sent := e.wrapKeys(bob, id, 7, served)
		if res, err := bob.c.PutBundles(ctx, id, sent); err != nil || res.Stored != 1 {
			t.Fatalf("bundles: %+v %v", res, err)
		}

		inv, err := alice.c.Invitations(ctx)
		if err != nil || len(inv) != 1 || inv[0].Listing.ID != id || inv[0].Listing.Who == nil || inv[0].Listing.Who.Handle != "@bob" || inv[0].RosterVersion != 1 {
			t.Fatalf("alice's invitations: %+v %v", inv, err)
		}
		res, err := alice.c.Bundles(ctx, id, 0)
		if err != nil || res.RosterVersion != 1 || len(res.Bundles) != 1 || !bytes.Equal(res.Bundles[0], sent[0]) {
			t.Fatalf("alice's bundles: %+v %v", res, err)
		}
		if epochs := openAll(t, ak, id, res.Bundles); !slices.Equal(epochs, []uint32{7}) {
			t.Fatalf("opened epochs %v", epochs)
		}
		if res, err := alice.c.Bundles(ctx, id, 8); err != nil || len(res.Bundles) != 0 {
			t.Fatalf("bundles since 8: %+v %v", res, err)
		}
		if r, err := alice.c.Roster(ctx, id); err != nil || r.Version != 1 {
			t.Fatalf("alice's roster: %+v %v", r, err)
		}
		if r, err := bob.c.Roster(ctx, id); err != nil || r.Version != 1 {
			t.Fatalf("bob's roster: %+v %v", r, err)
		}

		// Carol is not invited: no bundle, no roster, no invitation.
		_, err = carol.c.Bundles(ctx, id, 0)
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		_, err = carol.c.Roster(ctx, id)
		mustStatus(t, err, http.StatusForbidden, "forbidden")
		if inv, err := carol.c.Invitations(ctx); err != nil || len(inv) != 0 {
			t.Fatalf("carol's invitations: %+v %v", inv, err)
		}
		// Nor is it in the directory.
		if list, err := carol.c.List(ctx, api.Query{}); err != nil || !slices.Equal(ids(list), []string{open}) {
			t.Fatalf("public list: %v %v", ids(list), err)
		}
		_, err = bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, member("twitter:100", ak)))
		mustStatus(t, err, http.StatusConflict, "stale")
	})
}

// TestSavedGroups: an account saves, lists, reads and deletes groups;
// another account sees none of them.
func TestSavedGroups(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		g := api.Group{Name: "family", Members: []string{"twitter:200", "phone:p0123"}}
		if _, err := alice.c.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		// By handle: stored as the account's key.
		if got, err := alice.c.PutGroup(ctx, api.Group{Name: "work", Members: []string{"@bob", "twitter:300"}}); err != nil ||
			!slices.Equal(got.Members, []string{"twitter:200", "twitter:300"}) {
			t.Fatalf("a group by handle: %+v %v", got, err)
		}
		for _, members := range [][]string{{"@nobody"}, {"@bob", "twitter:200"}, {"no\nline"}} {
			_, err := alice.c.PutGroup(ctx, api.Group{Name: "bad", Members: members})
			mustStatus(t, err, http.StatusBadRequest, "bad_request")
		}
		got, err := alice.c.Group(ctx, "family")
		if err != nil || got.Name != "family" || !slices.Equal(got.Members, g.Members) {
			t.Fatalf("group: %+v %v", got, err)
		}
		if list, err := alice.c.Groups(ctx); err != nil || len(list) != 2 {
			t.Fatalf("groups: %+v %v", list, err)
		}
		if list, err := bob.c.Groups(ctx); err != nil || len(list) != 0 {
			t.Fatalf("bob's groups: %+v %v", list, err)
		}
		_, err = bob.c.Group(ctx, "family")
		mustStatus(t, err, http.StatusNotFound, "not_found")
		_, err = alice.c.PutGroup(ctx, api.Group{Name: "dup", Members: []string{"twitter:1", "twitter:1"}})
		mustStatus(t, err, http.StatusBadRequest, "bad_request")
		if err := alice.c.DeleteGroup(ctx, "family"); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, alice.c.DeleteGroup(ctx, "family"), http.StatusNotFound, "not_found")
		if n := e.count("audience_groups"); n != 1 {
			t.Fatalf("%d groups stored", n)
		}
	})
}

// TestAudienceExpires: a private broadcast's roster, members and bundles
// are served until 24 h after its end, then refused, and the next prune
// deletes them with the broadcast; an expired device key is pruned too.
func TestAudienceExpires(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		e.signIn(bob, "200")
		ak := e.deviceKey(alice, 1) // valid for a week
		if _, err := alice.c.PublishDeviceKey(ctx, ak.Key.Marshal()); err != nil {
			t.Fatal(err)
		}
		id := bob.broadcastID("priv")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutRoster(ctx, id, e.roster(bob, id, 1, member("twitter:100", ak))); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.c.PutBundles(ctx, id, e.wrap(bob, id, 1, ak)); err != nil {
			t.Fatal(err)
		}
		end := privateAnnouncement(id, "x", e.clock.Now(), 2)
		end.Ended = e.clock.Now()
		if _, err := bob.c.Announce(ctx, id, end); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(23 * time.Hour)
		if res, err := alice.c.Bundles(ctx, id, 0); err != nil || len(res.Bundles) != 1 {
			t.Fatalf("23 h after the end: %+v %v", res, err)
		}
		if inv, err := alice.c.Invitations(ctx); err != nil || len(inv) != 1 {
			t.Fatalf("the replay's invitation: %+v %v", inv, err)
		}
		e.clock.Advance(time.Hour)
		_, err := alice.c.Bundles(ctx, id, 0)
		mustStatus(t, err, http.StatusNotFound, "not_found")
		_, err = bob.c.PutBundles(ctx, id, e.wrap(bob, id, 2, ak))
		mustStatus(t, err, http.StatusConflict, "stale")
		if inv, err := alice.c.Invitations(ctx); err != nil || len(inv) != 0 {
			t.Fatalf("an expired invitation: %+v %v", inv, err)
		}
		if _, err := e.svc.Server.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		for tb, want := range map[string]int{"broadcasts": 0, "rosters": 0, "audiences": 0, "roster_devices": 0, "bundles": 0, "device_keys": 1} {
			if n := e.count(tb); n != want {
				t.Errorf("after the prune: %d rows in %s, want %d", n, tb, want)
			}
		}
		e.clock.Advance(7 * 24 * time.Hour)
		if _, err := e.svc.Server.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count("device_keys"); n != 0 {
			t.Errorf("%d expired device keys after the prune", n)
		}
	})
}

// audienceBadInput are TestBadInput's requests to the audience routes, for
// a broadcast of alice's that is not listed: none may store anything.
func audienceBadInput(e *env, alice, bob *node) []badInput {
	const js = "application/json"
	id := alice.broadcastID("aaaa")
	roster, bundles, keys := "/api/v1/broadcasts/"+id+"/audience", "/api/v1/broadcasts/"+id+"/bundles", "/api/v1/device-keys"
	good := mustJSON(api.RosterPut{Roster: e.roster(alice, id, 1)})
	other := mustJSON(api.RosterPut{Roster: e.roster(alice, alice.broadcastID("bbbb"), 1)})
	many := api.BundlesPut{}
	for range api.MaxBundlesPerPut + 1 {
		many.Bundles = append(many.Bundles, []byte("x"))
	}
	lookups := "?"
	for i := range api.MaxDeviceKeyLookups + 1 {
		lookups += fmt.Sprintf("account=twitter:%d&", i)
	}
	huge := mustJSON(api.RosterPut{Roster: make([]byte, api.MaxAudienceBody*3/4+100)}) // just over, in base64
	return []badInput{
		{"roster, unsigned", nil, "PUT", roster, js, good, 401, "unauthenticated"},
		{"roster, another's broadcast", bob, "PUT", roster, js, good, 403, "forbidden"},
		{"roster, malformed JSON", alice, "PUT", roster, js, []byte(`{"roster":`), 400, "bad_request"},
		{"roster, not base64", alice, "PUT", roster, js, []byte(`{"roster":"!!"}`), 400, "bad_request"},
		{"roster, not a roster", alice, "PUT", roster, js, []byte(`{"roster":"AAAA"}`), 400, "bad_request"},
		{"roster, unknown field", alice, "PUT", roster, js, []byte(`{"roster":"AAAA","members":[]}`), 400, "bad_request"},
		{"roster, of another broadcast", alice, "PUT", roster, js, other, 400, "bad_request"},
		{"roster, text/plain", alice, "PUT", roster, "text/plain", good, 415, "unsupported_media_type"},
		{"roster, oversized", alice, "PUT", roster, js, huge, 413, "too_large"},
		{"roster, broadcaster not signed in", alice, "PUT", roster, js, good, 403, "not_signed_in"},
		{"roster, bad broadcast ID", alice, "PUT", "/api/v1/broadcasts/nodot/audience", js, good, 400, "bad_request"},
		{"roster GET, unsigned", nil, "GET", roster, "", nil, 401, "unauthenticated"},
		{"roster GET, not a member", bob, "GET", roster, "", nil, 403, "forbidden"},
		{"bundles, none", alice, "PUT", bundles, js, []byte(`{"bundles":[]}`), 400, "bad_request"},
		{"bundles, too many", alice, "PUT", bundles, js, mustJSON(many), 400, "bad_request"},
		{"bundles, not a bundle", alice, "PUT", bundles, js, []byte(`{"bundles":["AAAA"]}`), 400, "bad_request"},
		{"bundles, another's broadcast", bob, "PUT", bundles, js, []byte(`{"bundles":["AAAA"]}`), 403, "forbidden"},
		{"bundles GET, since not a number", alice, "GET", bundles + "?since=x", "", nil, 400, "bad_request"},
		{"bundles GET, since over 32 bits", alice, "GET", bundles + "?since=4294967296", "", nil, 400, "bad_request"},
		{"bundles GET, unknown parameter", alice, "GET", bundles + "?epoch=1", "", nil, 400, "bad_request"},
		{"bundles GET, unsigned", nil, "GET", bundles, "", nil, 401, "unauthenticated"},
		{"bundles GET, broadcast not listed", bob, "GET", bundles, "", nil, 404, "not_found"},
		{"device key, unsigned", nil, "PUT", keys, js, []byte(`{"device_key":"AAAA"}`), 401, "unauthenticated"},
		{"device key, not signed in", alice, "PUT", keys, js, []byte(`{"device_key":"AAAA"}`), 403, "not_signed_in"},
		{"device keys, no one asked for", nil, "GET", keys, "", nil, 400, "bad_request"},
		{"device keys, unknown parameter", nil, "GET", keys + "?peer=x", "", nil, 400, "bad_request"},
		{"device keys, bad account key", nil, "GET", keys + "?account=nocolon", "", nil, 400, "bad_request"},
		{"device keys, handle on two lines", nil, "GET", keys + "?handle=%40a%0Ab", "", nil, 400, "bad_request"},
		{"device keys, too many", nil, "GET", keys + lookups, "", nil, 400, "bad_request"},
		{"mutuals, not signed in", alice, "GET", "/api/v1/audience/mutuals", "", nil, 403, "not_signed_in"},
		{"invitations, not signed in", alice, "GET", "/api/v1/invitations", "", nil, 403, "not_signed_in"},
		{"invitations, unsigned", nil, "GET", "/api/v1/invitations", "", nil, 401, "unauthenticated"},
		{"group, bad name", alice, "PUT", "/api/v1/groups/a.b", js, []byte(`{"members":[]}`), 400, "bad_request"},
		{"group, not signed in", alice, "PUT", "/api/v1/groups/friends", js, []byte(`{"members":[]}`), 403, "not_signed_in"},
	}
}

// TestDeviceAttestationLifetime: a device attestation outlives neither the
// key nor the session that vouches for it.
func TestDeviceAttestationLifetime(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, func(c *bootstrap.ServerConfig) { c.SessionTTL = time.Hour })
		ctx := context.Background()
		alice, bob := e.node(1), e.node(2)
		e.signIn(alice, "100")
		entry, err := alice.c.PublishDeviceKey(ctx, e.deviceKey(alice, 1).Key.Marshal()) // a key valid for a week
		if err != nil {
			t.Fatal(err)
		}
		_, att, err := entry.Open(e.svc.Server.TrustSet(), e.clock.Now())
		if err != nil || !att.Expires.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("attested until %s, the session ends at %s: %v", att.Expires, e.clock.Now().Add(time.Hour), err)
		}
		e.clock.Advance(time.Hour)
		if _, _, err := entry.Open(e.svc.Server.TrustSet(), e.clock.Now()); err == nil {
			t.Fatal("a device attestation believed after its session ended")
		}
		if got, err := bob.c.DeviceKeys(ctx, []string{"twitter:100"}, nil); err != nil || len(got) != 1 || len(got[0].Keys) != 0 {
			t.Fatalf("a key served after its session ended: %+v %v", got, err)
		}
	})
}

// TestDeviceKeysPerAccount: a node's new key replaces its old one; an
// account has at most audience.MaxMemberDevices devices with keys (what a
// roster lists of one member), and a node that signs out frees its place.
func TestDeviceKeysPerAccount(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		var nodes []*node
		for i := range audience.MaxMemberDevices + 1 {
			n := e.node(byte(50 + i))
			e.signIn(n, "100")
			nodes = append(nodes, n)
		}
		first := nodes[0]
		if _, err := first.c.PublishDeviceKey(ctx, e.deviceKey(first, 1).Key.Marshal()); err != nil {
			t.Fatal(err)
		}
		renewed := e.deviceKey(first, 2)
		if _, err := first.c.PublishDeviceKey(ctx, renewed.Key.Marshal()); err != nil {
			t.Fatal(err)
		}
		got, err := first.c.DeviceKeys(ctx, []string{"twitter:100"}, nil)
		if err != nil || len(got) != 1 || len(got[0].Keys) != 1 || !bytes.Equal(got[0].Keys[0].DeviceKey, renewed.Key.Marshal()) {
			t.Fatalf("after a renewal: %+v %v", got, err)
		}
		for i, n := range nodes[1:audience.MaxMemberDevices] {
			if _, err := n.c.PublishDeviceKey(ctx, e.deviceKey(n, byte(10+i)).Key.Marshal()); err != nil {
				t.Fatalf("device %d: %v", i+2, err)
			}
		}
		last := nodes[audience.MaxMemberDevices]
		_, err = last.c.PublishDeviceKey(ctx, e.deviceKey(last, 99).Key.Marshal())
		mustStatus(t, err, http.StatusTooManyRequests, "rate_limited")
		if err := first.c.SignOut(ctx, false); err != nil {
			t.Fatal(err)
		}
		if _, err := last.c.PublishDeviceKey(ctx, e.deviceKey(last, 99).Key.Marshal()); err != nil {
			t.Fatalf("after a sign-out freed a place: %v", err)
		}
		if got, err := last.c.DeviceKeys(ctx, nil, []string{"@alice"}); err != nil || len(got) != 1 || len(got[0].Keys) != audience.MaxMemberDevices {
			t.Fatalf("served: %+v %v", got, err)
		}
	})
}

package bootstrap_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/internal/pgtest"
)

// TestMailboxAtScale: a roster of the most devices a roster may list
// (4,096, one per member), then a rekey — every device's bundle, put 128
// at a time — and one member's fetch, on a real server and database. It
// logs what each step costs the bootstrap (figures in
// docs/BENCHMARKS.md); what it checks is that the largest roster and a
// full epoch fit the routes' limits and the account's bound.
func TestMailboxAtScale(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		if testing.Short() {
			t.Skip("a 4,096-device roster")
		}
		e := newEnv(t, nil)
		ctx := context.Background()
		bob, alice := e.node(2), e.node(1)
		e.signIn(bob, "200")
		id := bob.broadcastID("scale")
		if _, err := bob.c.Announce(ctx, id, privateAnnouncement(id, "x", e.clock.Now(), 1)); err != nil {
			t.Fatal(err)
		}
		// Device keys: alice's first, then others made from one identity (the
		// bootstrap does not ask whose a roster's devices are).
		keys := []*audience.DevicePrivateKey{e.deviceKey(alice, 1)}
		members := []audience.Member{member("twitter:100", keys[0])}
		for i := 1; i < audience.MaxRosterDevices; i++ {
			// A one-byte seed repeats every 256 keys; the validity, different
			// for each, makes every fingerprint differ.
			created := e.clock.Now().Add(-time.Minute - time.Duration(i)*time.Second)
			k, err := audience.NewDeviceKey(seeded(byte(i)), bob.key, created, e.clock.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
			members = append(members, member(fmt.Sprintf("twitter:%d", 10000+i), k))
		}
		roster := e.roster(bob, id, 1, members...)
		start := time.Now()
		if _, err := bob.c.PutRoster(ctx, id, roster); err != nil {
			t.Fatal(err)
		}
		putRoster := time.Since(start)

		bundles := e.wrap(bob, id, 1, keys...)
		size := 0
		for _, b := range bundles {
			size += len(b)
		}
		start = time.Now()
		for i := 0; i < len(bundles); i += api.MaxBundlesPerPut {
			if _, err := bob.c.PutBundles(ctx, id, bundles[i:min(i+api.MaxBundlesPerPut, len(bundles))]); err != nil {
				t.Fatalf("bundles from %d: %v", i, err)
			}
		}
		putBundles := time.Since(start)
		start = time.Now()
		res, err := alice.c.Bundles(ctx, id, 0)
		if err != nil || len(res.Bundles) != 1 {
			t.Fatalf("alice's bundles: %d, %v", len(res.Bundles), err)
		}
		fetch := time.Since(start)
		if n := e.count("bundles"); n != audience.MaxRosterDevices {
			t.Fatalf("%d bundles stored", n)
		}
		t.Logf("roster of %d devices (%d KB signed): put in %v; an epoch's %d bundles (%d KB) in %d puts: %v; one member's fetch: %v",
			audience.MaxRosterDevices, len(roster)>>10, putRoster.Round(time.Millisecond), len(bundles), size>>10,
			(len(bundles)+api.MaxBundlesPerPut-1)/api.MaxBundlesPerPut, putBundles.Round(time.Millisecond), fetch.Round(100*time.Microsecond))
	})
}

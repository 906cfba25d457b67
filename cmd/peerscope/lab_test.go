package main

import (
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestApplyLabPublic(t *testing.T) {
	saved := slices.Clone(manet.Unroutable4)
	t.Cleanup(func() { manet.Unroutable4 = saved })
	lab := ma.StringCast("/ip4/198.18.3.4/tcp/4001")
	if manet.IsPublicAddr(lab) {
		t.Fatal("198.18.0.0/15 is public before the lab setting")
	}
	for _, bad := range []string{"10.0.0.0/8", "nonsense", "198.18.0.0/16"} {
		if err := applyLabPublic(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := applyLabPublic("198.18.0.0/15"); err != nil {
		t.Fatal(err)
	}
	if !manet.IsPublicAddr(lab) {
		t.Fatal("198.18.0.0/15 is not public after the lab setting")
	}
	if manet.IsPublicAddr(ma.StringCast("/ip4/10.1.2.3/tcp/1")) || manet.IsPublicAddr(ma.StringCast("/ip4/203.0.113.1/tcp/1")) {
		t.Fatal("the lab setting made other ranges public")
	}
}

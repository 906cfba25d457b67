package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	manet "github.com/multiformats/go-multiaddr/net"
)

// LabPublicEnv names the environment variable that makes libp2p take
// address ranges it classes as unroutable for public ones, in a test
// network. libp2p's NAT traversal (AutoNAT, hole punching, relay
// reservations) ignores addresses that are not public, and the ranges set
// aside for test networks (198.18.0.0/15 for benchmarking, the
// documentation ranges) are in its unroutable list; a lab of network
// namespaces that plays the internet on 198.18.0.0/15 sets
// PEERSCOPE_LAB_PUBLIC=198.18.0.0/15 in every process. Only ranges that
// libp2p lists as unroutable can be named: private ranges (10/8, …) stay
// private, so a lab's home networks still look like home networks.
const LabPublicEnv = "PEERSCOPE_LAB_PUBLIC"

// applyLabPublic reads LabPublicEnv and takes the ranges it names out of
// libp2p's unroutable list. It changes process-wide state and so runs once,
// in main, before any host starts.
func applyLabPublic(value string) error {
	if value == "" {
		return nil
	}
	for _, s := range strings.Split(value, ",") {
		_, want, err := net.ParseCIDR(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%s: %w", LabPublicEnv, err)
		}
		i := slices.IndexFunc(manet.Unroutable4, func(n *net.IPNet) bool { return n.String() == want.String() })
		if i < 0 {
			return fmt.Errorf("%s: %s is not one of libp2p's unroutable ranges", LabPublicEnv, want)
		}
		manet.Unroutable4 = slices.Delete(slices.Clone(manet.Unroutable4), i, i+1)
	}
	return nil
}

func labPublicFromEnv() error { return applyLabPublic(os.Getenv(LabPublicEnv)) }

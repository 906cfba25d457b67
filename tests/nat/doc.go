// Package nat holds the test of Peerscope through real NATs: a lab of Linux
// network namespaces that the test builds and tears down, with a
// "public" network (198.18.0.0/15, which the processes are told to take
// for public with PEERSCOPE_LAB_PUBLIC) where a bootstrap runs, and home
// networks (10.x) behind router namespaces doing nftables masquerade:
// plain (endpoint-independent mapping, as most home routers) or
// fully-random (endpoint-dependent, "symmetric", as many mobile and
// carrier-grade NATs). Broadcasters and viewers are real `peerscope`
// processes started with `ip netns exec`; the test reads what the viewers
// print to see the video flow and whether their parent is reached
// directly (after DCUtR hole punching) or through the bootstrap's relay.
//
// It needs root, iproute2 and nftables, and skips loudly without them.
package nat

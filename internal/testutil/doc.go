// Package testutil holds the helpers that tests of several packages share,
// so that each is written once.
//
// What is here, and who uses it:
//
//	WaitFor(t, within, what, cond)  polls cond until it holds, else fails naming what
//	Host(t)                         a libp2p host on loopback, closed at the end of the test
//	TCPHost(t)                      a bare one (Noise over TCP, no relay, no limits) for tests
//	                                of many hosts (chat, mesh/p2p)
//	SeededPeer(seed)                a libp2p identity from a seed byte, the same in every run
//	Broadcaster(t)                  a fixed broadcaster: key, public key, broadcast ID (fuzz
//	                                seeds signed with it stay valid)
//	Feed(t, sink, d)                the first d of the sample clip (media/sample) through
//	                                media/ingest into a media.Sink, unpaced
//
// The tests of announce, chat, media/publish, mesh/p2p, nat, node and
// replay/swarm use them instead of each writing its own. Its subpackage
// fuzzseed writes fuzz seed corpora (it imports nothing of the project, so
// any package's own tests can use it).
package testutil

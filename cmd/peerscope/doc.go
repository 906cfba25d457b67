// Command peerscope is Peerscope's one binary: live video from a phone or a
// PC to thousands of viewers, relayed peer to peer.
//
//	peerscope <command> [flags] [args]
//
// Each command lives in its own file (demo.go, broadcast.go, …) as
// runX(ctx, args) with its own flag.FlagSet, built with newFlagSet and
// parsed with parseFlags. main only dispatches, turns SIGINT and SIGTERM into
// a cancelled context (a second signal kills at once), prints the error a
// command returns and exits with 0 on success or --help, 2 on a usage error
// and 1 on any other error. A command stopped by a signal returns nil.
//
// What each command runs (the packages do the work; a command parses its
// flags into their config and prints what they report):
//
//	demo       media/sample ─► node.New + Node.GoLive (the broadcaster) ─► local nodes' Node.Watch
//	           ─► prints the tree and the player pages
//	broadcast  flags ─► node.Config, node.LiveConfig (a source, RTMP or WHIP) ─► node.New
//	           ─► Node.GoLive ─► prints the link and the pages, then the tree's status (follow)
//	watch      link.Parse(LINK) ─► node.New ─► Node.Watch, or Node.Replay (--replay)
//	bootstrap  flags ─► bootstrap.Config (DefaultConfig) ─► bootstrap.NewDaemon ─► Daemon.Run
//	bench      internal/bench (tree, gossipsub, star), or with --mode directory internal/loadgen
//	           against a bootstrap's HTTP API (bench_directory.go)
//	sim        mesh/sim
//
// bench and sim print an internal/report Report; measure.go has what they
// share (the CPU profile, the extra figures). lab.go is the NAT lab's one
// knob (PEERSCOPE_LAB_PUBLIC, see tests/nat).
package main

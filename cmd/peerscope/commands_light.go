//go:build light

package main

// The viewer-only build: 'go build -tags light ./cmd/peerscope' leaves out
// the commands a viewer never runs, and with them the packages only they
// link (the bootstrap server, its SQLite and PostgreSQL stores, the bench
// and the simulator). A light node maps its binary, and the pages of it
// that it touches count in its memory (docs/BENCHMARKS.md, "What a light
// node costs (issue 17)"): the smaller binary is 5 MiB less per viewer.

// viewerBuild says whether this is the viewer-only build (-tags light).
const viewerBuild = true

func fullCommands() (before, after []command) { return nil, nil }

// leftOut names the commands this build leaves out, for a clearer error
// than "unknown command" when one is asked for.
var leftOut = []string{"demo", "bootstrap", "bench", "sim"}

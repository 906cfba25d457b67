//go:build !light

package main

// viewerBuild says whether this is the viewer-only build (-tags light).
const viewerBuild = false

// fullCommands returns the commands the viewer-only build leaves out
// (commands_light.go): the ones listed before broadcast, and the ones
// listed after signin.
func fullCommands() (before, after []command) {
	return []command{
			{"demo", "stream the built-in sample clip through a local relay tree and open the player", runDemo},
		}, []command{
			{"bootstrap", "run a community bootstrap node: discovery, NAT relay, identity, directory", runBootstrap},
			{"bench", "measure the relay tree with real libp2p hosts on loopback", runBench},
			{"sim", "simulate the relay tree with thousands of nodes over a modelled network", runSim},
		}
}

// leftOut names the commands this build leaves out: none.
var leftOut []string

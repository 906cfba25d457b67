// Package page is the directory page, embedded: one HTML file, its script
// and its style, no framework. The bootstrap serves it at its root, and
// every node serves the same files at /directory/ (package community).
//
// The script finds its API relative to the page (./api/v1/…): on the
// bootstrap that is the API itself; on a node it is the node's proxy of its
// bootstrap's API, beside ./api/node/… for what only the node can do (sign
// in, join a listed broadcast). Those act in the node's name: a node writes
// its page token into the page it serves its own machine
// (<meta name="peerscope-token">, empty in index.html), which the script
// sends in Peerscope-Token with JSON; without one (the bootstrap, or a
// node's page on another machine) the page lists and shows links. Whoever
// serves the page should send CSP with it. So one page works in both
// places:
//
//	browser ─► GET ./            ─► index.html, directory.js, directory.css (this package)
//	        ─► GET ./api/v1/…    ─► the bootstrap's API (directly, or through a node)
//	        ─► POST ./api/node/… ─► the node's own endpoints (on a node only)
package page

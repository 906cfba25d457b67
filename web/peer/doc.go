// Package peer is the browser light node: the JavaScript that lets a web
// page join a broadcast's relay tree itself, as a leaf, over WebTransport
// (WebRTC-direct if that fails) to full nodes and WebRTC to other pages,
// verify every chunk's signature and play the parts through Media Source
// Extensions. This package only embeds the built bundle (Script, Handler);
// the code is in src/ and the player page (media/player, ?mode=p2p) runs it.
//
// The sources: src/peer.js (the shell: js-libp2p, one outbound stream per
// peer on the tree's protocol ID, inbound frames, verification before the
// state machine, a 50 ms tick), src/leaf.js (the leaf side of the tree's
// protocol as a pure state machine, like mesh.Machine; src/children.js its
// parent side for a page that relays, src/trust.js what
// /peerscope/mesh/1.2.0 asks of a child: receipts to the grandparent,
// withholding, handovers made before break), src/wire.js (frames
// and the limits on top of src/gen, the code protoc-gen-es generates from
// proto/mesh.proto and proto/chunk.proto), src/chunk.js (what the
// broadcaster signed, checked with WebCrypto's Ed25519 against the key in
// the broadcaster's peer ID) and src/inorder.js (the chunks back in
// sequence for the player). scripts/bundle.sh regenerates src/gen and
// bundles it all with esbuild into dist/peer.js (both committed: a Go build
// needs no npm); CI checks them with --check. The protocol the browser
// speaks is written down in docs/ARCHITECTURE.md, "The browser light node".
//
// Tests: test/*.test.js (node --test, run by TestJS) check the codec and the
// verifier against vectors the Go code makes (TestJS writes them), and
// the leaf, the reordering and the choice of addresses to dial on their
// own; node/browserpeer_test.go plays
// a broadcast through the tree in headless Chromium, sends the page forged
// and altered chunks, and has pages relay to pages.
package peer

package p2p

import (
	"context"

	"github.com/peerscope/peerscope/mesh"
)

// SetTamper makes the node pass every outgoing message through f first. It
// must be called before the node sends anything f should see; f runs on the
// owner goroutine.
func (n *Tree) SetTamper(f func(to mesh.PeerID, m *mesh.Message) *mesh.Message) {
	_ = n.call(context.Background(), func() { n.tamper = f })
}

// Writers returns how many peers the node has an outbound writer for.
func (n *Tree) Writers() int {
	var k int
	_ = n.call(context.Background(), func() { k = len(n.writers) })
	return k
}

// InboundStreams returns how many inbound streams the node holds open.
func (n *Tree) InboundStreams() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.streams)
}

// ReadMessage is readMessage, for tests of what a frame costs.
var ReadMessage = readMessage

package mesh

import "github.com/peerscope/peerscope/chunk"

// Envelope is a message to send to a peer.
type Envelope struct {
	To  PeerInfo
	Msg *Message
}

// EventType is the kind of an Event.
type EventType uint8

const (
	EvAttached     EventType = iota + 1 // Peer is the new parent; Depth is ours now
	EvParentLost                        // Peer was the parent; Reason says why
	EvChildAdded                        // Peer is a new child
	EvChildRemoved                      // Peer is a child no longer
	EvForged                            // Peer sent a chunk that failed verification
	EvLoopRefused                       // an attach that would have made a loop was refused
	EvDetached                          // this node left the tree (Leave was called)
	EvPadded                            // Peer sent a chunk padded beyond its canonical encoding
	EvWelcomed                          // Peer is a newcomer fed beyond the slots for a moment (welcome.go)
)

var eventNames = [...]string{"", "attached", "parent-lost", "child-added", "child-removed", "forged", "loop-refused", "detached", "padded", "welcomed"}

func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "event?"
}

// LossReason says how a parent was lost.
type LossReason uint8

const (
	LossNone     LossReason = iota
	LossDown                // the shell said the connection went away
	LossSilent              // nothing heard within ParentTimeout
	LossLeft                // the parent sent Leave
	LossForged              // the parent forwarded a forged chunk
	LossLoop                // the parent's path contained this node
	LossMoved               // this node moved to a better parent (not a failure)
	LossWithheld            // the parent sent heartbeats but no new chunks while the broadcast went on
	LossPadded              // the parent padded a chunk beyond its canonical encoding
	LossSlow                // the grandparent held much more than this node for a while: the parent feeds it too slowly
)

var lossNames = [...]string{"none", "down", "silent", "left", "forged", "loop", "moved", "withheld", "padded", "slow"}

func (l LossReason) String() string {
	if int(l) < len(lossNames) {
		return lossNames[l]
	}
	return "loss?"
}

// Event is something that happened inside the node, for metrics and tests.
type Event struct {
	Type   EventType
	Peer   PeerID
	Depth  int
	Loss   LossReason
	Rejoin bool // EvAttached after a parent was lost (not a first join or a move)
	Moved  bool // EvAttached by an improvement move
}

// Ready is what a node asks its shell to do. The slices are reused: the
// shell must handle them before calling the node again.
type Ready struct {
	Messages []Envelope
	Deliver  []*chunk.Chunk
	Events   []Event
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Messages) == 0 && len(r.Deliver) == 0 && len(r.Events) == 0
}

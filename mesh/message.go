package mesh

import (
	"fmt"

	"github.com/peerscope/peerscope/chunk"
)

// PeerID names a peer. The libp2p adapter uses the string form of a
// libp2p peer.ID; the simulator uses short names.
type PeerID string

// PeerInfo is a peer and where to reach it. Addrs are opaque to the state
// machine (multiaddrs in the libp2p adapter, nothing in the simulator).
type PeerInfo struct {
	ID    PeerID
	Addrs []string
}

// Candidate is a member that can adopt children, as reported by the member
// itself or by an ancestor that heard of it.
type Candidate struct {
	PeerInfo
	Depth uint32 // hops from the broadcaster (the broadcaster is 0)
	Free  uint32 // free child slots when reported
}

// MsgType is the kind of a Message.
type MsgType uint8

const (
	MsgChunk    MsgType = iota + 1 // a chunk, forwarded or backfilled
	MsgPing                        // RTT probe; Time is the sender's clock
	MsgPong                        // answer to a ping; Time echoed, Depth and Free of the answerer
	MsgAttach                      // please adopt me; Seq is 1 + the first sequence number I lack (0: from the live edge)
	MsgAccept                      // adopted; Path is root..parent
	MsgRedirect                    // full: try Candidates
	MsgReject                      // refused; Reason says why
	MsgLeave                       // detach; from a parent, Candidates are where to go
	MsgStatus                      // child to parent: capacity, free, subtree size, Candidates with room below, Counters
	MsgPath                        // parent to child: the ancestor path changed (Path), or a heartbeat (no Path)
	MsgPull                        // send me chunks Seq..Seq+Count-1 you still hold
	maxMsgType
)

var msgTypeNames = [...]string{"", "chunk", "ping", "pong", "attach", "accept", "redirect", "reject", "leave", "status", "path", "pull"}

func (t MsgType) String() string {
	if int(t) < len(msgTypeNames) && t != 0 {
		return msgTypeNames[t]
	}
	return fmt.Sprintf("msgtype(%d)", uint8(t))
}

// Reason says why an attach was refused.
type Reason uint8

const (
	ReasonNone      Reason = iota
	ReasonLoop             // the requester is an ancestor of the member asked
	ReasonDetached         // the member asked is not in the tree itself
	ReasonFull             // no room and nobody to redirect to
	ReasonBanned           // the member asked does not trust the requester
	ReasonNoImprove        // an improvement move that would not improve anything
)

var reasonNames = [...]string{"none", "loop", "detached", "full", "banned", "no-improve"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Message is everything the tree protocol says. It is one flat struct, like
// a protobuf message with optional fields: each type uses a few of them.
type Message struct {
	Type       MsgType
	Chunk      *chunk.Chunk // MsgChunk
	Seq        uint64       // MsgAttach: first missing seq + 1 (0: from the live edge); MsgPull: first seq
	Count      uint32       // MsgPull
	Time       int64        // MsgPing, MsgPong: prober's clock in ns
	Capacity   uint32       // MsgAttach, MsgStatus: child slots the sender offers in all
	Free       uint32       // MsgStatus, MsgPong: child slots still free
	Subtree    uint32       // MsgStatus: nodes in the sender's subtree, itself included
	Depth      uint32       // MsgPong, MsgAccept: the sender's depth
	Path       []PeerInfo   // MsgAccept, MsgPath: root..sender
	Candidates []Candidate  // MsgRedirect, MsgLeave, MsgStatus
	Addrs      []string     // MsgAttach: the requester's addresses
	Reason     Reason       // MsgReject
	Flags      uint32       // MsgAttach: AttachImprove
	Lost       PeerID       // MsgAttach: the parent the requester just lost, if any
	// Counters (MsgStatus) are what the sender's subtree adds up
	// (Config.Counters): deltas for events, sums for gauges; zero values
	// are left out.
	Counters []CounterValue
}

// Attach flags.
const (
	// AttachImprove marks an attach made to improve the tree: the member asked
	// adopts only if it has room (or a leaf to displace) and never redirects.
	AttachImprove uint32 = 1 << iota
	// AttachClimb, with AttachImprove, is a deep node asking an ancestor for
	// a shallower place (Depth: the requester's depth). An ancestor with no
	// room of its own redirects it to members of its subtree that have room
	// at least climbGain levels higher up; it never redirects a plain
	// improvement.
	AttachClimb
)

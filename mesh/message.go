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
	Depth  uint32 // hops from the broadcaster (the broadcaster is 0)
	Free   uint32 // free child slots when reported
	Proven uint32 // in a status's Vouches: the capacity the sender saw it prove
}

// MsgType is the kind of a Message.
type MsgType uint8

const (
	MsgChunk    MsgType = iota + 1 // a chunk, forwarded or backfilled
	MsgPing                        // RTT probe; Time is a nonce (the sender's clock), echoed
	MsgPong                        // answer to a ping; Time echoed, Depth, Free and Seq (1 + highest held) of the answerer
	MsgAttach                      // please adopt me; Seq is 1 + the first sequence number I lack (0: from the live edge)
	MsgAccept                      // adopted; Path is root..parent
	MsgRedirect                    // full: try Candidates
	MsgReject                      // refused; Reason says why
	MsgLeave                       // detach; from a parent, Candidates are where to go
	MsgStatus                      // child to parent: capacity, free, subtree size, Candidates with room below, Counters
	MsgPath                        // parent to child: the ancestor path changed (Path), or a heartbeat (no Path, Seq: 1 + highest held)
	MsgPull                        // send me chunks Seq..Seq+Count-1 you still hold
	MsgReceipt                     // grandchild to grandparent: Parent, Seq (1 + highest held), Count (new chunks since the last), Subtree
	MsgEdge                        // answer to a receipt that is behind: Seq is 1 + the sender's highest
	maxMsgType
)

var msgTypeNames = [...]string{"", "chunk", "ping", "pong", "attach", "accept", "redirect", "reject", "leave", "status", "path", "pull", "receipt", "edge"}

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
	Seq        uint64       // MsgAttach: first missing seq + 1 (0: from the live edge); MsgPull: first seq; MsgPong, MsgReceipt, MsgEdge, MsgPath: 1 + highest held (0: none)
	Count      uint32       // MsgPull; MsgReceipt: new chunks from the parent since the previous receipt
	Time       int64        // MsgPing, MsgPong: a nonce, the prober's clock in ns (never a measure)
	Capacity   uint32       // MsgAttach, MsgStatus: child slots the sender offers in all
	Free       uint32       // MsgStatus, MsgPong: child slots still free
	Subtree    uint32       // MsgStatus, MsgReceipt: nodes in the sender's subtree, itself included
	Depth      uint32       // MsgPong, MsgAccept: the sender's depth
	Path       []PeerInfo   // MsgAccept, MsgPath: root..sender
	Candidates []Candidate  // MsgRedirect, MsgLeave, MsgStatus
	Addrs      []string     // MsgAttach: the requester's addresses
	Reason     Reason       // MsgReject
	Flags      uint32       // MsgAttach: AttachImprove, AttachClimb, AttachWithheld, AttachWelcome; MsgAccept: AcceptWelcome; MsgLeave: LeaveHandover
	Lost       PeerID       // MsgAttach, MsgPing: the parent the requester just lost, if any
	Parent     PeerID       // MsgReceipt: the sender's parent, the receiver's child
	Vouches    []Candidate  // MsgStatus: the sender's children that proved capacity (Proven), from their children's receipts
	// Counters (MsgStatus) are what the sender's subtree adds up
	// (Config.Counters): deltas for events, sums for gauges; zero values
	// are left out.
	Counters []CounterValue

	// Excess is not on the wire: the bytes the received frame carried
	// beyond this message's canonical encoding (Unmarshal sets it), such
	// as an unknown field a relay appended to a chunk.
	Excess int
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
	// AttachWithheld, with Lost, says that the lost parent withheld the
	// stream (it kept sending heartbeats but no new chunks while the
	// broadcast went on), or sent a chunk that was forged or padded. The
	// member asked stops redirecting anyone to it and, if it is its child
	// and the requester a grandchild it had receipts from, stops believing
	// its capacity and gives its slot to the requester if it has no other
	// (displaceFor).
	AttachWithheld
	// AttachWelcome marks a newcomer's first attach (seq 0, no parent
	// lost) from a peer that would rather be fed at once by a full member
	// for a moment than wait on a slow set-up to the member with room (a
	// browser whose room is in other browsers). A member that knows the
	// flag and keeps welcome slots (Config.Welcome) may adopt it beyond
	// its slots, then hands it over, make before break, to room below
	// (welcome.go); one that does not know it answers as before.
	AttachWelcome
)

// Accept flags.
const (
	// AcceptWelcome marks the accept of a newcomer welcomed beyond the
	// slots (AttachWelcome): a handover follows, and if it fails the
	// newcomer asks this parent again (an attach) rather than rejoining
	// elsewhere: naming as lost a parent that is alive would make its own
	// parent free its slot.
	AcceptWelcome uint32 = 1 << iota
)

// Leave flags.
const (
	// LeaveHandover marks a parent's Leave that displaces the child for a
	// bigger relay, its first candidate: the parent goes on feeding the
	// child until it has moved under that relay and got a chunk from it,
	// and takes it back if it gets none (the relay withholds).
	LeaveHandover uint32 = 1 << iota
)

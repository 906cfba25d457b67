package chat

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Event is what a room tells its application: a *Comment, *Hearts,
// *Moderated, *Summons, *Reported or *Verdict.
type Event interface{ event() }

// Author is who sent something, as far as this node can tell.
type Author struct {
	Peer peer.ID
	// Identity is the verified identity of the sender, nil when it is
	// anonymous (no attestation, or one from an untrusted key, or expired).
	Identity    *Identity
	Broadcaster bool
	Moderator   bool
}

// Comment is an accepted comment: an event, and an entry of the log.
type Comment struct {
	ID     CommentID
	Author Author
	Text   string
	// At is the comment's place in the stream: the broadcast's wallclock
	// (capture time) of what its author was watching when it commented,
	// so a replay shows it in time.
	At time.Time
	// Received is when this node accepted it.
	Received time.Time
	// Deleted is set once the broadcaster deleted it (the log keeps it, so
	// the replay knows to leave it out).
	Deleted bool
}

// Hearts is the audience's hearts since the last Hearts event: the rise of
// the broadcaster's total (its beats carry it; the tree adds the taps up),
// less this node's own taps, which its pages floated when they were tapped.
type Hearts struct {
	Count int
	// Total is every heart of the broadcast so far, as the broadcaster
	// last counted it.
	Total uint64
}

// Moderated is a moderation action that took effect.
type Moderated struct {
	Op Op
	// Target is the user ("peer:<ID>" or "acct:<provider>:<account>"),
	// moderator ("peer:<ID>") or comment (CommentID's form) acted on.
	Target string
	On     bool
	// Until is the end of a mute (the zero time for "for the broadcast").
	Until time.Time
	Seq   uint64
}

// Summons tells a juror that it is on a jury: its application should show
// the comment and call Vote before the deadline.
type Summons struct {
	Call     uint64
	Comment  CommentID
	Text     string
	Deadline time.Time
}

// Reported tells the broadcaster that a comment was reported.
type Reported struct {
	Comment CommentID
	By      peer.ID
}

// Verdict tells the broadcaster how a jury decided.
type Verdict struct {
	Call    uint64
	Comment CommentID
	Guilty  bool
	// For and Against count the votes for and against muting; Jurors is
	// the jury's size.
	For, Against, Jurors int
	// Until is when the mute ends (the zero time for the rest of the
	// broadcast); zero for an acquittal.
	Until time.Time
}

func (*Comment) event()   {}
func (*Hearts) event()    {}
func (*Moderated) event() {}
func (*Summons) event()   {}
func (*Reported) event()  {}
func (*Verdict) event()   {}

// Viewer is an identified viewer, from its presence beats.
type Viewer struct {
	Peer     peer.ID
	Identity Identity
	Since    time.Time
}

// Viewers is who watches live.
type Viewers struct {
	// Live counts every live viewer: the nodes in the tree (the mesh's
	// subtree count, aggregated child to parent) and the browsers the
	// nodes serve. On the broadcaster it is current; elsewhere it is the
	// broadcaster's last beat.
	Live int
	// Identified are the viewers with a verified identity, newest first.
	Identified []Viewer
	// Anonymous is Live less the identified.
	Anonymous int
	// Hearts is the broadcast's heart count so far.
	Hearts uint64
}

// Moderation is the moderation state in force at this node.
type Moderation struct {
	// Synced is set once this node's state matched the broadcaster's; until
	// then it accepts no comments.
	Synced        bool
	Seq           uint64 // the newest action's
	CommentsOff   bool
	FollowersOnly bool
	Follows       []string
	Blocked       []string // users
	Muted         map[string]time.Time
	Moderators    []peer.ID
	Deleted       int
}

// Stats counts what the validators decided, by kind of message.
type Stats struct {
	Accepted, Rejected, Ignored map[string]uint64
	// Throttled counts messages ignored for their sender's rate.
	Throttled uint64
	// EventsDropped counts events the application did not take in time.
	EventsDropped uint64
}

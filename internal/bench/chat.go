package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/internal/report"
)

// Chat phases, after the arrivals (Config.Chat): comments, then hearts, then
// 10 % of the viewers killed while the broadcaster's live count is watched.
const (
	chatCommentPhase = 10 * time.Second
	chatHeartPhase   = 15 * time.Second
	chatHeartDrain   = 3 * time.Second // for the last taps to reach the broadcaster
	chatSettleMax    = 15 * time.Second
	// ChatTail is how long the chat phases need after the arrivals.
	ChatTail = chatCommentPhase + chatHeartPhase + chatHeartDrain + chatSettleMax
)

// chatNet is every host's chat room of one tree run: one GossipSub router
// per host, as a node has, the rooms joined the way node does.
type chatNet struct {
	r         *run
	rootLink  *chat.TreeLink // the broadcaster's room's link to its tree
	tapped    atomic.Uint64  // taps made in the heart phase
	rootIn    atomic.Uint64  // the broadcaster's inbound pubsub RPC bytes
	rootPub   atomic.Uint64  // of which published messages (every copy)
	rootMsg   atomic.Uint64  // published messages received, every copy
	rootIHave atomic.Uint64  // of which IHAVE gossip
	rootCtl   atomic.Uint64  // of which other control (IWANT, GRAFT, PRUNE, IDONTWANT)

	mu    sync.Mutex
	peers map[*viewer]*chatPeer
	lat   report.Sample
}

type chatPeer struct {
	room   *chat.Room
	cancel context.CancelFunc // the router's
	done   chan struct{}      // the drain has ended
}

// join starts v's router and room, its taps going to its tree node as a
// node's do; the broadcaster's counts its inbound pubsub bytes (its router
// carries only the chat topic).
func (c *chatNet) join(v *viewer, tree chat.Tree, root bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	opts := chat.PubSubOptions()
	if root {
		opts = append(opts, pubsub.WithRawTracer(inTracer{c}))
	}
	ps, err := pubsub.NewGossipSub(ctx, v.h, opts...)
	if err != nil {
		cancel()
		return fmt.Errorf("bench: chat router: %w", err)
	}
	cfg := chat.Config{Broadcast: c.r.bid, Broadcaster: c.r.root.h.ID(), Logger: c.r.cfg.Logger}
	link := chat.NewTreeLink(tree)
	link.Configure(&cfg)
	if root {
		c.rootLink = link
	}
	room, err := chat.Join(ctx, ps, v.h, cfg)
	if err != nil {
		cancel()
		return fmt.Errorf("bench: chat room: %w", err)
	}
	p := &chatPeer{room: room, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for e := range room.Events() {
			cm, ok := e.(*chat.Comment)
			if !ok || cm.Author.Peer == v.h.ID() {
				continue
			}
			if s, ok := strings.CutPrefix(cm.Text, "t="); ok {
				if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
					c.mu.Lock()
					c.lat.AddDuration(time.Since(time.Unix(0, ns)))
					c.mu.Unlock()
				}
			}
		}
	}()
	c.mu.Lock()
	if c.peers == nil {
		c.peers = map[*viewer]*chatPeer{}
	}
	c.peers[v] = p
	c.mu.Unlock()
	return nil
}

// leave closes v's room and router (after its host, when it was killed).
func (c *chatNet) leave(v *viewer) {
	c.mu.Lock()
	p := c.peers[v]
	delete(c.peers, v)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.room.Close()
	<-p.done
	p.cancel()
}

func (c *chatNet) close() {
	c.mu.Lock()
	vs := make([]*viewer, 0, len(c.peers))
	for v := range c.peers {
		vs = append(vs, v)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() { c.leave(v) })
	}
	wg.Wait()
}

// rooms returns the rooms of the present viewers.
func (c *chatNet) rooms() []*chat.Room {
	c.r.mu.Lock()
	present := append([]*viewer(nil), c.r.present...)
	c.r.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*chat.Room
	for _, v := range present {
		if p := c.peers[v]; p != nil {
			out = append(out, p.room)
		}
	}
	return out
}

// measure runs the chat phases and adds their figures to rep's fields:
// comments from random viewers (each carrying its send time) timed at every
// other room; hearts tapped 5 times a second at every viewer while the
// broadcaster's inbound pubsub bytes are counted; then 10 % of the viewers
// killed and the time until the broadcaster's live count is exact.
func (c *chatNet) measure(ctx context.Context, sw swarm, out *chatFigures) {
	// The broadcaster's audience and hearts, from its tree, a few times a
	// second (as node does).
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			_ = c.rootLink.Refresh(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	c.measureComments(ctx, out)
	c.measureHearts(ctx, out)
	if ctx.Err() != nil {
		return
	}
	c.measureSettle(ctx, sw, out)
}

// measureComments sends five comments a second, each from a random viewer.
func (c *chatNet) measureComments(ctx context.Context, out *chatFigures) {
	end := time.Now().Add(chatCommentPhase)
	sent, refused := 0, 0
	for i := 0; time.Now().Before(end); i++ {
		rooms := c.rooms()
		if len(rooms) == 0 || !sleepUntil(ctx, time.Now().Add(200*time.Millisecond)) {
			break
		}
		room := rooms[c.r.rng.IntN(len(rooms))]
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := room.Comment(cctx, "t="+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
			refused++
		} else {
			sent++
		}
		cancel()
	}
	out.commentsSent, out.commentsRefused = sent, refused
}

// measureHearts makes every viewer tap 5 times a second, counting the
// broadcaster's inbound bytes meanwhile, then sees how many hearts its tree
// counted and how many a viewer floated.
func (c *chatNet) measureHearts(ctx context.Context, out *chatFigures) {
	in0, pub0, msg0, t0 := c.rootIn.Load(), c.rootPub.Load(), c.rootMsg.Load(), time.Now()
	ihave0, ctl0 := c.rootIHave.Load(), c.rootCtl.Load()
	hctx, hcancel := context.WithTimeout(ctx, chatHeartPhase)
	var wg sync.WaitGroup
	for _, room := range c.rooms() {
		wg.Go(func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-hctx.Done():
					return
				case <-t.C:
					if room.Heart(hctx, 1) == nil {
						c.tapped.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	hcancel()
	if d := time.Since(t0).Seconds(); d > 0 {
		out.heartsInBps = float64(c.rootIn.Load()-in0) / d
		out.heartsPubBps = float64(c.rootPub.Load()-pub0) / d
		out.heartsMsgs = float64(c.rootMsg.Load()-msg0) / d
		out.heartsIHaveBps = float64(c.rootIHave.Load()-ihave0) / d
		out.heartsCtlBps = float64(c.rootCtl.Load()-ctl0) / d
	}
	// The taps go up the tree a status interval a hop: give the last ones
	// a few seconds, then see how many the broadcaster counted, and how
	// many a viewer floated.
	if rooms := c.rooms(); len(rooms) > 1 && sleepUntil(ctx, time.Now().Add(chatHeartDrain)) {
		out.heartsCounted = c.rootLink.Hearts()
		vctx, cancel := context.WithTimeout(ctx, time.Second)
		if v, err := rooms[len(rooms)-1].Viewers(vctx); err == nil {
			out.heartsAtViewer = v.Hearts
		}
		cancel()
	}
	out.heartsTapped = c.tapped.Load()
}

// measureSettle kills 10 % of the viewers abruptly and times how long the
// broadcaster's live count takes to be exact.
func (c *chatNet) measureSettle(ctx context.Context, sw swarm, out *chatFigures) {
	rootRoom := func() *chat.Room {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.peers[c.r.root].room
	}()
	c.r.mu.Lock()
	kill := max(len(c.r.present)/10, 1)
	c.r.mu.Unlock()
	for range kill {
		c.r.killOne(sw)
	}
	killed := time.Now()
	out.killed = kill
	for time.Since(killed) < chatSettleMax && ctx.Err() == nil {
		c.r.mu.Lock()
		want := len(c.r.present)
		c.r.mu.Unlock()
		vctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := rootRoom.Viewers(vctx)
		cancel()
		if err == nil && v.Live == want {
			out.settleMs = ms(time.Since(killed))
			out.settled = true
			return
		}
		sleepUntil(ctx, time.Now().Add(50*time.Millisecond))
	}
}

// chatFigures are what measure found.
type chatFigures struct {
	commentsSent, commentsRefused, killed int
	heartsInBps, heartsPubBps, heartsMsgs float64
	heartsIHaveBps, heartsCtlBps          float64
	heartsTapped, heartsCounted           uint64
	heartsAtViewer                        uint64
	settleMs                              float64
	settled                               bool
}

func (c *chatNet) report(f *chatFigures, rep *report.Report) {
	c.mu.Lock()
	q := c.lat.Quantiles()
	n := c.lat.Len()
	c.mu.Unlock()
	if n > 0 {
		rep.ChatLatencyMs = &q
	}
	rep.HeartsBroadcasterInBps = round4(f.heartsInBps)
	if f.settled {
		rep.ViewerCountSettleMs = f.settleMs
	}
	rep.Extra["chat_comments_sent"] = float64(f.commentsSent)
	rep.Extra["chat_comments_refused"] = float64(f.commentsRefused)
	rep.Extra["chat_comment_deliveries"] = float64(n)
	rep.Extra["chat_killed"] = float64(f.killed)
	// What the hearts' inbound bytes are: published messages (every copy a
	// mesh peer forwards) and their rate; the rest is GossipSub control.
	rep.Extra["hearts_broadcaster_in_publish_bps"] = round4(f.heartsPubBps)
	rep.Extra["hearts_broadcaster_in_msgs_per_s"] = round4(f.heartsMsgs)
	rep.Extra["hearts_broadcaster_in_ihave_bps"] = round4(f.heartsIHaveBps)
	rep.Extra["hearts_broadcaster_in_other_control_bps"] = round4(f.heartsCtlBps)
	// Whether the hearts arrived: the taps made, those the broadcaster's
	// tree counted (3 s after the last), and the total a viewer knew then
	// (from the beats, up to BeatInterval behind).
	rep.Extra["hearts_tapped"] = float64(f.heartsTapped)
	rep.Extra["hearts_counted"] = float64(f.heartsCounted)
	rep.Extra["hearts_total_at_a_viewer"] = float64(f.heartsAtViewer)
	if f.settled {
		rep.Extra["chat_count_settled"] = 1
	} else {
		rep.Extra["chat_count_settled"] = 0
	}
}

// inTracer counts the bytes of every RPC a router receives.
type inTracer struct{ c *chatNet }

func (t inTracer) RecvRPC(rpc *pubsub.RPC) {
	t.c.rootIn.Add(uint64(proto.Size(&rpc.RPC)))
	for _, m := range rpc.GetPublish() {
		t.c.rootPub.Add(uint64(proto.Size(m)))
		t.c.rootMsg.Add(1)
	}
	if ctl := rpc.GetControl(); ctl != nil {
		var ihave int
		for _, x := range ctl.GetIhave() {
			ihave += proto.Size(x)
		}
		t.c.rootIHave.Add(uint64(ihave))
		t.c.rootCtl.Add(uint64(max(proto.Size(ctl)-ihave, 0)))
	}
}
func (inTracer) AddPeer(peer.ID, protocol.ID)             {}
func (inTracer) RemovePeer(peer.ID)                       {}
func (inTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (inTracer) OnClosedOutboundStream(peer.ID)           {}
func (inTracer) Join(string)                              {}
func (inTracer) Leave(string)                             {}
func (inTracer) Graft(peer.ID, string)                    {}
func (inTracer) Prune(peer.ID, string)                    {}
func (inTracer) ValidateMessage(*pubsub.Message)          {}
func (inTracer) DeliverMessage(*pubsub.Message)           {}
func (inTracer) RejectMessage(*pubsub.Message, string)    {}
func (inTracer) DuplicateMessage(*pubsub.Message)         {}
func (inTracer) ThrottlePeer(peer.ID)                     {}
func (inTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (inTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (inTracer) UndeliverableMessage(*pubsub.Message)     {}

var _ pubsub.RawTracer = inTracer{}

// The tree swarm's side of --chat.

func (t *treeSwarm) measureChat(ctx context.Context) {
	t.chat.measure(ctx, t, &t.chatFig)
}

func (t *treeSwarm) chatReport(rep *report.Report) { t.chat.report(&t.chatFig, rep) }

package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/announce"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/owner"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/media"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/whep"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/mesh/stripe"
	"github.com/peerscope/peerscope/replay"
	webpeer "github.com/peerscope/peerscope/web/peer"
)

// meshProtocol is the tree protocol of one broadcast: a host holds one
// handler per protocol ID, so each broadcast gets its own.
func meshProtocol(id string) protocol.ID { return p2p.ProtocolID + "/" + protocol.ID(id) }

// sinkQueue is how many delivered chunks may wait for the local players
// before new ones are dropped (counted): about 50 s of 200 ms parts.
const sinkQueue = 256

// Broadcast is one broadcast as this node takes part in it: as its
// broadcaster (Node.GoLive) or as a viewer (Node.Watch). Either way the
// node serves it locally: its player page, LL-HLS and WHEP.
//
// One goroutine owns its state (run): it feeds the delivered chunks to the
// players, keeps the newest announcement, notices the end, and decides when
// a viewer asks for a newer announcement. Other goroutines hand it their
// changes and questions through an owner.Inbox; the tree's goroutine only
// queues chunks and pokes. What is read from elsewhere without the owner
// is fixed at the start (the fields above mu's place in newBroadcast) or a
// counter.
type Broadcast struct {
	n      *Node
	id     string
	root   bool
	rootID peer.ID
	key    ed25519.PublicKey
	link   link.Link // how this node joined (viewers)
	slots  int       // at the start; slotsNow follows the bitrate (slots.go)
	log    *slog.Logger

	// carrier carries the broadcast: its one tree, or its striped group.
	// trees are its trees (stripe k's at k); tree is the one whose place
	// Status and the metrics tell: this node's stripe's (the
	// broadcaster's: stripe 0's).
	carrier carrier
	trees   []*p2p.Tree
	tree    *p2p.Tree
	spec    stripe.Spec // from the first announcement: zero, one tree
	hls     *hls.Server
	whep    *whep.Server
	page    http.Handler

	// The broadcaster's side (nil, "" and false on a viewer).
	pub       *publish.Publisher
	recorder  *replay.Recorder // the chunks it made, for the replay's manifest
	streamKey string
	takesWHIP bool
	listed    bool // public, in the bootstrap's directory (set before it is added to the node)
	// location is where the broadcaster said the broadcast is, for the
	// directory's map (nil: not said); a publisher may set it.
	location atomic.Pointer[api.Location]
	// stills holds the newest still a publisher sent for the directory's
	// card, until the listing loop sends it (a newer one replaces it).
	stills chan []byte
	// stiller makes stills from keyframes with ffmpeg, for a listed public
	// broadcast (nil otherwise).
	stiller *keyframeStiller
	// flowing is closed at the first media chunk the publisher makes: a
	// broadcast that takes publishers is listed from then on only.
	flowing  chan struct{}
	flowOnce sync.Once

	// A private broadcast's (nil when public): its keys here, who may be
	// in its tree at this node, and on the broadcaster its epochs and
	// roster (private.go, member.go, admit.go).
	ring   *keyring
	gate   *gate
	caster *caster

	room       *chat.Room     // nil when the chat could not be joined
	chat       *web.Server    // the chat's HTTP API and event streams (chat/web)
	treeLink   *chat.TreeLink // the room's taps, browsers and counts through the tree
	hlsClients webClients     // LL-HLS clients heard from lately

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The owner goroutine's inputs, and its state.
	chunks  chan *chunk.Chunk // delivered, for the local players
	refresh chan struct{}     // cap 1: ask for the announcement now
	inbox   *owner.Inbox
	stopped chan struct{} // closed when the owner returns
	done    chan struct{} // closed (by the owner) when the broadcast has ended
	st      state
	pending []*chunk.Chunk // owner: chunks waiting for their epoch's keys

	kept      chan *chunk.Chunk // delivered, for the replay store (nil: none)
	closeOnce sync.Once
	slotsNow  atomic.Int64
	rate      bitrate // owner: the stream's bitrate as announced and measured (slots.go)

	counters
}

// state is what the owner goroutine owns.
type state struct {
	ann      announce.Signed // the newest verified
	endSeen  bool            // the end chunk was delivered here
	ended    bool            // done is closed
	fetching bool            // an announcement is being fetched
	// following: a viewer's tree is up, its announcement is kept fresh
	// (follow); asked: one was asked for before.
	following, asked bool
}

// counters are the broadcast's figures for Status and /metrics: written
// where things happen, read when asked; nothing decides on them.
type counters struct {
	received    atomic.Uint64 // media chunks delivered
	latestLat   atomic.Int64  // capture → receipt of the newest, ns
	latencySum  atomic.Int64  // ns, over received
	dropped     atomic.Uint64 // delivered chunks the players could not take
	keepDropped atomic.Uint64 // delivered chunks the replay store could not take
	chunksOut   atomic.Uint64 // chunk messages sent to children
	bytesOut    atomic.Uint64 // chunk payload bytes sent
	bytesIn     atomic.Uint64 // chunk payload bytes received, every copy
	hlsRequests atomic.Uint64
	// undecryptable: private chunks that did not open, or whose keys never
	// came while maxPending waited.
	undecryptable atomic.Uint64
}

// newBroadcast builds what both roles share: the players, the page, the
// owner goroutine (with the first announcement) and the replay store's
// queue. The tree is started by the caller.
func (n *Node) newBroadcast(id string, root bool, slots int, first announce.Signed, ring *keyring) (*Broadcast, error) {
	rootID, key, err := link.BroadcasterOf(id)
	if err != nil {
		return nil, err
	}
	b := &Broadcast{
		n:       n,
		id:      id,
		root:    root,
		rootID:  rootID,
		key:     key,
		slots:   slots,
		log:     n.log.With("broadcast", shortBroadcast(id)),
		chunks:  make(chan *chunk.Chunk, sinkQueue),
		refresh: make(chan struct{}, 1),
		stills:  make(chan []byte, 1),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
		flowing: make(chan struct{}),
		st:      state{ann: first},
		ring:    ring,
	}
	b.spec = stripe.Spec{Data: first.Stripes, Parity: first.Parity}
	if ring != nil {
		b.gate = newGate(n.host, id, rootID, n.clock, b.log)
		b.gate.onRoster = n.private.setRoster
		n.private.setSealed(id, true)
		n.private.setRing(id, ring)
	}
	b.slotsNow.Store(int64(slots))
	b.inbox = owner.New(16, b.stopped, ErrClosed)
	b.ctx, b.cancel = context.WithCancel(n.ctx)
	var opener media.Opener
	if ring != nil {
		opener = playOpener{b}
	}
	if b.hls, err = hls.NewServer(hls.Config{Window: DefaultLiveWindow, Logger: b.log.With("part", "hls"), Opener: opener}); err != nil {
		return nil, err
	}
	// A WHEP session that opens or ends changes the browsers counted
	// (webViewers): the chat's loop tells the tree then.
	onWHEP := func() { b.chat.Wake() }
	if b.whep, err = whep.NewServer(whep.Config{Logger: b.log.With("part", "whep"), Opener: opener, OnClients: onWHEP}); err != nil {
		_ = b.hls.Close()
		return nil, err
	}
	b.chat = b.chatWeb()
	b.page = player.New(player.Routes{
		HLS:    n.metrics.countHLS(b, b.hls),
		WHEP:   n.metrics.countWHEP(b, b.whep),
		Status: b.playerStatus,
		// What the chat posts acts in the node's name: the owner's pages
		// only (JSON, from this machine, with the page token).
		Chat:  n.guard.OwnerWrites(b.chat),
		Token: n.guard.PageToken,
		// The page's own light node (?mode=p2p) joins the tree through
		// this node.
		Peer:       b.browserPeer,
		PeerScript: webpeer.Handler(),
	})
	if first.Ended {
		b.st.ended = true
		close(b.done)
	}
	b.wg.Go(b.run)
	if n.store != nil {
		b.kept = make(chan *chunk.Chunk, keepQueue)
		b.wg.Go(b.keepChunks)
	}
	return b, nil
}

// browserPeer tells the page's light node how to join the tree: the
// protocol and this node's WebTransport and WebRTC-direct addresses.
func (b *Broadcast) browserPeer() (player.Peer, bool) {
	addrs := b.n.BrowserAddrs()
	if len(addrs) == 0 || b.spec.Data > 0 {
		// A striped broadcast's pages play from this node: the browser
		// node runs one tree (web/peer).
		return player.Peer{}, false
	}
	p := player.Peer{Broadcast: b.id, Protocol: string(meshProtocol(b.id))}
	for _, a := range addrs {
		p.Addrs = append(p.Addrs, a.String())
	}
	return p, true
}

// welcomeSlots is how many pages a node that browsers can reach feeds for
// a moment beyond its slots (mesh.Config.Welcome): what the headroom its
// upload keeps would carry, slots × (headroom − 1), at least one and at
// most two. A node that relays to nobody welcomes nobody.
func welcomeSlots(slots int, headroom float64) int {
	if slots <= 0 {
		return 0
	}
	return min(max(int(float64(slots)*(headroom-1)), 1), 2)
}

// liveWindowChunks is DefaultLiveWindow in chunks of the tree's interval
// (mesh.DefaultConfig's when unset).
func liveWindowChunks(interval time.Duration) int {
	if interval <= 0 {
		interval = mesh.DefaultConfig().ChunkInterval
	}
	return max(int(DefaultLiveWindow/interval), 8)
}

// startTree joins (or, on the broadcaster, roots) the broadcast's tree.
func (b *Broadcast) startTree(root mesh.PeerInfo) error {
	cfg := b.n.cfg.Mesh
	cfg.Self = mesh.PeerInfo{}
	cfg.Root = root
	cfg.Broadcast = b.id
	cfg.Key = b.key
	cfg.Slots = b.slots
	if cfg.Window == 0 && !b.root {
		// The broadcaster keeps the tree's default (30 s): the one source
		// every first-level child backfills from.
		cfg.Window = liveWindowChunks(cfg.ChunkInterval)
	}
	if cfg.Welcome == 0 && len(b.n.BrowserAddrs()) > 0 {
		cfg.Welcome = welcomeSlots(b.slots, b.n.cfg.Headroom)
	}
	cfg.Counters = chat.TreeCounters()
	cfg.Rand = nil // a *rand.Rand is not safe to share between trees: each seeds its own
	opts := []p2p.Option{
		p2p.WithEvents(b.event),
		p2p.WithMetrics(treeMetrics{b}),
		p2p.WithLogger(b.log),
	}
	if b.gate != nil {
		// Members only: a peer attaches, probes or feeds this node once
		// it presented a token the roster admits (admit.go).
		opts = append(opts, p2p.WithAdmit(b.gate.admit), p2p.WithIntroduce(b.gate.introduce))
	}
	if err := b.newTree(cfg, opts); err != nil {
		return err
	}
	if b.gate != nil {
		b.gate.setTrees(b.trees)
		b.n.host.SetStreamHandler(admitProtocol(b.id), b.gate.serve)
	}
	// Every node is in stripe 0's tree: it carries the chat's counters.
	b.treeLink = chat.NewTreeLink(b.trees[0])
	b.joinChat()
	return nil
}

// carrier is what *p2p.Tree and *stripe.Group share: what the broadcast
// asks of its tree or trees.
type carrier interface {
	Publish(ctx context.Context, c *chunk.Chunk) error
	AddCandidates(peers ...mesh.PeerInfo)
	SetSlots(slots int) error
	Close() error
}

// newTree starts the broadcast's tree, or its striped group.
func (b *Broadcast) newTree(cfg mesh.Config, opts []p2p.Option) error {
	if b.spec.Data == 0 {
		t, err := p2p.New(b.n.host, cfg, append(opts, p2p.WithProtocol(meshProtocol(b.id)), p2p.WithDeliver(b.deliver))...)
		if err != nil {
			return err
		}
		b.carrier, b.trees, b.tree = t, []*p2p.Tree{t}, t
		return nil
	}
	g, err := stripe.New(b.n.host, cfg, b.spec, meshProtocol(b.id), b.deliver, func(int) []p2p.Option { return opts })
	if err != nil {
		return err
	}
	b.carrier, b.trees, b.tree = g, g.Trees(), g.Trees()[0]
	if !b.root {
		b.tree = g.Trees()[g.Stripe()]
	}
	return nil
}

// run is the owner goroutine: it ends once the chunk queue is closed (after
// the tree, at teardown) and drained.
func (b *Broadcast) run() {
	defer close(b.stopped)
	var tick <-chan time.Time
	var keysAdded <-chan struct{}
	if b.ring != nil {
		keysAdded = b.ring.added
	}
	if !b.root {
		t := b.n.clock.NewTicker(b.n.cfg.AnnounceInterval)
		defer t.Stop()
		tick = t.C()
	}
	for {
		select {
		case c, ok := <-b.chunks:
			if !ok {
				return
			}
			b.play(c)
		case f := <-b.inbox.Calls():
			f()
		case <-keysAdded:
			b.keysAdded()
		case <-b.refresh:
			b.follow(true)
		case <-tick:
			b.follow(false)
		}
	}
}

// call runs f on the owner goroutine; once the owner has stopped (the
// broadcast is closed), f runs here on its final state, which nothing
// changes any more: f must only read.
func (b *Broadcast) call(f func()) {
	if b.inbox.Call(context.Background(), f) != nil {
		<-b.stopped
		f()
	}
}

// deliver runs on the tree's owner goroutine: it hands the chunk on and
// returns at once.
func (b *Broadcast) deliver(c *chunk.Chunk) {
	b.keep(c)
	select {
	case b.chunks <- c:
	default:
		b.dropped.Add(1)
	}
}

// play hands a delivered chunk to the local players (owner).
func (b *Broadcast) play(c *chunk.Chunk) {
	if c = b.openForPlay(c); c == nil {
		return
	}
	b.measure(c)
	if !c.IsInit() && len(c.Payload) > 0 {
		lat := b.n.clock.Now().Sub(time.Unix(0, c.Wallclock))
		b.received.Add(1)
		b.latestLat.Store(int64(lat))
		b.latencySum.Add(int64(lat))
		b.n.metrics.observeLatency(b.id, lat)
	}
	if err := b.hls.Push(c); err != nil && !errors.Is(err, hls.ErrClosed) {
		b.log.Warn("LL-HLS refused a chunk", "seq", c.Seq, "err", err)
	}
	if err := b.whep.Push(c); err != nil && !errors.Is(err, whep.ErrClosed) {
		b.log.Warn("WHEP refused a chunk", "seq", c.Seq, "err", err)
	}
	if c.Flags&chunk.FlagEnd != 0 {
		b.st.endSeen = true
		b.log.Info("the broadcast ended", "seq", c.Seq)
		b.setEnded()
		b.follow(true)
	}
}

// setEnded marks the broadcast ended (owner): Done closes, and a viewer
// goes for the replay's manifest.
func (b *Broadcast) setEnded() {
	if b.st.ended {
		return
	}
	b.st.ended = true
	close(b.done)
	if !b.root {
		b.wg.Go(b.awaitManifest)
	}
}

func (b *Broadcast) event(e mesh.Event) {
	switch e.Type {
	case mesh.EvAttached:
		b.log.Info("attached", "parent", shortMesh(e.Peer), "depth", e.Depth, "rejoin", e.Rejoin, "moved", e.Moved)
		b.askAnnouncement()
	case mesh.EvParentLost:
		b.log.Info("parent lost", "parent", shortMesh(e.Peer), "reason", e.Loss)
	case mesh.EvForged:
		b.log.Warn("a peer sent a forged chunk", "peer", shortMesh(e.Peer))
	case mesh.EvChildAdded, mesh.EvChildRemoved:
		b.log.Debug(e.Type.String(), "child", shortMesh(e.Peer))
	}
}

// askAnnouncement asks the owner to fetch the announcement now; it never
// blocks (the tree's goroutine calls it).
func (b *Broadcast) askAnnouncement() {
	select {
	case b.refresh <- struct{}{}:
	default:
	}
}

// offer keeps a verified announcement if it is newer (owner).
func (b *Broadcast) offer(a announce.Signed) {
	if b.st.ann.Held() && a.Version <= b.st.ann.Version {
		return
	}
	if b.st.ann.Held() && a.Title != b.st.ann.Title {
		b.log.Info("new title", "title", a.Title)
	}
	b.st.ann = a
	b.bitrateSeen(a.Bitrate, false)
	if a.Ended {
		b.setEnded()
	}
}

// signed returns the newest verified announcement.
func (b *Broadcast) signed() (a announce.Signed, ok bool) {
	b.call(func() { a, ok = b.st.ann, b.st.ann.Held() })
	return a, ok
}

// Close leaves the broadcast: a broadcaster ends it first (the last chunk
// says so, and the announcement), a viewer hands its children to its
// parent. The local player page goes away. Safe to call more than once.
func (b *Broadcast) Close() error {
	b.closeOnce.Do(func() {
		if b.pub != nil {
			b.pub.Stop() // its end goes through the owner, still running
		}
		b.n.remove(b)
		b.teardown()
	})
	return nil
}

// teardown stops everything newBroadcast and startTree started, in the
// order they feed each other: the chat room (it says goodbye while the tree
// and host are up), the broadcast's context, the tree (after it, deliver is
// never called again), the queues (the owner and the store's writer drain
// them and return), then the players.
func (b *Broadcast) teardown() {
	if b.room != nil {
		_ = b.room.Close()
		if b.ring != nil {
			b.n.private.set(b.room.Topic(), nil)
		}
	}
	b.cancel()
	if b.gate != nil {
		b.n.host.RemoveStreamHandler(admitProtocol(b.id))
	}
	if b.carrier != nil {
		_ = b.carrier.Close()
	}
	close(b.chunks)
	if b.kept != nil {
		close(b.kept)
	}
	b.wg.Wait()
	_ = b.hls.Close()
	_ = b.whep.Close()
	b.n.metrics.forget(b.id)
	b.n.swarm.Forget(b.id)
}

// ID returns the broadcast ID.
func (b *Broadcast) ID() string { return b.id }

// IsBroadcaster reports whether this node is the broadcast's root.
func (b *Broadcast) IsBroadcaster() bool { return b.root }

// Broadcaster returns the broadcaster's peer ID.
func (b *Broadcast) Broadcaster() peer.ID { return b.rootID }

// Slots returns how many children this node offers in the broadcast's
// tree now: sized by the stream's bitrate as measured (slots.go).
func (b *Broadcast) Slots() int { return int(b.slotsNow.Load()) }

// Announcement returns the newest announcement this node holds: the title,
// the start, whether it has ended, the bitrate.
func (b *Broadcast) Announcement() announce.Announcement {
	a, _ := b.signed()
	return a.Announcement
}

// Done is closed when the broadcast has ended (its last chunk reached this
// node, or its announcement says so).
func (b *Broadcast) Done() <-chan struct{} { return b.done }

func (b *Broadcast) ended() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// playerStatus is what the page's api/status says.
func (b *Broadcast) playerStatus() player.Status {
	var a announce.Announcement
	var ended bool
	b.call(func() { a, ended = b.st.ann.Announcement, b.st.endSeen || b.st.ann.Ended })
	info := b.hls.Info()
	st := player.Status{
		Title:     a.Title,
		Live:      info.Live && !ended,
		Ended:     ended,
		StartedAt: a.Started,
	}
	if !ended {
		st.Link = b.Link().String()
	}
	if !b.Private() {
		if listed := b.n.nameBroadcaster(b.id, &st); listed && !ended {
			st.WebLink = b.n.community.WebLink(b.id)
		}
	}
	b.replayStatus(&st)
	return st
}

// nameBroadcaster fills st's Who (or Anonymous) from the first bootstrap's
// listing of broadcast id, as last read (community.Broadcaster never
// waits), and says whether it is listed there.
func (n *Node) nameBroadcaster(id string, st *player.Status) (listed bool) {
	if n.community == nil {
		return false
	}
	who, listed := n.community.Broadcaster(id)
	if who != nil {
		st.Broadcaster = who.Handle
		st.Who = &player.Person{Provider: who.Provider, Account: who.Subject, Handle: who.Handle, Name: who.Name, Avatar: who.Avatar}
	}
	st.Anonymous = listed && who == nil
	return listed
}

// treeMetrics counts what the tree sends and receives.
type treeMetrics struct{ b *Broadcast }

func (m treeMetrics) Sent(_ mesh.PeerID, msg *mesh.Message, chunkBytes, _ int) {
	if msg.Type == mesh.MsgChunk {
		m.b.chunksOut.Add(1)
		m.b.bytesOut.Add(uint64(chunkBytes))
	}
}

func (m treeMetrics) Received(_ mesh.PeerID, msg *mesh.Message, chunkBytes, _ int) {
	if msg.Type == mesh.MsgChunk {
		m.b.bytesIn.Add(uint64(chunkBytes))
	}
}

func shortBroadcast(id string) string {
	if len(id) > 16 {
		return "…" + id[len(id)-16:]
	}
	return id
}

func shortMesh(id mesh.PeerID) string {
	if len(id) > 8 {
		return string(id[len(id)-8:])
	}
	return string(id)
}

package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peerscope/peerscope/chat"
	"github.com/peerscope/peerscope/chat/web"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/media/hls"
	"github.com/peerscope/peerscope/media/player"
	"github.com/peerscope/peerscope/media/whep"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// meshProtocol is the tree protocol of one broadcast: a host holds one
// handler per protocol ID, so each broadcast gets its own.
func meshProtocol(id string) protocol.ID { return p2p.ProtocolID + "/" + protocol.ID(id) }

// sinkQueue is how many delivered chunks may wait for the local players
// before new ones are dropped (counted): about 50 s of 200 ms parts.
const sinkQueue = 256

// Broadcast is one broadcast as this node takes part in it: as its
// broadcaster (Node.Broadcast) or as a viewer (Node.Watch). Either way the
// node serves it locally: its player page, LL-HLS and WHEP.
type Broadcast struct {
	n      *Node
	id     string
	root   bool
	rootID peer.ID
	key    ed25519.PublicKey
	link   Link // how this node joined (viewers)
	slots  int
	log    *slog.Logger

	tree   *p2p.Tree
	hls    *hls.Server
	whep   *whep.Server
	page   http.Handler
	pub    *publisher   // the broadcaster's side, nil on a viewer
	replay *replayState // the manifest (replay_publish.go)

	room       *chat.Room     // nil when the chat could not be joined
	chat       *web.Server    // the chat's HTTP API and event streams (chat/web)
	treeLink   *chat.TreeLink // the room's taps, browsers and counts through the tree
	hlsClients recentClients  // LL-HLS players heard from lately

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	chunks chan *chunk.Chunk // delivered, for the local players
	kept   chan *chunk.Chunk // delivered, for the replay store (nil: none)

	refresh chan struct{} // cap 1: ask for the announcement now

	mu       sync.Mutex
	ann      signedAnnouncement // the newest verified
	haveAnn  bool
	endSeen  bool // the end chunk was delivered here
	closing  bool
	done     chan struct{} // closed when the broadcast has ended
	doneOnce sync.Once

	closeOnce sync.Once

	// Counters, for Status and /metrics.
	received    atomic.Uint64 // media chunks delivered
	latestLat   atomic.Int64  // capture → receipt of the newest, ns
	latencySum  atomic.Int64  // ns, over received
	dropped     atomic.Uint64 // delivered chunks the players could not take
	keepDropped atomic.Uint64 // delivered chunks the replay store could not take
	chunksOut   atomic.Uint64 // chunk messages sent to children
	bytesOut    atomic.Uint64 // chunk payload bytes sent
	bytesIn     atomic.Uint64 // chunk payload bytes received, every copy
	hlsRequests atomic.Uint64
}

// newBroadcast builds what both roles share: the players, the page, the
// delivery goroutine. The tree is started by the caller.
func (n *Node) newBroadcast(id string, root bool, slots int) (*Broadcast, error) {
	rootID, key, err := BroadcasterOf(id)
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
		done:    make(chan struct{}),
		replay:  newReplayState(),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.hls, err = hls.NewServer(hls.Config{Logger: b.log.With("part", "hls")}); err != nil {
		return nil, err
	}
	if b.whep, err = whep.NewServer(whep.Config{Logger: b.log.With("part", "whep")}); err != nil {
		_ = b.hls.Close()
		return nil, err
	}
	b.chat = b.chatWeb()
	b.page = player.New(player.Routes{
		HLS:    n.metrics.countHLS(b, b.hls),
		WHEP:   n.metrics.countWHEP(b, b.whep),
		Status: b.playerStatus,
		Chat:   b.chat,
	})
	b.wg.Go(b.feedPlayers)
	if n.replay != nil {
		b.kept = make(chan *chunk.Chunk, keepQueue)
		b.wg.Go(b.keepChunks)
	}
	return b, nil
}

// startTree joins (or, on the broadcaster, roots) the broadcast's tree.
func (b *Broadcast) startTree(root mesh.PeerInfo) error {
	cfg := b.n.cfg.Mesh
	cfg.Self = mesh.PeerInfo{}
	cfg.Root = root
	cfg.Broadcast = b.id
	cfg.Key = b.key
	cfg.Slots = b.slots
	cfg.Counters = chat.TreeCounters()
	cfg.Rand = nil // a *rand.Rand is not safe to share between trees: each seeds its own
	tree, err := p2p.New(b.n.host, cfg,
		p2p.WithProtocol(meshProtocol(b.id)),
		p2p.WithDeliver(b.deliver),
		p2p.WithEvents(b.event),
		p2p.WithMetrics(treeMetrics{b}),
		p2p.WithLogger(b.log))
	if err != nil {
		return err
	}
	b.tree = tree
	b.treeLink = chat.NewTreeLink(tree)
	b.joinChat()
	return nil
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

// feedPlayers hands delivered chunks to the local players.
func (b *Broadcast) feedPlayers() {
	for c := range b.chunks {
		if !c.IsInit() && len(c.Payload) > 0 {
			lat := time.Since(time.Unix(0, c.Wallclock))
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
			b.mu.Lock()
			b.endSeen = true
			b.mu.Unlock()
			b.log.Info("the broadcast ended", "seq", c.Seq)
			b.markDone()
			b.askAnnouncement()
		}
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

func (b *Broadcast) markDone() { b.doneOnce.Do(func() { close(b.done) }) }

// Watch joins a broadcast's tree as a viewer, through the peers of the
// link, and serves it locally. It first asks the link's peers for the
// broadcast's announcement (so a wrong or dead link fails here, with
// ErrUnreachable), then sizes its child slots from the broadcast's bitrate.
// ctx bounds the joining only; Close (of the Broadcast or the Node) leaves.
func (n *Node) Watch(ctx context.Context, l Link) (*Broadcast, error) {
	rootID, key, err := BroadcasterOf(l.Broadcast)
	if err != nil {
		return nil, err
	}
	if len(l.Peers) == 0 {
		return nil, fmt.Errorf("%w: no peer to join through", ErrBadLink)
	}
	if n.lookup(l.Broadcast) != nil {
		return nil, fmt.Errorf("%w: %s", ErrJoined, l.Broadcast)
	}
	var ann signedAnnouncement
	var errs []error
	for _, p := range l.Peers {
		if p.ID == n.host.ID() {
			continue
		}
		a, err := n.fetchAnnouncement(ctx, p, l.Broadcast, key)
		if err == nil {
			ann = a
			errs = nil
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", shortPeer(p.ID), err))
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case errs != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
	case ann.sig == nil:
		return nil, fmt.Errorf("%w: the link names only this node", ErrUnreachable)
	}
	b, err := n.newBroadcast(l.Broadcast, false, n.cfg.slotsFor(ann.Bitrate))
	if err != nil {
		return nil, err
	}
	b.link = l
	b.ann, b.haveAnn = ann, true
	if ann.Ended {
		b.markDone()
	}
	root := mesh.PeerInfo{ID: p2p.MeshID(rootID)}
	for _, p := range l.Peers {
		if p.ID == rootID {
			root = meshInfo(p)
		}
	}
	if err := b.startTree(root); err != nil {
		b.teardown()
		return nil, err
	}
	if err := n.add(b); err != nil {
		b.teardown()
		return nil, err
	}
	b.tree.AddCandidates(l.candidates()...)
	b.wg.Go(b.followAnnouncements)
	b.wg.Go(b.awaitManifest)
	b.log.Info("watching", "title", ann.Title, "slots", b.slots, "player", b.PlayerURL())
	return b, nil
}

// followAnnouncements keeps a viewer's announcement fresh: it asks its
// parent (or the broadcaster, while it has none) every AnnounceInterval, and
// at once when it attaches or sees the end, until the announcement says the
// broadcast has ended.
func (b *Broadcast) followAnnouncements() {
	t := time.NewTicker(b.n.cfg.AnnounceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.refresh:
		}
		if a, ok := b.signed(); ok && a.Ended {
			return
		}
		target := peer.AddrInfo{ID: b.rootID}
		ctx, cancel := context.WithTimeout(b.ctx, announceTimeout)
		if st, _, err := b.tree.Status(ctx); err == nil && st.Parent != "" {
			if pid, err := p2p.PeerID(st.Parent); err == nil {
				target.ID = pid
			}
		}
		a, err := b.n.fetchAnnouncement(ctx, target, b.id, b.key)
		if err != nil && target.ID != b.rootID {
			a, err = b.n.fetchAnnouncement(ctx, peer.AddrInfo{ID: b.rootID}, b.id, b.key)
		}
		cancel()
		if err != nil {
			b.log.Debug("announcement not fetched", "from", shortPeer(target.ID), "err", err)
			continue
		}
		b.offer(a)
	}
}

// offer keeps a verified announcement if it is newer.
func (b *Broadcast) offer(a signedAnnouncement) {
	b.mu.Lock()
	newer := !b.haveAnn || a.Version > b.ann.Version
	if newer {
		if b.haveAnn && a.Title != b.ann.Title {
			b.log.Info("new title", "title", a.Title)
		}
		b.ann, b.haveAnn = a, true
	}
	b.mu.Unlock()
	if newer && a.Ended {
		b.markDone()
	}
}

func (b *Broadcast) askAnnouncement() {
	select {
	case b.refresh <- struct{}{}:
	default:
	}
}

// signed returns the newest verified announcement.
func (b *Broadcast) signed() (signedAnnouncement, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ann, b.haveAnn
}

// Close leaves the broadcast: a broadcaster ends it first (the last chunk
// says so, and the announcement), a viewer hands its children to its
// parent. The local player page goes away. Safe to call more than once.
func (b *Broadcast) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		if b.pub != nil {
			b.pub.stop()
		}
		b.n.remove(b)
		b.teardown()
	})
	return nil
}

// teardown stops everything newBroadcast and startTree started.
func (b *Broadcast) teardown() {
	if b.room != nil {
		_ = b.room.Close() // says goodbye while the tree and host are up
	}
	b.cancel()
	if b.tree != nil {
		_ = b.tree.Close() // after it, deliver is never called again
	}
	close(b.chunks)
	if b.kept != nil {
		close(b.kept)
	}
	b.wg.Wait()
	_ = b.hls.Close()
	_ = b.whep.Close()
	b.n.metrics.forget(b.id)
}

// ID returns the broadcast ID.
func (b *Broadcast) ID() string { return b.id }

// IsBroadcaster reports whether this node is the broadcast's root.
func (b *Broadcast) IsBroadcaster() bool { return b.root }

// Broadcaster returns the broadcaster's peer ID.
func (b *Broadcast) Broadcaster() peer.ID { return b.rootID }

// Slots returns how many children this node offers in the broadcast's tree.
func (b *Broadcast) Slots() int { return b.slots }

// Announcement returns the newest announcement this node holds: the title,
// the start, whether it has ended.
func (b *Broadcast) Announcement() Announcement {
	a, _ := b.signed()
	return a.Announcement
}

// Title returns the broadcast's title.
func (b *Broadcast) Title() string { return b.Announcement().Title }

// Done is closed when the broadcast has ended (its last chunk reached this
// node, or its announcement says so).
func (b *Broadcast) Done() <-chan struct{} { return b.done }

// Ended reports whether the broadcast has ended.
func (b *Broadcast) Ended() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Link returns a link to share: this node first (it relays, or redirects
// to its children), then the peers this node joined through (those first
// when this node relays to nobody).
func (b *Broadcast) Link() Link {
	self := peer.AddrInfo{ID: b.n.host.ID(), Addrs: reachableFirst(b.n.host.Addrs())}
	var l Link
	l.Broadcast = b.id
	if b.slots > 0 || b.root {
		l.Peers = append(l.Peers, self)
	}
	for _, p := range b.link.Peers {
		if p.ID != self.ID && len(l.Peers) < 4 {
			l.Peers = append(l.Peers, p)
		}
	}
	if b.slots == 0 && !b.root {
		// It relays to nobody: a joiner should try the others first.
		l.Peers = append(l.Peers, self)
	}
	// Keep within MaxLinkPeers addresses in all.
	total := 0
	for i := range l.Peers {
		room := MaxLinkPeers - total
		if len(l.Peers[i].Addrs) > room {
			l.Peers[i].Addrs = l.Peers[i].Addrs[:room]
		}
		total += len(l.Peers[i].Addrs)
	}
	for len(l.Peers) > 0 && len(l.Peers[len(l.Peers)-1].Addrs) == 0 {
		l.Peers = l.Peers[:len(l.Peers)-1]
	}
	return l
}

// reachableFirst orders addresses for a link: public ones, then private
// (LAN) ones, then loopback, which only works on this machine.
func reachableFirst(addrs []ma.Multiaddr) []ma.Multiaddr {
	rank := func(a ma.Multiaddr) int {
		switch {
		case manet.IsIPLoopback(a):
			return 2
		case manet.IsPublicAddr(a):
			return 0
		}
		return 1
	}
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(a, b ma.Multiaddr) int { return rank(a) - rank(b) })
	return out
}

// PlayerPath returns the path of the broadcast's player page on the node's
// web server ("/b/<ID>/").
func (b *Broadcast) PlayerPath() string { return "/b/" + b.id + "/" }

// PlayerURL returns the player page on this machine.
func (b *Broadcast) PlayerURL() string { return b.n.HTTPURL() + b.PlayerPath() }

// HLSURL returns the LL-HLS playlist (for VLC, ffplay, hls.js).
func (b *Broadcast) HLSURL() string { return b.PlayerURL() + "hls/index.m3u8" }

// WHEPURL returns the WHEP endpoint (WebRTC playback).
func (b *Broadcast) WHEPURL() string { return b.PlayerURL() + "whep" }

// StatusURL returns the JSON status the player page reads.
func (b *Broadcast) StatusURL() string { return b.PlayerURL() + "api/status" }

// TreeStatus is this node's place in the broadcast's tree and what it moved.
type TreeStatus struct {
	State    string
	Depth    int // hops from the broadcaster (0 on it); -1 while not in the tree
	Parent   peer.ID
	Children []peer.ID
	Slots    int
	Subtree  uint32     // this node and all below it, as last reported
	Mesh     mesh.Stats // the tree's counters (chunks in, duplicates, forged…)

	// ParentPath says how this node reaches its parent (direct, or relayed
	// when only through a circuit relay); RelayedChildren counts the
	// children reached only through one.
	ParentPath      Path
	RelayedChildren int

	Received   uint64        // media chunks delivered to the local players
	Dropped    uint64        // delivered chunks the players could not take
	ChunksSent uint64        // chunk messages sent to children
	BytesSent  uint64        // chunk payload bytes sent to children
	Latency    time.Duration // capture → receipt of the newest media chunk
	LatencySum time.Duration // over Received: the mean is LatencySum ÷ Received

	HLSRequests  uint64 // LL-HLS requests served by this node
	WHEPSessions int    // WebRTC playback sessions open on this node
}

// Status returns this node's place in the tree and its counters.
func (b *Broadcast) Status(ctx context.Context) (TreeStatus, error) {
	st, stats, err := b.tree.Status(ctx)
	if err != nil {
		if errors.Is(err, p2p.ErrClosed) {
			err = ErrClosed
		}
		return TreeStatus{Depth: -1}, err
	}
	ts := TreeStatus{
		State:      st.State,
		Depth:      st.Depth,
		Slots:      b.slots,
		Subtree:    st.Subtree,
		Mesh:       stats,
		Received:   b.received.Load(),
		Dropped:    b.dropped.Load(),
		ChunksSent: b.chunksOut.Load(),
		BytesSent:  b.bytesOut.Load(),
		Latency:    time.Duration(b.latestLat.Load()),
		LatencySum: time.Duration(b.latencySum.Load()),

		HLSRequests:  b.hlsRequests.Load(),
		WHEPSessions: b.whep.Sessions(),
	}
	if st.Parent != "" {
		ts.Parent, _ = p2p.PeerID(st.Parent)
		ts.ParentPath = b.n.PathTo(ts.Parent)
	}
	for _, c := range st.Children {
		if id, err := p2p.PeerID(c); err == nil {
			ts.Children = append(ts.Children, id)
			if b.n.PathTo(id) == PathRelayed {
				ts.RelayedChildren++
			}
		}
	}
	return ts, nil
}

// Depth returns this node's depth in the tree (0 on the broadcaster, -1
// while it is not attached).
func (b *Broadcast) Depth(ctx context.Context) (int, error) {
	st, err := b.Status(ctx)
	return st.Depth, err
}

// playerStatus is what the page's api/status says.
func (b *Broadcast) playerStatus() player.Status {
	a, _ := b.signed()
	b.mu.Lock()
	ended := b.endSeen || a.Ended
	b.mu.Unlock()
	info := b.hls.Info()
	st := player.Status{
		Title:     a.Title,
		Live:      info.Live && !ended,
		Ended:     ended,
		StartedAt: a.Started,
	}
	b.replayStatus(&st)
	return st
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

package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// AdmitProtocol is a private broadcast's admission protocol: before a peer
// opens a tree stream to another (to attach, probe or feed it), it opens
// AdmitProtocol/<broadcast ID> and presents its membership token in one
// frame; the other checks it against the roster it holds
// (audience.Roster.Admits) and answers with an audiencepb.Admission in one
// frame: admitted, or the reason it is not. Only then does its tree take
// the peer's streams (p2p.WithAdmit). The tree's own protocol
// (/peerscope/mesh/1.2.0) is unchanged: a node that does not know this one
// never gets past it, and is told nothing of the broadcast but that it is
// private.
const AdmitProtocol protocol.ID = "/peerscope/audience/1.0.0"

func admitProtocol(id string) protocol.ID { return AdmitProtocol + "/" + protocol.ID(id) }

// admitTimeout bounds one presentation, both ways.
const admitTimeout = 5 * time.Second

// maxReason bounds the reason an admission answer gives.
const maxReason = 256

// gate is who may be in one private broadcast's tree at this node: the
// broadcaster, and the peers whose token the newest roster admits. Every
// node of a private tree holds one (the broadcaster's own roster, or the
// newest a member took from its mailbox), answers presentations with it,
// and presents its own token (own) before it writes to a peer. Safe for
// concurrent use: the tree's stream goroutines and writers ask it.
type gate struct {
	id    string
	root  peer.ID
	self  peer.ID
	h     host.Host
	clock clock.Clock
	log   *slog.Logger
	mu    sync.Mutex
	trees []*p2p.Tree // nil until the tree is up; a striped broadcast's N+P
	// onRoster hears every roster taken (the node keeps it for the
	// replay's bitswap filter).
	onRoster func(*audience.Roster)
	roster   *audience.Roster
	own      *audience.Token             // this node's (nil on the broadcaster)
	tokens   map[peer.ID]*audience.Token // admitted peers, with the token they showed
	shown    map[peer.ID]*audience.Token // the token last presented to each peer
}

func newGate(h host.Host, id string, root peer.ID, c clock.Clock, log *slog.Logger) *gate {
	return &gate{id: id, root: root, self: h.ID(), h: h, clock: c, log: log,
		tokens: map[peer.ID]*audience.Token{}, shown: map[peer.ID]*audience.Token{}}
}

// admit is the tree's WithAdmit: the broadcaster, and peers admitted by a
// presentation whose token the roster still admits.
func (g *gate) admit(p peer.ID) error {
	if p == g.root {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.tokens[p]
	if t == nil || g.roster == nil {
		return fmt.Errorf("%w: %s presented no token", audience.ErrNotMember, p)
	}
	return g.roster.Admits(t, p, g.clock.Now())
}

// setRoster takes a newer verified roster (false: not newer, or not the
// broadcaster's) and puts out of the tree the peers it no longer admits.
func (g *gate) setRoster(r *audience.Roster) bool {
	if err := r.Verify(g.id); err != nil {
		g.log.Warn("roster refused", "err", err)
		return false
	}
	g.mu.Lock()
	if g.roster != nil && r.Follows(g.roster) != nil {
		g.mu.Unlock()
		return false
	}
	g.roster = r
	onRoster := g.onRoster
	g.mu.Unlock()
	if onRoster != nil {
		onRoster(r)
	}
	g.recheck()
	return true
}

// recheck puts out of the tree the peers the roster no longer admits (a
// removed member, an expired token).
func (g *gate) recheck() {
	now := g.clock.Now()
	var out []peer.ID
	g.mu.Lock()
	if g.roster == nil {
		g.mu.Unlock()
		return
	}
	for p, t := range g.tokens {
		if err := g.roster.Admits(t, p, now); err != nil {
			g.log.Info("member put out of the tree", "peer", shortPeer(p), "err", err)
			delete(g.tokens, p)
			out = append(out, p)
		}
	}
	g.mu.Unlock()
	if len(out) > 0 {
		for _, t := range g.tree() {
			t.Refuse(out...)
		}
	}
}

// setOwn takes this node's newest token; it is presented again to the
// tree's neighbours, so that they do not put it out when the old expires.
func (g *gate) setOwn(t *audience.Token) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.own != nil && g.own.RosterVersion >= t.RosterVersion && !t.Expires.After(g.own.Expires) {
		return false
	}
	g.own = t
	return true
}

// serve answers a presentation (AdmitProtocol).
func (g *gate) serve(s network.Stream) {
	if err := p2plimit.Accept(s, p2plimit.ServiceAudience); err != nil {
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(admitTimeout))
	p := s.Conn().RemotePeer()
	raw, err := pbwire.ReadFrame(bufio.NewReader(s), audience.MaxTokenSize)
	if err != nil {
		_ = s.Reset()
		return
	}
	err = g.take(p, raw)
	ans := &audiencepb.Admission{Admitted: err == nil}
	if err != nil {
		ans.Reason = clipReason(err.Error())
		g.log.Info("refused at attach", "peer", shortPeer(p), "err", err)
	}
	b, _ := proto.Marshal(ans)
	_ = pbwire.WriteFrame(s, b)
}

// take checks a presented token and admits its peer.
func (g *gate) take(p peer.ID, raw []byte) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: a private broadcast: %s presented no membership token", audience.ErrNotMember, p)
	}
	t, err := audience.ParseToken(raw)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.roster == nil {
		return fmt.Errorf("%w: this node holds no roster yet", audience.ErrNotMember)
	}
	if err := g.roster.Admits(t, p, g.clock.Now()); err != nil {
		return err
	}
	if len(g.tokens) >= audience.MaxRosterDevices && g.tokens[p] == nil {
		return fmt.Errorf("%w: too many peers", audience.ErrNotMember)
	}
	g.tokens[p] = t
	return nil
}

// introduce is the tree's WithIntroduce: this node presents its token to
// p before it writes to it, once per token.
func (g *gate) introduce(ctx context.Context, p peer.ID) error {
	g.mu.Lock()
	own, shown := g.own, g.shown[p]
	g.mu.Unlock()
	if own == nil || shown == own {
		return nil // the broadcaster needs no token; this one was shown
	}
	if err := present(ctx, g.h, p, g.id, own); err != nil {
		return err
	}
	g.mu.Lock()
	if len(g.shown) > 4096 {
		clear(g.shown)
	}
	g.shown[p] = own
	g.mu.Unlock()
	return nil
}

// presentAll presents this node's token again to its tree neighbours (a
// new token: a new roster version, or a later expiry).
func (g *gate) presentAll(ctx context.Context) {
	done := map[peer.ID]bool{g.self: true}
	for _, t := range g.tree() {
		st, _, err := t.Status(ctx)
		if err != nil {
			return
		}
		for _, id := range append([]mesh.PeerID{st.Parent}, st.Children...) {
			p, err := p2p.PeerID(id)
			if err != nil || done[p] {
				continue
			}
			done[p] = true
			if err := g.introduce(ctx, p); err != nil {
				g.log.Debug("token not presented again", "peer", shortPeer(p), "err", err)
			}
		}
	}
}

// errPublic is what present returns when the peer does not speak the
// admission protocol for the broadcast: to it the broadcast is public.
var errPublic = errors.New("node: the broadcast is public")

// present shows token t (nil: none) to p for broadcast id and returns its
// refusal, wrapping ErrRefused with the reason it gave (errPublic: p does
// not take presentations for it).
func present(ctx context.Context, h host.Host, p peer.ID, id string, t *audience.Token) error {
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	ctx = network.WithAllowLimitedConn(ctx, "peerscope audience")
	s, err := h.NewStream(ctx, p, admitProtocol(id))
	if err != nil {
		var ns msmux.ErrNotSupported[protocol.ID]
		if errors.As(err, &ns) {
			return errPublic
		}
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	var raw []byte
	if t != nil {
		raw = t.Marshal()
	}
	if err := pbwire.WriteFrame(s, raw); err != nil {
		_ = s.Reset()
		return err
	}
	b, err := pbwire.ReadFrame(bufio.NewReader(s), maxReason+16)
	if err != nil {
		_ = s.Reset()
		return err
	}
	var ans audiencepb.Admission
	if err := pbwire.Unmarshal(b, &ans); err != nil {
		return err
	}
	if !ans.Admitted {
		return fmt.Errorf("%w: %s: %s", ErrRefused, shortPeer(p), clipReason(ans.Reason))
	}
	return nil
}

func clipReason(s string) string {
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	return strings.ToValidUTF8(s, "")
}

// setTrees gives the gate the broadcast's trees (one, or a striped
// broadcast's N+P: a member is admitted to all of them at once).
func (g *gate) setTrees(ts []*p2p.Tree) {
	g.mu.Lock()
	g.trees = ts
	g.mu.Unlock()
}

func (g *gate) tree() []*p2p.Tree {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.trees
}

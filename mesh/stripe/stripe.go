// Package stripe carries a broadcast over several trees: this host's part in
// a striped broadcast is one mesh/p2p Tree per fragment index (ARCHITECTURE.md,
// "Stripes"). The broadcaster cuts each chunk into N fragments and P parity
// fragments (chunk.Chunk.Fragments) and publishes fragment k in tree k; a
// viewer hands on a chunk as soon as any N of its fragments are in
// (chunk.Assemble). A relaying viewer is interior in one tree only, the
// stripe its peer ID hashes to, with its whole upload there; in the others it
// is a leaf. The broadcaster's slots are dealt over the trees, so its upload
// is what one tree would take.
package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/mesh"
	"github.com/peerscope/peerscope/mesh/p2p"
)

// Spec is a striping: Data fragments per chunk and Parity more.
type Spec struct{ Data, Parity int }

// Trees is how many trees the striping takes.
func (s Spec) Trees() int { return s.Data + s.Parity }

// Check refuses a striping the chunk format cannot carry.
func (s Spec) Check() error {
	if s.Data < 1 || s.Parity < 0 || s.Trees() > chunk.MaxFragments {
		return fmt.Errorf("stripe: %d data and %d parity fragments (at least one data, at most %d in all)", s.Data, s.Parity, chunk.MaxFragments)
	}
	return nil
}

// String is "4+2".
func (s Spec) String() string { return strconv.Itoa(s.Data) + "+" + strconv.Itoa(s.Parity) }

// Of returns the stripe a peer relays in: the first eight bytes of the
// SHA-256 of its ID, modulo the number of trees. A peer cannot choose it,
// and anyone can compute it.
func Of(id mesh.PeerID, trees int) int {
	if trees <= 1 {
		return 0
	}
	sum := sha256.Sum256([]byte(id))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(trees))
}

// Protocol is the protocol ID of stripe k's tree under a broadcast's base
// protocol ID.
func Protocol(base protocol.ID, k int) protocol.ID {
	return base + protocol.ID("/s"+strconv.Itoa(k))
}

// Slots returns the slots of each tree: a viewer's whole-stream slots are
// Data times as many fragment slots in its own stripe and none elsewhere
// (it lends spare ones later: lend); the broadcaster's are dealt over the
// trees, the first trees taking one more when they do not divide, and every
// tree at least one.
func Slots(spec Spec, slots int, root bool, self mesh.PeerID) []int {
	out := make([]int, spec.Trees())
	frag := slots * spec.Data
	if !root {
		out[Of(self, spec.Trees())] = frag
		return out
	}
	for k := range out {
		out[k] = frag / spec.Trees()
		if k < frag%spec.Trees() {
			out[k]++
		}
		out[k] = max(out[k], 1)
	}
	return out
}

// Group is this host's part in one striped broadcast.
type Group struct {
	spec  Spec
	root  bool
	self  mesh.PeerID
	trees []*p2p.Tree
	asm   *assembler
	opt   options

	mu        sync.Mutex
	total     int   // fragment slots in all: whole-stream slots × Data
	lent      []int // by tree: slots lent outside this host's stripe
	rootSlots []int // the broadcaster's, by tree (redeal)
	quit      chan struct{}
	done      chan struct{}
}

// Option tunes a Group.
type Option func(*options)

type options struct {
	clock     clock.Clock
	lendEvery time.Duration
}

// WithClock gives the group its clock (lending's ticks); default the
// system's.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithLendEvery sets how often a relay looks at its spare slots (default
// LendEvery; negative: never lends).
func WithLendEvery(d time.Duration) Option { return func(o *options) { o.lendEvery = d } }

// LendEvery is how often a relay reconsiders what it lends.
const LendEvery = 2 * time.Second

// New joins (or, when cfg.Root is this host, roots) the striped broadcast
// whose trees speak Protocol(base, k). cfg is the whole stream's: its Slots
// are whole-stream slots (see Slots), its Window is in chunks. deliver gets
// each chunk once, assembled, from the trees' goroutines one at a time; it
// must not block. opts gives each tree's own options (its protocol and
// deliver hook are the group's).
func New(h host.Host, cfg mesh.Config, spec Spec, base protocol.ID, deliver func(*chunk.Chunk), opts func(k int) []p2p.Option, gopts ...Option) (*Group, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	self := p2p.MeshID(h.ID())
	g := &Group{spec: spec, root: cfg.Root.ID == self, self: self, total: cfg.Slots * spec.Data,
		lent: make([]int, spec.Trees()), quit: make(chan struct{}), done: make(chan struct{}),
		opt: options{clock: clock.System{}, lendEvery: LendEvery}}
	for _, o := range gopts {
		o(&g.opt)
	}
	window := cfg.Window
	if window == 0 {
		window = mesh.DefaultConfig().Window
	}
	g.asm = newAssembler(spec, window, deliver)
	// One verifier for all the trees: a chunk's N+P fragments share one
	// signature, checked once.
	key := cfg.Key
	if key == nil {
		k, err := p2p.PublicKey(cfg.Root.ID)
		if err != nil {
			return nil, err
		}
		key = k
	}
	verify := chunk.NewVerifier(cfg.Broadcast, key).Verify
	if cfg.Verify != nil {
		verify = cfg.Verify
	}
	slots := Slots(spec, cfg.Slots, g.root, self)
	g.rootSlots = slices.Clone(slots)
	for k := range spec.Trees() {
		c := cfg
		c.Slots = slots[k]
		c.Verify = treeVerify(spec, k, verify)
		if slots[k] == 0 || g.root {
			c.Welcome = 0
		}
		if cfg.Rand != nil {
			// A *rand.Rand is not safe to share between trees.
			c.Rand = rand.New(rand.NewPCG(cfg.Rand.Uint64(), uint64(k)))
		}
		var o []p2p.Option
		if opts != nil {
			o = opts(k)
		}
		o = append(o, p2p.WithProtocol(Protocol(base, k)), p2p.WithDeliver(g.asm.add))
		t, err := p2p.New(h, c, o...)
		if err != nil {
			close(g.done) // no lending loop yet
			_ = g.Close()
			return nil, fmt.Errorf("stripe %d: %w", k, err)
		}
		g.trees = append(g.trees, t)
	}
	if g.opt.lendEvery <= 0 {
		close(g.done)
	} else {
		go g.lendLoop()
	}
	return g, nil
}

// Spec returns the striping.
func (g *Group) Spec() Spec { return g.spec }

// Trees returns the trees, stripe k's at k.
func (g *Group) Trees() []*p2p.Tree { return g.trees }

// Stripe returns the stripe this host relays in (the broadcaster: every one).
func (g *Group) Stripe() int { return Of(g.self, g.spec.Trees()) }

// Publish cuts a chunk into its fragments and sends fragment k down tree k
// (the broadcaster). The chunk must be signed with the group's striping
// (Data and Parity set before Sign).
func (g *Group) Publish(ctx context.Context, c *chunk.Chunk) error {
	if c.Data != uint32(g.spec.Data) || c.Parity != uint32(g.spec.Parity) {
		return fmt.Errorf("stripe: a chunk striped %d+%d in a %s broadcast", c.Data, c.Parity, g.spec)
	}
	frags, err := c.Fragments()
	if err != nil {
		return err
	}
	var errs []error
	for k, f := range frags {
		if err := g.trees[k].Publish(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("stripe %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// AddCandidates tells every tree of members it may join.
func (g *Group) AddCandidates(peers ...mesh.PeerInfo) {
	for _, t := range g.trees {
		t.AddCandidates(peers...)
	}
}

// SetSlots changes this host's whole-stream slots (what it lent is
// reconsidered from there).
func (g *Group) SetSlots(slots int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total = slots * g.spec.Data
	clear(g.lent)
	g.rootSlots = Slots(g.spec, slots, g.root, g.self)
	var errs []error
	for k, s := range g.rootSlots {
		errs = append(errs, g.trees[k].SetSlots(s))
	}
	return errors.Join(errs...)
}

// Close leaves every tree.
func (g *Group) Close() error {
	select {
	case <-g.quit:
	default:
		close(g.quit)
	}
	<-g.done
	var errs []error
	for _, t := range g.trees {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// Assembled returns how many chunks the group handed on, and how many it
// gave up on (fragments of a chunk fallen out of the window before N came).
func (g *Group) Assembled() (assembled, abandoned uint64) {
	g.asm.mu.Lock()
	defer g.asm.mu.Unlock()
	return g.asm.assembled, g.asm.abandoned
}

// key tells a chunk apart from the init chunk that carries its seq.
type key struct {
	seq  uint64
	init bool
}

type pending struct {
	frags []*chunk.Chunk // by stripe; nil once assembled
	have  int
	done  bool
}

// assembler gathers fragments until N of a chunk are in. The trees deliver
// from their own goroutines, so it locks.
type assembler struct {
	spec    Spec
	window  uint64
	deliver func(*chunk.Chunk)

	mu        sync.Mutex
	chunks    map[key]*pending
	top       uint64 // the highest seq seen
	assembled uint64
	abandoned uint64
}

func newAssembler(spec Spec, window int, deliver func(*chunk.Chunk)) *assembler {
	return &assembler{spec: spec, window: uint64(max(window, 8)), deliver: deliver, chunks: make(map[key]*pending)}
}

// add takes a verified fragment from a tree.
func (a *assembler) add(f *chunk.Chunk) {
	if !f.IsFragment() || int(f.Stripe) > a.spec.Trees() || f.Data != uint32(a.spec.Data) || f.Parity != uint32(a.spec.Parity) {
		return // the trees verified it against the broadcaster's key: a striping of another shape is the broadcaster's mistake
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f.Seq+a.window < a.top {
		return // too old: its chunk was assembled or given up
	}
	k := key{f.Seq, f.IsInit()}
	p := a.chunks[k]
	if p == nil {
		p = &pending{frags: make([]*chunk.Chunk, a.spec.Trees())}
		a.chunks[k] = p
	}
	if p.done || p.frags[f.Stripe-1] != nil {
		return
	}
	p.frags[f.Stripe-1] = f
	p.have++
	if f.Seq > a.top {
		a.top = f.Seq
		a.evict()
	}
	if p.have < a.spec.Data {
		return
	}
	var in []*chunk.Chunk
	for _, x := range p.frags {
		if x != nil {
			in = append(in, x)
		}
	}
	p.frags, p.done = nil, true
	c, err := chunk.Assemble(in)
	if err != nil {
		// Verified fragments that do not assemble: the broadcaster signed
		// inconsistent ones. Nothing to play.
		a.abandoned++
		return
	}
	a.assembled++
	a.deliver(c)
}

// evict forgets chunks fallen out of the window below the newest.
func (a *assembler) evict() {
	for k, p := range a.chunks {
		if k.seq+a.window < a.top {
			if !p.done {
				a.abandoned++
			}
			delete(a.chunks, k)
		}
	}
}

// ErrWrongStripe is a chunk the broadcaster signed that a tree does not
// carry: another stripe's fragment, the whole chunk, another striping. A
// relay that sends one is treated as a forger (its child stops trusting
// it), for its children would take the seq as held in this tree and never
// get its fragment.
var ErrWrongStripe = errors.New("stripe: not this tree's fragment")

// treeVerify is tree k's check of a chunk: fragment k of the broadcast's
// striping, verified.
func treeVerify(spec Spec, k int, verify func(*chunk.Chunk) error) func(*chunk.Chunk) error {
	return func(c *chunk.Chunk) error {
		if c.Stripe != uint32(k+1) || c.Data != uint32(spec.Data) || c.Parity != uint32(spec.Parity) {
			return fmt.Errorf("%w: fragment %d of %d+%d in tree %d of %s", ErrWrongStripe, int(c.Stripe)-1, c.Data, c.Parity, k, spec)
		}
		return verify(c)
	}
}

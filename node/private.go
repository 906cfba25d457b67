package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/audience/mailbox"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/community"
)

// Defaults of a private broadcast (Audience, PrivateConfig).
const (
	// DefaultRekeyEvery is how often a private broadcast draws a new epoch
	// besides every removal.
	DefaultRekeyEvery = 5 * time.Minute
	// DefaultRekeyGrace is how long the broadcaster keeps sealing under the
	// old epoch after it left the new one's bundles in the mailbox, so
	// that members have the keys before the first chunk needs them.
	DefaultRekeyGrace = 4 * time.Second
	// DefaultTokenTTL is how long a membership token is good for; the
	// broadcaster issues new ones at half of it.
	DefaultTokenTTL = time.Hour
	// DefaultMailboxPoll is how often a member asks its mailbox for a newer
	// roster, token and bundles.
	DefaultMailboxPoll = time.Second
)

// PrivateConfig is what a node needs for private broadcasts (issue 13).
type PrivateConfig struct {
	// Mailbox is where rosters, tokens and bundles wait (the bootstrap's
	// private-audience routes; mailbox.Memory in one process).
	Mailbox mailbox.Mailbox
	// DeviceKey is this device's audience key, which bundles are wrapped
	// for; a node without one can broadcast privately but not watch.
	DeviceKey *audience.DevicePrivateKey
	// Poll is how often a member asks the mailbox; default
	// DefaultMailboxPoll.
	Poll time.Duration
	// Rand is where secrets come from; default crypto/rand.Reader.
	Rand io.Reader
}

func (c *PrivateConfig) fill() error {
	if c.Poll == 0 {
		c.Poll = DefaultMailboxPoll
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Poll < 0 {
		return fmt.Errorf("%w: negative mailbox poll", ErrConfig)
	}
	return nil
}

// Audience makes a broadcast private (LiveConfig.Private): only the
// member devices listed can watch it, relay it, read its chat and replay.
type Audience struct {
	Members []Member
	// RekeyEvery is how often a new epoch is drawn (besides every
	// removal); default DefaultRekeyEvery.
	RekeyEvery time.Duration
	// Grace is how long the old epoch seals after the new one's bundles
	// are out; default DefaultRekeyGrace.
	Grace time.Duration
	// TokenTTL is how long a membership token is good for; default
	// DefaultTokenTTL.
	TokenTTL time.Duration
}

// A Member is an account of a private broadcast's audience and its
// devices' audience keys (published by the bootstrap, verified here).
type Member struct {
	Account string // "provider:account"
	Handle  string // "@alice", as the bootstrap shows it (not signed: for people to read)
	Devices []*audience.DeviceKey
}

func (a *Audience) fill() error {
	if a.RekeyEvery == 0 {
		a.RekeyEvery = DefaultRekeyEvery
	}
	if a.Grace == 0 {
		a.Grace = DefaultRekeyGrace
	}
	if a.TokenTTL == 0 {
		a.TokenTTL = DefaultTokenTTL
	}
	if a.RekeyEvery < 0 || a.Grace < 0 || a.TokenTTL < time.Minute {
		return fmt.Errorf("%w: private broadcast: negative rekey or grace, or a token TTL under a minute", ErrConfig)
	}
	return nil
}

// caster is the broadcaster's side of a private broadcast: the roster and
// the device keys behind it, the epochs (the one sealing, every one since
// the start for members who come later and for the replay), which bundles
// went to which device, the tokens issued. Its methods are safe for
// concurrent use: the publisher seals on its goroutine, the rekey loop and
// SetAudience change the rest.
type caster struct {
	b      *Broadcast
	cfg    Audience
	rand   io.Reader
	mb     mailbox.Mailbox
	secret [audience.SecretSize]byte

	// The audience as named at the bootstrap (KeepAudience,
	// ChangeAudience): one lookup at a time.
	specMu  sync.Mutex
	spec    community.Audience
	changed func([]Member)

	mu       sync.Mutex
	audience []Member // as last given
	roster   *audience.Roster
	devices  map[audience.Fingerprint]*audience.DeviceKey
	sealing  *audience.Epoch
	epochs   []*audience.Epoch                        // every epoch drawn, in order
	wrapped  map[audience.Fingerprint]map[uint32]bool // bundles left in the mailbox
	issued   time.Time                                // the tokens' issue
	switchAt time.Time                                // when the newest epoch starts sealing
}

// seal is the publisher's Seal hook: the chunk's payload under the epoch
// sealing now.
func (c *caster) seal(ch *chunk.Chunk) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.epochs[len(c.epochs)-1]; n != c.sealing && !c.b.n.clock.Now().Before(c.switchAt) {
		c.sealing = n
		c.b.log.Info("sealing in a new epoch", "epoch", n.Number())
	}
	c.b.ring.sealed(c.sealing.Number())
	return c.sealing.SealChunk(ch)
}

// start draws the broadcast secret and the first epoch, and leaves the
// roster, tokens and bundles in the mailbox before any chunk is sealed.
func (c *caster) start(ctx context.Context, members []Member) error {
	var err error
	if c.secret, err = audience.NewBroadcastSecret(c.rand); err != nil {
		return err
	}
	c.devices = map[audience.Fingerprint]*audience.DeviceKey{}
	c.wrapped = map[audience.Fingerprint]map[uint32]bool{}
	if _, err := c.newRoster(ctx, members); err != nil {
		return err
	}
	if err := c.rekey(ctx, 0); err != nil {
		return err
	}
	c.mu.Lock()
	c.sealing = c.epochs[0]
	c.mu.Unlock()
	return nil
}

// newRoster signs and publishes the roster of members (the next version),
// issues every device a token for it and wraps every epoch so far for the
// devices new to it. It returns whether a device was removed.
func (c *caster) newRoster(ctx context.Context, members []Member) (removed bool, err error) {
	now := c.b.n.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &audience.Roster{Broadcast: c.b.id, Version: 1, Issued: now}
	if c.roster != nil {
		r.Version = c.roster.Version + 1
	}
	devices := map[audience.Fingerprint]*audience.DeviceKey{}
	for _, m := range members {
		am := audience.Member{Account: m.Account}
		for _, d := range m.Devices {
			if err := d.Verify(now); err != nil {
				return false, fmt.Errorf("%w: %s's device: %w", ErrConfig, m.Account, err)
			}
			am.Devices = append(am.Devices, audience.Device{Peer: d.Peer, Fingerprint: d.Fingerprint()})
			devices[d.Fingerprint()] = d
		}
		r.Members = append(r.Members, am)
	}
	if err := r.Sign(c.b.n.key); err != nil {
		return false, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	for f := range c.devices {
		if devices[f] == nil {
			removed = true
		}
	}
	if err := c.mb.PutRoster(ctx, r); err != nil {
		return false, err
	}
	c.roster, c.devices, c.audience = r, devices, members
	if err := c.issueLocked(ctx, now); err != nil {
		return removed, err
	}
	for _, e := range c.epochs {
		if err := c.wrapLocked(ctx, e, now); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// setSpec keeps the audience's name for KeepAudience.
func (c *caster) setSpec(spec community.Audience, changed func([]Member)) {
	c.specMu.Lock()
	c.spec, c.changed = spec, changed
	c.specMu.Unlock()
}

// members returns the audience as last given.
func (c *caster) members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.audience
}

// currentRoster returns the roster in force.
func (c *caster) currentRoster() *audience.Roster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roster
}

// issueLocked issues every device of the roster a token for it.
func (c *caster) issueLocked(ctx context.Context, now time.Time) error {
	var ts []*audience.Token
	for _, d := range c.devices {
		t := &audience.Token{Broadcast: c.b.id, Peer: d.Peer, RosterVersion: c.roster.Version,
			Issued: now, Expires: now.Add(c.cfg.TokenTTL)}
		if err := t.Sign(c.b.n.key); err != nil {
			return err
		}
		ts = append(ts, t)
	}
	if err := mailbox.PutTokens(ctx, c.mb, ts); err != nil {
		return err
	}
	c.issued = now
	return nil
}

// wrapLocked leaves epoch e's bundle for every device that has none.
func (c *caster) wrapLocked(ctx context.Context, e *audience.Epoch, now time.Time) error {
	var bs []*audience.Bundle
	var to []audience.Fingerprint
	for f, d := range c.devices {
		if c.wrapped[f][e.Number()] {
			continue
		}
		bd, err := e.Wrap(c.b.n.key, d, now)
		if err != nil {
			return err
		}
		bs, to = append(bs, bd), append(to, f)
	}
	if err := mailbox.PutBundles(ctx, c.mb, bs); err != nil {
		return err
	}
	for _, f := range to {
		if c.wrapped[f] == nil {
			c.wrapped[f] = map[uint32]bool{}
		}
		c.wrapped[f][e.Number()] = true
	}
	return nil
}

// rekey draws a new epoch, wraps it for every device of the roster and
// says when it starts sealing (after grace, so members fetch it first).
func (c *caster) rekey(ctx context.Context, grace time.Duration) error {
	now := c.b.n.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := uint32(0)
	if len(c.epochs) > 0 {
		prev = c.epochs[len(c.epochs)-1].Number()
	}
	e, err := audience.NewEpoch(c.rand, c.b.id, audience.NextEpoch(prev, now), c.secret)
	if err != nil {
		return err
	}
	if err := c.wrapLocked(ctx, e, now); err != nil {
		return err
	}
	c.epochs = append(c.epochs, e)
	c.switchAt = now.Add(grace)
	c.b.ring.add(e.Keys())
	return nil
}

// run is the rekey loop: a new epoch every RekeyEvery, new tokens at half
// their life, and the roster's admissions checked again (expiry).
func (c *caster) run() {
	t := c.b.n.clock.NewTicker(min(c.cfg.RekeyEvery, c.cfg.TokenTTL/2, time.Minute))
	defer t.Stop()
	last := c.b.n.clock.Now()
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case now := <-t.C():
			// A tick may come a little early: 9/10 of the period is due.
			if now.Sub(last) >= c.cfg.RekeyEvery*9/10 {
				last = now
				if err := c.rekey(c.b.ctx, c.cfg.Grace); err != nil {
					c.b.log.Warn("rekey", "err", err)
				}
			}
			c.mu.Lock()
			if now.Sub(c.issued) >= c.cfg.TokenTTL/2 {
				if err := c.issueLocked(c.b.ctx, now); err != nil {
					c.b.log.Warn("new tokens", "err", err)
				}
			}
			c.mu.Unlock()
			c.b.gate.recheck()
		}
	}
}

// SetAudience changes a private broadcast's audience while it runs (on the
// broadcaster's node): a new roster version, tokens for it, every epoch so
// far wrapped for the devices added (they can watch within a mailbox poll,
// and play the replay); when a device was removed, a new epoch at once
// (sealing after the grace), and the parents that take the new roster put
// it out of the tree. ErrConfig for a public broadcast or a viewer.
func (b *Broadcast) SetAudience(ctx context.Context, members []Member) error {
	if b.caster == nil {
		return fmt.Errorf("%w: not a private broadcast of this node", ErrConfig)
	}
	removed, err := b.caster.newRoster(ctx, members)
	if err != nil {
		return err
	}
	b.gate.setRoster(b.caster.currentRoster())
	if removed {
		b.log.Info("a member was removed: a new epoch")
		return b.caster.rekey(ctx, b.caster.cfg.Grace)
	}
	return nil
}

// Epoch returns the epoch of a private broadcast's newest keys at this
// node (0: public, or none yet).
func (b *Broadcast) Epoch() uint32 {
	if b.ring == nil {
		return 0
	}
	return b.ring.newest()
}

// Private reports whether the broadcast is private.
func (b *Broadcast) Private() bool { return b.ring != nil }

// deviceKeyLife is how long a device key the node makes for itself lasts;
// a kept one is made again when less than deviceKeyRenew of it is left.
const (
	deviceKeyLife  = 30 * 24 * time.Hour
	deviceKeyRenew = 7 * 24 * time.Hour
)

// DeviceKeyFile is the name of the node's audience device key (its private
// half: secret, mode 0600) inside Config.DataDir.
const DeviceKeyFile = "audience-device.key"

// ensureDeviceKey gives the node an audience key of its own, signed by its
// identity, when Config.Private gave none. With a data directory it is
// kept there (DeviceKeyFile): loaded and its signature and peer checked at
// start, made once, and made again only when it nears its expiry — bundles
// are wrapped for the key the bootstrap published, so a key made per run
// would lose a member its keys at every restart. Without one it lasts
// while the node runs.
func (n *Node) ensureDeviceKey() error {
	if n.cfg.Private.DeviceKey != nil {
		if n.cfg.Private.DeviceKey.Key.Peer != n.host.ID() {
			return fmt.Errorf("%w: the device key is not this node's", ErrConfig)
		}
		return nil
	}
	path := ""
	if n.cfg.DataDir != "" {
		path = filepath.Join(n.cfg.DataDir, DeviceKeyFile)
	}
	k, err := loadDeviceKey(path, n.key, n.cfg.Private.Rand, n.clock.Now())
	if err != nil {
		return err
	}
	n.cfg.Private.DeviceKey = k
	return nil
}

// loadDeviceKey reads the device key at path and checks it is id's, signed
// by it; it makes (and writes, mode 0600) a new one if there is none or it
// expires within deviceKeyRenew. An empty path gives a key for this run.
// A file that does not parse, or holds another identity's key, is
// ErrConfig: it is not overwritten, it may be someone's mistake to fix.
func loadDeviceKey(path string, id crypto.PrivKey, rnd io.Reader, now time.Time) (*audience.DevicePrivateKey, error) {
	self, err := peer.IDFromPrivateKey(id)
	if err != nil {
		return nil, err
	}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			k, err := audience.ParseDevicePrivateKey(b)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
			}
			if k.Key.Peer != self {
				return nil, fmt.Errorf("%w: %s is the device key of %s, not of this node's identity %s", ErrConfig, path, k.Key.Peer, self)
			}
			if now.Add(deviceKeyRenew).Before(k.Key.Expires) {
				return k, nil
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	k, err := audience.NewDeviceKey(rnd, id, now.Add(-time.Minute), now.Add(deviceKeyLife))
	if err != nil {
		return nil, err
	}
	if path == "" {
		return k, nil
	}
	b, err := k.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Written aside and renamed, so that a crash never leaves half a key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // an old .tmp kept its mode
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return k, nil
}

// DeviceKey returns this device's audience key: what a broadcaster needs
// to put the node in a private broadcast's audience (Member.Devices).
func (n *Node) DeviceKey() *audience.DeviceKey { return n.cfg.Private.DeviceKey.Key }

package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/link"
)

// rekeyGrace is how long the broadcaster seals under the old epoch after
// it drew a new one (the node's Audience.Grace): every viewer has the new
// keys by then here, since bundles go straight to it.
const rekeyGrace = time.Second

// privacy is a private broadcast in the bench (Config.Private), with the
// cryptography a node does and no mailbox: every chunk's payload is sealed
// before it is signed, a new epoch every RekeyEvery is wrapped for every
// viewer's device key and opened by it (HPKE both ways, in this process),
// and every delivered chunk is opened by its viewer before it counts as
// held. A chunk that does not open is not held: continuity shows a gap at
// a rekey.
type privacy struct {
	id     string
	key    crypto.PrivKey
	secret [audience.SecretSize]byte
	every  time.Duration

	mu       sync.RWMutex // open, every chunk at every viewer, only reads
	epochs   []*audience.Epoch
	sealing  *audience.Epoch
	switchAt time.Time
	devices  map[*viewer]*audience.DevicePrivateKey
	rings    map[*viewer]map[uint32]*audience.Keys
	failed   atomic.Uint64
	opened   atomic.Uint64
	recycle  *sync.Pool // plaintext buffers; nil: fresh each (Config.PrivateFresh)
}

func newPrivacy(root *viewer, every time.Duration, recycle bool) (*privacy, error) {
	p := &privacy{id: link.NewBroadcastID(root.h.ID()), key: root.h.Peerstore().PrivKey(root.h.ID()), every: every,
		devices: map[*viewer]*audience.DevicePrivateKey{}, rings: map[*viewer]map[uint32]*audience.Keys{}}
	if recycle {
		p.recycle = &sync.Pool{New: func() any { return new([]byte) }}
	}
	var err error
	if p.secret, err = audience.NewBroadcastSecret(rand.Reader); err != nil {
		return nil, err
	}
	if err := p.rekey(time.Now()); err != nil {
		return nil, err
	}
	p.sealing = p.epochs[0]
	return p, nil
}

// rekey draws the next epoch and hands it to every viewer's device.
func (p *privacy) rekey(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := uint32(0)
	if len(p.epochs) > 0 {
		prev = p.epochs[len(p.epochs)-1].Number()
	}
	e, err := audience.NewEpoch(rand.Reader, p.id, audience.NextEpoch(prev, now), p.secret)
	if err != nil {
		return err
	}
	for v := range p.devices {
		if err := p.handLocked(v, e, now); err != nil {
			return err
		}
	}
	p.epochs = append(p.epochs, e)
	p.switchAt = now.Add(rekeyGrace)
	return nil
}

// handLocked wraps e for v's device and opens it there.
func (p *privacy) handLocked(v *viewer, e *audience.Epoch, now time.Time) error {
	b, err := e.Wrap(p.key, p.devices[v].Key, now)
	if err != nil {
		return err
	}
	k, err := b.Open(p.devices[v], p.id)
	if err != nil {
		return err
	}
	p.rings[v][k.Epoch()] = k
	return nil
}

// join gives a new viewer a device key and every epoch so far.
func (p *privacy) join(v *viewer) error {
	now := time.Now()
	dk, err := audience.NewDeviceKey(rand.Reader, v.h.Peerstore().PrivKey(v.h.ID()), now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		return fmt.Errorf("bench: device key: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.devices[v], p.rings[v] = dk, map[uint32]*audience.Keys{}
	for _, e := range p.epochs {
		if err := p.handLocked(v, e, now); err != nil {
			return err
		}
	}
	return nil
}

// seal seals a chunk under the epoch sealing now (before it is signed).
func (p *privacy) seal(c *chunk.Chunk) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.epochs[len(p.epochs)-1]; n != p.sealing && !time.Now().Before(p.switchAt) {
		p.sealing = n
	}
	return p.sealing.SealChunk(c)
}

// open is what a viewer does with a delivered chunk: false if it does not
// open (no keys for its epoch, or a failed open).
func (p *privacy) open(v *viewer, c *chunk.Chunk) bool {
	p.mu.RLock()
	k := p.rings[v][c.Epoch]
	p.mu.RUnlock()
	if k == nil {
		p.failed.Add(1)
		return false
	}
	var buf *[]byte
	if p.recycle != nil {
		buf = p.recycle.Get().(*[]byte)
	}
	var dst []byte
	if buf != nil {
		dst = (*buf)[:0]
	}
	plain, err := k.OpenChunk(dst, c)
	if buf != nil {
		*buf = plain[:0]
		p.recycle.Put(buf)
	}
	if err != nil {
		p.failed.Add(1)
		return false
	}
	p.opened.Add(1)
	return true
}

// loop rekeys every RekeyEvery until ctx ends.
func (p *privacy) loop(ctx context.Context, log func(string, ...any)) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := p.rekey(now); err != nil {
				log("rekey: %v", err)
			}
		}
	}
}

func (p *privacy) extra(rep *report.Report) {
	p.mu.Lock()
	rep.Extra["private_epochs"] = float64(len(p.epochs))
	p.mu.Unlock()
	rep.Extra["private_opened"] = float64(p.opened.Load())
	rep.Extra["private_undecryptable"] = float64(p.failed.Load())
}

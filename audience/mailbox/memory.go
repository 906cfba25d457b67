package mailbox

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
)

// Memory is a Mailbox in this process. Objects go in and come out through
// their wire form (Marshal, Parse), as they would over the network, so a
// node never shares a pointer with another through it. The zero value is
// ready to use.
type Memory struct {
	mu    sync.Mutex
	casts map[string]*box
}

var _ Mailbox = (*Memory)(nil)

type box struct {
	roster  []byte
	version uint64
	tokens  map[peer.ID][]byte
	bundles map[audience.Fingerprint]map[uint32][]byte
}

func (m *Memory) boxLocked(broadcast string) *box {
	if m.casts == nil {
		m.casts = map[string]*box{}
	}
	b := m.casts[broadcast]
	if b == nil {
		b = &box{tokens: map[peer.ID][]byte{}, bundles: map[audience.Fingerprint]map[uint32][]byte{}}
		m.casts[broadcast] = b
	}
	return b
}

// PutRoster implements Mailbox.
func (m *Memory) PutRoster(ctx context.Context, r *audience.Roster) error {
	if err := r.Verify(r.Broadcast); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.boxLocked(r.Broadcast)
	if b.roster != nil && r.Version <= b.version {
		return fmt.Errorf("%w: roster %d after %d", ErrRefused, r.Version, b.version)
	}
	b.roster, b.version = r.Marshal(), r.Version
	return nil
}

// PutToken implements Mailbox.
func (m *Memory) PutToken(ctx context.Context, t *audience.Token) error {
	if err := t.Verify(t.Broadcast, t.Peer, t.Issued); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boxLocked(t.Broadcast).tokens[t.Peer] = t.Marshal()
	return nil
}

// PutBundle implements Mailbox. (A real mailbox also checks the bundle's
// signature and that the roster lists its recipient.)
func (m *Memory) PutBundle(ctx context.Context, bd *audience.Bundle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.boxLocked(bd.Broadcast)
	if b.bundles[bd.Recipient] == nil {
		b.bundles[bd.Recipient] = map[uint32][]byte{}
	}
	b.bundles[bd.Recipient][bd.Epoch] = bd.Marshal()
	return nil
}

// Roster implements Mailbox.
func (m *Memory) Roster(ctx context.Context, broadcast string) (*audience.Roster, error) {
	m.mu.Lock()
	raw := m.boxLocked(broadcast).roster
	m.mu.Unlock()
	if raw == nil {
		return nil, fmt.Errorf("%w: no roster of %s", ErrNotFound, broadcast)
	}
	return audience.ParseRoster(raw)
}

// Token implements Mailbox.
func (m *Memory) Token(ctx context.Context, broadcast string, p peer.ID) (*audience.Token, error) {
	m.mu.Lock()
	raw := m.boxLocked(broadcast).tokens[p]
	m.mu.Unlock()
	if raw == nil {
		return nil, fmt.Errorf("%w: no token of %s", ErrNotFound, p)
	}
	return audience.ParseToken(raw)
}

// Bundles implements Mailbox.
func (m *Memory) Bundles(ctx context.Context, broadcast string, device audience.Fingerprint, after uint32) ([]*audience.Bundle, error) {
	m.mu.Lock()
	var raws [][]byte
	var epochs []uint32
	for e := range m.boxLocked(broadcast).bundles[device] {
		if e > after {
			epochs = append(epochs, e)
		}
	}
	slices.Sort(epochs)
	for _, e := range epochs {
		raws = append(raws, m.casts[broadcast].bundles[device][e])
	}
	m.mu.Unlock()
	out := make([]*audience.Bundle, 0, len(raws))
	for _, raw := range raws {
		b, err := audience.ParseBundle(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

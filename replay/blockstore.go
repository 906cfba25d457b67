package replay

import (
	"context"
	"errors"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// bstore is the Store as bitswap sees it. Whatever the store refuses
// (expired, corrupt, unknown) is "not found" to bitswap, so a peer asking
// gets a DONT_HAVE and asks someone else.
type bstore struct{ s *Store }

var _ blockstore.Blockstore = bstore{}

func (b bstore) DeleteBlock(_ context.Context, id cid.Cid) error {
	e, err := b.s.lookup(id)
	if err != nil {
		return nil
	}
	b.s.forget(id, e)
	return nil
}

func (b bstore) Has(_ context.Context, id cid.Cid) (bool, error) {
	return b.s.Has(id), nil
}

func (b bstore) Get(ctx context.Context, id cid.Cid) (blocks.Block, error) {
	data, err := b.s.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, ipld.ErrNotFound{Cid: id}
	}
	return blocks.NewBlockWithCid(data, id)
}

func (b bstore) GetSize(_ context.Context, id cid.Cid) (int, error) {
	e, err := b.s.lookup(id)
	if err != nil {
		return -1, ipld.ErrNotFound{Cid: id}
	}
	return e.size, nil
}

func (b bstore) Put(ctx context.Context, blk blocks.Block) error {
	_, err := b.s.PutBlock(ctx, blk.Cid(), blk.RawData())
	return err
}

func (b bstore) PutMany(ctx context.Context, blks []blocks.Block) error {
	var errs []error
	for _, blk := range blks {
		errs = append(errs, b.Put(ctx, blk))
	}
	return errors.Join(errs...)
}

// AllKeysChan lists the unexpired chunks.
func (b bstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	b.s.mu.Lock()
	now := b.s.now()
	var ids []cid.Cid
	for id, e := range b.s.chunks {
		if !e.writing && b.s.expiry(e.b, e) > now {
			ids = append(ids, id)
		}
	}
	b.s.mu.Unlock()
	ch := make(chan cid.Cid)
	go func() {
		defer close(ch)
		for _, id := range ids {
			select {
			case ch <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

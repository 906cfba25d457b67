package bench

import (
	"bufio"
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/report"
	"github.com/peerscope/peerscope/mesh"
)

const starProtocol protocol.ID = "/peerscope/bench/star/1.0.0"

// starQueueBytes bounds what waits for one viewer, as in mesh/p2p.
const starQueueBytes = 8 << 20

// starSwarm has the broadcaster send every chunk to every viewer over one
// direct stream each: the viewer opens it, the broadcaster writes on it.
type starSwarm struct {
	r    *run
	root *viewer

	mu   sync.Mutex
	subs map[*starSub]struct{}
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once

	vmu     sync.Mutex
	readers map[*viewer]network.Stream
	dropped int
}

type starSub struct {
	s     network.Stream
	mu    sync.Mutex
	queue [][]byte
	bytes int
	wake  chan struct{}
	dead  bool
}

func (t *starSwarm) startRoot(ctx context.Context, root *viewer) error {
	t.root = root
	t.subs = make(map[*starSub]struct{})
	t.readers = make(map[*viewer]network.Stream)
	t.stop = make(chan struct{})
	root.h.SetStreamHandler(starProtocol, func(s network.Stream) {
		sub := &starSub{s: s, wake: make(chan struct{}, 1)}
		t.mu.Lock()
		select {
		case <-t.stop:
			t.mu.Unlock()
			_ = s.Reset()
			return
		default:
		}
		t.subs[sub] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		t.write(sub)
	})
	return nil
}

// write is the broadcaster's writer for one viewer.
func (t *starSwarm) write(sub *starSub) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.subs, sub)
		t.mu.Unlock()
		_ = sub.s.Reset()
	}()
	bw := bufio.NewWriterSize(sub.s, 64<<10)
	for {
		select {
		case <-sub.wake:
		case <-t.stop:
			return
		}
		sub.mu.Lock()
		batch, dead := sub.queue, sub.dead
		sub.queue, sub.bytes = nil, 0
		sub.mu.Unlock()
		if dead {
			return
		}
		_ = sub.s.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for _, f := range batch {
			if _, err := bw.Write(f); err != nil {
				return
			}
			t.root.chunkSent.Add(uint64(len(f)))
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

func (t *starSwarm) publish(ctx context.Context, c *chunk.Chunk) error {
	frame := mesh.AppendFrame(nil, &mesh.Message{Type: mesh.MsgChunk, Chunk: c})
	t.mu.Lock()
	defer t.mu.Unlock()
	for sub := range t.subs {
		sub.mu.Lock()
		if sub.bytes+len(frame) > starQueueBytes && len(sub.queue) > 0 {
			sub.dead = true // too slow: the writer resets its stream
			t.dropped++
		} else {
			sub.queue = append(sub.queue, frame)
			sub.bytes += len(frame)
		}
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (t *starSwarm) startViewer(ctx context.Context, v *viewer) error {
	if err := v.h.Connect(ctx, peer.AddrInfo{ID: t.root.h.ID(), Addrs: t.root.h.Addrs()}); err != nil {
		return err
	}
	s, err := v.h.NewStream(ctx, t.root.h.ID(), starProtocol)
	if err != nil {
		return err
	}
	t.vmu.Lock()
	t.readers[v] = s
	t.vmu.Unlock()
	v.mu.Lock()
	v.attached[0], v.depth = true, 1
	v.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		br := bufio.NewReaderSize(s, 64<<10)
		for {
			var m mesh.Message
			if err := mesh.ReadFrame(br, &m); err != nil {
				_ = s.Reset()
				return
			}
			if m.Chunk == nil || m.Chunk.Verify(t.r.bid, t.r.key) != nil {
				continue
			}
			t.r.received(v, m.Chunk.Seq, 0, m.Size())
			t.r.delivered(v, m.Chunk)
		}
	}()
	return nil
}

func (t *starSwarm) kill(v *viewer) {
	t.vmu.Lock()
	delete(t.readers, v)
	t.vmu.Unlock()
	_ = v.h.Close()
}

func (t *starSwarm) close() {
	t.once.Do(func() {
		t.mu.Lock()
		close(t.stop)
		t.mu.Unlock()
		t.vmu.Lock()
		for _, s := range t.readers {
			_ = s.Reset()
		}
		t.vmu.Unlock()
		t.root.h.RemoveStreamHandler(starProtocol)
		t.wg.Wait()
	})
}

func (t *starSwarm) extra(rep *report.Report) {
	t.mu.Lock()
	rep.Extra["dropped_slow"] = float64(t.dropped)
	t.mu.Unlock()
	rep.MaxDepth = 1
}

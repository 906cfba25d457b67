package p2p

import (
	"bufio"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/mesh"
)

const (
	dialTimeout  = 5 * time.Second
	writeTimeout = 10 * time.Second
	// finishTimeout bounds how long Close waits for the last messages (the
	// Leave) to be written.
	finishTimeout = 2 * time.Second
	// writeBufSize only batches control messages: a chunk frame, larger,
	// goes past bufio straight to the stream.
	writeBufSize = 16 << 10
	// idleTimeout: a writer that had nothing to send for this long closes
	// its stream (a clean close, which the peer does not take for PeerDown).
	idleTimeout = time.Minute
)

// writer owns the one outbound stream to a peer. The owner goroutine
// enqueues; the writer's goroutine opens the stream, encodes and writes.
type writer struct {
	n    *Tree
	peer peer.ID
	id   mesh.PeerID

	ctx    context.Context
	cancel context.CancelFunc

	used time.Time // last enqueue; owned by the owner goroutine

	mu      sync.Mutex
	queue   []outbound
	spare   []outbound
	bytes   int
	since   time.Time // when the oldest queued message was queued
	closing bool
	stream  network.Stream
	wake    chan struct{}
}

func (n *Tree) newWriter(p peer.ID, to mesh.PeerInfo) *writer {
	if len(to.Addrs) > 0 && p != n.h.ID() {
		addrs := make([]ma.Multiaddr, 0, len(to.Addrs))
		for _, s := range to.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				addrs = append(addrs, a)
			}
		}
		n.h.Peerstore().AddAddrs(p, addrs, peerstore.AddressTTL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{n: n, peer: p, id: to.ID, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	n.wg.Add(1)
	go w.run()
	return w
}

// outbound is a message to write, or (a send filter's, WithSendFilter)
// the frame to write in its place.
type outbound struct {
	m   *mesh.Message
	raw []byte
}

// enqueue adds m to the queue; false means the peer is too slow: the queue
// is over its bound in bytes, or its writer has taken nothing for longer
// than the queue delay.
func (w *writer) enqueue(now time.Time, out outbound) bool {
	size := out.m.Size()
	if out.raw != nil {
		size = len(out.raw)
	}
	w.mu.Lock()
	if len(w.queue) > 0 && (w.bytes+size > w.n.opt.queueBytes || now.Sub(w.since) > w.n.opt.queueDelay) {
		w.mu.Unlock()
		return false
	}
	if len(w.queue) == 0 {
		w.since = now
	}
	w.used = now
	w.queue = append(w.queue, out)
	w.bytes += size
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// abort stops the writer at once, resetting its stream. The reset runs in
// a goroutine of its own: yamux queues the RST behind whatever the
// connection has to send, so on a congested connection Reset blocks, and
// abort is called by the owner goroutine, which must not wait for a slow
// peer.
func (w *writer) abort() {
	w.cancel()
	w.mu.Lock()
	s := w.stream
	w.stream = nil
	w.mu.Unlock()
	if s != nil {
		w.n.wg.Add(1)
		go func() {
			defer w.n.wg.Done()
			_ = s.Reset()
		}()
	}
}

// finish lets the writer write what is queued, then close its stream.
func (w *writer) finish() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) run() {
	defer w.n.wg.Done()
	defer w.cancel()
	var s network.Stream
	var bw *bufio.Writer
	var buf []byte
	moved := false // off a relay, once
	for {
		select {
		case <-w.wake:
		case <-w.ctx.Done():
			return
		}
		w.mu.Lock()
		batch := w.queue
		w.queue, w.spare = w.spare[:0], nil
		w.bytes = 0
		closing := w.closing
		w.mu.Unlock()

		if bw != nil && len(batch) > 0 && !moved && relayed(s.Conn()) && w.n.hasDirectConn(w.peer) {
			// Hole punching has given a direct connection to the peer:
			// move off the relay. The old stream closes cleanly after what
			// was written, and a new one opens on the best connection
			// (once: should libp2p still pick the relay, no stream churn).
			w.n.log.Debug("moving to a direct connection", "peer", shortID(w.id))
			_ = s.Close()
			bw = nil
			moved = true
		}
		if bw == nil && len(batch) > 0 {
			var err error
			s, err = w.open()
			if err != nil {
				if w.ctx.Err() == nil {
					w.n.log.Debug("open stream", "peer", shortID(w.id), "err", err)
					w.n.peerGone(w.peer)
				}
				return
			}
			bw = bufio.NewWriterSize(s, writeBufSize)
		}
		if len(batch) > 0 {
			_ = s.SetWriteDeadline(time.Now().Add(writeTimeout))
			for i, out := range batch {
				frame := out.raw
				if frame == nil {
					buf = mesh.AppendFrame(buf[:0], out.m)
					frame = buf
				}
				if _, err := bw.Write(frame); err != nil {
					w.fail(s, err)
					return
				}
				if mt := w.n.opt.metrics; mt != nil {
					chunk, ctl := split(out.m)
					mt.Sent(w.id, out.m, chunk, ctl+max(len(out.raw)-chunk-ctl, 0))
				}
				batch[i] = outbound{}
			}
			if err := bw.Flush(); err != nil {
				w.fail(s, err)
				return
			}
			if cap(buf) > 4*writeBufSize && len(batch) == 0 {
				buf = nil
			}
		}
		w.mu.Lock()
		if w.spare == nil {
			w.spare = batch[:0]
		}
		w.mu.Unlock()
		if closing {
			w.mu.Lock()
			more := len(w.queue) > 0
			w.mu.Unlock()
			if !more {
				if s != nil {
					_ = s.Close()
				}
				return
			}
		}
	}
}

func (w *writer) open() (network.Stream, error) {
	ctx, cancel := context.WithTimeout(w.ctx, dialTimeout)
	defer cancel()
	// A peer behind NAT may be reached only through a circuit relay,
	// whose connections libp2p calls limited and refuses to streams that
	// do not opt in. The relays Peerscope uses are sized for video.
	ctx = network.WithAllowLimitedConn(ctx, "peerscope mesh")
	if f := w.n.opt.introduce; f != nil {
		if err := f(ctx, w.peer); err != nil {
			return nil, err
		}
	}
	s, err := w.n.h.NewStream(ctx, w.peer, w.n.opt.protocol)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.stream = s
	w.mu.Unlock()
	if w.ctx.Err() != nil { // aborted while dialing
		_ = s.Reset()
		return nil, w.ctx.Err()
	}
	return s, nil
}

// hasDirectConn reports whether the host has a connection to p that does
// not go through a relay.
func (n *Tree) hasDirectConn(p peer.ID) bool {
	return slices.ContainsFunc(n.h.Network().ConnsToPeer(p), func(c network.Conn) bool { return !relayed(c) })
}

// relayed reports whether c goes through a circuit relay.
func relayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func (w *writer) fail(s network.Stream, err error) {
	_ = s.Reset()
	if w.ctx.Err() == nil {
		w.n.log.Debug("write", "peer", shortID(w.id), "err", err)
		w.n.peerGone(w.peer)
	}
}

// Inbound streams: a peer's frames read, bounded and charged to the
// resource manager, then handed to the owner goroutine.

package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/internal/p2plimit"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/mesh"
)

// maxStreamsPerPeer bounds the inbound streams one peer may hold open on a
// tree: its writer opens one, and for a moment a second while it moves off
// a relay. Past it, a new stream is reset at once.
const maxStreamsPerPeer = 4

// paddedSlack is how many bytes a chunk message may carry beyond its chunk
// before the chunk is copied out of the frame (see read).
const paddedSlack = 4 << 10

func (n *Tree) handleStream(s network.Stream) {
	p := s.Conn().RemotePeer()
	// The host's resource manager caps this peer's tree streams across
	// every broadcast (p2plimit.ServiceMesh) and holds the memory its
	// frames are charged to.
	if err := p2plimit.Accept(s, p2plimit.ServiceMesh); err != nil {
		n.log.Debug("inbound stream refused", "peer", p, "err", err)
		return
	}
	if n.opt.admit != nil {
		if err := n.opt.admit(p); err != nil {
			_ = s.Reset()
			n.log.Info("tree stream refused: not admitted", "peer", p, "err", err)
			return
		}
	}
	n.mu.Lock()
	if n.closed || n.perPeer[p] >= maxStreamsPerPeer {
		closed := n.closed
		n.mu.Unlock()
		_ = s.Reset()
		if !closed {
			n.log.Debug("inbound stream refused: too many from this peer", "peer", p, "max", maxStreamsPerPeer)
		}
		return
	}
	n.streams[s] = struct{}{}
	n.perPeer[p]++
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()

	err := n.read(s, p)
	failed := err != nil && !errors.Is(err, io.EOF)
	if failed {
		_ = s.Reset()
	} else {
		_ = s.Close()
	}
	n.mu.Lock()
	delete(n.streams, s)
	n.perPeer[p]--
	last := n.perPeer[p] == 0
	if last {
		delete(n.perPeer, p)
	}
	closed := n.closed
	n.mu.Unlock()
	if failed && last && !closed {
		n.log.Debug("inbound stream failed", "peer", p, "err", err)
		n.peerGone(p)
	}
}

func (n *Tree) read(s network.Stream, p peer.ID) error {
	br := bufio.NewReaderSize(s, readBufSize)
	var from mesh.PeerID
	if n.opt.metrics != nil {
		from = MeshID(p)
	}
	for {
		m, err := readMessage(s.Scope(), br)
		if err != nil {
			return err
		}
		if n.opt.metrics != nil {
			chunk, ctl := split(m)
			n.opt.metrics.Received(from, m, chunk, ctl)
		}
		select {
		case n.inbox <- inbound{from: p, msg: m}:
		case <-n.quit:
			return nil
		}
	}
}

// readMessage reads one frame and decodes it. A frame's bytes are charged
// to the stream's scope while they are read and decoded, and its buffer
// grows as they arrive (pbwire.ReadN), so a peer's claimed length costs
// nothing it does not send. A chunk keeps the bytes it came in (it is
// forwarded and stored as they are), so when the message around it
// carried much more than the chunk (an unknown field a relay padded it
// with), the chunk is copied out: the padding is not kept for as long as
// the chunk lives in the window and the players.
func readMessage(scope network.ResourceScope, br *bufio.Reader) (*mesh.Message, error) {
	m := new(mesh.Message)
	size, prefix, ok := peekFrameLen(br)
	if !ok {
		// Not a frame length we take (too large, malformed) or the stream
		// ended: ReadFrame says which, as it always has.
		return m, mesh.ReadFrame(br, m)
	}
	release, err := p2plimit.Reserve(scope, int(size))
	if err != nil {
		return nil, err
	}
	defer release()
	_, _ = br.Discard(prefix)
	buf, err := pbwire.ReadN(br, size)
	if err != nil {
		return nil, err
	}
	if err := m.Unmarshal(buf); err != nil {
		return nil, err
	}
	if c := m.Chunk; c != nil && len(buf) > c.Size()+paddedSlack && (aliases(c.Payload, buf) || aliases(c.Signature, buf)) {
		cp, err := chunk.Decode(bytes.Clone(c.Bytes()))
		if err != nil {
			return nil, err
		}
		m.Chunk = cp
	}
	if m.Chunk != nil {
		// A chunk that did not come canonical (padded inside, reordered)
		// is encoded when first sent or stored, and it is sent by several
		// writers and stored at once: encode it here, while this
		// goroutine alone holds it, so that they only read the encoding.
		m.Chunk.Bytes()
	}
	return m, nil
}

// peekFrameLen reads the next frame's length without consuming it: the
// size, the prefix's bytes, and ok when it is a varint within
// mesh.MaxFrameSize. It waits only for bytes the varint says must come.
func peekFrameLen(br *bufio.Reader) (size uint64, prefix int, ok bool) {
	for i := range binary.MaxVarintLen64 {
		b, err := br.Peek(i + 1)
		if err != nil {
			return 0, 0, false
		}
		c := b[i]
		size |= uint64(c&0x7f) << (7 * i)
		if size > mesh.MaxFrameSize {
			return 0, 0, false
		}
		if c < 0x80 {
			return size, i + 1, true
		}
	}
	return 0, 0, false
}

// aliases reports whether s is a slice of buf's array (the chunk still
// points into the frame).
func aliases(s, buf []byte) bool {
	if cap(s) == 0 || cap(buf) == 0 {
		return false
	}
	return &s[:cap(s)][cap(s)-1] == &buf[:cap(buf)][cap(buf)-1]
}

// split returns the media bytes and the other bytes of m's frame.
func split(m *mesh.Message) (chunk, control int) {
	size := m.Size()
	frame := size + uvarintLen(uint64(size))
	if m.Chunk != nil {
		chunk = len(m.Chunk.Payload)
	}
	return chunk, frame - chunk
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

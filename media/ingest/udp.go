package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/peerscope/peerscope/media"
)

// UDP is a media.Source receiving MPEG-TS in UDP datagrams (ffmpeg -f
// mpegts udp://host:port), unicast or multicast. It takes the stream of
// the first address that sends to it, in arrival order: datagrams from any
// other address (another encoder, or anyone who can reach the port and
// would mix packets into the stream or end it with garbage) are dropped
// and counted (Dropped).
type UDP struct {
	conn      net.PacketConn
	opts      options
	closeOnce sync.Once
	packets   atomic.Uint64 // datagrams taken
	dropped   atomic.Uint64 // datagrams from another sender
}

var _ media.Source = (*UDP)(nil)

// ListenUDP binds addr ("host:port", ":port", or a multicast group
// "239.0.0.1:1234", joined on the default interface).
func ListenUDP(addr string, opts ...Option) (*UDP, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var conn *net.UDPConn
	if ua.IP != nil && ua.IP.IsMulticast() {
		conn, err = net.ListenMulticastUDP("udp", nil, ua)
	} else {
		conn, err = net.ListenUDP("udp", ua)
	}
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20) // a keyframe arrives as a burst
	return &UDP{conn: conn, opts: newOptions(opts)}, nil
}

// Addr is the bound address.
func (u *UDP) Addr() net.Addr { return u.conn.LocalAddr() }

// Packets returns how many datagrams were taken from the sender.
func (u *UDP) Packets() uint64 { return u.packets.Load() }

// Dropped returns how many datagrams came from another address than the
// first sender's, and were dropped.
func (u *UDP) Dropped() uint64 { return u.dropped.Load() }

// Close releases the socket; Run does it when it returns. Safe to call
// twice.
func (u *UDP) Close() error {
	var err error
	u.closeOnce.Do(func() { err = u.conn.Close() })
	return err
}

// Run receives until ctx ends (it returns ctx.Err()) or the datagrams are
// not media (an error wrapping media.ErrBadInput).
func (u *UDP) Run(ctx context.Context, sink media.Sink) error {
	defer u.Close()
	stop := context.AfterFunc(ctx, func() { u.Close() })
	defer stop()
	_, err := demuxTS(ctx, &datagrams{u: u, buf: make([]byte, 64<<10)}, sink, u.opts)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = io.EOF // the socket closed under us
	}
	return err
}

// datagrams reads the first sender's datagrams as a byte stream, whatever
// the datagram size (the demuxer reads in 1316-byte steps, the usual 7 TS
// packets, and would truncate a larger datagram).
type datagrams struct {
	u      *UDP
	buf    []byte
	r, w   int
	sender netip.AddrPort // the first sender's; zero until it sends
}

func (d *datagrams) Read(p []byte) (int, error) {
	for d.r == d.w {
		n, from, err := d.u.conn.ReadFrom(d.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, io.EOF
			}
			return 0, err
		}
		if !d.take(from) {
			continue
		}
		d.r, d.w = 0, n
	}
	n := copy(p, d.buf[d.r:d.w])
	d.r += n
	return n, nil
}

// take reports whether a datagram from addr is the sender's: the first
// address is; any other is dropped (its first datagram logged).
func (d *datagrams) take(addr net.Addr) bool {
	from := addrPort(addr)
	switch {
	case !d.sender.IsValid():
		d.sender = from
		d.u.opts.log.Info("UDP: taking the stream of its first sender", "from", from)
	case from != d.sender:
		if d.u.dropped.Add(1) == 1 {
			d.u.opts.log.Warn("UDP: dropping datagrams from another sender than the first", "from", from, "sender", d.sender)
		}
		return false
	}
	d.u.packets.Add(1)
	return true
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/peerscope/peerscope/media"
)

// UDP is a media.Source receiving MPEG-TS in UDP datagrams (ffmpeg -f
// mpegts udp://host:port), unicast or multicast. Datagrams from every
// sender are taken, in arrival order: run one sender per port.
type UDP struct {
	conn      net.PacketConn
	opts      options
	closeOnce sync.Once
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
	_, err := demuxTS(ctx, &datagrams{conn: u.conn, buf: make([]byte, 64<<10)}, sink, u.opts)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = io.EOF // the socket closed under us
	}
	return err
}

// datagrams reads a packet connection as a byte stream, whatever the
// datagram size (the demuxer reads in 1316-byte steps, the usual 7 TS
// packets, and would truncate a larger datagram).
type datagrams struct {
	conn net.PacketConn
	buf  []byte
	r, w int
}

func (d *datagrams) Read(p []byte) (int, error) {
	for d.r == d.w {
		n, _, err := d.conn.ReadFrom(d.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, io.EOF
			}
			return 0, err
		}
		d.r, d.w = 0, n
	}
	n := copy(p, d.buf[d.r:d.w])
	d.r += n
	return n, nil
}

package testutil

import (
	"net"
	"sync/atomic"
)

// Cuttable is a UDP socket whose sending can be cut, as a phone loses its
// network: once Cut is set, whatever it sends is lost (and reported sent).
type Cuttable struct {
	net.PacketConn
	Cut atomic.Bool
}

func (c *Cuttable) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.Cut.Load() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

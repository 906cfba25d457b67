package p2p_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/peerscope/peerscope/mesh/p2p"
)

// TestClosedTreeReleased: a viewer's Tree, once closed, is garbage (its
// window of chunks with it) whether its host lives on (a node that watched
// a broadcast and left it) or was closed first (a killed peer). Seen
// failing, both cases, with the host's handler holding the Tree itself
// (see handlerRef).
func TestClosedTreeReleased(t *testing.T) {
	for _, hostFirst := range []bool{false, true} {
		name := map[bool]string{false: "host alive", true: "host closed first"}[hostFirst]
		t.Run(name, func(t *testing.T) {
			rh := newHost(t)
			root := startPeer(t, rh, testConfig(p2p.Info(rh), 4))
			pub := publish(t, root, 20*time.Millisecond)
			defer pub.halt()
			vh := newHost(t)
			v, err := p2p.New(vh, testConfig(p2p.Info(rh), 0))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the viewer attached and fed", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				st, _, err := v.Status(ctx)
				return err == nil && st.State == "attached" && st.Highest > 20
			})
			wp := weak.Make(v)
			if hostFirst {
				_ = vh.Close()
			}
			_ = v.Close()
			v = nil
			waitFor(t, 20*time.Second, "the closed tree collected", func() bool {
				runtime.GC()
				return wp.Value() == nil
			})
			runtime.KeepAlive(vh)
		})
	}
}

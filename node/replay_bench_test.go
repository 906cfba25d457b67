package node_test

import (
	"crypto/ed25519"
	"crypto/rand"

	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
	"github.com/peerscope/peerscope/replay"
)

// BenchmarkReplayDownload: how fast a new node fetches the replay of a
// 10-minute broadcast at 2.5 Mb/s (3000 parts of 200 ms, 62.5 KB each,
// random bytes) from 5 peers that hold it, on loopback: from Replay (the
// manifest already fetched) until every chunk is verified and stored. It
// reports the speed as a multiple of real time.
//
//	go test ./node/ -run XXX -bench BenchmarkReplayDownload -benchtime 1x
func BenchmarkReplayDownload(b *testing.B) {
	const (
		parts    = 3000
		partDur  = 200 * time.Millisecond
		partSize = 2_500_000 / 8 / 5 // bytes of 200 ms at 2.5 Mb/s
		holders  = 5
	)
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pid, _ := peer.IDFromPrivateKey(priv)
	raw, _ := priv.Raw()
	key := ed25519.PrivateKey(raw)
	id := pid.String() + ".bench"

	// The broadcast: an init chunk and the parts, signed, and their manifest.
	start := time.Now().Add(-time.Hour)
	var chunks []*chunk.Chunk
	init := &chunk.Chunk{Broadcast: id, Wallclock: start.UnixNano(), Flags: chunk.FlagInit, Payload: []byte("init")}
	init.Sign(key)
	chunks = append(chunks, init)
	payload := make([]byte, partSize*2)
	_, _ = rand.Read(payload)
	for i := range parts {
		c := &chunk.Chunk{Broadcast: id, Seq: uint64(i + 1), Wallclock: start.Add(time.Duration(i) * partDur).UnixNano(),
			Duration: int64(partDur), Payload: payload[i%partSize : i%partSize+partSize]}
		if i%10 == 0 {
			c.Flags |= chunk.FlagKeyframe
		}
		if i == parts-1 {
			c.Flags |= chunk.FlagEnd
		}
		c.Sign(key)
		chunks = append(chunks, c)
	}
	m := &replay.Manifest{Broadcast: id, Title: "bench", Started: start, Ended: start.Add(parts * partDur)}
	for _, c := range chunks {
		blk := c.Bytes()
		e := replay.Entry{CID: replay.CIDOf(blk), Seq: c.Seq, Wallclock: time.Unix(0, c.Wallclock), Duration: time.Duration(c.Duration), Flags: c.Flags, Size: len(blk)}
		if c.IsInit() {
			e.Init = c.Payload
		}
		m.Chunks = append(m.Chunks, e)
	}
	signed, err := m.Sign(priv.Sign)
	if err != nil {
		b.Fatal(err)
	}

	// Five holders with every chunk.
	var link link.Link
	link.Broadcast = id
	for i := range holders {
		n := benchNode(b, node.Config{Slots: node.NoRelay})
		st := n.ReplayStore()
		for _, c := range chunks {
			if _, err := st.Put(b.Context(), c); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.PutManifest(b.Context(), m, signed); err != nil {
			b.Fatal(err)
		}
		link.Peers = append(link.Peers, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
		b.Logf("holder %d filled", i+1)
	}
	media := time.Duration(parts) * partDur
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		viewer := benchNode(b, node.Config{Slots: node.NoRelay, ReplayQuota: 1 << 30})
		b.StartTimer()
		t0 := time.Now()
		r, err := viewer.Replay(b.Context(), link)
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.Complete():
		case <-time.After(5 * time.Minute):
			b.Fatalf("not complete: %+v", r.Progress())
		}
		elapsed := time.Since(t0)
		b.StopTimer()
		p := r.Progress()
		if p.Have != len(m.Chunks) || p.Refused != 0 {
			b.Fatalf("progress %+v", p)
		}
		b.ReportMetric(media.Seconds()/elapsed.Seconds(), "x-realtime")
		b.ReportMetric(float64(p.Bytes)/elapsed.Seconds()/1e6, "MB/s")
		b.ReportMetric(elapsed.Seconds(), "s/replay")
		b.Logf("%d chunks, %.1f MB in %v: %.1f× real time (%.1f MB/s)", p.Fetched, float64(p.Bytes)/1e6, elapsed.Round(time.Millisecond),
			media.Seconds()/elapsed.Seconds(), float64(p.Bytes)/elapsed.Seconds()/1e6)
		_ = viewer.Close()
		b.StartTimer()
	}
}

func benchNode(b *testing.B, cfg node.Config) *node.Node {
	b.Helper()
	cfg.NoHTTPS = true
	n, err := node.New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	return n
}

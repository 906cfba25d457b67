package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/link"
	"github.com/peerscope/peerscope/node"
	"github.com/peerscope/peerscope/replay"
)

// replayPace is how much faster than real time the test broadcast plays:
// the file source paces on a clock that runs this fast and stamps the
// samples with it, so 60 s of media (300 parts, their wallclocks 60 s
// apart) cross the tree in about 10 s.
const replayPace = 6

// blockBytes returns the bytes of the segment files (*.seg) under a node's
// replay store, and how many there are.
func blockBytes(t *testing.T, dataDir string) (n int64, files int) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dataDir, "replay", "segments"), func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // not opened yet
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".seg") {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
			files++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, files
}

// directory runs a bootstrap's HTTP service (the directory) on the test's
// clock.
func directory(t *testing.T, now func() time.Time) *bootstrap.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := bootstrap.Open(ctx, bootstrap.ServiceConfig{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", Server: bootstrap.ServerConfig{
		Now: now, RateIP: bootstrap.Rate{PerSecond: -1}, RatePeer: bootstrap.Rate{PerSecond: -1}}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return svc
}

func listedReplays(t *testing.T, svc *bootstrap.Service) map[string]*api.Listing {
	t.Helper()
	c := &api.Client{Base: svc.URL()}
	bs, err := c.List(t.Context(), api.Query{Replays: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*api.Listing{}
	for _, b := range bs {
		out[b.ID] = b
	}
	return out
}

// TestReplayFromPeers is the replay end to end: a 60 s broadcast of the
// sample (paced 6× faster than real time) through 10 nodes; a replay
// viewer counted at the broadcaster and in the directory; the broadcaster
// goes offline; a new node fetches the whole replay by bitswap from the
// remaining peers, every chunk matching the manifest, and serves it as HLS
// VOD that ffprobe reads as 60 s of H.264 and Opus; then, 24 hours after
// the end on the nodes' clock, every node has deleted the blocks (disk
// back to its baseline), none serves them, and the directory no longer
// lists the replay.
func TestReplayFromPeers(t *testing.T) {
	e2e(t)
	needTool(t, "ffprobe")
	log, _ := newLogs(t, slog.LevelInfo)
	clk := &jumpClock{}
	dir := directory(t, clk.Now)

	type member struct {
		n    *node.Node
		data string
		base int64
	}
	mk := func(name string, cfg node.Config) member {
		if cfg.DataDir == "" {
			cfg.DataDir = t.TempDir()
		}
		cfg.Clock, cfg.Logger = clk, log.With("name", name)
		n := newNode(t, cfg)
		base, _ := blockBytes(t, cfg.DataDir)
		return member{n, cfg.DataDir, base}
	}
	// The broadcaster believes a test key's attestations (beside its
	// bootstrap's): the first replay viewer's view is identified.
	boot := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xb1}, ed25519.SeedSize))
	root := mk("broadcaster", node.Config{Slots: 3, Bootstrap: []string{dir.URL()}, TrustedKeys: []ed25519.PublicKey{boot.Public().(ed25519.PublicKey)}})
	gate := make(chan struct{})
	b, err := root.n.GoLive(t.Context(), node.LiveConfig{Title: "replay me", Source: gated{gate, clipFor(t, 60*time.Second, replayPace)}})
	if err != nil {
		t.Fatal(err)
	}
	var viewers []member
	var watching []*node.Broadcast
	for i := range 9 {
		v := mk(fmt.Sprintf("viewer%d", i+1), node.Config{Slots: 2})
		w, err := v.n.Watch(t.Context(), b.Link())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "viewer in the tree", func() bool { return depth(t, w) > 0 })
		viewers = append(viewers, v)
		watching = append(watching, w)
	}
	close(gate)
	waitFor(t, 30*time.Second, "the broadcast under way", func() bool { return received(t, watching[8]) > 10 })
	waitFor(t, 30*time.Second, "the broadcaster's chat to take a comment", func() bool {
		code, _ := postChat(t, b.URLs().Player+"chat/comment", "", map[string]any{"text": "welcome to the replay", "at": time.Now().UnixMilli()})
		return code == http.StatusOK
	})
	for _, w := range append(watching, b) {
		select {
		case <-w.Done():
		case <-time.After(90 * time.Second):
			t.Fatal("the broadcast did not end")
		}
	}
	m := b.ReplayManifest()
	if m == nil {
		t.Fatal("the broadcaster signed no manifest")
	}
	waitFor(t, 60*time.Second, "every viewer has the manifest and the chunks", func() bool {
		for _, v := range viewers {
			if len(v.n.ReplayStore().Held(b.ID())) < len(m.Chunks) {
				return false
			}
		}
		for _, w := range watching {
			if w.ReplayManifest() == nil {
				return false
			}
		}
		return true
	})
	t.Logf("manifest: %d chunks, %v of media, %d bytes of comments", len(m.Chunks), m.Duration(), len(m.Comments))
	if d := m.Duration(); d < 59*time.Second || d > 61*time.Second {
		t.Fatalf("the manifest spans %v", d)
	}

	// A first replay viewer while the broadcaster is online, signed in:
	// counted there (once it holds the whole replay, as an identified
	// view) and in the directory.
	attDir, att := attested(t, boot, "ada")
	first := mk("replay-viewer1", node.Config{Slots: node.NoRelay, DataDir: attDir, Attestation: att})
	r1, err := first.n.Replay(t.Context(), b.Link())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the replay view counted at the broadcaster", func() bool { return root.n.ReplayViews(b.ID()) == 1 })
	if v := root.n.ReplayViewsBy(b.ID()); v.Identified != 1 || v.Anonymous != 0 {
		t.Fatalf("the signed-in replay viewer counted as %+v", v)
	}
	waitFor(t, 30*time.Second, "the directory lists the replay with its view", func() bool {
		e := listedReplays(t, dir)[b.ID()]
		return e != nil && e.ReplayViewers == 1 && e.ReplayViewersIdentified == 1 && e.Replay != ""
	})
	var st struct {
		ReplayViewers int    `json:"replay_viewers"`
		ReplayURL     string `json:"replay_url"`
	}
	if err := json.Unmarshal(get(t, b.URLs().Status), &st); err != nil || st.ReplayViewers != 1 || st.ReplayURL == "" {
		t.Fatalf("the broadcaster's page status %+v (%v)", st, err)
	}
	<-r1.Complete()

	// The broadcaster goes offline; a new node replays from the others.
	link := link.Link{Broadcast: b.ID()}
	for _, v := range viewers[:3] {
		link.Peers = append(link.Peers, peer.AddrInfo{ID: v.n.ID(), Addrs: v.n.Host().Addrs()})
	}
	if err := root.n.Close(); err != nil {
		t.Fatal(err)
	}
	late := mk("replay-viewer2", node.Config{Slots: node.NoRelay})
	start := time.Now()
	r, err := late.n.Replay(t.Context(), link)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Complete():
	case <-time.After(90 * time.Second):
		t.Fatalf("the replay is not complete: %+v", r.Progress())
	}
	p := r.Progress()
	t.Logf("replay fetched from the peers: %d chunks, %d bytes in %v (media %v)", p.Fetched, p.Bytes, time.Since(start).Round(time.Millisecond), m.Duration())
	if p.Have != len(m.Chunks) || p.Refused != 0 {
		t.Fatalf("progress %+v", p)
	}
	for _, e := range r.Manifest().Chunks {
		c, err := r.Chunk(t.Context(), e.CID)
		if err != nil {
			t.Fatalf("chunk %d: %v", e.Seq, err)
		}
		if got := replay.CIDOf(c.Bytes()); !got.Equals(e.CID) {
			t.Fatalf("chunk %d: CID %s, manifest %s", e.Seq, got, e.CID)
		}
		if err := r.Manifest().Check(e, c); err != nil {
			t.Fatal(err)
		}
	}
	probe := probeVOD(t, r.HLSURL())
	t.Logf("ffprobe of the replay: %v", probe)
	if probe.video != "h264" || probe.audio == "" || probe.duration < 59 || probe.duration > 61 {
		t.Fatalf("ffprobe: %+v", probe)
	}
	var comments []struct {
		At   float64 `json:"at"`
		Text string  `json:"text"`
	}
	if err := json.Unmarshal(get(t, r.PlayerURL()+"api/comments"), &comments); err != nil || len(comments) == 0 || comments[0].Text != "welcome to the replay" {
		t.Fatalf("comments %+v (%v)", comments, err)
	}

	// A block damaged on one holder's disk is refused there; that node
	// goes on serving the rest.
	held := viewers[0].n.ReplayStore().Held(b.ID())
	corrupt := held[len(held)/2].CID
	damageBlock(t, viewers[0].data, viewers[0].n.ReplayStore(), corrupt)
	if _, err := viewers[0].n.ReplayStore().Get(t.Context(), corrupt); !errors.Is(err, replay.ErrCorrupt) {
		t.Fatalf("a truncated block: %v", err)
	}
	if _, err := viewers[0].n.ReplayStore().Get(t.Context(), held[0].CID); err != nil {
		t.Fatalf("a sound block after the corrupt one: %v", err)
	}

	// 24 hours after the end: gone everywhere.
	clk.Add(m.Ended.Sub(time.Now()) + 24*time.Hour + time.Minute)
	holders := append(viewers, first, late)
	for _, h := range holders {
		if _, err := h.n.ReplayStore().Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n, files := blockBytes(t, h.data); files != 0 || n != h.base {
			t.Fatalf("after the sweep: %d block files, %d bytes (baseline %d)", files, n, h.base)
		}
		for _, e := range m.Chunks[:5] {
			if has, _ := h.n.ReplayStore().Blockstore().Has(t.Context(), e.CID); has {
				t.Fatal("a node still has a chunk")
			}
		}
	}
	if e := listedReplays(t, dir)[b.ID()]; e != nil {
		t.Fatalf("the directory still lists the replay: %+v", e)
	}
	fresh := mk("too-late", node.Config{Slots: node.NoRelay})
	if _, err := fresh.n.Replay(t.Context(), link); !errors.Is(err, replay.ErrExpired) {
		t.Fatalf("a replay opened after 24 hours: %v", err)
	}
	resp, err := http.Get(late.n.HTTPURL() + "/r/" + b.ID() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the expired replay's page: %d", resp.StatusCode)
	}
}

// damageBlock flips a byte in the middle of a block where it lies in its
// segment file, found by its bytes.
func damageBlock(t *testing.T, dataDir string, st *replay.Store, c cid.Cid) {
	t.Helper()
	blk, err := st.Get(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dataDir, "replay", "segments", "*.seg"))
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, blk); i >= 0 {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt([]byte{data[i+len(blk)/2] ^ 0x40}, int64(i+len(blk)/2))
				err = errors.Join(err, f.Close())
			}
			if err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no segment holds the block")
}

type vodProbe struct {
	video, audio string
	duration     float64
}

func probeVOD(t *testing.T, url string) vodProbe {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type",
		"-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	var v vodProbe
	v.duration, _ = strconv.ParseFloat(p.Format.Duration, 64)
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			v.video = s.CodecName
		case "audio":
			v.audio = s.CodecName
		}
	}
	return v
}

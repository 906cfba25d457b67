package node

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/chunk"
)

// stillEvery is how often a broadcast's card gets a new still, from the
// studio or from ffmpeg.
const stillEvery = 30 * time.Second

// offerStill hands a checked still to the listing loop: the newest
// replaces one not yet sent.
func (b *Broadcast) offerStill(jpeg []byte) {
	for {
		select {
		case b.stills <- jpeg:
			return
		default:
			select {
			case <-b.stills:
			default:
			}
		}
	}
}

// newKeyframeStiller makes b's stiller, with ffmpeg if it is on PATH.
func (b *Broadcast) newKeyframeStiller() *keyframeStiller {
	path, _ := exec.LookPath("ffmpeg")
	return &keyframeStiller{ffmpeg: path, ctx: b.ctx, now: b.n.clock.Now, studioFirst: b.takesWHIP, send: b.offerStill, run: func(f func()) { b.wg.Go(f) }}
}

// keyframeStiller makes the directory card's still of a broadcast whose
// video does not come from the studio (OBS, ffmpeg, a file, RTMP): when
// `ffmpeg` is on PATH, every stillEvery it decodes the first frame of a
// keyframe chunk (with the init segment before it) to a 320-px JPEG.
// Without ffmpeg it does nothing: the card keeps its initials. A still
// from the studio (PUT /broadcast/thumbnail) within stillEvery holds it
// off, the studio's being the picture the broadcaster sees.
type keyframeStiller struct {
	ffmpeg string          // its path; "" when absent
	ctx    context.Context // the broadcast's: its end stops ffmpeg
	now    func() time.Time
	send   func([]byte) // hands a checked still on (never blocks)
	run    func(func()) // runs the extraction in the broadcast's goroutines

	// studioFirst: the video comes over WHIP, perhaps from the studio,
	// which sends its own stills; ffmpeg's first waits stillEvery for one.
	studioFirst bool

	mu      sync.Mutex
	init    []byte
	next    time.Time // no still before
	busy    bool
	studio  atomic.Int64 // Unix ns of the studio's last still
	ffmpegd atomic.Int64 // stills made, for tests and metrics
}

// see looks at a chunk the publisher made (the publisher's goroutine; it
// returns at once).
func (k *keyframeStiller) see(c *chunk.Chunk) {
	if k.ffmpeg == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if c.IsInit() {
		k.init = c.Payload
		return
	}
	if k.ctx.Err() != nil {
		return // closing: no new ffmpeg
	}
	now := k.now()
	if k.studioFirst && k.next.IsZero() {
		k.next = now.Add(stillEvery)
	}
	if k.busy || k.init == nil || !c.IsKeyframe() || now.Before(k.next) ||
		now.Sub(time.Unix(0, k.studio.Load())) < stillEvery {
		return
	}
	k.busy, k.next = true, now.Add(stillEvery)
	in := append(append([]byte(nil), k.init...), c.Payload...)
	k.run(func() {
		defer func() { k.mu.Lock(); k.busy = false; k.mu.Unlock() }()
		if jpeg, err := k.extract(in); err == nil && api.CheckThumbnail(jpeg) == nil {
			k.ffmpegd.Add(1)
			k.send(jpeg)
		}
	})
}

// extract has ffmpeg decode the first video frame of an fMP4 fragment.
func (k *keyframeStiller) extract(fmp4 []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "mp4", "-i", "pipe:0",
		"-map", "0:v:0", "-frames:v", "1", "-vf", "scale='min(320,iw)':-2", "-q:v", "6", "-f", "mjpeg", "pipe:1")
	cmd.Stdin = bytes.NewReader(fmp4)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

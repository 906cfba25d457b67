package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// VOD serves a finished broadcast (a replay) as an HLS VOD playlist: the
// same parts the live Server lists, all known up front, grouped into
// segments that start at keyframes, with EXT-X-PLAYLIST-TYPE:VOD and
// EXT-X-ENDLIST, so that players seek anywhere in it. The media is not held:
// each request fetches the parts it needs through VODConfig.Fetch (the
// node's replay store, which fetches what it lacks from peers).
//
// Resources, relative to where it is mounted:
//
//	index.m3u8        the playlist
//	init/{seq}.mp4    an init segment (named by the chunk that carried it)
//	seg/{msn}.m4s     one segment: its parts, concatenated
//	part/{seq}.m4s    one part
type VOD struct {
	cfg    VODConfig
	log    *slog.Logger
	mux    *http.ServeMux
	segs   []VODSegment
	inits  map[uint64][]byte
	parts  map[uint64]VODItem
	target int // EXT-X-TARGETDURATION, whole seconds
	body   []byte
}

// VODItem is one chunk of a replay, in sequence order: an init segment
// (Init set) or a part.
type VODItem struct {
	Seq         uint64
	Init        []byte // the init segment; the parts after it use it
	Duration    time.Duration
	Independent bool // the part starts with a keyframe
	Wallclock   time.Time
}

// VODSegment is one segment of the playlist.
type VODSegment struct {
	MSN       uint64
	Init      uint64        // the Seq of its init segment
	Start     time.Duration // media time from the start of the replay
	Duration  time.Duration
	Wallclock time.Time // capture of its first part
	Parts     []uint64  // Seqs
	Disc      bool      // EXT-X-DISCONTINUITY before it (a new init)
}

// VODConfig configures a VOD.
type VODConfig struct {
	Items []VODItem
	// Fetch returns a part's payload; it may wait (for a peer), bounded by
	// ctx (the request's).
	Fetch func(ctx context.Context, seq uint64) ([]byte, error)
	// MaxSegment cuts a segment at the next part once it reaches this
	// length even without a keyframe (default 6 s).
	MaxSegment time.Duration
	// Parallel is how many parts of a segment are fetched at once
	// (default 8).
	Parallel int
	Logger   *slog.Logger
}

// ErrNoMedia: a VOD with no part to play.
var ErrNoMedia = errors.New("hls: no media to play")

// NewVOD builds the playlist from the items.
func NewVOD(cfg VODConfig) (*VOD, error) {
	if cfg.Fetch == nil {
		return nil, fmt.Errorf("%w: VOD without Fetch", ErrBadConfig)
	}
	if cfg.MaxSegment == 0 {
		cfg.MaxSegment = 6 * time.Second
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &VOD{cfg: cfg, log: cfg.Logger, inits: map[uint64][]byte{}, parts: map[uint64]VODItem{}}
	var (
		cur     *VODSegment
		init    uint64
		hasInit bool
		newInit bool
		at      time.Duration
	)
	for _, it := range cfg.Items {
		if it.Init != nil {
			init, hasInit, newInit = it.Seq, true, true
			v.inits[it.Seq] = it.Init
			continue
		}
		if !hasInit {
			continue // a part before any init cannot be played
		}
		if _, dup := v.parts[it.Seq]; dup {
			continue
		}
		if cur == nil || newInit || (it.Independent && len(cur.Parts) > 0) || cur.Duration >= cfg.MaxSegment {
			v.segs = append(v.segs, VODSegment{MSN: uint64(len(v.segs)), Init: init, Start: at, Wallclock: it.Wallclock, Disc: newInit && len(v.segs) > 0})
			cur = &v.segs[len(v.segs)-1]
			newInit = false
		}
		cur.Parts = append(cur.Parts, it.Seq)
		cur.Duration += it.Duration
		at += it.Duration
		v.parts[it.Seq] = it
	}
	if len(v.segs) == 0 {
		return nil, ErrNoMedia
	}
	for _, s := range v.segs {
		v.target = max(v.target, int(math.Ceil(s.Duration.Seconds()-0.0005)))
	}
	v.target = max(v.target, 1)
	v.body = v.playlist()
	v.mux = http.NewServeMux()
	v.mux.HandleFunc("/index.m3u8", v.servePlaylist)
	v.mux.HandleFunc("/init/{file}", v.serveInit)
	v.mux.HandleFunc("/seg/{file}", v.serveSegment)
	v.mux.HandleFunc("/part/{file}", v.servePart)
	return v, nil
}

// Segments returns the playlist's segments.
func (v *VOD) Segments() []VODSegment { return v.segs }

// Duration returns the replay's media length.
func (v *VOD) Duration() time.Duration {
	last := v.segs[len(v.segs)-1]
	return last.Start + last.Duration
}

// MediaTime returns where in the replay (media time from its start) a
// capture wallclock falls: inside the part captured last at or before it,
// clamped to the replay.
func (v *VOD) MediaTime(wall time.Time) time.Duration {
	var best time.Duration
	for _, s := range v.segs {
		if s.Wallclock.After(wall) {
			break
		}
		at := s.Start
		for _, seq := range s.Parts {
			p := v.parts[seq]
			if p.Wallclock.After(wall) {
				break
			}
			best = at + min(wall.Sub(p.Wallclock), p.Duration)
			at += p.Duration
		}
	}
	return best
}

// MediaTimes returns MediaTime of each of walls, which must be in
// ascending order, in one pass over the replay (a replay's hearts, a count
// for each second of a long broadcast, would take one pass each). Walls
// out of order, or a replay whose capture times step back, are placed one
// by one.
func (v *VOD) MediaTimes(walls []time.Time) []time.Duration {
	out := make([]time.Duration, len(walls))
	if !slices.IsSortedFunc(walls, time.Time.Compare) || !v.monotonic() {
		for i, w := range walls {
			out[i] = v.MediaTime(w)
		}
		return out
	}
	i := 0
	var prev *VODItem
	var prevAt time.Duration
	place := func(until func(time.Time) bool) {
		for ; i < len(walls) && until(walls[i]); i++ {
			if prev != nil {
				out[i] = prevAt + min(walls[i].Sub(prev.Wallclock), prev.Duration)
			}
		}
	}
	for _, s := range v.segs {
		at := s.Start
		for _, seq := range s.Parts {
			p := v.parts[seq]
			place(func(w time.Time) bool { return w.Before(p.Wallclock) })
			prev, prevAt = &p, at
			at += p.Duration
		}
	}
	place(func(time.Time) bool { return true })
	return out
}

// monotonic says whether the parts' capture times never step back and each
// segment's is its first part's (MediaTimes's single pass then agrees with
// MediaTime).
func (v *VOD) monotonic() bool {
	var last time.Time
	for _, s := range v.segs {
		for j, seq := range s.Parts {
			p := v.parts[seq]
			if p.Wallclock.Before(last) || (j == 0 && !p.Wallclock.Equal(s.Wallclock)) {
				return false
			}
			last = p.Wallclock
		}
	}
	return true
}

func (v *VOD) playlist() []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", v.target)
	var prev uint64 = math.MaxUint64
	for _, s := range v.segs {
		if s.Disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.Init != prev {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"init/%d.mp4\"\n", s.Init)
			prev = s.Init
		}
		if !s.Wallclock.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.Wallclock.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.5f,\nseg/%d.m4s\n", s.Duration.Seconds(), s.MSN)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}

// ServeHTTP serves the playlist and media; mount it with http.StripPrefix.
func (v *VOD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v.mux.ServeHTTP(w, r)
}

func (v *VOD) servePlaylist(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "max-age=60")
	h.Set("Content-Length", strconv.Itoa(len(v.body)))
	w.Write(v.body)
}

func (v *VOD) serveInit(w http.ResponseWriter, r *http.Request) {
	seq, ok := number(r.PathValue("file"), ".mp4")
	payload := v.inits[seq]
	if !ok || payload == nil {
		http.NotFound(w, r)
		return
	}
	writeMedia(w, payload, time.Time{})
}

func (v *VOD) servePart(w http.ResponseWriter, r *http.Request) {
	seq, ok := number(r.PathValue("file"), ".m4s")
	p, known := v.parts[seq]
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	b, err := v.cfg.Fetch(r.Context(), seq)
	if err != nil {
		v.fail(w, r, seq, err)
		return
	}
	writeMedia(w, b, p.Wallclock)
}

func (v *VOD) serveSegment(w http.ResponseWriter, r *http.Request) {
	msn, ok := number(r.PathValue("file"), ".m4s")
	if !ok || msn >= uint64(len(v.segs)) {
		http.NotFound(w, r)
		return
	}
	s := v.segs[msn]
	payloads := make([][]byte, len(s.Parts))
	errs := make([]error, len(s.Parts))
	sem := make(chan struct{}, v.cfg.Parallel)
	var wg sync.WaitGroup
	for i, seq := range s.Parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			payloads[i], errs[i] = v.cfg.Fetch(r.Context(), seq)
		})
	}
	wg.Wait()
	n := 0
	for i, err := range errs {
		if err != nil {
			v.fail(w, r, s.Parts[i], err)
			return
		}
		n += len(payloads[i])
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "max-age=3600")
	h.Set("Content-Length", strconv.Itoa(n))
	h.Set(WallclockHeader, strconv.FormatInt(s.Wallclock.UnixMilli(), 10))
	for _, p := range payloads {
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

func (v *VOD) fail(w http.ResponseWriter, r *http.Request, seq uint64, err error) {
	if r.Context().Err() != nil {
		return
	}
	v.log.Warn("replay part unavailable", "seq", seq, "err", err)
	http.Error(w, fmt.Sprintf("hls: part %d unavailable: %v", seq, err), http.StatusBadGateway)
}

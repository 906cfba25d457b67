package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/bootstrap"
	"github.com/peerscope/peerscope/identity"
)

// The node's side of its community bootstraps' HTTP APIs (Config.Bootstrap):
//
//   - trust: the bootstraps' key sets (their /api/v1/info) make the trust
//     set that verifies identity attestations, refreshed every
//     trustRefresh; the node's own attestation (signed in through the
//     first bootstrap) goes into every chat room it joins.
//   - the directory: a broadcast this node roots is announced to the
//     first bootstrap, signed with the node's key, re-announced with its
//     viewer count every DirectoryInterval, and announced ended at its end.
//   - the page: /directory/ serves the bootstrap's directory page, with
//     its API proxied from /directory/api/v1/…, the follow feed signed
//     with this node's key, and /directory/api/node/… for what only this
//     node can do (sign in, watch a listed broadcast).

// DefaultDirectoryInterval is how often a broadcaster re-announces its
// broadcast (with its viewer count); well inside the bootstrap's live TTL.
const DefaultDirectoryInterval = 20 * time.Second

// trustRefresh is how often the bootstraps' key sets are fetched again (a
// rotation reaches nodes within it).
const trustRefresh = 10 * time.Minute

type bootstraps struct {
	urls   []string
	peers  map[peer.ID]bool  // the bootstraps' libp2p IDs (from /api/v1/info)
	client *bootstrap.Client // the first bootstrap, signing with the node's key
	proxy  *httputil.ReverseProxy

	live       *pubsub.Topic
	liveCancel context.CancelFunc
	liveWG     sync.WaitGroup

	mu        sync.Mutex
	follows   map[string]bool // account keys this node's account follows
	followsAt time.Time
	trust     *identity.TrustSet
	trustedAt time.Time
	att       []byte
	attExp    time.Time
}

// startBootstraps reads the bootstraps' keys and this node's attestation;
// a bootstrap that cannot be reached is logged and tried again later.
func (n *Node) startBootstraps(ctx context.Context) error {
	if len(n.cfg.Bootstrap) == 0 {
		return nil
	}
	for _, u := range n.cfg.Bootstrap {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%w: bootstrap URL %q", ErrConfig, u)
		}
	}
	base, _ := url.Parse(strings.TrimRight(n.cfg.Bootstrap[0], "/"))
	bs := &bootstraps{urls: n.cfg.Bootstrap, client: &bootstrap.Client{Base: base.String(), Key: n.key, HTTP: &http.Client{Timeout: 15 * time.Second}}}
	bs.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/directory")
			pr.Out.URL.RawPath = ""
			pr.Out.Host = base.Host
			pr.Out.Header.Del("Cookie")
			if pr.Out.URL.Path == "/api/v1/feed" {
				// The follow feed is this node's account's: the request is
				// signed with the node's key.
				_ = bootstrap.SignRequest(pr.Out, nil, n.key, time.Now())
			}
		},
		FlushInterval: -1, // event streams pass through at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			n.log.Debug("directory proxy", "err", err)
			writeJSONError(w, http.StatusBadGateway, "the bootstrap cannot be reached")
		},
	}
	n.boot = bs
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.refreshTrust(tctx); err != nil {
		n.log.Warn("bootstrap keys not fetched; attestations are not believed until they are", "err", err)
	}
	if _, err := n.RefreshIdentity(tctx); err != nil && !isNotFound(err) {
		n.log.Warn("own attestation not fetched", "err", err)
	}
	return n.subscribeLive()
}

func isNotFound(err error) bool {
	var ae *bootstrap.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func (n *Node) refreshTrust(ctx context.Context) error {
	var sets []identity.KeySet
	peers := map[peer.ID]bool{}
	var err error
	for _, u := range n.boot.urls {
		info, e := (&bootstrap.Client{Base: u, HTTP: n.boot.client.HTTP}).Info(ctx)
		if e != nil {
			err = fmt.Errorf("bootstrap %s: %w", u, e)
			break
		}
		sets = append(sets, info.Keys)
		if id, e := peer.Decode(info.PeerID); e == nil {
			peers[id] = true
		}
	}
	var t *identity.TrustSet
	if err == nil {
		t, err = identity.NewTrustSet(sets...)
	}
	n.boot.mu.Lock()
	defer n.boot.mu.Unlock()
	n.boot.trustedAt = time.Now()
	if err != nil {
		return err
	}
	n.boot.trust, n.boot.peers = t, peers
	return nil
}

// subscribeLive takes the bootstraps' go-live notices from LiveTopic: only
// those first published by a bootstrap's own peer (GossipSub signs every
// message with its origin's key), and only of accounts this node's
// account follows, reach Config.OnLive.
func (n *Node) subscribeLive() error {
	if n.ps == nil || n.cfg.OnLive == nil {
		return nil
	}
	bs := n.boot
	err := n.ps.RegisterTopicValidator(bootstrap.LiveTopic, func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		bs.mu.Lock()
		ok := bs.peers[m.GetFrom()]
		bs.mu.Unlock()
		if !ok {
			return false
		}
		_, err := bootstrap.DecodeLiveNotice(m.Data)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("node: live notices: %w", err)
	}
	if bs.live, err = n.ps.Join(bootstrap.LiveTopic); err != nil {
		return fmt.Errorf("node: live notices: %w", err)
	}
	sub, err := bs.live.Subscribe()
	if err != nil {
		return fmt.Errorf("node: live notices: %w", err)
	}
	var ctx context.Context
	ctx, bs.liveCancel = context.WithCancel(context.Background())
	bs.liveWG.Go(func() {
		defer sub.Cancel()
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			b, err := bootstrap.DecodeLiveNotice(m.Data)
			if err != nil || b.Who == nil || !n.followsAccount(ctx, b.Who.Key()) {
				continue
			}
			n.cfg.OnLive(b)
		}
	})
	return nil
}

// followsAccount reports whether this node's account follows key (the
// follow list is read from the bootstrap at most once a minute).
func (n *Node) followsAccount(ctx context.Context, key string) bool {
	bs := n.boot
	bs.mu.Lock()
	fresh := time.Since(bs.followsAt) < time.Minute
	f := bs.follows
	bs.mu.Unlock()
	if !fresh {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := bs.client.Following(cctx)
		cancel()
		f = map[string]bool{}
		for _, k := range list {
			f[k] = true
		}
		if err != nil && !isNotFound(err) {
			n.log.Debug("follow list", "err", err)
		}
		bs.mu.Lock()
		bs.follows, bs.followsAt = f, time.Now()
		bs.mu.Unlock()
	}
	return f[key]
}

// stopBootstraps ends the live-notice subscription.
func (n *Node) stopBootstraps() {
	if n.boot == nil || n.boot.liveCancel == nil {
		return
	}
	n.boot.liveCancel()
	n.boot.liveWG.Wait()
	_ = n.boot.live.Close()
}

// Trust returns the trust set of the node's bootstraps (nil without any).
func (n *Node) Trust() *identity.TrustSet {
	if n.boot == nil {
		return nil
	}
	n.boot.mu.Lock()
	t, stale := n.boot.trust, time.Since(n.boot.trustedAt) > trustRefresh
	if stale {
		n.boot.trustedAt = time.Now() // one refresh at a time
	}
	n.boot.mu.Unlock()
	if stale {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.refreshTrust(ctx); err != nil {
				n.log.Warn("refreshing bootstrap keys", "err", err)
			}
		}()
	}
	return t
}

// Attestation returns this node's identity attestation: the one fetched
// from its bootstrap after signing in there, else Config.Attestation (nil:
// anonymous).
func (n *Node) Attestation() []byte {
	if n.boot != nil {
		n.boot.mu.Lock()
		att, exp := n.boot.att, n.boot.attExp
		n.boot.mu.Unlock()
		if att != nil && time.Now().Before(exp) {
			return att
		}
	}
	return n.cfg.Attestation
}

// RefreshIdentity fetches this node's newest attestation from its first
// bootstrap (after a sign-in) and returns the identity it asserts.
func (n *Node) RefreshIdentity(ctx context.Context) (identity.Identity, error) {
	if n.boot == nil {
		return identity.Identity{}, fmt.Errorf("%w: no bootstrap configured", ErrConfig)
	}
	res, err := n.boot.client.Attestation(ctx)
	if err != nil {
		return identity.Identity{}, err
	}
	a, err := identity.ParseAttestation(res.Attestation)
	if err != nil {
		return identity.Identity{}, err
	}
	if a.Peer != n.host.ID() {
		return identity.Identity{}, fmt.Errorf("%w: the bootstrap returned another peer's attestation", identity.ErrWrongPeer)
	}
	n.boot.mu.Lock()
	n.boot.att, n.boot.attExp = res.Attestation, a.Expires
	n.boot.mu.Unlock()
	return a.Identity(), nil
}

// listInDirectory announces a broadcast this node roots to the first
// bootstrap, keeps its viewer count fresh, and announces its end.
func (b *Broadcast) listInDirectory(tweet bool) {
	bs := b.n.boot
	if bs == nil || !b.root {
		return
	}
	var version uint64
	announce := func(ctx context.Context, ended bool) {
		a := b.Announcement()
		d := bootstrap.Announcement{Title: a.Title, Link: b.Link().String(), Started: a.Started,
			Viewers: b.treeLink.Audience() + b.treeLink.WebViewers(), Tweet: tweet && version == 0,
			ReplayViewers: b.n.ReplayViews(b.id)}
		if d.Started.IsZero() {
			d.Started = time.Now()
		}
		if ended {
			d.Ended = time.Now()
			if d.Ended.Before(d.Started) {
				d.Ended = d.Started
			}
		}
		version = max(version+1, uint64(time.Now().UnixNano()))
		d.Version = version
		if _, err := bs.client.Announce(ctx, b.id, d); err != nil {
			b.log.Warn("directory announcement", "ended", ended, "err", err)
		}
	}
	interval := b.n.cfg.DirectoryInterval
	b.wg.Go(func() {
		ctx := b.ctx
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		announce(actx, false)
		cancel()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				announce(actx, false)
				cancel()
			case <-b.done:
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				announce(fctx, true)
				cancel()
				return
			case <-ctx.Done():
				// Closing: the broadcast ends with its root.
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				announce(fctx, true)
				cancel()
				return
			}
		}
	})
}

// DirectoryURL is the directory page on this node ("" without a
// bootstrap): what is live, and where to sign in.
func (n *Node) DirectoryURL() string {
	if n.boot == nil {
		return ""
	}
	return n.HTTPURL() + "/directory/"
}

// ListReplay lists an ended broadcast this node rooted as replayable in
// its first bootstrap's directory, until 24 h after its end: the replay
// side calls it once the broadcast's manifest is published (manifest is
// how viewers find it, its CID say).
func (n *Node) ListReplay(ctx context.Context, broadcast, manifest string) error {
	if n.boot == nil {
		return fmt.Errorf("%w: no bootstrap configured", ErrConfig)
	}
	_, err := n.boot.client.PublishReplay(ctx, broadcast, manifest)
	return err
}

// mountDirectory serves the directory page and its API proxy.
func (n *Node) mountDirectory(mux *http.ServeMux) {
	page := http.StripPrefix("/directory", http.FileServerFS(bootstrap.Page()))
	mux.Handle("GET /directory/{$}", page)
	mux.Handle("GET /directory/directory.js", page)
	mux.Handle("GET /directory/directory.css", page)
	mux.HandleFunc("GET /directory", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/directory/", http.StatusFound)
	})
	proxy := func(w http.ResponseWriter, r *http.Request) {
		if n.boot == nil {
			writeJSONError(w, http.StatusNotFound, "this node has no bootstrap (--bootstrap URL)")
			return
		}
		n.boot.proxy.ServeHTTP(w, r)
	}
	for _, p := range []string{"/info", "/broadcasts", "/broadcasts/{id}", "/events", "/feed"} {
		mux.HandleFunc("GET /directory/api/v1"+p, proxy)
	}
	mux.HandleFunc("GET /directory/api/node/identity", n.serveIdentity)
	mux.HandleFunc("POST /directory/api/node/signin", n.serveSignIn)
	mux.HandleFunc("POST /directory/api/node/watch", n.serveWatchListed)
	mux.HandleFunc("POST /directory/api/node/phone/start", n.servePhoneStart)
	mux.HandleFunc("POST /directory/api/node/phone/verify", n.servePhoneVerify)
}

// apiFail passes a bootstrap's refusal on with its status.
func apiFail(w http.ResponseWriter, err error) {
	var ae *bootstrap.APIError
	if errors.As(err, &ae) {
		writeJSONError(w, ae.Status, ae.Message)
		return
	}
	writeJSONError(w, http.StatusBadGateway, err.Error())
}

// servePhoneStart asks the bootstrap to text a sign-up code, for this node.
func (n *Node) servePhoneStart(w http.ResponseWriter, r *http.Request) {
	var req bootstrap.PhoneStart
	if !nodeRequest(w, r, &req) {
		return
	}
	if n.boot == nil {
		writeJSONError(w, http.StatusNotFound, "this node has no bootstrap (--bootstrap URL)")
		return
	}
	if err := n.boot.client.PhoneStart(r.Context(), req.Phone); err != nil {
		apiFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]bool{"sent": true})
}

// servePhoneVerify proves the code; the node then holds its attestation.
func (n *Node) servePhoneVerify(w http.ResponseWriter, r *http.Request) {
	var req bootstrap.PhoneVerify
	if !nodeRequest(w, r, &req) {
		return
	}
	if n.boot == nil {
		writeJSONError(w, http.StatusNotFound, "this node has no bootstrap (--bootstrap URL)")
		return
	}
	if _, err := n.boot.client.PhoneVerify(r.Context(), req.Phone, req.Code); err != nil {
		apiFail(w, err)
		return
	}
	id, err := n.RefreshIdentity(r.Context())
	if err != nil {
		apiFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"identity": id})
}

// writeJSONError answers {"error": {"code", "message"}} like the bootstrap.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": msg}})
}

// nodeRequest checks a POST from the page: JSON only (a cross-site form
// cannot send it without a CORS preflight the node never grants), small.
func nodeRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "the body must be application/json")
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest, "JSON: "+err.Error())
		return false
	}
	return true
}

// serveIdentity says who this node is signed in as (fetching its newest
// attestation from the bootstrap).
func (n *Node) serveIdentity(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"peer": n.host.ID().String(), "bootstrap": n.boot != nil}
	if n.boot != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if id, err := n.RefreshIdentity(ctx); err == nil {
			out["identity"] = id
		} else if !isNotFound(err) {
			out["error"] = err.Error()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// serveSignIn starts a sign-in with Twitter for this node: the answer's
// authorize_url is where the browser goes.
func (n *Node) serveSignIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scopes []string `json:"scopes"`
	}
	if !nodeRequest(w, r, &req) {
		return
	}
	if n.boot == nil {
		writeJSONError(w, http.StatusNotFound, "this node has no bootstrap (--bootstrap URL)")
		return
	}
	res, err := n.boot.client.TwitterStart(r.Context(), req.Scopes...)
	if err != nil {
		apiFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// serveWatchListed joins a broadcast from the directory and answers where
// its player is on this node.
func (n *Node) serveWatchListed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Link string `json:"link"`
	}
	if !nodeRequest(w, r, &req) {
		return
	}
	l, err := ParseLink(req.Link)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b := n.lookup(l.Broadcast); b != nil {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"player": b.PlayerPath()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	b, err := n.Watch(ctx, l)
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"player": b.PlayerPath()})
}

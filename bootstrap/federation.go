package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// Federation (issue 16): this bootstrap exports its public live listings,
// each as its broadcaster signed it, at api.FederationPath; and reads the
// exports of the communities it chose (FederationConfig.Peers) every
// Every, verifies every entry itself (api.SignedListing.Verify: the
// broadcaster signed this body for that community's bootstrap; it is a
// valid public listing), and lists what verified beside its own, marked
// with its origin. Federated entries are kept apart (the federated table)
// and never exported again, so no loop can form; each community's rows
// are replaced by its latest export, so an entry ended or expired there
// goes here at the next read, and one whose signature grows older than
// LiveTTL stops being listed whatever the community says.

// FederationConfig says whose directories this bootstrap shows beside its
// own. Zero fields get the defaults below.
type FederationConfig struct {
	// Peers are the communities' bootstraps, as api.ParseBootstrapURL
	// reads them (https, http with #pin=FINGERPRINT, or loopback).
	Peers []string
	// Every is how often each is read; default 1 s.
	Every time.Duration
	// Timeout bounds one read; default 10 s.
	Timeout time.Duration
	// MaxEntries bounds the entries taken from one community (the rest of
	// an export is refused); default 1000. It bounds this bootstrap's
	// export too.
	MaxEntries int
	// MaxBytes bounds one export read; default 8 MiB.
	MaxBytes int64
}

// Defaults of FederationConfig.
const (
	DefaultFederateEvery   = time.Second
	DefaultFederateTimeout = 10 * time.Second
	DefaultFederateMax     = 1000
	DefaultFederateBytes   = 8 << 20
)

// fedPeer is a community this bootstrap reads.
type fedPeer struct {
	base, pin string
	origin    api.Origin
}

// fill gives the zero fields their defaults and checks the peers.
func (c *FederationConfig) fill() ([]*fedPeer, error) {
	if c.Every == 0 {
		c.Every = DefaultFederateEvery
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultFederateTimeout
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultFederateMax
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultFederateBytes
	}
	if c.Every < 0 || c.Timeout < 0 || c.MaxEntries < 0 || c.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: federation: negative interval or bound", ErrConfig)
	}
	var peers []*fedPeer
	for _, raw := range c.Peers {
		base, pin, err := api.ParseBootstrapURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: federate with %w", ErrConfig, err)
		}
		if slices.ContainsFunc(peers, func(p *fedPeer) bool { return p.base == base }) {
			return nil, fmt.Errorf("%w: federate with %s: given twice", ErrConfig, base)
		}
		u, _ := url.Parse(base)
		peers = append(peers, &fedPeer{base: base, pin: pin, origin: api.Origin{URL: base, Name: u.Host}})
	}
	return peers, nil
}

// handleFederationExport answers api.FederationPath: the public live
// listings made here, as their broadcasters signed them; never an entry
// read from another community.
func (s *Server) handleFederationExport(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	body, err := s.lists.get("federation\x00", now, func() ([]byte, error) {
		list, err := s.store.exportLive(context.WithoutCancel(r.Context()), now.Add(-s.cfg.LiveTTL), s.cfg.Federation.MaxEntries)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(api.FederationExport{Version: api.FederationVersion, Bootstrap: s.cfg.Keys.ID(), Broadcasts: list})
		return append(b, '\n'), err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// handleFederatedProof answers GET /api/v1/federated/{id}: where a
// federated listing came from and its signed announcement, for anyone to
// check.
func (s *Server) handleFederatedProof(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := api.BroadcasterOf(id); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.store.federatedProof(r.Context(), id, s.cfg.Now().Add(-s.cfg.LiveTTL))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// parseSignedRecord reads a listing's signed request as signedRecord kept
// it: "PUT <path>\n<peer>\n<time>\n<nonce>\n<signature>\n<body>".
func parseSignedRecord(rec []byte) (api.SignedListing, bool) {
	var f [5][]byte
	rest := rec
	for i := range f {
		var ok bool
		if f[i], rest, ok = bytes.Cut(rest, []byte{'\n'}); !ok {
			return api.SignedListing{}, false
		}
	}
	path, ok := bytes.CutPrefix(f[0], []byte("PUT "))
	if !ok {
		return api.SignedListing{}, false
	}
	return api.SignedListing{Path: string(path), Peer: string(f[1]), Time: string(f[2]), Nonce: string(f[3]),
		Signature: string(f[4]), Body: bytes.Clone(rest)}, true
}

// federateLoop reads every community of FederationConfig.Peers every
// Every until ctx ends, one goroutine each (a slow community delays no
// other), having dropped the rows of communities no longer configured.
func (s *Server) federateLoop(ctx context.Context) {
	origins := make([]string, len(s.feds))
	for i, p := range s.feds {
		origins[i] = p.base
	}
	if err := s.store.dropFederatedExcept(ctx, origins); err != nil {
		s.log.Warn("federation: dropping the entries of communities no longer federated with", "err", err)
	}
	done := make(chan struct{})
	for _, p := range s.feds {
		go func() {
			defer func() { done <- struct{}{} }()
			// Redirects are not followed: the operator chose this URL,
			// not wherever its answer points.
			hc := *s.cfg.HTTPClient
			hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			f := &fedReader{s: s, p: p, http: &hc, reported: map[[32]byte]bool{}, held: -1}
			t := time.NewTicker(s.cfg.Federation.Every)
			defer t.Stop()
			for {
				f.read(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for range s.feds {
		<-done
	}
}

// fedReader reads one community, owned by its goroutine.
type fedReader struct {
	s        *Server
	p        *fedPeer
	http     *http.Client
	lastErr  string            // the last failure logged (logged again only when it changes)
	reported map[[32]byte]bool // refused entries already logged
	// verified are the entries of the last export that verified, by
	// their hash (entryKey): an entry is verified once, not every read
	// (what Verify checks of the time only grows truer).
	verified map[[32]byte]api.VerifiedListing
	// stored is the digest of the entries last written (zero: unknown),
	// so that an export that changed nothing writes nothing; held, how
	// many rows the community has here (-1: unknown).
	stored [32]byte
	held   int
}

// entryKey names a signed entry of a community by all it holds.
func entryKey(boot string, sl *api.SignedListing) [32]byte {
	h := sha256.New()
	for _, v := range []string{boot, sl.Path, sl.Peer, sl.Time, sl.Nonce, sl.Signature} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	h.Write(sl.Body)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// maxReported bounds the refused entries remembered as logged.
const maxReported = 4096

// read fetches the community's export once, verifies it and replaces its
// rows with what verified.
func (f *fedReader) read(parent context.Context) {
	s, cfg := f.s, f.s.cfg.Federation
	now := s.cfg.Now()
	stale := now.Add(-s.cfg.LiveTTL)
	ctx, cancel := context.WithTimeout(parent, cfg.Timeout)
	defer cancel()
	x, err := f.fetch(ctx, cfg.MaxBytes)
	if err != nil {
		if parent.Err() != nil {
			return // shutting down
		}
		if msg := err.Error(); msg != f.lastErr {
			s.log.Warn("federation: reading a community failed; its entries stay until their signatures age past the live TTL", "community", f.p.base, "err", err)
			f.lastErr = msg
		}
		// What it listed before goes as it ages.
		if f.held != 0 {
			f.store(parent, f.p.origin, nil, stale, true)
		}
		return
	}
	if f.lastErr != "" {
		s.log.Info("federation: reading the community again", "community", f.p.base)
		f.lastErr = ""
	}
	origin := f.p.origin
	origin.Bootstrap = x.Bootstrap
	if len(x.Broadcasts) > cfg.MaxEntries {
		f.refuse(sha256.Sum256(fmt.Appendf(nil, "over the cap\x00%d", len(x.Broadcasts))), fmt.Errorf("%w: %d entries, over the cap of %d: the rest are refused", api.ErrFederation, len(x.Broadcasts), cfg.MaxEntries), "")
		x.Broadcasts = x.Broadcasts[:cfg.MaxEntries]
	}
	byID := map[string]fedEntry{}
	verified := make(map[[32]byte]api.VerifiedListing, len(x.Broadcasts))
	digest := sha256.New()
	for _, sl := range x.Broadcasts {
		k := entryKey(x.Bootstrap, &sl)
		v, ok := f.verified[k]
		if !ok {
			if v, err = sl.Verify(x.Bootstrap, now, s.cfg.ClockSkew); err != nil {
				f.refuse(k, err, sl.Path)
				continue
			}
		}
		verified[k] = v
		if !v.Update.Ended.IsZero() || !v.Signed.After(stale) {
			continue // not live: listed nowhere, here as there
		}
		if old, ok := byID[v.ID]; ok && old.v.Update.Version >= v.Update.Version {
			continue
		}
		byID[v.ID] = fedEntry{v: v, signed: sl, key: k}
	}
	f.verified = verified
	entries := make([]fedEntry, 0, len(byID))
	for _, e := range byID {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b fedEntry) int { return strings.Compare(a.v.ID, b.v.ID) })
	digest.Write([]byte(x.Bootstrap))
	for _, e := range entries {
		digest.Write(e.key[:])
	}
	var d [32]byte
	digest.Sum(d[:0])
	if d == f.stored {
		return // what is stored already
	}
	if f.store(parent, origin, entries, stale, false) {
		f.stored = d
	}
}

// store replaces the community's rows (with staleOnly, deletes those aged
// past stale alone) and tells the pages what changed.
func (f *fedReader) store(ctx context.Context, origin api.Origin, entries []fedEntry, stale time.Time, staleOnly bool) bool {
	s := f.s
	f.stored = [32]byte{}
	changes, held, err := s.store.syncFederated(ctx, origin, entries, stale, staleOnly)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("federation: store", "community", f.p.base, "err", err)
		}
		f.held = -1
		return false
	}
	f.held = held
	if len(changes) > 0 {
		s.lists.invalidate()
	}
	for _, c := range changes {
		s.hub.publish(Event{Kind: c.kind, Listing: c.listing})
	}
	return true
}

// refuse logs a refused entry (or export), named by its key, once.
func (f *fedReader) refuse(h [32]byte, err error, path string) {
	if f.reported[h] {
		return
	}
	if len(f.reported) >= maxReported {
		clear(f.reported)
	}
	f.reported[h] = true
	f.s.log.Warn("federation: entry refused, stored nowhere", "community", f.p.base, "entry", clip(path, 120), "err", err)
}

// fetch reads the community's export: one GET, its answer bounded in
// size, its version and fingerprint checked (the pinned one, if the URL
// has a pin).
func (f *fedReader) fetch(ctx context.Context, max int64) (api.FederationExport, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.p.base+api.FederationPath, nil)
	if err != nil {
		return api.FederationExport{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		return api.FederationExport{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.FederationExport{}, fmt.Errorf("%w: %s answered %s (a bootstrap without federation answers 404)", api.ErrFederation, api.FederationPath, resp.Status)
	}
	x, err := api.DecodeFederationExport(resp.Body, max)
	if err != nil {
		return x, err
	}
	if f.p.pin != "" && x.Bootstrap != f.p.pin {
		return x, fmt.Errorf("%w: the export is of bootstrap %s, not the pinned %s", api.ErrFederation, x.Bootstrap, f.p.pin)
	}
	if x.Bootstrap == f.s.cfg.Keys.ID() {
		return x, fmt.Errorf("%w: the community is this bootstrap itself", api.ErrFederation)
	}
	return x, nil
}

// mergeFederated lists the federated entries a query selects after (and
// interleaved by start with) the local ones: the newest first, each ID
// once (the local entry first), at most q.Limit. Replays and followed
// lists are local only.
func (s *Server) mergeFederated(ctx context.Context, q api.Query, follower int64, now time.Time, local []*api.Listing) ([]*api.Listing, error) {
	if len(s.feds) == 0 || q.Replays || follower != 0 {
		return local, nil
	}
	fed, err := s.store.listFederated(ctx, q, now.Add(-s.cfg.LiveTTL))
	if err != nil || len(fed) == 0 {
		return local, err
	}
	seen := make(map[string]bool, len(local))
	for _, l := range local {
		seen[l.ID] = true
	}
	out := local
	for _, l := range fed {
		if !seen[l.ID] {
			seen[l.ID] = true
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b *api.Listing) int { return b.Started.Compare(a.Started) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

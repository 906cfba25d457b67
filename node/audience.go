package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/peerscope/peerscope/community"
)

// KeepAudience has a private broadcast this node roots look its audience
// up again at the bootstrap every every (ResolveAudience) and take the new
// one when an account or a device came or went (SetAudience): someone who
// signs in with a new device while the broadcast is live gets in within
// every and a mailbox poll, a device signed out is put out with a new
// epoch. changed, if not nil, hears each new audience (it must not block);
// a failed lookup keeps the audience as it is and is logged. It returns at
// once; the loop ends with the broadcast.
func (b *Broadcast) KeepAudience(spec community.Audience, every time.Duration, changed func([]Member)) error {
	if b.caster == nil || !b.n.bootMailbox {
		return fmt.Errorf("%w: KeepAudience is for a private broadcast whose keys go through the bootstrap", ErrNoMailbox)
	}
	if every <= 0 {
		return fmt.Errorf("%w: KeepAudience every %v", ErrConfig, every)
	}
	b.caster.setSpec(spec, changed)
	b.wg.Go(func() {
		t := b.n.clock.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-t.C():
			}
			ctx, cancel := context.WithTimeout(b.ctx, max(every, 10*time.Second))
			_, err := b.refreshAudience(ctx, nil)
			cancel()
			if err != nil && b.ctx.Err() == nil {
				b.log.Warn("the audience was not looked up again", "err", err)
			}
		}
	})
	return nil
}

// ChangeAudience gives a private broadcast this node roots a new audience,
// named as at the bootstrap (handles, account keys, mutuals, a group): it
// is looked up (ResolveAudience) and taken at once (SetAudience), and it
// is what KeepAudience looks up from then on. It returns the members.
func (b *Broadcast) ChangeAudience(ctx context.Context, spec community.Audience) ([]Member, error) {
	if b.caster == nil || !b.n.bootMailbox {
		return nil, fmt.Errorf("%w: not a private broadcast of this node whose keys go through the bootstrap (a public broadcast cannot become private while live)", ErrConfig)
	}
	return b.refreshAudience(ctx, &spec)
}

// refreshAudience looks the audience up (spec, or the one kept) and takes
// it if an account or a device came or went; a new spec is kept once it
// was taken.
func (b *Broadcast) refreshAudience(ctx context.Context, spec *community.Audience) ([]Member, error) {
	b.caster.specMu.Lock() // one lookup at a time: a change is not undone by a lookup of the old spec
	defer b.caster.specMu.Unlock()
	s := b.caster.spec
	if spec != nil {
		s = *spec
	}
	members, err := b.n.ResolveAudience(ctx, s)
	if err != nil {
		return nil, err
	}
	if !maps.Equal(devicesOf(members), devicesOf(b.caster.members())) {
		if err := b.SetAudience(ctx, members); err != nil {
			return nil, err
		}
		if b.caster.changed != nil {
			b.caster.changed(members)
		}
	}
	b.caster.spec = s
	return members, nil
}

// devicesOf is an audience's accounts and device keys, to compare.
func devicesOf(ms []Member) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.Account] = true
		for _, d := range m.Devices {
			fp := d.Fingerprint()
			out[m.Account+"/"+string(fp[:])] = true
		}
	}
	return out
}

// The local API of a live private broadcast's audience (its owner's pages
// only: localapi's Guard.Owner):
//
//	GET /api/broadcasts/{id}/audience                          who may watch
//	PUT /api/broadcasts/{id}/audience {accounts, mutuals, group} ChangeAudience
//
// Both answer audienceAnswer; refusals {"error": {"code", "message"}}.

// audienceJSON names an audience as the API takes it.
type audienceJSON struct {
	Accounts []string `json:"accounts"`
	Mutuals  bool     `json:"mutuals"`
	Group    string   `json:"group"`
}

type memberJSON struct {
	Account string `json:"account"`
	Handle  string `json:"handle,omitempty"`
	Devices int    `json:"devices"`
}

type audienceAnswer struct {
	Audience audienceJSON `json:"audience"`
	Members  []memberJSON `json:"members"`
}

// maxAudienceRequest bounds a PUT's body: 512 accounts of 80 bytes.
const maxAudienceRequest = 48 << 10

func (n *Node) mountAudience(mux *http.ServeMux) {
	mux.Handle("GET /api/broadcasts/{id}/audience", n.guard.Owner(http.HandlerFunc(n.serveAudience)))
	mux.Handle("PUT /api/broadcasts/{id}/audience", n.guard.Owner(http.HandlerFunc(n.serveAudience)))
}

// serveAudience answers who may watch a private broadcast this node roots,
// and changes it (PUT).
func (n *Node) serveAudience(w http.ResponseWriter, r *http.Request) {
	b := n.lookup(r.PathValue("id"))
	switch {
	case b == nil || !b.root:
		apiError(w, http.StatusNotFound, "no broadcast of this node with that ID")
		return
	case b.caster == nil || !n.bootMailbox:
		apiError(w, http.StatusConflict, "not a private broadcast whose keys go through the bootstrap (a public broadcast cannot become private while live)")
		return
	}
	if r.Method == http.MethodPut {
		var req audienceJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAudienceRequest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			apiError(w, http.StatusBadRequest, "JSON: "+err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		_, err := b.ChangeAudience(ctx, community.Audience{Accounts: req.Accounts, Mutuals: req.Mutuals, Group: req.Group})
		switch {
		case errors.Is(err, ErrUnknownAccount):
			apiError(w, http.StatusBadRequest, err.Error())
			return
		case errors.Is(err, ErrNotSignedIn):
			apiError(w, http.StatusForbidden, err.Error())
			return
		case err != nil:
			apiError(w, http.StatusBadGateway, err.Error())
			return
		}
	}
	b.caster.specMu.Lock()
	spec := b.caster.spec
	b.caster.specMu.Unlock()
	out := audienceAnswer{Audience: audienceJSON{Accounts: spec.Accounts, Mutuals: spec.Mutuals, Group: spec.Group},
		Members: []memberJSON{}}
	for _, m := range b.caster.members() {
		out.Members = append(out.Members, memberJSON{Account: m.Account, Handle: m.Handle, Devices: len(m.Devices)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// apiError answers {"error": {"code", "message"}}, as the bootstrap and
// the directory's node API do.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": msg}})
}

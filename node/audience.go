package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/community"
	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/localapi"
	"github.com/peerscope/peerscope/media/publish"
	"github.com/peerscope/peerscope/media/whip"
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
// and the go-live page's, opened by the broadcast's stream key as its WHIP
// endpoint is ("Authorization: Bearer KEY"), on the HTTP and HTTPS servers
// the page is served from (goLiveAudience):
//
//	GET /broadcast/audience    who may watch, or that the broadcast is public
//	PUT /broadcast/audience    {accounts, mutuals, group}: ChangeAudience
//
// All answer audienceAnswer; refusals {"error": {"code", "message"}}.

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
	// Named is the entry of audience.accounts that names this member
	// ("" when it is in through the mutuals or the group only): the one a
	// page takes out to remove it.
	Named string `json:"named,omitempty"`
}

type audienceAnswer struct {
	// Private is false for a public broadcast (the go-live page's GET
	// only; the owner's API refuses a public one), which then has no
	// audience and no members, and Listed says whether it is in the
	// directory. Changeable says whether a PUT can change the audience:
	// not when a private broadcast's keys go through a mailbox of the
	// program that runs the node rather than the bootstrap (it has no
	// audience named by handles, only the members it was given).
	Private    bool         `json:"private"`
	Changeable bool         `json:"changeable"`
	Listed     bool         `json:"listed,omitempty"`
	Audience   audienceJSON `json:"audience"`
	Members    []memberJSON `json:"members"`
}

// maxAudienceRequest bounds a PUT's body: 512 accounts of 80 bytes.
const maxAudienceRequest = 48 << 10

// maxAudienceAccounts is as many accounts as a PUT may name: a saved
// group's most (api.MaxGroupMembers).
const maxAudienceAccounts = api.MaxGroupMembers

// errPublicAudience is the refusal to change a public broadcast's audience.
const errPublicAudience = "not a private broadcast whose keys go through the bootstrap (a public broadcast cannot become private while live)"

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
	case !b.privateHere():
		apiError(w, http.StatusConflict, errPublicAudience)
		return
	}
	if r.Method == http.MethodPut && !n.putAudience(w, r, b) {
		return
	}
	writeAudience(w, b)
}

// goLiveAudience is the go-live page's view of its broadcast's audience:
// the broadcast is the one the request's stream key opens for WHIP, and
// a wrong or missing key gets WHIP's own 401. The guard's Host and Origin
// checks stay (it is not Config.Open's): the page calls it from its own
// origin, and a key is no reason to answer another site's page.
func (n *Node) goLiveAudience(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPut {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		apiError(w, http.StatusMethodNotAllowed, "the audience is read with GET and changed with PUT")
		return
	}
	var b *Broadcast
	if _, ok := whip.Authorize(w, r, func(key string) error {
		b = n.whipBroadcast(key)
		if b == nil {
			return publish.ErrStreamKey
		}
		return nil
	}, n.log.With("part", "golive-audience")); !ok {
		return
	}
	if r.Method == http.MethodPut {
		if !localapi.IsJSON(r) {
			apiError(w, http.StatusUnsupportedMediaType, "send JSON, with Content-Type: application/json")
			return
		}
		if !b.privateHere() {
			apiError(w, http.StatusConflict, errPublicAudience)
			return
		}
		if !n.putAudience(w, r, b) {
			return
		}
	}
	writeAudience(w, b)
}

// privateHere reports whether b is a private broadcast whose audience
// this node can change (its keys go through the bootstrap).
func (b *Broadcast) privateHere() bool { return b.caster != nil && b.n.bootMailbox }

// putAudience reads a PUT's audience, checks it and takes it
// (ChangeAudience); on a refusal it answers and returns false.
func (n *Node) putAudience(w http.ResponseWriter, r *http.Request, b *Broadcast) bool {
	var req audienceJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAudienceRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "JSON: "+err.Error())
		return false
	}
	if dec.More() {
		apiError(w, http.StatusBadRequest, "JSON: one object, nothing after it")
		return false
	}
	if err := checkAudience(req); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	_, err := b.ChangeAudience(ctx, community.Audience{Accounts: req.Accounts, Mutuals: req.Mutuals, Group: req.Group})
	switch {
	case errors.Is(err, ErrUnknownAccount):
		apiError(w, http.StatusBadRequest, err.Error())
		return false
	case errors.Is(err, ErrNotSignedIn):
		apiError(w, http.StatusForbidden, err.Error())
		return false
	case err != nil:
		apiError(w, http.StatusBadGateway, err.Error())
		return false
	}
	return true
}

// checkAudience refuses an audience the bootstrap would: an account that
// is neither a handle nor an account key, too many, a group name it does
// not take. Said here, the refusal is the person's mistake (400), not the
// bootstrap's failure.
func checkAudience(a audienceJSON) error {
	if len(a.Accounts) > maxAudienceAccounts {
		return fmt.Errorf("at most %d accounts, not %d", maxAudienceAccounts, len(a.Accounts))
	}
	for _, s := range a.Accounts {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return errors.New("an empty account: name each by its handle (@alice) or its key (twitter:1234)")
		case strings.ContainsAny(s, " \t\r\n,"):
			return fmt.Errorf("%q: one account each, a handle (@alice) or a key (twitter:1234)", clip(s))
		case strings.HasPrefix(s, "@") || !strings.Contains(s, ":"):
			h := strings.TrimPrefix(s, "@")
			if h == "" || len(h)+1 > identity.MaxHandleLen || !identity.ValidText(h) {
				return fmt.Errorf("%q is not a handle", clip(s))
			}
		default:
			if err := api.CheckAccountKey(s); err != nil {
				return fmt.Errorf("%q is not an account key (provider:account, as twitter:1234)", clip(s))
			}
		}
	}
	if a.Group != "" {
		if err := api.CheckGroupName(a.Group); err != nil {
			return fmt.Errorf("group %q: a group's name is letters, digits, - and _ (at most %d)", clip(a.Group), api.MaxGroupName)
		}
	}
	return nil
}

// writeAudience answers who may watch b: its audience as named, and the
// members it resolved to.
func writeAudience(w http.ResponseWriter, b *Broadcast) {
	out := audienceAnswer{Members: []memberJSON{}}
	if b.caster != nil {
		b.caster.specMu.Lock()
		spec := b.caster.spec
		b.caster.specMu.Unlock()
		out.Private, out.Changeable = true, b.privateHere()
		out.Audience = audienceJSON{Accounts: spec.Accounts, Mutuals: spec.Mutuals, Group: spec.Group}
		for _, m := range b.caster.members() {
			out.Members = append(out.Members, memberJSON{Account: m.Account, Handle: m.Handle, Devices: len(m.Devices),
				Named: namedAs(spec.Accounts, m)})
		}
	} else {
		out.Listed = b.listed
	}
	if out.Audience.Accounts == nil {
		out.Audience.Accounts = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// namedAs returns the entry of accounts that names m, by its key or its
// handle (with or without the @), or "".
func namedAs(accounts []string, m Member) string {
	for _, s := range accounts {
		t := strings.TrimSpace(s)
		switch {
		case t == m.Account:
			return s
		case m.Handle != "" && strings.EqualFold("@"+strings.TrimPrefix(t, "@"), m.Handle):
			return s
		}
	}
	return ""
}

// apiError answers {"error": {"code", "message"}}, as the bootstrap and
// the directory's node API do.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": msg}})
}

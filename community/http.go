package community

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/bootstrap/page"
)

// Handler serves the directory on the node's web server, under
// /directory/ (the node routes /directory and /directory/ here):
//
//	/directory/                           the directory page (package page), the bootstrap's own
//	/directory/api/v1/{info,broadcasts,broadcasts/{id}[/thumbnail],events,feed}
//	                                      the first bootstrap's API, proxied (the feed signed with the node's key)
//	/directory/api/v1/schedules[/{id}[/questions]]
//	                                      upcoming broadcasts and their questions, proxied
//	/directory/api/v1/profiles/{who}      an account's profile, proxied
//	/directory/u/{who}                    a profile's address: the page showing it
//	/directory/api/node/schedule{,/cancel} schedule a broadcast as the node's account, or cancel one
//	/directory/api/node/questions/{ask,vote,answered}
//	                                      ask, up-vote, tick off a question in advance
//	/directory/api/node/identity          who the node is signed in as
//	/directory/api/node/signin            start a sign-in with Twitter for the node
//	/directory/api/node/signin/finish     redeem it with the one-time code the browser was given
//	/directory/api/node/signout           sign the node (or, everywhere, the account) out
//	/directory/api/node/phone/{start,verify}
//	                                      sign the node up with a phone number
//	/directory/api/node/watch             join a listed broadcast: where its player is on this node
//	/directory/api/node/follows           whether the node is signed in, and whom its account follows
//	/directory/api/node/following[?q=]    that, and what they have live and coming up (the Following tab)
//	/directory/api/node/follow            follow or unfollow an account (the player's Follow)
//
// The node's own endpoints take JSON only (415), and the node lets only its
// owner's pages reach them (node wraps /directory/api/node/ in
// internal/localapi's Guard.Owner: from its machine, with the page token
// that it writes into the directory page it serves there). Errors are
// {"error": {"code", "message"}} like the bootstrap's, its refusals passed
// on with their status; a join's network failures reach the page as one
// generic error (the node's Join gives it).
func (c *Community) Handler() http.Handler { return c.page }

func (c *Community) handler() http.Handler {
	mux := http.NewServeMux()
	page.Mount(mux, "/directory")
	mux.HandleFunc("GET /directory", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/directory/", http.StatusFound)
	})
	proxy := c.proxy()
	for _, p := range []string{"/info", "/broadcasts", "/broadcasts/{id}", "/broadcasts/{id}/thumbnail", "/events", "/feed",
		"/schedules", "/schedules/{id}", "/schedules/{id}/questions", "/profiles/{who}"} {
		mux.Handle("GET /directory/api/v1"+p, proxy)
	}
	// The web link of a listed broadcast (the page's Watch) is its
	// bootstrap's: a node serves no page for broadcasts it does not watch.
	mux.HandleFunc("GET /directory/w/{id}/", c.serveWebLink)
	mux.HandleFunc("GET /directory/api/node/identity", c.serveIdentity)
	mux.HandleFunc("POST /directory/api/node/signin", c.serveSignIn)
	mux.HandleFunc("POST /directory/api/node/signin/finish", c.serveSignInFinish)
	mux.HandleFunc("POST /directory/api/node/signout", c.serveSignOut)
	mux.HandleFunc("POST /directory/api/node/watch", c.serveWatch)
	mux.HandleFunc("GET /directory/api/node/follows", c.serveFollows)
	mux.HandleFunc("GET /directory/api/node/following", c.serveFollowing)
	mux.HandleFunc("POST /directory/api/node/follow", c.serveFollow)
	mux.HandleFunc("POST /directory/api/node/phone/start", c.servePhoneStart)
	mux.HandleFunc("POST /directory/api/node/phone/verify", c.servePhoneVerify)
	mux.HandleFunc("POST /directory/api/node/schedule", c.serveSchedule)
	mux.HandleFunc("POST /directory/api/node/schedule/cancel", c.serveCancelSchedule)
	mux.HandleFunc("POST /directory/api/node/questions/ask", c.serveAsk)
	mux.HandleFunc("POST /directory/api/node/questions/vote", c.serveVote)
	mux.HandleFunc("POST /directory/api/node/questions/answered", c.serveAnswered)
	return mux
}

// proxy passes the page's API calls to the first bootstrap.
func (c *Community) proxy() http.Handler {
	if c.client == nil {
		return http.HandlerFunc(noBootstrap)
	}
	base, _ := url.Parse(c.client.Base)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/directory")
			pr.Out.URL.RawPath = ""
			pr.Out.Host = base.Host
			pr.Out.Header.Del("Cookie")
			if pr.Out.URL.Path == "/api/v1/feed" {
				// The follow feed is this node's account's: the request is
				// signed with the node's key.
				if id, err := c.client.ID(pr.In.Context()); err == nil {
					_ = api.SignRequest(pr.Out, nil, c.cfg.Key, id, time.Now())
				}
			}
		},
		FlushInterval: -1, // event streams pass through at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			c.log.Debug("directory proxy", "err", err)
			writeError(w, http.StatusBadGateway, "the bootstrap cannot be reached")
		},
	}
}

func noBootstrap(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "this node has no bootstrap (--bootstrap URL)")
}

// writeError answers {"error": {"code", "message"}} like the bootstrap.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": http.StatusText(status), "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// failAPI passes a bootstrap's refusal on with its status.
func failAPI(w http.ResponseWriter, err error) {
	var ae *api.APIError
	if errors.As(err, &ae) {
		writeError(w, ae.Status, ae.Message)
		return
	}
	writeError(w, http.StatusBadGateway, err.Error())
}

// readRequest reads a POST from the page into v: JSON only, small,
// without unknown fields.
func readRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be application/json")
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "JSON: "+err.Error())
		return false
	}
	return true
}

// readForBootstrap reads a POST from the page (readRequest) that the
// bootstrap is to answer; without one it answers 404.
func (c *Community) readForBootstrap(w http.ResponseWriter, r *http.Request, v any) bool {
	if !readRequest(w, r, v) {
		return false
	}
	if c.client == nil {
		noBootstrap(w, r)
		return false
	}
	return true
}

// serveIdentity says who this node is signed in as (fetching its newest
// attestation from the bootstrap).
func (c *Community) serveIdentity(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"peer": c.self.String(), "bootstrap": c.client != nil}
	if c.client != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if id, err := c.RefreshIdentity(ctx); err == nil {
			out["identity"] = id
		} else if !isNotFound(err) {
			out["error"] = err.Error()
		}
	}
	writeJSON(w, out)
}

// serveSignIn starts a sign-in with Twitter for this node: the answer's
// authorize_url is where the browser goes. When the page was opened on a
// loopback address, the browser comes back to it with the one-time code
// (in the fragment), which the page redeems (signin/finish); otherwise the
// bootstrap's page shows the code to type here.
func (c *Community) serveSignIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scopes []string `json:"scopes"`
	}
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	res, err := c.client.TwitterStart(r.Context(), returnURL(r), req.Scopes...)
	if err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, res)
}

// returnURL is this directory page's URL when the request reached the node
// on a loopback address (only a browser on this machine can follow it),
// else "".
func returnURL(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/directory/"
}

// serveSignInFinish redeems a sign-in this node started with the code its
// browser was given; the node then holds its attestation.
func (c *Community) serveSignInFinish(w http.ResponseWriter, r *http.Request) {
	var req api.TwitterFinish
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	id, err := c.FinishSignIn(r.Context(), req.Code)
	if err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, map[string]any{"identity": id})
}

// serveSignOut signs this node out (or, everywhere, every node of its
// account): its attestations are revoked.
func (c *Community) serveSignOut(w http.ResponseWriter, r *http.Request) {
	var req api.SignOut
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	if err := c.SignOut(r.Context(), req.Everywhere); err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, map[string]bool{"signed_out": true})
}

// servePhoneStart asks the bootstrap to text a sign-up code, for this node.
func (c *Community) servePhoneStart(w http.ResponseWriter, r *http.Request) {
	var req api.PhoneStart
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	if err := c.client.PhoneStart(r.Context(), req.Phone); err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, map[string]bool{"sent": true})
}

// servePhoneVerify proves the code; the node then holds its attestation.
func (c *Community) servePhoneVerify(w http.ResponseWriter, r *http.Request) {
	var req api.PhoneVerify
	if !c.readForBootstrap(w, r, &req) {
		return
	}
	if _, err := c.client.PhoneVerify(r.Context(), req.Phone, req.Code); err != nil {
		failAPI(w, err)
		return
	}
	id, err := c.RefreshIdentity(r.Context())
	if err != nil {
		failAPI(w, err)
		return
	}
	writeJSON(w, map[string]any{"identity": id})
}

// serveWatch joins a broadcast from the directory and answers where its
// player is on this node.
func (c *Community) serveWatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Link string `json:"link"`
	}
	if !readRequest(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	player, err := c.cfg.Node.Join(ctx, req.Link)
	switch {
	case errors.Is(err, ErrBadLink):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, map[string]string{"player": player})
	}
}

// serveWebLink sends a browser to the first bootstrap's web link for a
// broadcast: /w/<ID>/ there plays it from the tree (the link to share is
// that one). Once the broadcast has ended, the web link plays nothing: a
// replay this node holds is played here instead.
func (c *Community) serveWebLink(w http.ResponseWriter, r *http.Request) {
	if p := c.cfg.Node.ReplayPage(r.Context(), r.PathValue("id")); p != "" {
		http.Redirect(w, r, p, http.StatusFound)
		return
	}
	if c.client == nil {
		noBootstrap(w, r)
		return
	}
	http.Redirect(w, r, c.WebLink(r.PathValue("id")), http.StatusFound)
}

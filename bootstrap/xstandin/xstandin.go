package xstandin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is an account of the stand-in.
type User struct {
	ID              string `json:"id"`
	Username        string `json:"username"`
	Name            string `json:"name"`
	ProfileImageURL string `json:"profile_image_url,omitempty"`
}

// Tweet is a post made through the API.
type Tweet struct {
	ID     string
	Author string // user ID
	Text   string
}

// Config configures the stand-in.
type Config struct {
	ClientID     string
	ClientSecret string // empty: a public client (no Basic auth)
	// RedirectURIs are the registered callbacks (exact match).
	RedirectURIs []string
	Now          func() time.Time // default time.Now
}

// Provider is the stand-in. It is an http.Handler; mount it at a server's
// root (its paths are X's: /i/oauth2/authorize, /2/…).
type Provider struct {
	cfg Config
	mux *http.ServeMux

	mu          sync.Mutex
	users       map[string]*User
	order       []string            // user IDs in creation order
	following   map[string][]string // user ID → followed IDs
	defaultUser string
	codes       map[string]*grant
	tokens      map[string]*grant
	refresh     map[string]*grant
	tweets      []Tweet
	tokenCalls  int
}

type grant struct {
	user, scope, challenge, redirect string
	expires                          time.Time
}

// New builds a stand-in with no users.
func New(cfg Config) *Provider {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg, users: make(map[string]*User), following: make(map[string][]string),
		codes: make(map[string]*grant), tokens: make(map[string]*grant), refresh: make(map[string]*grant)}
	m := http.NewServeMux()
	m.HandleFunc("GET /i/oauth2/authorize", p.authorize)
	m.HandleFunc("POST /2/oauth2/token", p.token)
	m.HandleFunc("GET /2/users/me", p.me)
	m.HandleFunc("GET /2/users/{id}/following", p.followingList)
	m.HandleFunc("POST /2/tweets", p.tweet)
	p.mux = m
	return p
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// AddUser adds an account; the first one added is the default user who
// "signs in" when an authorize request names none.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.users[u.ID]; !ok {
		p.order = append(p.order, u.ID)
	}
	p.users[u.ID] = &u
	if p.defaultUser == "" {
		p.defaultUser = u.ID
	}
}

// Follow makes user follow others.
func (p *Provider) Follow(user string, others ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.following[user] = append(p.following[user], others...)
}

// Tweets returns the posts made so far.
func (p *Provider) Tweets() []Tweet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tweets)
}

// TokenCalls counts the token endpoint's calls (refused ones included).
func (p *Provider) TokenCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenCalls
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// oauthError answers an RFC 6749 error.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// apiError answers in API v2's problem shape.
func apiError(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "detail": detail, "status": status})
}

var knownScopes = []string{"tweet.read", "tweet.write", "users.read", "follows.read", "follows.write", "offline.access"}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	// Errors before the redirect URI is known good are shown, never
	// redirected (RFC 6749 §4.1.2.1).
	if q.Get("client_id") != p.cfg.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if !slices.Contains(p.cfg.RedirectURIs, redirect) {
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	}
	back := func(params url.Values) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		for k, vs := range params {
			v[k] = vs
		}
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, desc string) { back(url.Values{"error": {code}, "error_description": {desc}}) }
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case q.Get("state") == "":
		fail("invalid_request", "state is required")
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		fail("invalid_request", "a S256 code_challenge is required")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		fail("invalid_scope", "no scope")
		return
	}
	for _, s := range scopes {
		if !slices.Contains(knownScopes, s) {
			fail("invalid_scope", "unknown scope "+s)
			return
		}
	}
	p.mu.Lock()
	user := q.Get("login")
	if user == "" {
		user = p.defaultUser
	}
	_, ok := p.users[user]
	if q.Get("deny") != "" {
		p.mu.Unlock()
		fail("access_denied", "the user refused")
		return
	}
	if !ok {
		p.mu.Unlock()
		fail("access_denied", "no such user")
		return
	}
	code := randomToken()
	p.codes[code] = &grant{user: user, scope: strings.Join(scopes, " "), challenge: q.Get("code_challenge"),
		redirect: redirect, expires: p.cfg.Now().Add(30 * time.Second)}
	p.mu.Unlock()
	back(url.Values{"code": {code}})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokenCalls++
	p.mu.Unlock()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	f := r.PostForm
	// Client authentication.
	if p.cfg.ClientSecret != "" {
		id, secret, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
		}
		if !ok || id != p.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
	} else if f.Get("client_id") != p.cfg.ClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client_id")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch f.Get("grant_type") {
	case "authorization_code":
	case "refresh_token":
		// A refresh token is single use too: the answer carries a new one.
		g, ok := p.refresh[f.Get("refresh_token")]
		delete(p.refresh, f.Get("refresh_token"))
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used refresh token")
			return
		}
		p.issue(w, g.user, g.scope)
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "authorization_code or refresh_token")
		return
	}
	code := f.Get("code")
	g, ok := p.codes[code]
	delete(p.codes, code) // single use, whatever the outcome
	switch {
	case !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used code")
		return
	case !p.cfg.Now().Before(g.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code expired")
		return
	case f.Get("redirect_uri") != g.redirect:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	v := f.Get("code_verifier")
	if len(v) < 43 || len(v) > 128 || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	p.issue(w, g.user, g.scope)
}

// TokenTTL is how long an access token lives (X: 2 hours).
const TokenTTL = 2 * time.Hour

// issue answers a new access token (and a refresh token with
// offline.access). Called with p.mu held.
func (p *Provider) issue(w http.ResponseWriter, user, scope string) {
	access := randomToken()
	p.tokens[access] = &grant{user: user, scope: scope, expires: p.cfg.Now().Add(TokenTTL)}
	out := map[string]any{"token_type": "bearer", "access_token": access, "expires_in": int(TokenTTL.Seconds()), "scope": scope}
	if slices.Contains(strings.Fields(scope), "offline.access") {
		r := randomToken()
		p.refresh[r] = &grant{user: user, scope: scope}
		out["refresh_token"] = r
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// bearer returns the grant of the request's token if it has scope.
// Called with p.mu held.
func (p *Provider) bearer(w http.ResponseWriter, r *http.Request, scope string) (*grant, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g := p.tokens[tok]
	if !ok || g == nil || !p.cfg.Now().Before(g.expires) {
		apiError(w, http.StatusUnauthorized, "Unauthorized", "missing, unknown or expired bearer token")
		return nil, false
	}
	if !slices.Contains(strings.Fields(g.scope), scope) {
		apiError(w, http.StatusForbidden, "Forbidden", "the token lacks scope "+scope)
		return nil, false
	}
	return g, true
}

func (p *Provider) me(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.bearer(w, r, "users.read")
	if !ok {
		return
	}
	writeData(w, map[string]any{"data": p.users[g.user]})
}

func (p *Provider) followingList(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.bearer(w, r, "follows.read"); !ok {
		return
	}
	list := p.following[r.PathValue("id")]
	max := 100
	if s := r.URL.Query().Get("max_results"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			apiError(w, http.StatusBadRequest, "Invalid Request", "max_results is 1 to 1000")
			return
		}
		max = n
	}
	start := 0
	if t := r.URL.Query().Get("pagination_token"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(list) {
			apiError(w, http.StatusBadRequest, "Invalid Request", "bad pagination_token")
			return
		}
		start = n
	}
	end := min(start+max, len(list))
	data := []*User{}
	for _, id := range list[start:end] {
		if u := p.users[id]; u != nil {
			data = append(data, u)
		} else {
			data = append(data, &User{ID: id, Username: "user" + id, Name: "User " + id})
		}
	}
	meta := map[string]any{"result_count": len(data)}
	if end < len(list) {
		meta["next_token"] = strconv.Itoa(end)
	}
	writeData(w, map[string]any{"data": data, "meta": meta})
}

func (p *Provider) tweet(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g, ok := p.bearer(w, r, "tweet.write")
	if !ok {
		return
	}
	var body struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil || body.Text == "" || len([]rune(body.Text)) > 280 {
		apiError(w, http.StatusBadRequest, "Invalid Request", "text of 1 to 280 characters")
		return
	}
	id := fmt.Sprint(1_000_000 + len(p.tweets))
	p.tweets = append(p.tweets, Tweet{ID: id, Author: g.user, Text: body.Text})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]string{"id": id, "text": body.Text}})
}

func writeData(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

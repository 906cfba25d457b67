package bootstrap

import (
	"cmp"
	"context"
	"crypto/rand"

	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// ServerConfig configures the HTTP service. Zero fields get the defaults of
// DefaultServerConfig.
type ServerConfig struct {
	Store *Store   // required
	Keys  *KeyRing // required: signs attestations

	// PublicURL is how browsers and nodes reach this service
	// (https://boot.example); it makes the OAuth redirect URL when
	// Twitter.RedirectURL is empty, and the links in pages.
	PublicURL string

	// Twitter enables sign-in with Twitter when ClientID is set.
	Twitter TwitterConfig
	// Phone enables phone sign-up when set.
	Phone       CodeSender
	PhoneLimits PhoneLimits

	AttestationTTL time.Duration // default 30 days
	SessionTTL     time.Duration // default 30 days
	OAuthStateTTL  time.Duration // default 10 min
	ClockSkew      time.Duration // signed requests; default 2 min
	// LiveTTL drops from the live list a broadcast not updated for this
	// long (its node died without saying it ended); default 2 min.
	LiveTTL time.Duration
	// ReplayTTL is how long after its end a replay is listed; default 24 h.
	ReplayTTL time.Duration
	// MaxLiveAnonymous bounds the live broadcasts listed at once without
	// an account from one network (an IPv4 address, an IPv6 /64);
	// MaxLiveAccount, those of one signed-in account. Peer IDs are free:
	// without a cap, anyone could fill the directory. Defaults 3 and 5; a
	// negative value turns the cap off (load tests).
	MaxLiveAnonymous, MaxLiveAccount int
	// MaxAudienceBytes bounds the bundles an account's private broadcasts
	// keep in the mailbox at once (they stay until 24 h after each end);
	// default 64 MiB, negative: no bound (load tests).
	MaxAudienceBytes int64

	// Rate limits: per client address on every request (an IPv4 address,
	// an IPv6 /64), per peer on signed
	// requests, per account on what a signed-in account does (however
	// many nodes it has), per IP on phone sign-up starts. A zero Rate gets
	// the default; a Rate with PerSecond < 0 turns that limit off.
	RateIP, RatePeer, RateAccount, RatePhone Rate
	// Replicas is how many bootstrap processes serve this community from
	// one PostgreSQL database (0 or 1: this one alone). The rate limits
	// are kept in each process's memory, so each replica allows its share,
	// 1/Replicas of every rate and burst (a burst at least 1): together,
	// what one bootstrap would allow a client whose requests the balancer
	// spreads over them (Rate.share says what it costs otherwise).
	Replicas int
	// TrustedProxies are reverse proxies in front of the bootstrap: for a
	// request from one, the per-address limits count the client address
	// it forwards (X-Forwarded-For). Empty: the remote address counts.
	TrustedProxies []netip.Prefix
	// MaxBody bounds a request body; default 16 KiB.
	MaxBody int64
	// MaxSchedules bounds one account's upcoming scheduled broadcasts;
	// default DefaultMaxSchedules.
	MaxSchedules int
	// Questions bound the questions in advance.
	Questions QuestionLimits
	// RemindEvery is how often Service.Serve sends the reminders of
	// scheduled broadcasts that are due (Server.SendReminders); default
	// DefaultRemindEvery.
	RemindEvery time.Duration
	// PruneEvery is how often Service.Serve prunes what the bootstrap no
	// longer needs (Server.Prune); default DefaultPruneEvery.
	PruneEvery time.Duration
	// maxNonces bounds the nonces held in memory; default
	// defaultMaxNonces (tests make it small).
	maxNonces int
	// replicaGate, when set, is called before each attempt of the
	// replicas' listener to connect (tests hold a reconnection back).
	replicaGate func(attempt int)

	// PeerInfo, when set, gives the bootstrap's libp2p peer ID and
	// addresses for /api/v1/info (the libp2p host fills it).
	PeerInfo func() (id string, addrs []string)
	// Federation names the communities whose public live directories this
	// bootstrap lists beside its own (federation.go).
	Federation FederationConfig

	// OnLive, when set, hears every broadcast going live with the
	// accounts that follow its broadcaster: the libp2p side publishes it
	// on LiveTopic. It must not block.
	OnLive func(Event)

	Now        func() time.Time // default time.Now
	Rand       io.Reader        // default crypto/rand
	HTTPClient *http.Client     // calls to the provider; default a client with timeouts
	Logger     *slog.Logger     // default discard
}

// Defaults of ServerConfig.
const (
	DefaultAttestationTTL = 30 * 24 * time.Hour
	DefaultSessionTTL     = 30 * 24 * time.Hour
	DefaultOAuthStateTTL  = 10 * time.Minute
	DefaultClockSkew      = 2 * time.Minute
	DefaultLiveTTL        = 2 * time.Minute
	DefaultReplayTTL      = 24 * time.Hour
	DefaultMaxBody        = 16 << 10
)

// DefaultServerConfig returns what a zero ServerConfig field becomes: the
// durations above, the rates (50/s per address, 5/s per peer, 10/s per
// account, a phone code a minute per address, with their bursts) and the
// body limit.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		AttestationTTL:   DefaultAttestationTTL,
		SessionTTL:       DefaultSessionTTL,
		OAuthStateTTL:    DefaultOAuthStateTTL,
		ClockSkew:        DefaultClockSkew,
		LiveTTL:          DefaultLiveTTL,
		ReplayTTL:        DefaultReplayTTL,
		MaxLiveAnonymous: 3,
		MaxLiveAccount:   5,
		MaxAudienceBytes: 64 << 20,
		RateIP:           Rate{PerSecond: 50, Burst: 100},
		RatePeer:         Rate{PerSecond: 5, Burst: 20},
		RateAccount:      Rate{PerSecond: 10, Burst: 40},
		RatePhone:        Rate{PerSecond: 1.0 / 60, Burst: 5},
		MaxBody:          DefaultMaxBody,
	}
}

// fill gives zero fields their defaults and refuses what cannot run; the
// store and keys are checked by NewServer.
func (c *ServerConfig) fill() error {
	d := DefaultServerConfig()
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.AttestationTTL, d.AttestationTTL)
	def(&c.SessionTTL, d.SessionTTL)
	def(&c.OAuthStateTTL, d.OAuthStateTTL)
	def(&c.ClockSkew, d.ClockSkew)
	def(&c.LiveTTL, d.LiveTTL)
	def(&c.ReplayTTL, d.ReplayTTL)
	def(&c.PruneEvery, DefaultPruneEvery)
	def(&c.RemindEvery, DefaultRemindEvery)
	if c.MaxSchedules == 0 {
		c.MaxSchedules = DefaultMaxSchedules
	}
	c.Questions.fill()
	rate := func(r *Rate, v Rate) {
		if *r == (Rate{}) {
			*r = v
		}
	}
	rate(&c.RateIP, d.RateIP)
	rate(&c.RatePeer, d.RatePeer)
	rate(&c.RateAccount, d.RateAccount)
	rate(&c.RatePhone, d.RatePhone)
	if c.MaxBody == 0 {
		c.MaxBody = d.MaxBody
	}
	if c.MaxLiveAnonymous == 0 {
		c.MaxLiveAnonymous = d.MaxLiveAnonymous
	}
	if c.MaxLiveAccount == 0 {
		c.MaxLiveAccount = d.MaxLiveAccount
	}
	if c.MaxAudienceBytes == 0 {
		c.MaxAudienceBytes = d.MaxAudienceBytes
	}
	if c.maxNonces == 0 {
		c.maxNonces = defaultMaxNonces
	}
	c.PhoneLimits.fill()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Twitter.ClientID != "" {
		c.Twitter.fill()
		if c.Twitter.RedirectURL == "" {
			if c.PublicURL == "" {
				return fmt.Errorf("%w: Twitter sign-in needs a public URL or a redirect URL", ErrConfig)
			}
			c.Twitter.RedirectURL = c.PublicURL + "/api/v1/auth/twitter/callback"
		}
	}
	switch {
	case c.AttestationTTL < 0 || c.SessionTTL < 0 || c.OAuthStateTTL < 0 || c.ClockSkew < 0 || c.LiveTTL < 0 || c.ReplayTTL < 0 || c.PruneEvery < 0 || c.RemindEvery < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	case c.AttestationTTL > identity.MaxLifetime:
		return fmt.Errorf("%w: attestation TTL %s over the %s every node allows", ErrConfig, c.AttestationTTL, identity.MaxLifetime)
	case c.MaxSchedules < 0 || c.Questions.PerWindow < 0 || c.Questions.PerSchedule < 0 || c.Questions.Window < 0:
		return fmt.Errorf("%w: negative schedule or question limit", ErrConfig)
	case c.MaxBody < 1024:
		return fmt.Errorf("%w: body limit %d below 1 KiB", ErrConfig, c.MaxBody)
	case c.Replicas < 0:
		return fmt.Errorf("%w: %d replicas", ErrConfig, c.Replicas)
	}
	return nil
}

// Server is the bootstrap's HTTP API (and its directory page).
type Server struct {
	cfg   ServerConfig
	store *Store
	// schedules is the store of scheduled broadcasts (store_schedule.go).
	schedules scheduleStore
	// profiles is the store of accounts' profiles (store_profile.go).
	profiles profileStore
	mux      *http.ServeMux
	log      *slog.Logger
	hub      *hub
	// replicas tells the other replicas of the events raised here and
	// hears theirs (PostgreSQL only; nil on SQLite).
	replicas *replicas
	nonces   *nonceStore
	lists    listCache
	trust    trustCache
	feds     []*fedPeer // the communities federated with

	http *httpMetrics // metrics.go

	ipLimit, peerLimit, accountLimit, phoneLimit *limiter
	// phoneNetLimit: codes to one number asked from one network.
	phoneNetLimit *limiter
}

var _ http.Handler = (*Server)(nil)

// NewServer builds the HTTP service.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, fmt.Errorf("%w: a store and a key ring are required", ErrConfig)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:           cfg,
		store:         cfg.Store,
		schedules:     cfg.Store,
		profiles:      cfg.Store,
		log:           cfg.Logger,
		hub:           newHub(),
		http:          newHTTPMetrics(),
		nonces:        newNonceStore(cfg.ClockSkew, cfg.maxNonces),
		ipLimit:       newLimiter(cfg.RateIP.share(cfg.Replicas)),
		peerLimit:     newLimiter(cfg.RatePeer.share(cfg.Replicas)),
		accountLimit:  newLimiter(cfg.RateAccount.share(cfg.Replicas)),
		phoneLimit:    newLimiter(cfg.RatePhone.share(cfg.Replicas)),
		phoneNetLimit: newLimiter(phoneNetRate(cfg).share(cfg.Replicas)),
	}
	// The nonces kept before a restart: what was captured then is refused
	// now.
	lowest := s.nonces.bucket(cfg.Now().Add(-cfg.ClockSkew))
	kept, err := s.store.loadNonces(context.Background(), lowest)
	if err != nil {
		return nil, err
	}
	s.nonces.load(kept, lowest)
	if s.feds, err = s.cfg.Federation.fill(); err != nil {
		return nil, err
	}
	s.routes()
	if s.store.pg != nil {
		if s.replicas, err = startReplicas(s, s.store.pg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close stops hearing the other replicas, ends the event streams and
// closes the connection that tells them. Safe to call twice.
func (s *Server) Close() {
	s.endStreams()
	if s.replicas != nil {
		s.replicas.close()
	}
}

// endStreams stops hearing the other replicas and ends the event streams;
// requests still in flight can still tell the other replicas.
func (s *Server) endStreams() {
	if s.replicas != nil {
		s.replicas.stopListening()
	}
	s.hub.close()
}

// phoneNetRate is the bucket of codes to one number from one network:
// MaxNetworkSends per SendWindow, off with the phone starts' own limit
// (--no-rate-limits).
func phoneNetRate(cfg ServerConfig) Rate {
	if cfg.RatePhone.PerSecond < 0 {
		return Rate{PerSecond: -1}
	}
	l := cfg.PhoneLimits
	return Rate{PerSecond: float64(l.MaxNetworkSends) / l.SendWindow.Seconds(), Burst: l.MaxNetworkSends}
}

// TrustSet returns a trust set of this bootstrap's own keys.
func (s *Server) TrustSet() *identity.TrustSet {
	t, _ := identity.NewTrustSet(s.cfg.Keys.KeySet())
	return t
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/v1/info", s.handleInfo)
	m.HandleFunc("GET /api/v1/trust", s.handleTrust)
	m.HandleFunc("POST /api/v1/auth/twitter/start", s.handleTwitterStart)
	m.HandleFunc("GET /api/v1/auth/twitter/callback", s.handleTwitterCallback)
	m.HandleFunc("POST /api/v1/auth/twitter/finish", s.handleTwitterFinish)
	m.HandleFunc("POST /api/v1/auth/signout", s.handleSignOut)
	m.HandleFunc("GET /api/v1/sessions", s.handleSessions)
	m.HandleFunc("POST /api/v1/sessions/revoke", s.handleRevokeSession)
	m.HandleFunc("POST /api/v1/auth/phone/start", s.handlePhoneStart)
	m.HandleFunc("POST /api/v1/auth/phone/verify", s.handlePhoneVerify)
	m.HandleFunc("GET /api/v1/attestation", s.handleAttestation)
	m.HandleFunc("POST /api/v1/attestation/verify", s.handleVerify)
	m.HandleFunc("GET /api/v1/broadcasts", s.handleList)
	m.HandleFunc("GET /api/v1/broadcasts/{id}", s.handleGet)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}", s.handleAnnounce)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}/replay", s.handleReplay)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}/thumbnail", s.handlePutThumbnail)
	m.HandleFunc("GET /api/v1/broadcasts/{id}/thumbnail", s.handleGetThumbnail)
	m.HandleFunc("GET /api/v1/events", s.handleEvents)
	m.HandleFunc("GET "+api.FederationPath, s.handleFederationExport)
	m.HandleFunc("GET /api/v1/federated/{id}", s.handleFederatedProof)
	m.HandleFunc("GET /api/v1/feed", s.handleFeed)
	m.HandleFunc("GET /api/v1/follows", s.handleFollowing)
	m.HandleFunc("PUT /api/v1/follows/{account}", s.handleFollow)
	m.HandleFunc("DELETE /api/v1/follows/{account}", s.handleUnfollow)
	m.HandleFunc("POST /api/v1/follows/import", s.handleImport)
	m.HandleFunc("GET /api/v1/suggestions", s.handleSuggestions)
	m.HandleFunc("GET /api/v1/profiles/{who}", s.handleProfile)
	// Private audiences (issue 13): device keys, mutuals, rosters, the
	// bundles' mailbox, membership tokens, invitations, saved groups
	// (audience.go, mailbox.go, tokens.go).
	m.HandleFunc("PUT /api/v1/device-keys", s.handlePublishDeviceKey)
	m.HandleFunc("GET /api/v1/device-keys", s.handleDeviceKeys)
	m.HandleFunc("GET /api/v1/audience/mutuals", s.handleMutuals)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}/audience", s.handlePutRoster)
	m.HandleFunc("GET /api/v1/broadcasts/{id}/audience", s.handleGetRoster)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}/bundles", s.handlePutBundles)
	m.HandleFunc("GET /api/v1/broadcasts/{id}/bundles", s.handleGetBundles)
	m.HandleFunc("PUT /api/v1/broadcasts/{id}/tokens", s.handlePutTokens)
	m.HandleFunc("GET /api/v1/broadcasts/{id}/tokens/{peer}", s.handleGetToken)
	m.HandleFunc("GET /api/v1/invitations", s.handleInvitations)
	m.HandleFunc("GET /api/v1/groups", s.handleGroups)
	m.HandleFunc("PUT /api/v1/groups/{name}", s.handlePutGroup)
	m.HandleFunc("GET /api/v1/groups/{name}", s.handleGroup)
	m.HandleFunc("DELETE /api/v1/groups/{name}", s.handleDeleteGroup)
	// Scheduled broadcasts and questions in advance (issue 15;
	// schedule.go).
	s.scheduleRoutes(m)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	mountPage(m)
	s.mountWebLink(m)
	s.mux = m
}

// ServeHTTP applies the per-IP limit, then routes, and counts and times
// the request by the route that matched.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	defer func() { s.http.observe(r.Pattern, cmp.Or(w.code, http.StatusOK), time.Since(start)) }()
	if !s.ipLimit.allow(netKey(clientIP(r, s.cfg.TrustedProxies)), s.cfg.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this address")
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// No page of the bootstrap is to be framed (the callback's code, the
	// directory's buttons) or to load from elsewhere but https images
	// (avatars); no URL leaves in a Referer.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

// Mount serves h under a path prefix beside the API (the stand-in provider
// of a local setup, say). Call it before serving.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.mux.Handle(prefix, http.StripPrefix(strings.TrimSuffix(prefix, "/"), h))
}

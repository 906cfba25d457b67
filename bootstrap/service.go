package bootstrap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/peerscope/peerscope/internal/httpserve"
)

// ServiceConfig configures the whole HTTP side of a bootstrap under a data
// directory.
type ServiceConfig struct {
	// DataDir holds the database (DBFile) and the attestation keys
	// (KeyFile; with a PostgreSQL DB the keys are the database's, and a
	// key file here is imported by the first replica, or checked to be
	// the same bootstrap's). Required.
	DataDir string
	// DB is the database: a PostgreSQL URL (postgres://…), or a SQLite
	// file's path. Empty: DBFile in DataDir.
	DB string
	// HTTP is the API's listen address; default DefaultHTTP.
	HTTP string
	// Server configures the API; its Store and Keys are opened from
	// DataDir.
	Server ServerConfig
	// Configure, when set, may finish Server once the public URL is known
	// (after listening: with port 0 it is known only then).
	Configure func(publicURL string, c *ServerConfig)
}

// DefaultHTTP is where the API listens by default.
const DefaultHTTP = "127.0.0.1:8090"

// Service is a bootstrap's HTTP side: the store, the keys and the API,
// listening.
type Service struct {
	dir    string
	Store  *Store
	Keys   *KeyRing
	Server *Server
	ln     net.Listener
	srv    *http.Server

	// loops run beside the server's own while Serve serves, stopped
	// before the store closes (the daemon's replica_peers.go).
	loops []func(context.Context)
}

// Open opens the data directory, the store and the keys, and listens.
// Serve answers requests.
func Open(ctx context.Context, cfg ServiceConfig) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: a data directory is required", ErrConfig)
	}
	if cfg.HTTP == "" {
		cfg.HTTP = DefaultHTTP
	}
	db := cfg.DB
	if db == "" {
		db = filepath.Join(cfg.DataDir, DBFile)
	}
	if cfg.Server.Replicas > 1 && !isPostgresURL(db) {
		return nil, fmt.Errorf("%w: %d replicas share a PostgreSQL database (--db postgres://…); a SQLite file has one process", ErrConfig, cfg.Server.Replicas)
	}
	if err := privateDir(cfg.DataDir); err != nil {
		return nil, err
	}
	rnd := cfg.Server.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	st, err := OpenStore(ctx, db)
	if err != nil {
		return nil, err
	}
	// On PostgreSQL the keys are the database's, shared by its replicas
	// (keys_db.go); on SQLite, the key file's.
	var keys *KeyRing
	if st.dialect == dialectPostgres {
		keys, err = st.loadKeyRing(ctx, cfg.DataDir, rnd)
	} else {
		keys, err = LoadKeyRing(cfg.DataDir, rnd)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.sealTokens(ctx, keys.secret); err != nil {
		st.Close()
		return nil, err
	}
	sc := cfg.Server
	sc.Store, sc.Keys = st, keys
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("bootstrap: listen %s: %w", cfg.HTTP, err)
	}
	if sc.PublicURL == "" {
		sc.PublicURL = "http://" + ln.Addr().String()
	}
	if cfg.Configure != nil {
		cfg.Configure(sc.PublicURL, &sc)
	}
	srv, err := NewServer(sc)
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// A client's spare connection, dialled and never used, would hold the
	// shutdown for its 5 s and fail it.
	httpserve.CloseUnusedOnShutdown(hs)
	return &Service{dir: cfg.DataDir, Store: st, Keys: keys, Server: srv, ln: ln, srv: hs}, nil
}

// privateDir makes the data directory (mode 0700) or takes group and other
// permissions off it: it holds keys, tokens and sessions.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bootstrap: data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		err = os.Chmod(dir, fi.Mode().Perm()&0o700)
	}
	if err != nil {
		return fmt.Errorf("bootstrap: data directory: %w", err)
	}
	return nil
}

// DataDir is the directory the service keeps its state in.
func (s *Service) DataDir() string { return s.dir }

// URL is the API's base URL.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

// Serve answers requests, prunes every PruneEvery and sends the reminders
// of scheduled broadcasts every RemindEvery, until ctx ends,
// then shuts down (letting requests in flight finish, up to 5 s) and
// closes the store.
func (s *Service) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	pctx, stopPrune := context.WithCancel(ctx)
	pruned := make(chan struct{})
	reminded := make(chan struct{})
	federated := make(chan struct{})
	go func() {
		defer close(federated)
		s.Server.federateLoop(pctx)
	}()
	go func() {
		defer close(pruned)
		s.Server.pruneLoop(pctx)
	}()
	go func() {
		defer close(reminded)
		s.Server.remindLoop(pctx)
	}()
	var loops sync.WaitGroup
	for _, f := range s.loops {
		loops.Go(func() { f(pctx) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopPrune()
	<-pruned
	<-reminded
	<-federated
	loops.Wait()
	s.Server.endStreams() // which Shutdown would wait for
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e := s.srv.Shutdown(sctx); e != nil && err == nil {
		err = e
	}
	s.Server.Close() // after the requests in flight, which may tell the other replicas
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if e := s.Store.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

package bootstrap

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// Store is the bootstrap's state in one database: SQLite by default, or
// PostgreSQL (dialect.go says what differs and how it is bridged).
//
// On SQLite: WAL journal, synchronous=FULL, so a write that returned has
// been fsynced and survives the process being killed (and the machine
// losing power). Writes go through one connection, reads through a small
// pool that WAL lets run beside the writer.
//
// On PostgreSQL the same shape: one writer connection, so that within one
// process writes are serialised exactly as on SQLite (every
// read-modify-write transaction of the store relies on that), and a pool
// of readers.
type Store struct {
	w *sql.DB // one connection: SQLite has one writer
	r *sql.DB // readers

	dialect dialect
	// pg is the PostgreSQL store's connection config, for the
	// connections that are not database/sql's (replicas.go); nil on SQLite.
	pg *pgx.ConnConfig

	// Hot statements, prepared once (parsing SQL was a tenth of an
	// announcement's CPU).
	stSession, stPutUpsert, stNonce *sql.Stmt

	// Kept nonces below nonceBelow may be deleted; noncePruned is the
	// bound already applied (owned by commitLoop).
	nonceBelow  atomic.Int64
	noncePruned int64

	// tokens seals provider tokens at rest (sealed.go); set by Open.
	tokens *tokenSealer

	metrics *storeMetrics // metrics.go

	// Announcements go through commitLoop, which groups them.
	puts      chan *putReq
	closing   chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
}

// DBFile is the database's file name under the data directory.
const DBFile = "bootstrap.db"

// OpenStore opens the database db and brings its schema up to date: a
// PostgreSQL URL (postgres://… or postgresql://…), or else the path of a
// SQLite file, created if needed.
func OpenStore(ctx context.Context, db string) (*Store, error) {
	var s *Store
	var err error
	if isPostgresURL(db) {
		s, err = openPostgres(ctx, db)
	} else {
		s, err = openSQLite(ctx, db)
	}
	if err != nil {
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, err
	}
	s.puts, s.closing, s.loopDone = make(chan *putReq), make(chan struct{}), make(chan struct{})
	go s.commitLoop()
	return s, nil
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: database path: %w", err)
	}
	// The database holds sessions, provider tokens and the follow graph:
	// its owner's only. SQLite makes its WAL and shared-memory files with
	// the database's mode; files an older version made are tightened.
	if err := privateFiles(abs); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	s := &Store{w: w, dialect: dialectSQLite, metrics: newStoreMetrics()}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := privateFiles(abs); err != nil { // the WAL and its index exist now
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("bootstrap: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	return s, nil
}

// pgReaders is the PostgreSQL readers' pool: unlike SQLite's readers they
// run in the server's processes, so a few more pay.
const pgReaders = 8

func openPostgres(ctx context.Context, db string) (*Store, error) {
	cfg, err := pgx.ParseConfig(db)
	if err != nil {
		// pgx's message may quote the URL, password included: say less.
		return nil, fmt.Errorf("%w: --db is not a PostgreSQL URL pgx understands (postgres://user:password@host:port/database?sslmode=…)", ErrConfig)
	}
	rb := &rebound{}
	open := func(n int) *sql.DB {
		d := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg), rb})
		d.SetMaxOpenConns(n)
		d.SetMaxIdleConns(n)
		return d
	}
	w := open(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("bootstrap: connect to PostgreSQL %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	s := &Store{w: w, dialect: dialectPostgres, pg: cfg, metrics: newStoreMetrics()}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	s.r = open(pgReaders)
	return s, nil
}

// privateFiles creates the database file at path with mode 0600 if it does
// not exist, and takes group and other permissions off it and its WAL and
// shared-memory files if they have them.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("bootstrap: database file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			err = os.Chmod(p, fi.Mode().Perm()&0o700)
		}
		if err != nil {
			return fmt.Errorf("bootstrap: database file: %w", err)
		}
	}
	return nil
}

// Close closes the database (after the group being written, if any).
// Safe to call more than once.
func (s *Store) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.closing != nil {
			close(s.closing)
			<-s.loopDone
		}
	})
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.stSession, err = s.r.PrepareContext(ctx, sessionQuery); err != nil {
		return fmt.Errorf("bootstrap: prepare: %w", err)
	}
	if s.stPutUpsert, err = s.w.PrepareContext(ctx, putUpsert); err != nil {
		return fmt.Errorf("bootstrap: prepare: %w", err)
	}
	if s.stNonce, err = s.w.PrepareContext(ctx, nonceInsert); err != nil {
		return fmt.Errorf("bootstrap: prepare: %w", err)
	}
	return nil
}

// migrationLock is the PostgreSQL advisory lock migrations are run under:
// replicas starting together upgrade the schema once, one after another.
const migrationLock = 0x7065657273636f70 // "peerscop"

func (s *Store) migrate(ctx context.Context) error {
	table := `CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`
	if s.dialect == dialectPostgres {
		// The one writer connection is one session: the lock is held
		// until unlocked below (or the connection goes).
		if _, err := s.w.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("bootstrap: migrations lock: %w", err)
		}
		defer s.w.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, int64(migrationLock))
		table = `CREATE TABLE IF NOT EXISTS migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)`
	}
	if _, err := s.w.ExecContext(ctx, table); err != nil {
		return fmt.Errorf("bootstrap: migrations table: %w", err)
	}
	var have int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&have); err != nil {
		return fmt.Errorf("bootstrap: schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: database schema %d is newer than this program's %d", ErrConfig, have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		schema := migrations[v-1]
		if s.dialect == dialectPostgres {
			schema = pgSchema(v)
		}
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, schema); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO migrations (version, applied) VALUES (?, ?)`, v, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("bootstrap: migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion returns the number of migrations applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&v)
	return v, err
}

// tx runs f in a write transaction, committed if f returns nil.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Count returns the rows of a table: what tests use to see that a refused
// request stored nothing.
func (s *Store) Count(ctx context.Context, table string) (int, error) {
	switch table {
	case "accounts", "provider_tokens", "sessions", "oauth_states", "phone_codes", "attestations",
		"broadcasts", "follows", "suggestions", "audiences",
		"nonces", "signins", "signin_misses", "revocations", "phone_numbers",
		"device_keys", "rosters", "roster_devices", "bundles", "audience_groups", "tokens",
		"schedules", "questions", "question_votes", "federated":
	default:
		return 0, fmt.Errorf("%w: no table %q", ErrNotFound, table)
	}
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	return n, err
}

// --- accounts and sessions ---

// Account is an account as the store holds it: what the API shows of it,
// and its row ID.
type Account struct {
	ID int64 `json:"-"`
	api.Account
}

// UpsertAccount creates the account or refreshes its profile, returning it
// with its ID.
func (s *Store) UpsertAccount(ctx context.Context, a Account, now time.Time) (Account, error) {
	err := s.w.QueryRowContext(ctx, `
INSERT INTO accounts (provider, subject, handle, name, avatar, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (provider, subject) DO UPDATE SET handle = excluded.handle, name = excluded.name, avatar = excluded.avatar, updated = excluded.updated
RETURNING id`, a.Provider, a.Subject, a.Handle, a.Name, a.Avatar, now.UnixNano(), now.UnixNano()).Scan(&a.ID)
	if err != nil {
		return a, fmt.Errorf("bootstrap: store account: %w", err)
	}
	return a, nil
}

// AccountByKey returns the account with key "provider:subject".
func (s *Store) AccountByKey(ctx context.Context, key string) (Account, error) {
	provider, subject, ok := strings.Cut(key, ":")
	if !ok {
		return Account{}, fmt.Errorf("%w: account key %q", ErrBadRequest, key)
	}
	var a Account
	err := s.r.QueryRowContext(ctx, `SELECT id, provider, subject, handle, name, avatar FROM accounts WHERE provider = ? AND subject = ?`,
		provider, subject).Scan(&a.ID, &a.Provider, &a.Subject, &a.Handle, &a.Name, &a.Avatar)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// ProviderTokens are an account's tokens at its provider.
type ProviderTokens struct {
	Access, Refresh, Scopes string
	Expires                 time.Time
}

// SetTokens stores an account's provider tokens, sealed.
func (s *Store) SetTokens(ctx context.Context, account int64, t ProviderTokens) error {
	if s.tokens == nil {
		return fmt.Errorf("bootstrap: store tokens: no token key (the store was not opened by Open)")
	}
	t.Access, t.Refresh = s.tokens.seal(account, "access", t.Access), s.tokens.seal(account, "refresh", t.Refresh)
	_, err := s.w.ExecContext(ctx, `
INSERT INTO provider_tokens (account, access, refresh, scopes, expires) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (account) DO UPDATE SET access = excluded.access, refresh = excluded.refresh, scopes = excluded.scopes, expires = excluded.expires`,
		account, t.Access, t.Refresh, t.Scopes, nanos(t.Expires))
	if err != nil {
		return fmt.Errorf("bootstrap: store tokens: %w", err)
	}
	return nil
}

// Tokens returns an account's provider tokens, opened.
func (s *Store) Tokens(ctx context.Context, account int64) (ProviderTokens, error) {
	var t ProviderTokens
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT access, refresh, scopes, expires FROM provider_tokens WHERE account = ?`, account).
		Scan(&t.Access, &t.Refresh, &t.Scopes, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, err
	}
	if s.tokens == nil {
		return t, fmt.Errorf("bootstrap: tokens: no token key (the store was not opened by Open)")
	}
	if t.Access, err = s.tokens.open(account, "access", t.Access); err == nil {
		t.Refresh, err = s.tokens.open(account, "refresh", t.Refresh)
	}
	t.Expires = fromNanos(exp)
	return t, err
}

// BindSession records that peer signed in as account until expires.
func (s *Store) BindSession(ctx context.Context, peer string, account int64, now, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `
INSERT INTO sessions (peer, account, created, expires) VALUES (?, ?, ?, ?)
ON CONFLICT (peer) DO UPDATE SET account = excluded.account, created = excluded.created, expires = excluded.expires`,
		peer, account, now.UnixNano(), expires.UnixNano())
	if err != nil {
		return fmt.Errorf("bootstrap: store session: %w", err)
	}
	return nil
}

const sessionQuery = `
SELECT a.id, a.provider, a.subject, a.handle, a.name, a.avatar FROM sessions s JOIN accounts a ON a.id = s.account
WHERE s.peer = ? AND s.expires > ?`

// SessionAccount returns the account peer is signed in as at now.
func (s *Store) SessionAccount(ctx context.Context, peer string, now time.Time) (Account, error) {
	var a Account
	err := s.stSession.QueryRowContext(ctx, peer, now.UnixNano()).Scan(&a.ID, &a.Provider, &a.Subject, &a.Handle, &a.Name, &a.Avatar)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNoSession
	}
	if err != nil {
		return a, fmt.Errorf("bootstrap: session: %w", err)
	}
	return a, nil
}

// --- OAuth states ---

type oauthState struct {
	State, Peer, Verifier, Scopes string
	Return                        string // the node's page to send the code back to
	Created, Expires              time.Time
}

func (s *Store) putOAuthState(ctx context.Context, st oauthState) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Expired states are swept as new ones come, so the table stays small.
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires <= ?`, st.Created.UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_states (state, peer, verifier, scopes, return_url, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			st.State, st.Peer, st.Verifier, st.Scopes, st.Return, st.Created.UnixNano(), st.Expires.UnixNano())
		return err
	})
}

// takeOAuthState consumes a state: it can be taken once, before it expires.
func (s *Store) takeOAuthState(ctx context.Context, state string, now time.Time) (oauthState, error) {
	st := oauthState{State: state}
	var created, expires int64
	err := s.w.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE state = ? RETURNING peer, verifier, scopes, return_url, created, expires`, state).
		Scan(&st.Peer, &st.Verifier, &st.Scopes, &st.Return, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrStateInvalid
	}
	if err != nil {
		return st, fmt.Errorf("bootstrap: oauth state: %w", err)
	}
	st.Created, st.Expires = time.Unix(0, created), time.Unix(0, expires)
	if !now.Before(st.Expires) {
		return st, fmt.Errorf("%w: expired", ErrStateInvalid)
	}
	return st, nil
}

// --- attestations ---

// saveAttestation records an attestation issued.
func (s *Store) saveAttestation(ctx context.Context, account int64, a *identity.Attestation) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO attestations (account, peer, issued, expires, issuer, signed, aid) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		account, a.Peer.String(), a.Issued.UnixNano(), a.Expires.UnixNano(), []byte(a.Issuer), a.Marshal(), a.ID())
	if err != nil {
		return fmt.Errorf("bootstrap: store attestation: %w", err)
	}
	return nil
}

// latestAttestation returns the newest unexpired attestation issued to
// peer, unless it was revoked (ErrNotFound: a revocation is not undone by
// an older attestation).
func (s *Store) latestAttestation(ctx context.Context, peer string, now time.Time) ([]byte, error) {
	var b []byte
	var revoked bool
	err := s.r.QueryRowContext(ctx, `SELECT signed, revoked FROM attestations WHERE peer = ? AND expires > ? ORDER BY issued DESC, id DESC LIMIT 1`,
		peer, now.UnixNano()).Scan(&b, &revoked)
	if errors.Is(err, sql.ErrNoRows) || revoked {
		return nil, ErrNotFound
	}
	return b, err
}

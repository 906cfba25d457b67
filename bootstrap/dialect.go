package bootstrap

import (
	"context"
	"database/sql/driver"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/stdlib"
)

// The store runs on two databases: SQLite (embedded, the default: one file
// in the data directory) and PostgreSQL (`--db postgres://…`, a community
// that outgrows one machine). The store's SQL is written once, in the
// dialect both understand where one exists (ON CONFLICT upserts,
// RETURNING, COALESCE, quoted "window"), with SQLite's `?` placeholders.
// What still differs is bridged here, below database/sql, so that every
// query of the store runs unchanged on both:
//
//   - placeholders: `?` and `?N` become `$n`, once per distinct query text
//     (cached; hot statements are prepared once anyway);
//   - booleans: the schema keeps flags as integers (0/1), as SQLite does;
//     a Go bool argument is sent to PostgreSQL as 0 or 1, and scanning an
//     integer 0/1 into a bool is database/sql's own conversion;
//   - the schema: the numbered migrations are SQLite's text, translated for
//     PostgreSQL (pgSchema): INTEGER is BIGINT there (PostgreSQL's INTEGER
//     is 32 bits, and the store keeps Unix nanoseconds), BLOB is BYTEA,
//     REAL is DOUBLE PRECISION (PostgreSQL's REAL is 32 bits), a rowid
//     `id INTEGER PRIMARY KEY` is an identity column, WITHOUT ROWID goes;
//   - PRAGMAs (journal, fsync, foreign keys) are SQLite's DSN only:
//     PostgreSQL always enforces foreign keys and fsyncs its commits.

// dialect says which database a store is on.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// isPostgresURL reports whether a --db value names a PostgreSQL database
// rather than a SQLite file.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// like is the operator of the directory's text search: SQLite's LIKE
// ignores (ASCII) case, PostgreSQL's does not, ILIKE does.
func (d dialect) like() string {
	if d == dialectPostgres {
		return "ILIKE"
	}
	return "LIKE"
}

// --- placeholders ---

// rebind turns SQLite's placeholders into PostgreSQL's: each `?` is the
// next `$n`, `?N` is `$N`. Quoted strings, quoted identifiers and comments
// are left alone.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			if j >= len(q) {
				j = len(q) - 1
			}
			b.WriteString(q[i : j+1])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i - 1
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// rebound caches rebind by query text, for one store's connections: the
// store's queries are a fixed set (a few are assembled from fixed parts,
// the group commit's by its size), so the cache stays small.
type rebound struct{ m sync.Map } // string → string

func (c *rebound) get(q string) string {
	if v, ok := c.m.Load(q); ok {
		return v.(string)
	}
	r := rebind(q)
	c.m.Store(q, r)
	return r
}

// --- the PostgreSQL driver, as the store sees it ---

// pgConnector hands out pgx's database/sql connections behind pgConn.
type pgConnector struct {
	inner   driver.Connector
	rebound *rebound
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("bootstrap: unexpected pgx connection %T", conn)
	}
	return pgConn{sc, c.rebound}, nil
}

func (c pgConnector) Driver() driver.Driver { return c.inner.Driver() }

// pgConn is pgx's connection with the store's placeholders and booleans
// translated; everything else (transactions, pings, session resets) is
// pgx's own.
type pgConn struct {
	*stdlib.Conn
	rebound *rebound
}

var (
	_ driver.ConnPrepareContext = pgConn{}
	_ driver.ExecerContext      = pgConn{}
	_ driver.QueryerContext     = pgConn{}
	_ driver.NamedValueChecker  = pgConn{}
)

func (c pgConn) Prepare(q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(context.Background(), c.rebound.get(q))
}

func (c pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, c.rebound.get(q))
}

func (c pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, c.rebound.get(q), args)
}

func (c pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, c.rebound.get(q), args)
}

// CheckNamedValue sends bools as the integers the schema keeps them as.
func (c pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if v, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if v {
			nv.Value = int64(1)
		}
	}
	return nil
}

// --- the schema ---

var (
	pgRowidKey  = regexp.MustCompile(`(?m)^(\s*id\s+)INTEGER PRIMARY KEY\b`)
	pgInteger   = regexp.MustCompile(`\bINTEGER\b`)
	pgBlob      = regexp.MustCompile(`\bBLOB\b`)
	pgReal      = regexp.MustCompile(`\bREAL\b`)
	pgNoRowid   = regexp.MustCompile(`\)\s*WITHOUT ROWID\s*;`)
	pgWindowCol = regexp.MustCompile(`(?m)^(\s*)window(\s+INTEGER)`)
)

// pgSchema is migration v (1-based) for PostgreSQL: SQLite's text
// translated, or pgMigrations' own where translating does not fit, and
// then pgExtra's additions.
func pgSchema(v int) string {
	q, ok := pgMigrations[v]
	if !ok {
		q = migrations[v-1]
		q = pgWindowCol.ReplaceAllString(q, `$1"window"$2`)
		q = pgRowidKey.ReplaceAllString(q, `${1}BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY`)
		q = pgInteger.ReplaceAllString(q, "BIGINT")
		q = pgBlob.ReplaceAllString(q, "BYTEA")
		q = pgReal.ReplaceAllString(q, "DOUBLE PRECISION")
		q = pgNoRowid.ReplaceAllString(q, ");")
	}
	return q + pgExtra[v]
}

// pgMigrations are the migrations written for PostgreSQL in full, by
// number, where SQLite's text does not translate (none yet).
var pgMigrations = map[int]string{}

// pgExtra is added to a migration on PostgreSQL: what SQLite has built in.
var pgExtra = map[int]string{
	// instr (the position of a substring, 0 if absent), which the store's
	// queries use to split an account key: PostgreSQL calls it strpos.
	1: `
CREATE FUNCTION instr(s TEXT, sub TEXT) RETURNS INTEGER AS 'SELECT strpos(s, sub)' LANGUAGE SQL IMMUTABLE STRICT;
`,
}

// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per
// test process (initdb into a temporary directory, pg_ctl start listening
// on a Unix socket there only), started when a test first asks for a
// database, stopped by Main when the tests end; and a fresh database per
// test (CREATE DATABASE t_<n>), so tests share the server and nothing else.
//
// Tests are skipped only when PEERSCOPE_NO_POSTGRES=1; without PostgreSQL
// installed (Debian: apt-get install postgresql) they fail and say so.
//
// Each runs a test body once per store backend (subtests "sqlite" and
// "postgres"); DBFor tells a helper which one its test is under.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// SkipEnv is the variable that, set to 1, skips the PostgreSQL tests.
const SkipEnv = "PEERSCOPE_NO_POSTGRES"

// Skipped reports whether the PostgreSQL tests are to be skipped.
func Skipped() bool { return os.Getenv(SkipEnv) == "1" }

var (
	once    sync.Once
	clu     *cluster
	cluErr  error
	nextDB  atomic.Int64
	adminMu sync.Mutex
	admin   *sql.DB
)

// Main runs a package's tests (call it from TestMain) and stops the
// cluster if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if clu != nil {
		if admin != nil {
			admin.Close()
		}
		if err := clu.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	os.Exit(code)
}

// DB returns the URL of a new, empty database for t (dropped with the
// cluster, not before: a test's store may still be closing when t ends).
func DB(t testing.TB) string {
	t.Helper()
	if Skipped() {
		t.Skipf("PostgreSQL tests skipped (%s=1)", SkipEnv)
	}
	once.Do(func() { clu, cluErr = start() })
	if cluErr != nil {
		t.Fatalf("pgtest: no PostgreSQL for the store's tests: %v\n(install Debian's postgresql, or set %s=1 to skip these tests)", cluErr, SkipEnv)
	}
	name := fmt.Sprintf("t_%d", nextDB.Add(1))
	adminMu.Lock()
	if admin == nil {
		admin = sql.OpenDB(stdlib.GetConnector(*mustConfig(clu.url("postgres"))))
	}
	adminMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return clu.url(name)
}

// Each runs f as two subtests, "sqlite" and "postgres": a store test
// written once, run on both backends. DBFor tells them apart.
func Each(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("sqlite", f)
	t.Run("postgres", func(t *testing.T) {
		if Skipped() {
			t.Skipf("PostgreSQL tests skipped (%s=1)", SkipEnv)
		}
		f(t)
	})
}

// OnPostgres reports whether t runs under Each's "postgres" subtest.
func OnPostgres(t testing.TB) bool {
	return strings.Contains(t.Name()+"/", "/postgres/")
}

// DBFor is the database a test's store opens: a fresh PostgreSQL
// database under Each's "postgres" subtest, sqlite (a file path, or ""
// for the default) otherwise.
func DBFor(t testing.TB, sqlite string) string {
	t.Helper()
	if OnPostgres(t) {
		return DB(t)
	}
	return sqlite
}

type cluster struct {
	bin, dir, sock string
	asPostgres     bool // we are root: the server runs as the postgres user
}

func (c *cluster) url(db string) string {
	q := url.Values{"host": {c.sock}, "sslmode": {"disable"}}
	return "postgres://postgres@localhost/" + db + "?" + q.Encode()
}

func mustConfig(u string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		panic(err) // our own URL
	}
	return cfg
}

// binDir finds the newest installed PostgreSQL's programs.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL's programs (initdb, pg_ctl) are not installed: neither on PATH nor under /usr/lib/postgresql/*/bin")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func start() (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir, sock: dir, asPostgres: os.Geteuid() == 0}
	if c.asPostgres {
		// PostgreSQL refuses to run as root: the cluster is the postgres
		// user's (Debian's package makes it).
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A test cluster: no TCP, no fsync (the store's durability on
	// PostgreSQL is PostgreSQL's; the tests check the store's logic).
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", c.sock)
	if out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	c.watch()
	return c, nil
}

// watch starts a watcher that stops the cluster and removes its directory
// once this process has ended, however it ends (a test binary that times
// out panics past Main's cleanup): no server is left running. In its own
// process group, so that a Ctrl-C to the tests does not end it first.
func (c *cluster) watch() {
	stop := []string{filepath.Join(c.bin, "pg_ctl")}
	if c.asPostgres {
		stop = append([]string{"runuser", "-u", "postgres", "--"}, stop...)
	}
	args := append([]string{"-c", `pid=$1 dir=$2; shift 2; tail --pid="$pid" -f /dev/null; "$@" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$dir"`,
		"pgtest-watch", strconv.Itoa(os.Getpid()), c.dir}, stop...)
	cmd := exec.Command("sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	_ = cmd.Start() // without it, Main still stops the cluster
}

func (c *cluster) stop() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return os.RemoveAll(c.dir)
}

// run runs one of PostgreSQL's programs, as the postgres user when we are
// root.
func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

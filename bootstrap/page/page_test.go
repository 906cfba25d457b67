package page

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMount: the three files under a prefix and at the root, and nothing
// else under the prefix.
func TestMount(t *testing.T) {
	for _, prefix := range []string{"", "/directory"} {
		mux := http.NewServeMux()
		Mount(mux, prefix)
		for path, want := range map[string]string{
			prefix + "/":              "<!doctype html>",
			prefix + "/directory.js":  "./api/v1/",
			prefix + "/directory.css": "{",
			prefix + "/world.svg":     "<svg",
		} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), want) {
				t.Errorf("GET %s: %d, %.40q", path, rec.Code, body)
			}
		}
		// A profile's address sends the browser to the page showing it.
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, prefix+"/u/@alice", nil))
		if loc := rec.Header().Get("Location"); rec.Code != http.StatusFound || loc != prefix+"/?u=%40alice" {
			t.Errorf("GET %s/u/@alice: %d to %q", prefix, rec.Code, loc)
		}
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, prefix+"/page.go", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s/page.go: %d", prefix, rec.Code)
		}
	}
}

// TestShellQuote: the command the page shows for a listed broadcast
// quotes its link as one shell word, whatever the link holds: the page's
// own shellQuote, run by node, then the command line run by sh, must give
// the link back unchanged and run nothing else.
func TestShellQuote(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node to run the page's script")
	}
	src, err := files.ReadFile("directory.js")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?s)function shellQuote\(s\) \{.*?\n\}\n`).Find(src)
	if fn == nil {
		t.Fatal("directory.js has no shellQuote: the command is shown unquoted")
	}
	if !strings.Contains(string(src), "peerscope watch ${shellQuote(b.link)}") {
		t.Fatal("the command shown does not quote the link")
	}
	for _, link := range []string{
		"peerscope://12D3KooW.abcd?peer=/ip4/1.2.3.4/tcp/1/p2p/x",
		"peerscope://x'; touch /tmp/pwned-peerscope; echo '",
		"peerscope://$(id)`id`\"'\\'\n",
	} {
		script := string(fn) + "process.stdout.write(shellQuote(" + strconv.Quote(link) + "));"
		q, err := exec.Command(nodeBin, "-e", script).Output()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "-c", "printf %s "+string(q)).Output()
		if err != nil || string(out) != link {
			t.Fatalf("%q quoted as %s gives %q (%v)", link, q, out, err)
		}
	}
}

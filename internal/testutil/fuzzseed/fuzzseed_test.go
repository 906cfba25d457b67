package fuzzseed

import (
	"os"
	"path/filepath"
	"testing"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"attach with path": "seed-attach-with-path",
		"v1.0-ok":          "seed-v1.0-ok",
		"é/x":              "seed---x",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriteKeepsExisting: a seed is written once, in go test's format, and
// never rewritten.
func TestWriteKeepsExisting(t *testing.T) {
	t.Chdir(t.TempDir())
	Write(t, "FuzzX", "seed-a", []byte("a\x00\n"))
	Write(t, "FuzzX", "seed-a", []byte("b"))
	got, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzX", "seed-a"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test fuzz v1\n[]byte(\"a\\x00\\n\")\n"; string(got) != want {
		t.Fatalf("seed file %q, want %q", got, want)
	}
}

package fuzzseed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// Name returns the seed file name for a case: "seed-" and the case's name
// with every rune but ASCII letters, digits, '.' and '-' made a '-'.
func Name(name string) string {
	return "seed-" + strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, name)
}

// Write writes data as the seed file of fuzz target target, in this
// package's testdata/fuzz/<target>/, unless the file exists already.
func Write(tb testing.TB, target, file string, data []byte) {
	tb.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	body := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return
	}
	if err != nil {
		tb.Fatal(err)
	}
	_, err = f.Write(body)
	if err := errors.Join(err, f.Close()); err != nil {
		tb.Fatal(err)
	}
}

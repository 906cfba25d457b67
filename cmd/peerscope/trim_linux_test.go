//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
)

// TestTrimBinary trims the test binary's own pages: its read-only mappings
// become one VMA a page, the writable ones are left alone, and the process
// runs on (this test's code is among the pages dropped).
func TestTrimBinary(t *testing.T) {
	before, err := binaryReadOnly()
	if err != nil || len(before) == 0 {
		t.Fatalf("binaryReadOnly: %v, %v", before, err)
	}
	pages := 0
	for _, r := range before {
		pages += int(r[1]-r[0]) / os.Getpagesize()
	}
	if err := trimBinary(); err != nil {
		t.Fatal(err)
	}
	after, err := binaryReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != pages {
		t.Fatalf("%d read-only mappings after the trim, want one per page: %d", len(after), pages)
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	if !strings.Contains(string(maps), "rw-p") {
		t.Fatal("no writable mapping left")
	}
}

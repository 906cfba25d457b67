package main

import (
	"bytes"
	"os"
	"testing"
)

// TestWorldSVGCurrent: the outline the page embeds is what this command
// makes from its source, and stays small (it is in every binary and sent
// with the directory page). Run `go run ./scripts/worldmap >
// bootstrap/page/world.svg` from the repository's root after changing
// either.
func TestWorldSVGCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := run(&b, "land-110m.json"); err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("../../bootstrap/page/world.svg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("bootstrap/page/world.svg (%d bytes) is not what scripts/worldmap makes (%d bytes): regenerate it", len(have), b.Len())
	}
	if len(have) > 150<<10 {
		t.Fatalf("world.svg is %d bytes, over the 150 KB budget", len(have))
	}
}

// Command worldmap writes the directory page's world outline
// (bootstrap/page/world.svg) from Natural Earth's 1:110m land polygons
// (public domain), as the world-atlas package (ISC) ships them in
// TopoJSON: land-110m.json beside this file.
//
// The projection is equirectangular at ten units a degree: x = (lon+180)·10,
// y = (90−lat)·10, so the page places a dot at left = (lon+180)/360,
// top = (90−lat)/180 of the map's box. Points are rounded to 0.1° and
// written relative to the previous one, which keeps the file small.
//
//	go run ./scripts/worldmap > bootstrap/page/world.svg
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]int `json:"arcs"`
	Objects struct {
		Land struct {
			Geometries []struct {
				Type string          `json:"type"`
				Arcs json.RawMessage `json:"arcs"`
			} `json:"geometries"`
		} `json:"land"`
	} `json:"objects"`
}

func main() {
	if err := run(os.Stdout, "scripts/worldmap/land-110m.json"); err != nil {
		fmt.Fprintln(os.Stderr, "worldmap:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, source string) error {
	raw, err := os.ReadFile(source)
	if err != nil {
		return err
	}
	var t topology
	if err := json.Unmarshal(raw, &t); err != nil {
		return err
	}
	// Decode the arcs: quantized, each point a delta from the one before.
	arcs := make([][][2]int, len(t.Arcs))
	for i, a := range t.Arcs {
		var x, y int
		for _, d := range a {
			x, y = x+d[0], y+d[1]
			lon := float64(x)*t.Transform.Scale[0] + t.Transform.Translate[0]
			lat := float64(y)*t.Transform.Scale[1] + t.Transform.Translate[1]
			arcs[i] = append(arcs[i], [2]int{round((lon + 180) * 10), round((90 - lat) * 10)})
		}
	}
	var rings [][]int
	for _, g := range t.Objects.Land.Geometries {
		switch g.Type {
		case "Polygon":
			var p [][]int
			if err := json.Unmarshal(g.Arcs, &p); err != nil {
				return err
			}
			rings = append(rings, p...)
		case "MultiPolygon":
			var mp [][][]int
			if err := json.Unmarshal(g.Arcs, &mp); err != nil {
				return err
			}
			for _, p := range mp {
				rings = append(rings, p...)
			}
		default:
			return fmt.Errorf("geometry %q", g.Type)
		}
	}
	var d strings.Builder
	for _, ring := range rings {
		var pts [][2]int
		for _, ai := range ring {
			a := arcs[max(ai, ^ai)]
			seg := make([][2]int, len(a))
			copy(seg, a)
			if ai < 0 {
				for i, j := 0, len(seg)-1; i < j; i, j = i+1, j-1 {
					seg[i], seg[j] = seg[j], seg[i]
				}
			}
			if len(pts) > 0 {
				seg = seg[1:] // the join is the previous arc's last point
			}
			pts = append(pts, seg...)
		}
		// Drop repeated points; a ring reduced to a speck is left out.
		var out [][2]int
		for _, p := range pts {
			if len(out) == 0 || out[len(out)-1] != p {
				out = append(out, p)
			}
		}
		if len(out) < 4 {
			continue
		}
		out = out[:len(out)-1] // Z closes it
		// A ring that crosses the antimeridian (Fiji, Chukotka) jumps
		// across the whole map: unwrap it into one continuous ring that
		// runs off an edge, and draw it again a world's width over, so
		// that each side shows its part (the SVG's box clips the rest).
		west, east := false, false
		for i := 1; i < len(out); i++ {
			switch dx := out[i][0] - out[i-1][0]; {
			case dx > 1800:
				out[i][0] -= 3600 * (1 + (dx-1800)/3600)
			case dx < -1800:
				out[i][0] += 3600 * (1 + (-dx-1800)/3600)
			}
			west, east = west || out[i][0] < 0, east || out[i][0] > 3600
		}
		writeRing(&d, out, 0)
		if west {
			writeRing(&d, out, 3600)
		}
		if east {
			writeRing(&d, out, -3600)
		}
	}
	_, err = fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 3600 1800" preserveAspectRatio="none">`+
		"<!-- Natural Earth 1:110m land (public domain), via world-atlas; made by scripts/worldmap -->"+
		`<path fill="#2b3a4a" d="%s"/></svg>`+"\n", d.String())
	return err
}

// writeRing appends one closed ring to path data, shifted by dx: its first
// point, then each as a step from the one before.
func writeRing(d *strings.Builder, out [][2]int, dx int) {
	d.WriteString("M" + strconv.Itoa(out[0][0]+dx) + " " + strconv.Itoa(out[0][1]) + "l")
	for i := 1; i < len(out); i++ {
		sx, sy := out[i][0]-out[i-1][0], out[i][1]-out[i-1][1]
		if i > 1 && sx >= 0 {
			d.WriteByte(' ')
		}
		d.WriteString(strconv.Itoa(sx))
		if sy >= 0 {
			d.WriteByte(' ')
		}
		d.WriteString(strconv.Itoa(sy))
	}
	d.WriteString("z")
}

func round(f float64) int {
	if f < 0 {
		return int(f - 0.5)
	}
	return int(f + 0.5)
}

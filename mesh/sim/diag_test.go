package sim

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestDiagDepth(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DIAG_N"))
	if n == 0 {
		t.Skip()
	}
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Duration, cfg.Churn = n, 90*time.Second, 0.1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for at := time.Second; at <= cfg.Duration; at += time.Second {
		s.RunUntil(t.Context(), at)
		s.gen++
		for len(s.depth) < len(s.nodes) {
			s.depth = append(s.depth, 0)
			s.stamp = append(s.stamp, 0)
		}
		deep, dmax := int32(-1), int32(0)
		hist := map[int32]int{}
		for _, i := range s.present {
			d := s.depthOf(i)
			hist[d]++
			if d > dmax {
				dmax, deep = d, i
			}
		}
		line := fmt.Sprintf("t=%v max=%d hist=%v", at, dmax, hist)
		if dmax >= 9 {
			line += "\n   chain:"
			for j := deep; j >= 0; j = s.nodes[j].parent {
				nd := &s.nodes[j]
				cls := "src"
				if j != 0 {
					cls = s.cfg.Classes[nd.class].Name
				}
				line += fmt.Sprintf(" %d(%s s%d c%d a%.0fs)", j, cls, nd.slots, len(nd.children), float64(nd.arrived)/1e9)
				if j == 0 {
					break
				}
			}
		}
		t.Log(line)
	}
}

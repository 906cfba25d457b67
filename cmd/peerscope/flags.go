package main

import (
	"fmt"
	"strconv"
	"strings"
)

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// bitrateFlag is a bitrate in bit/s written "2.5M", "2500k", "2500000" (an
// optional "bps" or "b/s" suffix is accepted).
type bitrateFlag int64

func (b *bitrateFlag) String() string {
	v := int64(*b)
	switch {
	case v >= 1e6 && v%1e4 == 0:
		return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + "M"
	case v >= 1e3 && v%10 == 0:
		return strconv.FormatFloat(float64(v)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(v, 10)
}

func (b *bitrateFlag) Set(s string) error {
	v, err := parseBitrate(s)
	if err != nil {
		return err
	}
	*b = bitrateFlag(v)
	return nil
}

func parseBitrate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	for _, suf := range []string{"bps", "b/s"} {
		t = strings.TrimSuffix(t, suf)
	}
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1e3, t[:n-1]
		case 'm', 'M':
			mult, t = 1e6, t[:n-1]
		case 'g', 'G':
			mult, t = 1e9, t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*mult > 1e12 {
		return 0, fmt.Errorf("bitrate %q: want a positive number of bit/s like 2.5M, 2500k or 2500000", s)
	}
	return int64(f*mult + 0.5), nil
}

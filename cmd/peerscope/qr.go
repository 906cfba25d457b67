package main

import (
	"io"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// writeQR prints content as a QR code made of half-block characters, two
// modules to a character cell. The light modules are the ones printed
// (with its quiet zone, a light frame), so that the code reads the right
// way round on a dark terminal, the usual kind: a phone's camera scans it
// off the screen.
func writeQR(w io.Writer, content, indent string) error {
	q, err := qrcode.New(content, qrcode.Low)
	if err != nil {
		return err
	}
	bits := q.Bitmap() // true: a dark module; the quiet zone included
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		b.WriteString(indent)
		for x := range bits[y] {
			top := !bits[y][x]
			bottom := y+1 < len(bits) && !bits[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

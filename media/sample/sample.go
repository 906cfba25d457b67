package sample

import _ "embed"

//go:embed sample.ts
var ts []byte

// TS returns the clip's MPEG-TS bytes. The slice is shared: do not change it.
func TS() []byte { return ts }

// Facts about the clip, checked by the package's test.
const (
	Duration     = 10 // seconds
	VideoFrames  = 300
	AudioFrames  = 501
	Width        = 640
	Height       = 360
	KeyframeRate = 1 // keyframes per second
)

// Package fmp4 turns CMAF parts back into media samples.
//
// A broadcast travels as fMP4: one init segment (ftyp+moov) that describes
// the tracks, then one part (moof+mdat, every track) per chunk. WHEP
// needs the access units again, not the boxes, so an Unpacker is built from
// the init segment and then unpacks each part into media.Samples with
// absolute decode and presentation times (from the part's tfdt and the
// track's timescale), keyframe flags, and H.264 NALUs or audio frames.
//
// The box parsing is mediacommon's; this package maps its result onto
// media's shared types and checks what a relay could get wrong or forge:
// every error wraps media.ErrBadInput (or media.ErrUnsupportedCodec), and
// no input makes it panic (see FuzzUnpack). Sample payloads alias the part's
// bytes: the caller must not change a part after unpacking it.
package fmp4

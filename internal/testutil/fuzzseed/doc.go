// Package fuzzseed writes the seed corpora that fuzz targets keep committed
// under testdata/fuzz/, in the file format go test reads ("go test fuzz
// v1"). A package's TestWriteFuzzSeeds (run with -write-fuzz-seeds) turns
// its table of cases into seeds with it, so each package does not carry its
// own copy of the writer.
//
// How data flows: a case's name ─► Name ─► seed-<name>; the case's bytes
// ─► Write ─► testdata/fuzz/<fuzz target>/seed-<name>, unless that file
// exists: the committed seeds pin earlier encodings, which the decoders
// must keep handling, so a seed is never rewritten.
package fuzzseed

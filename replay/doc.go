// Package replay keeps broadcasts watchable for 24 hours after they end,
// on the peers that watched them, and then deletes every byte.
//
// Storage. Every chunk a node receives (and every chunk a broadcaster
// makes) goes into a Store: the signed chunk in a canonical encoding
// (chunk.Chunk.Bytes) is one block, addressed by its CID (CIDv1, raw codec,
// SHA2-256 of the block bytes), served as a boxo blockstore. The blocks are
// appended to segment files, one per broadcast per hour of the chunks'
// anchor times (below). Beside them, a bbolt index records for each block
// its broadcast, sequence number, capture and receipt times, size, and
// where it is (segment and offset), and for each broadcast when it ended
// and its signed manifest:
//
//	chunk ─► Verify (the broadcaster's signature) ─► index record ─► appended to its segment
//	          Get(CID) ─► index: known and unexpired? ─► ReadAt(segment, offset, size) ─► hash == CID? ─► bytes
//
// Why segments for the blocks: a chunk is tens of kilobytes (62.5 KB at
// 2.5 Mb/s, two a second), written once, read a few times, and deleted
// whole 24 hours later. The store used go-ds-flatfs, a file per block; but
// flatfs writes each as a temporary file that it then renames, and on a
// relaying viewer perf put 32 % of the samples under the store's put, ext4's
// inode allocation alone 20 %, with more in the sysmon wake-ups that those
// blocking syscalls cause (docs/BENCHMARKS.md, issue 17). A write into a
// file already open allocates no inode. The space still comes back when the
// sweeper deletes, with no compaction: a segment's chunks expire within its
// hour of one another (together, once the end is known), the segment file
// is unlinked when its last entry is dropped, and the range of a chunk
// dropped before the rest of its segment is punched out of the file
// (fallocate; elsewhere than Linux, its space comes back with the
// segment's). A segment per hour, not per broadcast, is what lets a
// broadcast live for a day give its first hours' files back on time. An
// LSM store (go-ds-leveldb, go-ds-pebble) would
// rewrite each value during compaction and return the space only once its
// tombstones are compacted away; go-ds-badger4 keeps values in a log that
// only its value-log GC shrinks, and only once enough of a file is
// garbage; Pebble also needs cgo for zstd. The index is the opposite case
// — small records, point lookups, one scan at start — kept in bbolt (a
// B+tree in one file, no background goroutines; LevelDB leaves one running
// for a second after Close). Its freed pages are reused, so it stays at
// its high-water mark of about 100 bytes per chunk held. A store kept by
// the flatfs code (Dir/blocks) is moved into segments at Open.
//
// Expiry. A chunk expires TTL (24 h) after its broadcast ended, or after
// its own capture time while no end is known. Both times are the
// broadcaster's claims, so both are anchored to this store's clock
// (Config.Now): an end counts from no later than when it was recorded, a
// capture from no later than when the chunk was received (kept in the
// index), and the quota orders replays by the same anchored times. A
// broadcaster whose clock runs ahead can shorten its replay's life on the
// peers, never lengthen it past 24 hours from the moment they received it.
// Every read (Get, Has, the blockstore that bitswap serves from, the
// manifest) checks expiry first, so an expired chunk is refused even before
// the sweeper (Store.Run, every SweepInterval) deletes it. The index is
// written before the block and deleted after it, so no block is ever on
// disk without its expiry; Open sweeps what expired while the node was
// down, drops records whose range runs past their segment's end (a write
// torn by a crash) and deletes segment files the index does not name, so
// a restart resurrects nothing. A block that does not hash to its CID
// (torn by a crash — blocks are not fsynced by default — or damaged on
// disk) is detected on read, deleted and refused.
//
// Quota. Config.Quota bounds the bytes kept; a chunk that would exceed it
// first drops whole older replays, oldest first, and is refused when even
// that is not enough. A node can keep nothing at all (node.Config.NoReplays).
//
// Manifest. The broadcaster records every chunk it signs (Recorder); when
// the broadcast ends, it signs a Manifest: every chunk's CID in order with
// its timing, the init segments inline, and the comment log (the schema is
// proto/replay.proto, on generated code; the signature covers the body as
// sent). Any node that holds it serves it; a replay viewer checks the
// signature against the key in the broadcast ID (Verify does the same for
// a chunk), then each chunk it fetches against the manifest's CID.
//
// How the manifest and the chunks travel between peers — the replay
// protocol, holders, views, bitswap fetching, the VOD — is replay/swarm.
package replay

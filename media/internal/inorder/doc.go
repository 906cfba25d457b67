// Package inorder puts a broadcast's chunks back in order for the players.
//
// The tree delivers every chunk once, but not always in order: a gap left by
// a lost parent is repaired late, from another peer. LL-HLS and WHEP need the
// parts in sequence, starting at a keyframe, each with the init segment it
// was cut for. A Queue holds the chunks that arrive early, releases them in
// sequence as the gaps fill, and gives up on a gap that stays open longer
// than MaxWait (or when too many chunks wait behind it): it then starts
// again at the next keyframe and marks that item as following a gap.
//
// Like the mesh, a Queue is a pure state machine: time comes in as an
// argument, it starts no goroutine and it is not safe for concurrent use.
//
// How data flows (hls.Server and whep.Server each hold a Queue):
//
//	Push(now, chunk) ─► held (early), ignored (seen, given up, after the end) or released
//	Tick(now)        ─► a gap past MaxWait (or MaxPending held) given up ─► next keyframe
//	released         ─► []Item{Chunk, Init, NewInit, Gap, End}, in sequence ─► the player
package inorder

// Package sim is a deterministic discrete-event simulator that drives many
// mesh.Machine state machines over a modelled network, in one thread, from one
// seed. It is how Peerscope's claims at internet scale are made: the same
// Machine that runs inside the libp2p adapter runs here, unchanged, with the
// simulator as its shell.
//
// # How data flows
//
// Everything happens on a virtual clock (a fixed epoch plus virtual
// nanoseconds). An event heap ordered by (time, insertion counter) holds what
// is due: a message arriving, a connection reset (PeerDown), a tick of a
// group of nodes, the broadcaster cutting a chunk, a viewer arriving or
// leaving, a sample of the tree. Each event calls into one Machine (Step, Tick,
// Publish, PeerDown, AddCandidates); the simulator then drains that node's
// Ready: Messages go onto the sender's uplink, Deliver feeds the metrics,
// Events keep the simulator's picture of the tree (parents, children) up to
// date. One math/rand/v2 PCG seeded from Config.Seed feeds every draw —
// positions, capacities, arrival and churn times, loss, each node's
// mesh.Config.Rand — so a seed always yields the same run.
//
// # The model
//
//   - Place: nodes sit on a plane measured in milliseconds of one-way
//     propagation. Most sit near one of a few region centres (Gaussian
//     spread), the rest anywhere; one-way delay = MinOneWay + distance, so
//     it ranges from ~2 ms (same city) to ~150 ms (opposite corners), RTT
//     from a few ms to ~300 ms. The broadcaster sits in the largest region.
//   - Capacity: each viewer draws a class (Classes: by default 50% phones,
//     ~1 Mb/s up, no child slots; 35% home links, 5–20 Mb/s; 15% well
//     connected, 50–100 Mb/s) and an upload within it; its slots are
//     mesh.SlotsFor(upload, bitrate, Headroom) capped at MaxSlots. The
//     broadcaster has SourceSlots slots and an upload of SourceSlots ×
//     bitrate × Headroom.
//   - Links: every message occupies the sender's uplink, which keeps a
//     queue per destination and serves them in rounds, one message each
//     (Uplink: UplinkFair, the default), as the separate connections to a
//     node's children share its link: a long backfill to one child does not
//     hold back the live chunks of the others. A message takes
//     Message.Size()×8/upload on the uplink and arrives one-way
//     propagation after its last byte left. UplinkFIFO (--uplink fifo) is
//     the harsher model of one queue in the order sent; under it a burst of
//     backfills at the broadcaster delays every child's chunks and
//     heartbeats together. Loss is per packet (PacketSize bytes): a message with
//     a lost packet arrives one RTT late (a reliable stream retransmits it;
//     several losses in one message are recovered in the same round trip),
//     and no later message on the same link overtakes it (head-of-line
//     blocking). Messages to a node that has left are dropped, and so are
//     messages whose sender left before their last byte went out.
//   - Forwarding: by default (Forward: ForwardStore) a relay passes a chunk
//     on once the whole of it has arrived, so every hop adds the chunk's
//     serialisation. ForwardCut (--forward cut) models relays that pass
//     each Fragment (8 KiB) on as soon as it has arrived and verified
//     against the fragment hashes of the signed header: still one event
//     per message, stepped when its first fragment is in, delivered when
//     its last byte is, with the copies of one chunk to several children
//     sent a fragment each in turn and no copy finishing before the
//     relay's own last fragment is in (cut.go). A lost packet then holds
//     back the head only if it fell in the first fragment. Either way the report breaks each
//     hop of a media chunk into its wait in the uplink's queue, its time
//     on the uplink and its propagation (extra.hop_*).
//   - Chunks: the broadcaster publishes one init chunk (seq 0) and then a
//     media chunk every ChunkInterval (seq 1, 2, …; a keyframe every
//     KeyframeInterval) of Bitrate×ChunkInterval/8 bytes, signed with a
//     real ed25519 key made from the seed. Every media chunk carries the
//     same zero payload (nothing reads its bytes; the signature still
//     covers each chunk's sequence number and wallclock) and no cached
//     encoding, and the *Chunk is shared by every node (a Machine never
//     mutates a chunk). Verification uses mesh.Config.Verify with a cache that runs
//     the real ed25519 check once per *Chunk pointer and reuses the verdict;
//     it is bounded (indexed by sequence number, old sequence numbers are
//     evicted), and a forged copy, being another pointer, is checked for
//     real and fails.
//   - Time: every node ticks every TickInterval (50 ms); phases are
//     staggered at 1 ms granularity, consecutive arrivals sharing a phase,
//     and the nodes of one phase are ticked by a single heap event.
//   - Arrivals: the Nodes viewers arrive at uniform random times over the
//     first ArrivalWindow. Each is given AddCandidates(root + up to
//     Candidates random viewers that are attached at that moment), what a
//     directory or the DHT would hand out, and ticked at once.
//   - Churn: from the end of ArrivalWindow, viewers leave at a Poisson rate
//     of Churn × present viewers per minute and new ones arrive at a Poisson
//     rate of Churn × Nodes per minute. A departure is abrupt (a fraction
//     GracefulLeave calls Leave first): the node disappears and, with
//     probability ResetProb, its neighbours (parent, children by either
//     side's account, the member it was attaching to) get PeerDown one
//     one-way propagation later, as from a connection reset; otherwise they
//     notice by silence.
//   - Forgers: optionally, a few relaying viewers replace every chunk they
//     send with a copy whose signature is broken.
//
// # What is measured (report.Report)
//
//   - latency_ms: receipt − chunk Wallclock for every (viewer, chunk)
//     delivered that was cut after the viewer arrived: the live relay
//     latency, rejoin backfills and pulls included. The chunks a joiner is
//     handed from the last keyframe (cut before it asked, up to
//     KeyframeInterval old) are its start-up, as in `peerscope bench`: they
//     go only into extra.latency_all_p99_ms, which counts every delivery.
//     Wallclock is the virtual time the chunk was cut and published.
//     Quantiles are exact to 0.1 ms.
//   - continuity: chunks a viewer held before Wallclock+Playout ÷ chunks
//     due. Playback starts at each viewer's own first chunk (normally the
//     keyframe its parent backfills): a chunk is due if its sequence number
//     is at least that chunk's and its deadline falls between that first
//     receipt and the end of the run or the viewer's departure. That is the
//     only warm-up: continuity counts from each node's first chunk, and
//     latency every chunk cut after a node arrived, flash crowd included.
//     delivered_ratio: due chunks received at all (late included) ÷ chunks
//     due.
//   - duplicate_ratio: chunk bytes a node received again (mesh
//     Stats.Duplicates, in bytes) ÷ bytes of the chunks viewers needed
//     (first copies).
//   - source_upload_ratio: chunk bytes the broadcaster sent ÷ chunk bytes
//     of the stream. max_upload_ratio: the same for the busiest viewer,
//     against the stream bytes cut while it was present (viewers present at
//     least MinUploadPresence).
//   - overhead_ratio: bytes of every non-chunk message ÷ bytes of chunk
//     messages, over all links.
//   - max_depth: hops from the broadcaster following each node's current
//     parent, maximum over samples taken every SampleInterval (1 s) and at
//     the end, over the whole run; nodes cut off from the root at that
//     moment are not counted. Extra has when it was reached
//     (max_depth_at_s) and the maximum once the arrival window plus Warmup
//     has passed (max_depth_settled).
//   - extra.stall_max_ms, stall_p99_ms: each honest viewer's longest run
//     of consecutive chunks not held by their deadline, from its first
//     chunk held by its deadline (when its picture starts at the playout
//     delay; the late chunks a joiner gets before that never played).
//     extra.startup_*_ms: arrival → that first chunk on time;
//     never_started: viewers that got chunks but none in time.
//   - join_ms: arrival → first chunk delivered. rejoin_ms: departure of a
//     node's parent → that node attached again (EvAttached with Rejoin);
//     null when nobody's parent departed.
//   - stretch: a (viewer, chunk) latency ÷ the direct latency, i.e. one-way
//     propagation source→viewer plus the chunk's serialisation at the
//     source's upload.
//   - wall_s and rss_bytes (VmHWM from /proc/self/status) are the only
//     figures that differ between two runs of the same seed.
//   - extra: counts (joins, leaves, rejoins, moves, forged, pulls, …).
//
// # Where things are
//
// sim.go is the event loop (New, RunUntil, handle, the ticks, draining a
// machine's Ready); network.go the modelled network (propagation, the
// uplinks' fair queues, loss, order on a link, forgers); peers.go peers
// arriving and departing and the picture of the tree kept from their
// events; stream.go the broadcaster's chunks and their delivery;
// playback.go, metrics.go, hist.go and tree.go what is measured; verify.go
// the cached signature checks; queue.go the event heap; config.go the knobs
// and their defaults. The machines get no counters (mesh.Config.Counters):
// their statuses are the tree's own.
//
// # Cost
//
// The simulator's own work allocates nothing per message or delivery:
// events are values in a 4-ary heap that holds no pointers (a message in
// flight is a slot of a table beside it, so the collector never scans the
// heap and moving its entries costs no write barriers), playback records
// are counters and a 256-bit window inside each viewer's struct, latency
// and stretch go into fixed histograms, positions and peer IDs sit in
// compact arrays. Most of the time goes into the nodes themselves (Tick and Step), whose state is
// spread over many cache lines, and, at 100,000 nodes, into the garbage
// collector (a heap of well over a gigabyte of node state; GOMEMLIMIT
// trades CPU for memory, but below the live heap it doubles the run); see
// BenchmarkSim1000, BenchmarkSim10k and the --cpuprofile and --memprofile
// flags of 'peerscope sim'.
package sim

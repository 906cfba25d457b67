package node

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerscope/peerscope/mesh/p2p"
	"github.com/peerscope/peerscope/nat"
)

// metrics is the node's Prometheus registry (one per node: nothing global)
// and the instruments that are updated as things happen. What can be read
// when scraped (the tree, the counters of each broadcast) is read then, by
// nodeCollector.
type metrics struct {
	reg        *prometheus.Registry
	latency    *prometheus.HistogramVec
	hlsReqs    *prometheus.CounterVec
	whepOffers *prometheus.CounterVec
	ingest     *prometheus.CounterVec
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "peerscope_live_latency_seconds",
			Help:    "Capture to receipt at this node of each media chunk (the broadcaster's clock against this node's).",
			Buckets: []float64{.025, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10},
		}, []string{"broadcast"}),
		hlsReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerscope_hls_requests_total",
			Help: "LL-HLS requests served, by resource (playlist, init, part, segment).",
		}, []string{"broadcast", "kind"}),
		whepOffers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerscope_whep_offers_total",
			Help: "WHEP session requests (SDP offers) received.",
		}, []string{"broadcast"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerscope_ingest_sessions_total",
			Help: "Publishers admitted (rtmp, whip) or sources started (source).",
		}, []string{"broadcast", "protocol"}),
	}
	// A fresh registry and distinct names: these cannot collide.
	m.reg.MustRegister(m.latency, m.hlsReqs, m.whepOffers, m.ingest,
		nodeCollector{n}, replayCollector{n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) observeLatency(id string, d time.Duration) {
	m.latency.WithLabelValues(id).Observe(d.Seconds())
}

func (m *metrics) ingestStarted(id, proto string) {
	m.ingest.WithLabelValues(id, proto).Inc()
}

// countHLS counts the requests h serves, by resource.
func (m *metrics) countHLS(b *Broadcast, h http.Handler) http.Handler {
	id := b.id
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hlsRequests.Add(1)
		if b.hlsClients.touch(r.RemoteAddr, b.n.clock.Now()) {
			b.chat.Wake() // a browser came: the tree hears it now
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		kind := "other"
		switch {
		case strings.HasSuffix(first, ".m3u8"):
			kind = "playlist"
		case first == "init":
			kind = "init"
		case first == "part":
			kind = "part"
		case first == "seg":
			kind = "segment"
		}
		m.hlsReqs.WithLabelValues(id, kind).Inc()
		h.ServeHTTP(w, r)
	})
}

// countWHEP counts WHEP offers.
func (m *metrics) countWHEP(b *Broadcast, h http.Handler) http.Handler {
	id := b.id
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			m.whepOffers.WithLabelValues(id).Inc()
		}
		h.ServeHTTP(w, r)
	})
}

// forget drops a closed broadcast's series.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"broadcast": id}
	m.latency.DeletePartialMatch(l)
	m.hlsReqs.DeletePartialMatch(l)
	m.whepOffers.DeletePartialMatch(l)
	m.ingest.DeletePartialMatch(l)
}

// nodeCollector reads each broadcast's tree and counters when scraped.
type nodeCollector struct{ n *Node }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"broadcast"}, labels...), nil)
}

var (
	descInfo       = desc("peerscope_broadcast_info", "A broadcast this node takes part in, and its role (broadcaster or viewer).", "role")
	descEnded      = desc("peerscope_broadcast_ended", "1 once the broadcast has ended.")
	descDepth      = desc("peerscope_tree_depth", "Hops from the broadcaster (0 on it, -1 while not in the tree).")
	descParent     = desc("peerscope_tree_parent", "This node's parent in the tree (value 1).", "parent")
	descChildren   = desc("peerscope_tree_children", "Children this node relays to.")
	descSlots      = desc("peerscope_tree_slots", "Child slots this node offers.")
	descSubtree    = desc("peerscope_tree_subtree_nodes", "Nodes in this node's subtree, itself included, as last reported.")
	descRejoins    = desc("peerscope_tree_rejoins_total", "Re-attachments after a parent was lost.")
	descMoves      = desc("peerscope_tree_moves_total", "Improvement moves to a better parent.")
	descIn         = desc("peerscope_chunks_received_total", "New chunks accepted (each sequence number once; the broadcaster's own included).")
	descDup        = desc("peerscope_chunks_duplicate_total", "Chunks received again.")
	descOld        = desc("peerscope_chunks_too_old_total", "Chunks older than the window, dropped.")
	descForged     = desc("peerscope_chunks_forged_total", "Chunks that failed signature verification, dropped.")
	descPulls      = desc("peerscope_chunk_pulls_total", "Repair requests sent for missing chunks.")
	descOut        = desc("peerscope_chunks_sent_total", "Chunk messages sent to children.")
	descDropped    = desc("peerscope_chunks_dropped_total", "Delivered chunks the local players could not take (queue full).")
	descBytesOut   = desc("peerscope_chunk_bytes_sent_total", "Chunk payload bytes sent to children.")
	descBytesIn    = desc("peerscope_chunk_bytes_received_total", "Chunk payload bytes received, every copy.")
	descLatest     = desc("peerscope_live_latency_last_seconds", "Capture to receipt of the newest media chunk.")
	descWHEP       = desc("peerscope_whep_sessions", "WHEP (WebRTC) playback sessions open.")
	descIngestLive = desc("peerscope_ingest_live", "1 while a publisher or source feeds the broadcast.", "protocol")
	descChat       = desc("peerscope_chat_messages_total", "Chat messages the validators decided on, by kind and verdict (accepted, rejected, ignored).", "kind", "verdict")
	descChatThrot  = desc("peerscope_chat_throttled_total", "Chat messages ignored for their sender's rate.")
	descChatClient = desc("peerscope_chat_streams", "Chat event streams open to browsers.")
	descParentPath = desc("peerscope_tree_parent_path", "How this node reaches its parent (value 1): direct (hole-punched or reachable) or relayed (through a bootstrap's circuit relay).", "path")
	descRelayedKid = desc("peerscope_tree_children_relayed", "Children this node reaches only through a circuit relay.")

	descReach      = prometheus.NewDesc("peerscope_p2p_reachability", "What AutoNAT says of this node (value 1): public, private (behind NAT) or unknown.", []string{"reachability"}, nil)
	descRelayAddrs = prometheus.NewDesc("peerscope_p2p_relay_addrs", "The node's /p2p-circuit addresses (it holds a relay reservation when above 0).", nil, nil)
)

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descEnded, descDepth, descParent, descChildren, descSlots, descSubtree,
		descRejoins, descMoves, descIn, descDup, descOld, descForged, descPulls, descOut, descDropped,
		descBytesOut, descBytesIn, descLatest, descWHEP, descIngestLive, descChat, descChatThrot, descChatClient,
		descParentPath, descRelayedKid, descReach, descRelayAddrs} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(descReach, prometheus.GaugeValue, 1, nat.Name(c.n.Reachability()))
	ch <- prometheus.MustNewConstMetric(descRelayAddrs, prometheus.GaugeValue, float64(len(c.n.RelayAddrs())))
	for _, b := range c.n.Broadcasts() {
		id := b.id
		role := "viewer"
		if b.root {
			role = "broadcaster"
		}
		gauge(descInfo, 1, id, role)
		ended := 0.0
		if b.ended() {
			ended = 1
		}
		gauge(descEnded, ended, id)
		gauge(descSlots, float64(b.Slots()), id)
		counter(descOut, b.chunksOut.Load(), id)
		counter(descDropped, b.dropped.Load(), id)
		counter(descBytesOut, b.bytesOut.Load(), id)
		counter(descBytesIn, b.bytesIn.Load(), id)
		if b.received.Load() > 0 {
			gauge(descLatest, time.Duration(b.latestLat.Load()).Seconds(), id)
		}
		gauge(descWHEP, float64(b.whep.Sessions()), id)
		if proto := b.Publishing(); proto != "" {
			gauge(descIngestLive, 1, id, proto)
		}
		if b.room != nil {
			gauge(descChatClient, float64(b.chat.Streams()), id)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cs, err := b.room.Stats(ctx)
			cancel()
			if err == nil {
				for verdict, m := range map[string]map[string]uint64{"accepted": cs.Accepted, "rejected": cs.Rejected, "ignored": cs.Ignored} {
					for kind, v := range m {
						counter(descChat, v, id, kind, verdict)
					}
				}
				counter(descChatThrot, cs.Throttled, id)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, stats, err := b.tree.Status(ctx)
		cancel()
		if err != nil {
			continue
		}
		gauge(descDepth, float64(st.Depth), id)
		if st.Parent != "" {
			parent := string(st.Parent)
			if pid, err := p2p.PeerID(st.Parent); err == nil {
				parent = pid.String()
			}
			gauge(descParent, 1, id, parent)
			if pid, err := p2p.PeerID(st.Parent); err == nil {
				if path := c.n.PathTo(pid); path != nat.PathNone {
					gauge(descParentPath, 1, id, string(path))
				}
			}
		}
		gauge(descChildren, float64(len(st.Children)), id)
		relayedKids := 0
		for _, k := range st.Children {
			if pid, err := p2p.PeerID(k); err == nil && c.n.PathTo(pid) == nat.PathRelayed {
				relayedKids++
			}
		}
		gauge(descRelayedKid, float64(relayedKids), id)
		gauge(descSubtree, float64(st.Subtree), id)
		counter(descRejoins, stats.Rejoins, id)
		counter(descMoves, stats.Moves, id)
		counter(descIn, stats.ChunksIn, id)
		counter(descDup, stats.Duplicates, id)
		counter(descOld, stats.TooOld, id)
		counter(descForged, stats.Forged, id)
		counter(descPulls, stats.Pulls, id)
	}
}

// replayCollector exports the replay store's state and counters.
type replayCollector struct{ n *Node }

var (
	descReplayBytes   = prometheus.NewDesc("peerscope_replay_bytes", "Bytes of replay chunks kept on disk.", nil, nil)
	descReplayChunks  = prometheus.NewDesc("peerscope_replay_chunks", "Replay chunks kept.", nil, nil)
	descReplayCasts   = prometheus.NewDesc("peerscope_replay_broadcasts", "Broadcasts with replay chunks kept.", nil, nil)
	descReplayQuota   = prometheus.NewDesc("peerscope_replay_quota_bytes", "The replay store's quota.", nil, nil)
	descReplayEvents  = prometheus.NewDesc("peerscope_replay_events_total", "What the replay store did: stored, duplicate, refused (signature or quota), expired (refused after 24 h), corrupt (failed the hash check on read), swept (deleted by the sweeper), evicted (replays dropped for the quota).", []string{"event"}, nil)
	descReplayViews   = prometheus.NewDesc("peerscope_replay_viewers", "Proven replay views counted here, per broadcast: identified (distinct attested accounts) and anonymous.", []string{"broadcast", "kind"}, nil)
	descReplayDropped = prometheus.NewDesc("peerscope_replay_keep_dropped_total", "Delivered chunks the replay store's queue could not take.", []string{"broadcast"}, nil)
)

func (replayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReplayBytes, descReplayChunks, descReplayCasts, descReplayQuota, descReplayEvents, descReplayViews, descReplayDropped} {
		ch <- d
	}
}

func (c replayCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if st := n.store; st != nil {
		u := st.Usage()
		ch <- prometheus.MustNewConstMetric(descReplayBytes, prometheus.GaugeValue, float64(u.Bytes))
		ch <- prometheus.MustNewConstMetric(descReplayChunks, prometheus.GaugeValue, float64(u.Chunks))
		ch <- prometheus.MustNewConstMetric(descReplayCasts, prometheus.GaugeValue, float64(u.Broadcasts))
		ch <- prometheus.MustNewConstMetric(descReplayQuota, prometheus.GaugeValue, float64(u.Quota))
		k := st.Counters()
		for _, e := range []struct {
			name string
			v    uint64
		}{{"stored", k.Put}, {"duplicate", k.Duplicate}, {"refused", k.Refused}, {"expired", k.Expired},
			{"corrupt", k.Corrupt}, {"swept", k.Swept}, {"evicted", k.Evicted}} {
			ch <- prometheus.MustNewConstMetric(descReplayEvents, prometheus.CounterValue, float64(e.v), e.name)
		}
	}
	for id, v := range n.swarm.AllViews() {
		ch <- prometheus.MustNewConstMetric(descReplayViews, prometheus.GaugeValue, float64(v.Identified), id, "identified")
		ch <- prometheus.MustNewConstMetric(descReplayViews, prometheus.GaugeValue, float64(v.Anonymous), id, "anonymous")
	}
	for _, b := range n.Broadcasts() {
		ch <- prometheus.MustNewConstMetric(descReplayDropped, prometheus.CounterValue, float64(b.keepDropped.Load()), b.id)
	}
}

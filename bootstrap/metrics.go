package bootstrap

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// What a bootstrap tells Prometheus (docs/OPERATING.md says what to alert
// on). The instruments updated as things happen live here; what can be
// read when scraped (broadcasts live, event streams, the database pools,
// the relay) is read then, by the collectors. Nothing is global: a
// daemon's registry is its own (--metrics serves it on its own address,
// never on the public API's).

// httpMetrics counts the API's requests by route (the pattern that
// matched, "-" for none: refused before routing, as rate-limited ones
// are) and status code, and times them.
type httpMetrics struct {
	reqs *prometheus.CounterVec
	dur  *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "peerscope_bootstrap_http_requests_total",
			Help: "API requests answered, by route pattern (\"-\": refused before routing, such as rate-limited) and status code.",
		}, []string{"route", "code"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "peerscope_bootstrap_http_request_seconds",
			Help: "Time to answer an API request, by route pattern (an event stream's is how long it stayed open).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10,
				60, 600},
		}, []string{"route"}),
	}
}

// observe records one answered request.
func (m *httpMetrics) observe(route string, code int, took time.Duration) {
	if route == "" {
		route = "-"
	}
	m.reqs.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.dur.WithLabelValues(route).Observe(took.Seconds())
}

// statusWriter remembers the status a handler answered with. It flushes
// (event streams need it) and unwraps (http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// storeMetrics are the announcement groups' (commitLoop's).
type storeMetrics struct {
	groupSize  prometheus.Histogram
	commit     prometheus.Histogram
	commitErrs prometheus.Counter
}

func newStoreMetrics() *storeMetrics {
	return &storeMetrics{
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "peerscope_bootstrap_store_group_size",
			Help:    "Announcements written by one transaction of the store's group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "peerscope_bootstrap_store_commit_seconds",
			Help:    "Time to write and commit one group of announcements (what each of them waits for, beyond the queue).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		commitErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "peerscope_bootstrap_store_commit_errors_total",
			Help: "Groups of announcements whose transaction failed (each announcement in it answered 500).",
		}),
	}
}

// observeGroup records one group's commit.
func (m *storeMetrics) observeGroup(n int, took time.Duration, err error) {
	m.groupSize.Observe(float64(n))
	m.commit.Observe(took.Seconds())
	if err != nil {
		m.commitErrs.Inc()
	}
}

// Collectors returns what the server exports: its requests, the store's
// group commits and pools, and what is live and listening now. The daemon
// registers them with the host's (Host.Collector).
func (s *Server) Collectors() []prometheus.Collector {
	sm := s.store.metrics
	return []prometheus.Collector{
		s.http.reqs, s.http.dur,
		sm.groupSize, sm.commit, sm.commitErrs,
		collectors.NewDBStatsCollector(s.store.w, "writer"),
		collectors.NewDBStatsCollector(s.store.r, "readers"),
		serverCollector{s},
	}
}

var (
	liveDesc = prometheus.NewDesc("peerscope_bootstrap_live_broadcasts",
		"Public broadcasts listed as live now.", nil, nil)
	streamsDesc = prometheus.NewDesc("peerscope_bootstrap_event_streams",
		"Event streams (GET /api/v1/events) open on this process.", nil, nil)
	keyAgeDesc = prometheus.NewDesc("peerscope_bootstrap_attestation_key_age_seconds",
		"Time since the current attestation key began signing (0 when it has signed from the start).", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("peerscope_bootstrap_scrape_errors",
		"1 when a figure of this scrape could not be read (the database did not answer in 2 s).", nil, nil)
)

// serverCollector reads, when scraped, what the server holds now.
type serverCollector struct{ s *Server }

func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- liveDesc
	ch <- streamsDesc
	ch <- keyAgeDesc
	ch <- scrapeErrDesc
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	failed := 0.0
	if n, err := s.store.countLive(ctx, s.cfg.Now(), s.cfg.LiveTTL); err == nil {
		ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(n))
	} else {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
	ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(s.hub.count()))
	age := 0.0
	if k, ok := s.cfg.Keys.KeySet().Current(); ok && !k.From.IsZero() {
		age = s.cfg.Now().Sub(k.From).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, age)
}

// countLive counts the public broadcasts live at now, as listings see them
// (announced within liveTTL).
func (s *Store) countLive(ctx context.Context, now time.Time, liveTTL time.Duration) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM broadcasts WHERE private = 0 AND ended = 0 AND updated > ?`,
		now.Add(-liveTTL).UnixNano()).Scan(&n)
	return n, err
}

var (
	peersDesc = prometheus.NewDesc("peerscope_bootstrap_peers",
		"libp2p peers connected to the bootstrap's host.", nil, nil)
	reservationsDesc = prometheus.NewDesc("peerscope_bootstrap_relay_reservations",
		"Relay reservations held now.", nil, nil)
	circuitsDesc = prometheus.NewDesc("peerscope_bootstrap_relay_circuits",
		"Relayed circuits open now.", nil, nil)
	circuitsOpenedDesc = prometheus.NewDesc("peerscope_bootstrap_relay_circuits_opened_total",
		"Relayed circuits opened since the host started.", nil, nil)
	relayBytesDesc = prometheus.NewDesc("peerscope_bootstrap_relay_bytes_total",
		"Bytes relayed, both directions, since the host started.", nil, nil)
)

// Collector returns what the host exports, read when scraped: its peers
// and its relay's figures.
func (b *Host) Collector() prometheus.Collector { return hostCollector{b} }

type hostCollector struct{ b *Host }

func (c hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{peersDesc, reservationsDesc, circuitsDesc, circuitsOpenedDesc, relayBytesDesc} {
		ch <- d
	}
}

func (c hostCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(len(c.b.h.Network().Peers())))
	r := c.b.RelayStats()
	ch <- prometheus.MustNewConstMetric(reservationsDesc, prometheus.GaugeValue, float64(r.Reservations))
	ch <- prometheus.MustNewConstMetric(circuitsDesc, prometheus.GaugeValue, float64(r.Circuits))
	ch <- prometheus.MustNewConstMetric(circuitsOpenedDesc, prometheus.CounterValue, float64(r.CircuitsOpened))
	ch <- prometheus.MustNewConstMetric(relayBytesDesc, prometheus.CounterValue, float64(r.Bytes))
}

package sync

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of fleet sync, for the API's /metrics (api.Server.Register).
// The outbox's depth, bytes and drops are reported there already, from
// the store.
var (
	descConnected       = prometheus.NewDesc("faced_mqtt_connected", "1 while connected to the fleet broker.", nil, nil)
	descPublished       = prometheus.NewDesc("faced_mqtt_published_total", "Outbox messages the broker acknowledged (PUBACK).", nil, nil)
	descReconnects      = prometheus.NewDesc("faced_mqtt_reconnects_total", "Connections re-established after a loss.", nil, nil)
	descConnectFailures = prometheus.NewDesc("faced_mqtt_connect_failures_total", "Failed connection attempts.", nil, nil)
	descOps             = prometheus.NewDesc("faced_sync_operations_total", "Gallery operations received, by result.", []string{"result"}, nil)
	descRequests        = prometheus.NewDesc("faced_sync_snapshot_requests_total", "Snapshot requests sent.", nil, nil)
	descRevision        = prometheus.NewDesc("faced_sync_gallery_revision", "Last applied revision per gallery.", []string{"gallery"}, nil)
	descHeld            = prometheus.NewDesc("faced_sync_held_operations", "Gallery operations held (in the store) behind revision gaps.", nil, nil)
	descHeldDropped     = prometheus.NewDesc("faced_sync_held_dropped_total", "Gallery operations beyond a revision gap dropped because the hold was full (the snapshot covers them).", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Syncer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnected, descPublished, descReconnects, descConnectFailures, descOps, descRequests, descRevision, descHeld, descHeldDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Syncer) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	up := 0.0
	if s.conn.up() {
		up = 1
	}
	gauge(descConnected, up)
	counter(descPublished, s.stats.published.Load())
	counter(descReconnects, s.stats.reconnects.Load())
	counter(descConnectFailures, s.stats.connectFailures.Load())
	counter(descOps, s.stats.applied.Load(), "applied")
	counter(descOps, s.stats.duplicates.Load(), "duplicate")
	counter(descOps, s.stats.gaps.Load(), "gap")
	counter(descOps, s.stats.rejected.Load(), "rejected")
	counter(descRequests, s.stats.requests.Load())
	counter(descHeldDropped, s.stats.heldDropped.Load())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if st, err := s.svc.HeldSyncStats(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(descHeld, err)
	} else {
		gauge(descHeld, float64(st.Count))
	}
	revs, err := s.svc.SyncRevisions(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRevision, err)
		return
	}
	for g, r := range revs {
		gauge(descRevision, float64(r), g)
	}
}

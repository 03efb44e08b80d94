package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facedhq/faced/store"
)

// Pruner enforces store.retention: it prunes once when started, then every
// interval, until its context ends. Each run is store.Prune (batched
// transactions, so enrolments and events interleave with a large first
// prune). It is a prometheus.Collector for /metrics.
type Pruner struct {
	db       *store.DB
	policy   store.RetentionPolicy
	interval time.Duration
	logger   *slog.Logger

	mu                   sync.Mutex
	total                store.PruneStats
	ok, failed           uint64
	lastRun, lastSuccess time.Time
	lastDuration         time.Duration
}

// NewPruner prepares a pruner of db by cfg; Run starts it.
func NewPruner(db *store.DB, cfg RetentionConfig, logger *slog.Logger) *Pruner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pruner{db: db, policy: cfg.Policy(), interval: cfg.Interval, logger: logger.With("component", "retention")}
}

// Run prunes now, then every interval, until ctx ends. A failed run is
// logged and counted; the next one tries again.
func (p *Pruner) Run(ctx context.Context) {
	if p.policy == (store.RetentionPolicy{}) {
		p.logger.Warn("retention: no limit set in store.retention; events and kept crops are never pruned")
		return
	}
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		p.Prune(ctx)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Prune runs once and records the result for the metrics.
func (p *Pruner) Prune(ctx context.Context) (store.PruneStats, error) {
	start := time.Now()
	st, err := p.db.Prune(ctx, p.policy)
	end := time.Now()
	p.mu.Lock()
	// What a failed or cancelled run removed is committed: count it.
	p.total.Events += st.Events
	p.total.Snapshots += st.Snapshots
	p.total.Images += st.Images
	p.lastRun, p.lastDuration = end, end.Sub(start)
	if err == nil {
		p.ok++
		p.lastSuccess = end
	} else {
		p.failed++
	}
	p.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: the rest waits for the next start.
	case err != nil:
		p.logger.Error("retention: prune failed; retrying at the next interval", "err", err,
			"events", st.Events, "images", st.Images, "next_in", p.interval)
	case st != (store.PruneStats{}):
		p.logger.Info("retention: pruned", "events", st.Events, "snapshots", st.Snapshots, "images", st.Images,
			"took", end.Sub(start).Round(time.Millisecond))
	}
	return st, err
}

var (
	descPruned = prometheus.NewDesc("faced_retention_pruned_total",
		"Records removed by retention (store.retention), by kind: events, snapshots (with their events), images (kept face crops).", []string{"kind"}, nil)
	descPruneRuns = prometheus.NewDesc("faced_retention_runs_total",
		"Retention runs, by result (ok, error).", []string{"result"}, nil)
	descPruneLastRun = prometheus.NewDesc("faced_retention_last_run_timestamp_seconds",
		"End of the last retention run, successful or not (0: none yet).", nil, nil)
	descPruneLastSuccess = prometheus.NewDesc("faced_retention_last_success_timestamp_seconds",
		"End of the last successful retention run (0: none yet).", nil, nil)
	descPruneDuration = prometheus.NewDesc("faced_retention_last_duration_seconds",
		"How long the last retention run took.", nil, nil)
)

// Describe implements prometheus.Collector.
func (p *Pruner) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPruned, descPruneRuns, descPruneLastRun, descPruneLastSuccess, descPruneDuration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Pruner) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(p.total.Events), "events")
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(p.total.Snapshots), "snapshots")
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(p.total.Images), "images")
	ch <- prometheus.MustNewConstMetric(descPruneRuns, prometheus.CounterValue, float64(p.ok), "ok")
	ch <- prometheus.MustNewConstMetric(descPruneRuns, prometheus.CounterValue, float64(p.failed), "error")
	ch <- prometheus.MustNewConstMetric(descPruneLastRun, prometheus.GaugeValue, unixSeconds(p.lastRun))
	ch <- prometheus.MustNewConstMetric(descPruneLastSuccess, prometheus.GaugeValue, unixSeconds(p.lastSuccess))
	ch <- prometheus.MustNewConstMetric(descPruneDuration, prometheus.GaugeValue, p.lastDuration.Seconds())
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

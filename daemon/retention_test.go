package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facedhq/faced/store"
)

// TestPrunerRealStore: the pruner against a real bbolt file prunes at
// once when run, stops with its context, and its metrics count what went.
func TestPrunerRealStore(t *testing.T) {
	now := time.Now()
	db, err := store.Open(filepath.Join(t.TempDir(), "faced.db"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i := range 10 {
		// Days 0..9 ago, with a snapshot on the even ones.
		var snap []byte
		if i%2 == 0 {
			snap = []byte("jpeg")
		}
		if _, err := db.AddEvent(ctx, store.Event{CameraID: "c", Time: now.Add(-time.Duration(i) * 24 * time.Hour)}, snap, nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultRetention()
	cfg.EventsMaxAge = 5*24*time.Hour - time.Minute // keeps days 0..4
	p := NewPruner(db, cfg, nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := db.Stats(ctx)
		if st.Events == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events left %d, want 5", st.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop with its context")
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(p); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"faced_retention_pruned_total/events": 5, "faced_retention_pruned_total/snapshots": 2,
		"faced_retention_pruned_total/images": 0, "faced_retention_runs_total/ok": 1, "faced_retention_runs_total/error": 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if ts := got["faced_retention_last_success_timestamp_seconds"]; ts < float64(now.Add(-time.Minute).Unix()) {
		t.Errorf("last success %v, want about now", ts)
	}
}

// The retention settings come from the environment like any other.
func TestRetentionFromEnvironment(t *testing.T) {
	cfg, err := Loader{Environ: []string{"FACED_STORE_RETENTION_EVENTS_MAX_AGE=720h", "FACED_STORE_RETENTION_IMAGES_MAX_COUNT=0"}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Retention.EventsMaxAge != 720*time.Hour || cfg.Store.Retention.ImagesMaxCount != 0 || cfg.Store.Retention.EventsMaxCount != 1_000_000 {
		t.Fatalf("retention %+v", cfg.Store.Retention)
	}
	if _, err := (Loader{Environ: []string{"FACED_STORE_RETENTION_INTERVAL=1s"}}).Load(); err == nil {
		t.Fatal("an interval of 1s was accepted")
	}
}

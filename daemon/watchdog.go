package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"sync"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/store"
)

// probeImage is a small synthetic photo (a grey gradient, no face) the
// watchdog runs the detector on.
var probeImage = sync.OnceValue(func() []byte {
	img := image.NewGray(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			img.SetGray(x, y, color.Gray{Y: uint8(x + y)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory image cannot fail
	}
	return buf.Bytes()
})

// Probe proves the daemon can still serve: it runs the pipeline's
// detector on a small synthetic photo and reads the store, at the same
// time, each within timeout. The error names what failed.
func (d *Daemon) Probe(ctx context.Context, timeout time.Duration) error {
	return ProbeParts(ctx, timeout, d.Vision.Pipeline, d.Store)
}

// ProbeParts is Probe on a pipeline and a store.
func ProbeParts(ctx context.Context, timeout time.Duration, p *face.Pipeline, db *store.DB) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inference := withDeadline(ctx, func(ctx context.Context) error {
		_, err := p.Detect(ctx, probeImage(), face.Options{})
		return err
	})
	storeRead := withDeadline(ctx, func(ctx context.Context) error {
		_, err := db.ListGalleries(ctx, store.ListOptions{Limit: 1})
		return err
	})
	var errs []error
	if err := <-inference; err != nil {
		errs = append(errs, fmt.Errorf("watchdog: inference: %w", err))
	}
	if err := <-storeRead; err != nil {
		errs = append(errs, fmt.Errorf("watchdog: store: %w", err))
	}
	return errors.Join(errs...)
}

// withDeadline runs fn in its own goroutine and reports its error, or the
// context's once it ends first: a call stuck in C (a hung accelerator) or
// on a lock (the store) cannot hold the watchdog past its timeout.
func withDeadline(ctx context.Context, fn func(context.Context) error) <-chan error {
	out := make(chan error, 1)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	go func() {
		select {
		case err := <-done:
			out <- err
		case <-ctx.Done():
			out <- fmt.Errorf("no answer: %w", ctx.Err())
		}
	}()
	return out
}

// Watchdog pings systemd's watchdog every Interval, but only after Probe
// succeeded: a daemon whose inference or store hangs stops pinging, and
// systemd restarts it.
type Watchdog struct {
	// Interval between probes: half of WATCHDOG_USEC.
	Interval time.Duration
	// Probe checks the daemon, within Interval (Daemon.Probe).
	Probe func(ctx context.Context, timeout time.Duration) error
	// Ping tells systemd all is well (Notifier.Watchdog with a status).
	Ping   func() error
	Logger *slog.Logger
}

// Run probes and pings until ctx ends, the first time at once.
func (w Watchdog) Run(ctx context.Context) {
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	failing := false
	for {
		if err := w.Probe(ctx, w.Interval); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.Logger.Error("watchdog: health probe failed; not pinging systemd", "err", err)
			failing = true
		} else {
			if failing {
				w.Logger.Info("watchdog: health probe passes again")
				failing = false
			}
			if err := w.Ping(); err != nil {
				w.Logger.Warn("watchdog: ping failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/testenv"
)

// openTestDaemon opens a daemon on the default models (no attributes) in
// a fresh data directory, closed when the test ends.
func openTestDaemon(t *testing.T) *Daemon {
	t.Helper()
	testenv.DepsDir(t)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Vision.Attributes = false
	d, err := Open(t.Context(), cfg.Options("test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The probe passes on a working daemon and fails, naming the part, once
// the store or the models are gone.
func TestProbe(t *testing.T) {
	d := openTestDaemon(t)
	if err := d.Probe(t.Context(), 10*time.Second); err != nil {
		t.Fatalf("probe of a working daemon: %v", err)
	}
	d.Store.Close()
	err := d.Probe(t.Context(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "watchdog: store:") || strings.Contains(err.Error(), "inference") {
		t.Fatalf("probe with the store closed: %v", err)
	}
	d.Vision.Pipeline.Close()
	err = d.Probe(t.Context(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "watchdog: inference:") {
		t.Fatalf("probe with the models closed: %v", err)
	}
}

// A call that hangs fails the probe at its timeout.
func TestWithDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	err := <-withDeadline(ctx, func(context.Context) error { <-release; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung call: %v", err)
	}
}

// The watchdog pings only while the probe passes, and logs failures.
func TestWatchdogPingsOnlyWhenHealthy(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	pings := make(chan struct{}, 100)
	var logBuf syncBuf
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var probes atomic.Int64
	go func() {
		defer close(done)
		Watchdog{
			Interval: time.Millisecond,
			Probe: func(ctx context.Context, timeout time.Duration) error {
				probes.Add(1)
				if timeout != time.Millisecond {
					t.Errorf("probe timeout %v, want the interval", timeout)
				}
				if !healthy.Load() {
					return errors.New("watchdog: inference: stuck")
				}
				return nil
			},
			Ping:   func() error { pings <- struct{}{}; return nil },
			Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
		}.Run(ctx)
	}()
	waitPings := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-pings:
			case <-time.After(10 * time.Second):
				t.Fatal("no ping")
			}
		}
	}
	waitPings(3)
	healthy.Store(false)
	// Once the probe has failed a few times, no ping may come.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logBuf.String(), "stuck"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("failure not logged")
		}
	}
	for len(pings) > 0 {
		<-pings // sent before the failure
	}
	start := probes.Load()
	for probes.Load() < start+5 {
		time.Sleep(time.Millisecond)
	}
	if n := len(pings); n != 0 {
		t.Errorf("%d pings while the probe failed", n)
	}
	healthy.Store(true)
	waitPings(1)
	cancel()
	<-done
	if !strings.Contains(logBuf.String(), "passes again") {
		t.Errorf("recovery not logged:\n%s", logBuf.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

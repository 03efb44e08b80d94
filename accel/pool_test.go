package accel_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facedhq/faced/accel"
)

// fakeBackend makes sessions that sleep for a while and then fail or echo.
type fakeBackend struct {
	sleep time.Duration
	fail  bool
}

func (b *fakeBackend) Name() string            { return "fake" }
func (b *fakeBackend) Device() accel.Device    { return accel.CPU }
func (b *fakeBackend) Formats() []accel.Format { return []accel.Format{accel.ONNX} }
func (b *fakeBackend) Close() error            { return nil }
func (b *fakeBackend) NewSession(context.Context, accel.Model) (accel.Session, error) {
	return &fakeSession{b: b}, nil
}

type fakeSession struct{ b *fakeBackend }

func (s *fakeSession) Inputs() []accel.TensorInfo  { return nil }
func (s *fakeSession) Outputs() []accel.TensorInfo { return nil }
func (s *fakeSession) Close() error                { return nil }
func (s *fakeSession) Run(_ context.Context, in []accel.Tensor) ([]accel.Tensor, error) {
	time.Sleep(s.b.sleep)
	if s.b.fail {
		return nil, errors.New("fake failure")
	}
	return in, nil
}

// TestPoolObserver: every session run is reported with its duration, failed
// runs too, from concurrent callers; nil turns reporting off.
func TestPoolObserver(t *testing.T) {
	b := &fakeBackend{sleep: 2 * time.Millisecond}
	p, err := accel.NewPool(context.Background(), b, accel.Model{Name: "m", Format: accel.ONNX}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Run(ctx, nil); err != nil { // no observer: must not panic
		t.Fatal(err)
	}
	var n atomic.Int64
	var mu sync.Mutex
	var minD time.Duration = time.Hour
	p.SetObserver(func(d time.Duration) {
		n.Add(1)
		mu.Lock()
		minD = min(minD, d)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := p.Run(ctx, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n.Load() != 8 {
		t.Fatalf("observed %d runs, want 8", n.Load())
	}
	if minD < b.sleep {
		t.Fatalf("shortest observed run %v, sessions sleep %v", minD, b.sleep)
	}
	b.fail = true
	if _, err := p.Run(ctx, nil); err == nil {
		t.Fatal("want the session's error")
	}
	if n.Load() != 9 {
		t.Fatalf("failed run not observed: %d", n.Load())
	}
	p.SetObserver(nil)
	b.fail = false
	if _, err := p.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 9 {
		t.Fatalf("observed after SetObserver(nil): %d", n.Load())
	}
}

// gateBackend makes sessions that hold every Run until the test lets one
// through, and record how many Runs are in progress, in the pool and on
// each session.
type gateBackend struct {
	gate    chan struct{}
	active  atomic.Int64 // Runs in progress over all sessions
	maxSeen atomic.Int64
	shared  atomic.Int64 // Runs that found their session already running
	made    atomic.Int64
}

func (b *gateBackend) Name() string            { return "gate" }
func (b *gateBackend) Device() accel.Device    { return accel.CPU }
func (b *gateBackend) Formats() []accel.Format { return []accel.Format{accel.ONNX} }
func (b *gateBackend) Close() error            { return nil }
func (b *gateBackend) NewSession(context.Context, accel.Model) (accel.Session, error) {
	b.made.Add(1)
	return &gateSession{b: b}, nil
}

type gateSession struct {
	b     *gateBackend
	inUse atomic.Int64
}

func (s *gateSession) Inputs() []accel.TensorInfo  { return nil }
func (s *gateSession) Outputs() []accel.TensorInfo { return nil }
func (s *gateSession) Close() error                { return nil }
func (s *gateSession) Run(ctx context.Context, in []accel.Tensor) ([]accel.Tensor, error) {
	if s.inUse.Add(1) > 1 {
		s.b.shared.Add(1)
	}
	defer s.inUse.Add(-1)
	n := s.b.active.Add(1)
	defer s.b.active.Add(-1)
	for {
		m := s.b.maxSeen.Load()
		if n <= m || s.b.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-s.b.gate:
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPoolBoundsConcurrencyAndNeverSharesASession: with more callers than
// sessions, exactly Size runs are in progress at a time, each on its own
// session, the others wait; a waiting caller's context still ends its
// wait; every caller is served in the end.
func TestPoolBoundsConcurrencyAndNeverSharesASession(t *testing.T) {
	const size, callers = 3, 12
	b := &gateBackend{gate: make(chan struct{})}
	p, err := accel.NewPool(context.Background(), b, accel.Model{Name: "m", Format: accel.ONNX}, size)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Size() != size || b.made.Load() != size {
		t.Fatalf("pool of %d sessions made %d (Size %d)", size, b.made.Load(), p.Size())
	}

	var started, done atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			started.Add(1)
			if _, err := p.Run(context.Background(), nil); err != nil {
				t.Error(err)
			}
			done.Add(1)
		})
	}
	waitFor(t, "every caller to start", func() bool { return started.Load() == callers })
	waitFor(t, "the sessions to fill", func() bool { return b.active.Load() >= size })
	// Give the waiting callers every chance to get in if the pool let them.
	for range 100 {
		runtime.Gosched()
	}
	if a := b.active.Load(); a != size {
		t.Fatalf("%d runs in progress with %d sessions", a, size)
	}

	// All sessions busy: a caller whose context ends stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := p.Run(ctx, nil); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting caller whose context ended: %v, want context.Canceled", err)
	}

	// Let the runs through one at a time; each frees a session for a
	// waiting caller.
	for range callers {
		b.gate <- struct{}{}
	}
	wg.Wait()
	if done.Load() != callers {
		t.Fatalf("%d of %d callers served", done.Load(), callers)
	}
	if m := b.maxSeen.Load(); m > size {
		t.Errorf("up to %d runs at once with a pool of %d", m, size)
	}
	if s := b.shared.Load(); s != 0 {
		t.Errorf("%d runs found their session already running on another goroutine", s)
	}
}

package accel_test

import (
	"context"
	"errors"
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

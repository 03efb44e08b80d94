package accel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pool serves concurrent callers from a fixed set of sessions of one model.
// Runtimes do not promise that one session may run on several goroutines at
// once, so each Run borrows a session for its duration; callers beyond the
// pool's size wait (honouring their context) rather than multiplying memory.
// A Pool is itself a Session and is safe for concurrent use.
type Pool struct {
	free    chan Session
	all     []Session
	inputs  []TensorInfo
	outputs []TensorInfo

	// obs, when set, receives the duration of every session run.
	obs atomic.Pointer[func(time.Duration)]

	closeOnce sync.Once
	closed    chan struct{}
}

// NewPool loads model into size sessions of backend b.
func NewPool(ctx context.Context, b Backend, model Model, size int) (*Pool, error) {
	if size < 1 {
		size = 1
	}
	p := &Pool{free: make(chan Session, size), closed: make(chan struct{})}
	for range size {
		s, err := b.NewSession(ctx, model)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("accel: %s: load %s: %w", b.Name(), model.Name, err)
		}
		p.all = append(p.all, s)
		p.free <- s
	}
	p.inputs, p.outputs = p.all[0].Inputs(), p.all[0].Outputs()
	return p, nil
}

// Size is the number of sessions in the pool.
func (p *Pool) Size() int { return len(p.all) }

// Inputs describes the model's inputs.
func (p *Pool) Inputs() []TensorInfo { return p.inputs }

// Outputs describes the model's outputs.
func (p *Pool) Outputs() []TensorInfo { return p.outputs }

// SetObserver makes every later Run report how long its session ran (not
// the wait for a free session), failed runs included; nil stops it. It may
// be called while the pool serves. fn runs on the caller's goroutine and
// must be cheap.
func (p *Pool) SetObserver(fn func(time.Duration)) {
	if fn == nil {
		p.obs.Store(nil)
		return
	}
	p.obs.Store(&fn)
}

// Run borrows a session, runs it and gives it back.
func (p *Pool) Run(ctx context.Context, inputs []Tensor) ([]Tensor, error) {
	var s Session
	select {
	case s = <-p.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, ErrClosed
	}
	defer func() { p.free <- s }()
	obs := p.obs.Load()
	if obs == nil {
		return s.Run(ctx, inputs)
	}
	start := time.Now()
	out, err := s.Run(ctx, inputs)
	(*obs)(time.Since(start))
	return out, err
}

// Close waits for borrowed sessions to come back, then closes them all.
func (p *Pool) Close() error {
	var errs []error
	p.closeOnce.Do(func() {
		close(p.closed)
		for range p.all {
			errs = append(errs, (<-p.free).Close())
		}
	})
	return errors.Join(errs...)
}

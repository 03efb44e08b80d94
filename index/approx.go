package index

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// sketchEps is ε₀ of RaBitQ's error bound: a face is re-scored exactly when
// its estimate plus ε₀ times its error scale reaches the current k-th best
// exact score. Larger means fewer misses and more exact re-scoring (see
// the sweep in doc.go): 2.2 keeps recall@1 near 0.999 over a million faces
// with strangers among the queries, where 2.0 drops to 0.997 and 2.6
// doubles the re-scoring for no measurable gain.
const sketchEps = 2.2

func (x *Index) newChunkSketch() *chunkSketch {
	return &chunkSketch{
		codes: make([]uint64, chunkSize*x.sk.words),
		pcx:   make([]float32, chunkSize),
		fac:   make([]float32, chunkSize),
		errb:  make([]float32, chunkSize),
	}
}

func (x *Index) encodeRow(s *chunkSketch, row []float32, r int, tmp []float32) {
	w := x.sk.words
	x.sk.encode(row, tmp, sketchRow{
		code: s.codes[r*w : (r+1)*w],
		pcx:  &s.pcx[r],
		fac:  &s.fac[r],
		errb: &s.errb[r],
	})
}

// maybeEnableSketch turns sketching on once the index is large enough and
// reports whether the caller must start the background build (after
// releasing the lock). Once on it stays on, so a gallery hovering around
// the threshold does not rebuild over and over.
func (x *Index) maybeEnableSketch() bool {
	if x.sketchOn || x.threshold < 0 || len(x.slotOf) < x.threshold {
		return false
	}
	x.sketchOn = true
	return true
}

// buildSketches sketches every chunk that has none yet, with Workers
// goroutines, while searches go on exactly. Each chunk is encoded and
// installed under the read lock: writers are kept out of that chunk's rows
// for the few milliseconds it takes, searches are not, and they do not
// look at sketches until all are there. (Encoding under the read lock and
// installing under the write lock would serialise the workers: a waiting
// writer blocks new readers.) Writers sketch their own rows once a chunk
// has its sketch, and chunks created from now on get one at birth.
func (x *Index) buildSketches() {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range x.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := make([]float32, x.sk.pdim)
			for {
				c := int(next.Add(1) - 1)
				if !x.sketchChunk(c, tmp) {
					return
				}
			}
		}()
	}
	wg.Wait()
	x.mu.Lock()
	x.sketchReady = true
	close(x.readyCh)
	x.mu.Unlock()
}

// sketchChunk sketches chunk c; it returns false when there is no chunk c.
func (x *Index) sketchChunk(c int, tmp []float32) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if c >= len(x.chunks) {
		return false
	}
	ch := x.chunks[c]
	if ch.sk.Load() != nil {
		return true
	}
	s := x.newChunkSketch()
	for r := range min(chunkSize, x.nslots-c*chunkSize) {
		x.encodeRow(s, ch.vecs[r*x.stride:(r+1)*x.stride], r, tmp)
	}
	ch.sk.Store(s)
	return true
}

// ApproxReady reports whether approximate search is available.
func (x *Index) ApproxReady() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.sketchReady
}

// WaitApprox blocks until approximate search is ready. It returns
// ErrNoApprox at once if the index is too small to be building it.
func (x *Index) WaitApprox(ctx context.Context) error {
	x.mu.RLock()
	on := x.sketchOn
	x.mu.RUnlock()
	if !on {
		return ErrNoApprox
	}
	select {
	case <-x.readyCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("index: wait for approximate search: %w", ctx.Err())
	}
}

package index

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// parallelMin is the number of searched faces below which one goroutine
// scans alone: under it the scan takes less than starting helpers costs
// in latency variance.
const parallelMin = 8192

// Search returns the k faces most similar to q among the given galleries
// (all faces when galleries is empty; unknown names match nothing), each
// face once even if it is in several of them. See Mode for how.
func (x *Index) Search(ctx context.Context, q []float32, k int, galleries []string, mode Mode) ([]Hit, error) {
	return x.search(ctx, q, k, galleries, mode, nil)
}

// searchStats tells RunBench what a search did.
type searchStats struct {
	approx   bool // the sketches were used
	rescored int  // exact dot products computed
}

func (x *Index) search(ctx context.Context, q []float32, k int, galleries []string, mode Mode, stats *searchStats) ([]Hit, error) {
	if err := x.checkVec(q); err != nil {
		return nil, fmt.Errorf("index: search: %w", err)
	}
	if k <= 0 {
		return nil, fmt.Errorf("index: search: k = %d, want > 0", k)
	}
	if mode < Auto || mode > Approx {
		return nil, fmt.Errorf("index: search: unknown mode %d", int(mode))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("index: search: %w", err)
	}

	x.mu.RLock()
	defer x.mu.RUnlock()

	sel, n := x.selection(galleries)
	if n == 0 {
		return []Hit{}, nil
	}
	st := &scan{x: x, k: k, sel: sel, all: galleries == nil || len(galleries) == 0, done: ctx.Done()}
	st.tau.Store(math.Float32bits(float32(math.Inf(-1))))
	st.q = make([]float32, x.stride)
	copy(st.q, q)
	if x.sketchReady && (mode == Approx || (mode == Auto && n >= x.threshold)) {
		sq := x.sk.prepare(q)
		st.sq = &sq
		st.eps = x.eps * sq.qnorm
	}

	workers := 1
	if n >= parallelMin {
		workers = min(x.workers, len(x.chunks))
	}
	ws := make([]*scanWorker, workers)
	for i := range ws {
		ws[i] = getWorker(k)
	}
	if st.sq == nil {
		st.parallel(ws, st.exactChunk)
	} else {
		// Pass 1 estimates every face from its sketch; a few of the best
		// estimates, scored exactly, set the floor; pass 2 scores exactly
		// only what the floor does not rule out. Scanning in one pass
		// would rescore thousands of faces while the floor is still low.
		st.bounds = getBuf(&boundsPool, len(x.chunks)*chunkSize)
		st.gmax = getBuf(&gmaxPool, len(x.chunks)*chunkWords)
		st.parallel(ws, st.estimateChunk)
		if !st.cancelled.Load() {
			st.seed(ws[0])
			st.next.Store(0)
			st.parallel(ws, st.rescoreChunk)
		}
		putBuf(&boundsPool, st.bounds)
		putBuf(&gmaxPool, st.gmax)
	}

	var hits []Hit
	for _, w := range ws {
		hits = append(hits, w.top.h...)
		if stats != nil {
			stats.rescored += w.rescored
		}
		putWorker(w)
	}
	if stats != nil {
		stats.approx = st.sq != nil
	}
	if st.cancelled.Load() {
		return nil, fmt.Errorf("index: search: %w", context.Cause(ctx))
	}
	sortHits(hits)
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits, nil
}

// selection resolves gallery names to their bitsets (nil: all live faces)
// and an upper bound on the faces they hold.
func (x *Index) selection(galleries []string) ([]bitset, int) {
	if len(galleries) == 0 {
		return nil, len(x.slotOf)
	}
	var sel []bitset
	n := 0
	seen := make(map[*gallery]bool, len(galleries))
	for _, name := range galleries {
		if g := x.galls[name]; g != nil && !seen[g] {
			seen[g] = true
			sel = append(sel, g.bits)
			n += g.n
		}
	}
	return sel, min(n, len(x.slotOf))
}

// scan is one search's shared state; workers claim chunks from next.
type scan struct {
	x    *Index
	q    []float32 // padded to the stride
	k    int
	sel  []bitset
	all  bool
	sq   *sketchQuery // nil: exact
	eps  float32
	done <-chan struct{}

	bounds []float32 // approximate: per slot, estimate + error allowance (−Inf: not searched)
	gmax   []float32 // approximate: per 64 slots, the largest bound

	next      atomic.Int64
	tau       atomic.Uint32 // float32 bits: a lower bound on the final k-th best score
	cancelled atomic.Bool
}

type scanWorker struct {
	top      topk
	rescored int // exact dot products in approximate mode
	scores   [chunkSize]float32
	ip       [64]int32
}

var workerPool = sync.Pool{New: func() any { return new(scanWorker) }}

func getWorker(k int) *scanWorker {
	w := workerPool.Get().(*scanWorker)
	w.top.reset(k)
	w.rescored = 0
	return w
}

func putWorker(w *scanWorker) {
	w.top.h = w.top.h[:0]
	workerPool.Put(w)
}

// parallel runs fn over every chunk with len(ws) goroutines (the caller
// being one), each claiming the next chunk until none are left or the
// search is cancelled.
func (st *scan) parallel(ws []*scanWorker, fn func(w *scanWorker, c int, mask *[chunkWords]uint64)) {
	var wg sync.WaitGroup
	for _, w := range ws[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.run(w, fn)
		}()
	}
	st.run(ws[0], fn)
	wg.Wait()
}

func (st *scan) run(w *scanWorker, fn func(w *scanWorker, c int, mask *[chunkWords]uint64)) {
	x := st.x
	var mask [chunkWords]uint64
	for {
		c := int(st.next.Add(1) - 1)
		if c >= len(x.chunks) || st.cancelled.Load() {
			return
		}
		select {
		case <-st.done:
			st.cancelled.Store(true)
			return
		default:
		}
		any := uint64(0)
		for i := range mask {
			wi := c*chunkWords + i
			var m uint64
			if st.all {
				m = x.live.word(wi)
			} else {
				for _, b := range st.sel {
					m |= b.word(wi)
				}
			}
			mask[i] = m
			any |= m
		}
		if any == 0 && st.sq == nil {
			continue
		}
		fn(w, c, &mask)
	}
}

// floor is the score below which nothing can enter the final top k, as far
// as this worker knows.
func (st *scan) floor(w *scanWorker) float32 {
	f := math.Float32frombits(st.tau.Load())
	if w.top.full() {
		f = max(f, w.top.floor())
	}
	return f
}

// publish raises the shared floor to this worker's k-th best: the global
// k-th best can only be at least as good.
func (st *scan) publish(w *scanWorker) {
	if !w.top.full() {
		return
	}
	f := w.top.floor()
	for {
		old := st.tau.Load()
		if math.Float32frombits(old) >= f || st.tau.CompareAndSwap(old, math.Float32bits(f)) {
			return
		}
	}
}

func (st *scan) offer(w *scanWorker, id uint64, s float32) {
	if w.top.offer(Hit{ID: id, Score: s}) {
		st.publish(w)
	}
}

func (st *scan) exactChunk(w *scanWorker, ci int, mask *[chunkWords]uint64) {
	c := st.x.chunks[ci]
	stride := st.x.stride
	for i, m := range mask {
		if m == 0 {
			continue
		}
		r0 := i * 64
		if m == ^uint64(0) {
			// The common case, a full run of 64 faces: one kernel call.
			dotsF32(st.q, c.vecs[r0*stride:], stride, w.scores[r0:r0+64])
		} else {
			for mm := m; mm != 0; mm &= mm - 1 {
				r := r0 + bits.TrailingZeros64(mm)
				dotsF32(st.q, c.vecs[r*stride:(r+1)*stride], stride, w.scores[r:r+1])
			}
		}
		// Anything below the floor cannot enter the final top k.
		f := st.floor(w)
		for mm := m; mm != 0; mm &= mm - 1 {
			r := r0 + bits.TrailingZeros64(mm)
			if s := w.scores[r]; s >= f {
				st.offer(w, c.ids[r], s)
				f = st.floor(w)
			}
		}
	}
}

var negInf = float32(math.Inf(-1))

// estimateChunk is pass 1 of an approximate search: the bound of every
// searched face of chunk ci, and the largest bound of each run of 64.
func (st *scan) estimateChunk(w *scanWorker, ci int, mask *[chunkWords]uint64) {
	sk, sq := st.x.chunks[ci].sk.Load(), st.sq
	words := st.x.sk.words
	for i, m := range mask {
		g := ci*chunkWords + i
		out := st.bounds[g*64 : g*64+64]
		if m == 0 {
			st.gmax[g] = negInf
			for j := range out {
				out[j] = negInf
			}
			continue
		}
		r0 := i * 64
		sketchIP(sk.codes[r0*words:(r0+64)*words], words, sq.planes, w.ip[:])
		best := sketchBounds(w.ip[:], sk.pcx[r0:r0+64], sk.fac[r0:r0+64], sk.errb[r0:r0+64],
			sq.a, sq.b, sq.c, st.eps, out)
		if m != ^uint64(0) {
			best = negInf
			for j := range out {
				if m>>j&1 == 0 {
					out[j] = negInf
				}
				best = max(best, out[j])
			}
		}
		st.gmax[g] = best
	}
}

// seedCount is how many runs of 64 faces with the best bounds have their
// best face scored exactly between the passes. Measured at 1M faces: 16
// already puts the floor so near the final k-th score that 64, 256 or 1024
// seeds leave as many faces to re-score, and only cost more.
func seedCount(k int) int { return max(16, 2*k) }

// seed scores exactly the best-bounded face of the runs with the highest
// bounds, so that pass 2 starts with a floor near the final k-th score.
func (st *scan) seed(w *scanWorker) {
	n := seedCount(st.k)
	top := make([]int, 0, n) // run indexes, best bound first
	for g, b := range st.gmax {
		if b == negInf || (len(top) == n && b <= st.gmax[top[n-1]]) {
			continue
		}
		i := len(top)
		if i < n {
			top = append(top, g)
		} else {
			i = n - 1
		}
		for ; i > 0 && st.gmax[top[i-1]] < b; i-- {
			top[i] = top[i-1]
		}
		top[i] = g
	}
	stride := st.x.stride
	for _, g := range top {
		out := st.bounds[g*64 : g*64+64]
		j := 0
		for i, b := range out {
			if b > out[j] {
				j = i
			}
		}
		slot := g*64 + j
		c, r := st.x.chunks[slot>>chunkBits], slot&(chunkSize-1)
		w.rescored++
		dotsF32(st.q, c.vecs[r*stride:(r+1)*stride], stride, w.scores[r:r+1])
		st.offer(w, c.ids[r], w.scores[r])
		out[j] = negInf // done: pass 2 must not offer it again
	}
}

// rescoreChunk is pass 2: exact scores for the faces of chunk ci whose
// bound reaches the floor.
func (st *scan) rescoreChunk(w *scanWorker, ci int, _ *[chunkWords]uint64) {
	c := st.x.chunks[ci]
	stride := st.x.stride
	f := st.floor(w)
	for i := range chunkWords {
		g := ci*chunkWords + i
		if gm := st.gmax[g]; gm == negInf || gm < f {
			continue
		}
		for j, b := range st.bounds[g*64 : g*64+64] {
			if b == negInf || b < f {
				continue
			}
			r := i*64 + j
			w.rescored++
			dotsF32(st.q, c.vecs[r*stride:(r+1)*stride], stride, w.scores[r:r+1])
			if s := w.scores[r]; s >= f {
				st.offer(w, c.ids[r], s)
				f = st.floor(w)
			}
		}
	}
}

var boundsPool, gmaxPool sync.Pool

// getBuf takes a float buffer of length n from pool, or makes one.
func getBuf(pool *sync.Pool, n int) []float32 {
	if b, ok := pool.Get().(*[]float32); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]float32, n)
}

func putBuf(pool *sync.Pool, b []float32) { pool.Put(&b) }

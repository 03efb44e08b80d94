package index

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

var galleryNames = []string{"staff", "visitors", "vip"}

// randomGalleries puts a face in zero to three galleries.
func randomGalleries(r *rand.Rand) []string {
	var g []string
	for _, name := range galleryNames {
		if r.IntN(2) == 0 {
			g = append(g, name)
		}
	}
	return g
}

func TestExactMatchesBruteForce(t *testing.T) {
	filters := [][]string{nil, {"staff"}, {"staff", "visitors"}, {"vip", "staff", "vip"}, {"nobody"}, {"nobody", "vip"}}
	for _, tc := range []struct{ n, dim, workers int }{
		{1, 512, 1}, {7, 192, 2}, {300, 512, 2}, {2500, 192, 3}, {9000, 192, 2}, {9000, 512, 1},
	} {
		t.Run(fmt.Sprintf("n%d_d%d_w%d", tc.n, tc.dim, tc.workers), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.dim)))
			x := mustNew(t, Options{Dim: tc.dim, Workers: tc.workers, ApproxThreshold: -1})
			m := newRef(tc.dim)
			for range tc.n {
				id := uint64(r.IntN(1 << 40))
				v, g := randVec(r, tc.dim), randomGalleries(r)
				if err := x.Add(id, v, g); err != nil {
					t.Fatal(err)
				}
				m.add(id, v, g)
			}
			for qi := range 8 {
				q := randVec(r, tc.dim)
				if qi%2 == 1 && len(m.vecs) > 0 {
					// A near-duplicate of a stored face, the usual query.
					for _, v := range m.vecs {
						copy(q, v)
						break
					}
					q[0] += 0.01
				}
				ranked := m.ranked(q)
				for k := 1; k <= 10; k++ {
					for _, f := range filters {
						got, err := x.Search(context.Background(), q, k, f, Exact)
						if err != nil {
							t.Fatal(err)
						}
						sameHits(t, fmt.Sprintf("q%d k%d %v", qi, k, f), got, m.filter(ranked, k, f))
					}
				}
			}
		})
	}
}

func TestTiesBreakByLowerID(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := mustNew(t, Options{Dim: 192})
	v := randVec(r, 192)
	for _, id := range []uint64{50, 7, 99, 3, 12} {
		if err := x.Add(id, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		if err := x.Add(uint64(1000+r.IntN(1000)), randVec(r, 192), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := x.Search(context.Background(), v, 3, nil, Exact)
	if err != nil {
		t.Fatal(err)
	}
	if ids := []uint64{got[0].ID, got[1].ID, got[2].ID}; !slices.Equal(ids, []uint64{3, 7, 12}) {
		t.Fatalf("tied hits %v, want ids 3, 7, 12", got)
	}
}

func TestUpdatesVisibleToNextSearch(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	x := mustNew(t, Options{Dim: 512})
	a, b := randVec(r, 512), randVec(r, 512)
	for i := range 100 {
		if err := x.Add(uint64(100+i), randVec(r, 512), []string{"g"}); err != nil {
			t.Fatal(err)
		}
	}
	top := func(q []float32, g []string) uint64 {
		t.Helper()
		h, err := x.Search(ctx, q, 1, g, Exact)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) == 0 {
			return 0
		}
		return h[0].ID
	}
	if err := x.Add(1, a, []string{"g", "h"}); err != nil {
		t.Fatal(err)
	}
	if got := top(a, nil); got != 1 {
		t.Fatalf("after add: top %d, want 1", got)
	}
	// Re-adding replaces the vector: a no longer finds it, b does.
	if err := x.Add(1, b, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if got := top(a, nil); got == 1 {
		t.Fatal("old vector still found after re-add")
	}
	if got := top(b, []string{"h"}); got != 1 {
		t.Fatalf("new vector: top %d, want 1", got)
	}
	if got := top(b, []string{"g"}); got == 1 {
		t.Fatal("re-add kept the old gallery")
	}
	if x.Len() != 101 || x.GallerySize("g") != 100 || x.GallerySize("h") != 1 {
		t.Fatalf("len %d, g %d, h %d", x.Len(), x.GallerySize("g"), x.GallerySize("h"))
	}
	// Membership change without the vector.
	if err := x.SetGalleries(1, []string{"g"}); err != nil {
		t.Fatal(err)
	}
	if got := top(b, []string{"g"}); got != 1 {
		t.Fatalf("after SetGalleries: top in g %d, want 1", got)
	}
	if h, _ := x.Search(ctx, b, 5, []string{"h"}, Exact); len(h) != 0 {
		t.Fatalf("gallery h should be empty, got %v", h)
	}
	if err := x.SetGalleries(999, []string{"g"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetGalleries of unknown id: %v", err)
	}
	// Removal is immediate, and the slot is reused cleanly.
	if !x.Remove(1) {
		t.Fatal("Remove(1) = false")
	}
	if x.Remove(1) {
		t.Fatal("second Remove(1) = true")
	}
	if got := top(b, nil); got == 1 {
		t.Fatal("removed face still found")
	}
	if x.Len() != 100 || x.GallerySize("g") != 100 {
		t.Fatalf("after remove: len %d, g %d", x.Len(), x.GallerySize("g"))
	}
	if err := x.Add(2, b, nil); err != nil {
		t.Fatal(err)
	}
	if got := top(b, nil); got != 2 {
		t.Fatalf("reused slot: top %d, want 2", got)
	}
	if got := top(b, []string{"g"}); got == 2 {
		t.Fatal("reused slot inherited the old face's gallery")
	}
}

func TestDropGallery(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	x := mustNew(t, Options{Dim: 192})
	v := randVec(r, 192)
	if err := x.Add(1, v, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	x.DropGallery("a")
	if x.GallerySize("a") != 0 {
		t.Fatal("dropped gallery still has faces")
	}
	if h, _ := x.Search(ctx, v, 1, []string{"a"}, Exact); len(h) != 0 {
		t.Fatalf("search in dropped gallery found %v", h)
	}
	for _, g := range [][]string{{"b"}, nil} {
		if h, _ := x.Search(ctx, v, 1, g, Exact); len(h) != 1 || h[0].ID != 1 {
			t.Fatalf("search %v after drop: %v", g, h)
		}
	}
	// A new gallery of the same name starts empty.
	if err := x.Add(2, randVec(r, 192), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if x.GallerySize("a") != 1 {
		t.Fatalf("recreated gallery size %d", x.GallerySize("a"))
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := New(Options{Dim: 0}); err == nil {
		t.Fatal("New with dim 0 succeeded")
	}
	x := mustNew(t, Options{Dim: 512})
	if err := x.Add(1, make([]float32, 192), nil); !errors.Is(err, ErrDim) {
		t.Fatalf("Add wrong dim: %v", err)
	}
	nan := make([]float32, 512)
	nan[3] = float32(math.NaN())
	if err := x.Add(1, nan, nil); err == nil {
		t.Fatal("Add NaN succeeded")
	}
	if err := x.Add(1, make([]float32, 512), []string{""}); err == nil {
		t.Fatal("Add with empty gallery name succeeded")
	}
	if x.Len() != 0 {
		t.Fatalf("failed adds left %d faces", x.Len())
	}
	if _, err := x.Search(ctx, make([]float32, 511), 1, nil, Exact); !errors.Is(err, ErrDim) {
		t.Fatalf("Search wrong dim: %v", err)
	}
	if _, err := x.Search(ctx, make([]float32, 512), 0, nil, Exact); err == nil {
		t.Fatal("Search k=0 succeeded")
	}
	if _, err := x.Search(ctx, make([]float32, 512), 1, nil, Mode(9)); err == nil {
		t.Fatal("Search with unknown mode succeeded")
	}
	if h, err := x.Search(ctx, make([]float32, 512), 1, nil, Auto); err != nil || len(h) != 0 {
		t.Fatalf("empty index: %v, %v", h, err)
	}
	err := x.Load(slices.Values([]Entry{
		{ID: 1, Vec: make([]float32, 512)},
		{ID: 2, Vec: make([]float32, 3)},
		{ID: 3, Vec: make([]float32, 512)},
	}))
	if !errors.Is(err, ErrDim) || x.Len() != 1 {
		t.Fatalf("Load with a bad entry: err %v, len %d (want ErrDim, 1)", err, x.Len())
	}
}

func TestLoad(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := mustNew(t, Options{Dim: 192})
	m := newRef(192)
	var es []Entry
	for i := range 3000 {
		e := Entry{ID: uint64(i % 2500), Vec: randVec(r, 192), Galleries: randomGalleries(r)}
		es = append(es, e)
		m.add(e.ID, e.Vec, e.Galleries) // later duplicates replace earlier ones
	}
	if err := x.Load(slices.Values(es)); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 2500 {
		t.Fatalf("len %d, want 2500", x.Len())
	}
	for _, g := range galleryNames {
		n := 0
		for _, gs := range m.mem {
			if slices.Contains(gs, g) {
				n++
			}
		}
		if x.GallerySize(g) != n {
			t.Fatalf("gallery %s: %d, want %d", g, x.GallerySize(g), n)
		}
	}
	q := randVec(r, 192)
	got, err := x.Search(context.Background(), q, 10, []string{"vip"}, Exact)
	if err != nil {
		t.Fatal(err)
	}
	sameHits(t, "after load", got, m.search(q, 10, []string{"vip"}))
	if x.MemoryBytes() < 2500*192*4 {
		t.Fatalf("MemoryBytes %d is less than the vectors alone", x.MemoryBytes())
	}
}

func TestCancelledContext(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := mustNew(t, Options{Dim: 192})
	for i := range 100 {
		if err := x.Add(uint64(i), randVec(r, 192), nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := x.Search(ctx, randVec(r, 192), 1, nil, Exact); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled search: %v", err)
	}
	// Cancellation during the scan: the workers check between chunks.
	done := make(chan struct{})
	close(done)
	st := &scan{x: x, k: 1, all: true, done: done, q: make([]float32, x.stride)}
	x.mu.RLock()
	st.run(getWorker(1), st.exactChunk)
	x.mu.RUnlock()
	if !st.cancelled.Load() {
		t.Fatal("scan ignored a closed done channel")
	}
}

func TestConcurrentUse(t *testing.T) {
	const dim = 192
	// A low threshold makes the background sketch build race with
	// everything else too.
	x := mustNew(t, Options{Dim: dim, ApproxThreshold: 500, Workers: 2})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for i := range 1500 {
				id := uint64(w*10000 + r.IntN(800))
				switch r.IntN(10) {
				case 0:
					x.Remove(id)
				case 1:
					_ = x.SetGalleries(id, randomGalleries(r))
				case 2:
					x.DropGallery(galleryNames[r.IntN(len(galleryNames))])
				default:
					if err := x.Add(id, randVec(r, dim), randomGalleries(r)); err != nil {
						t.Error(err)
						return
					}
				}
				_ = i
			}
		}()
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 12))
			for i := range 300 {
				mode := Mode(i % 3)
				h, err := x.Search(ctx, randVec(r, dim), 5, randomGalleries(r), mode)
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.IsSortedFunc(h, func(a, b Hit) int {
					if worse(b, a) {
						return -1
					}
					return 1
				}) {
					t.Errorf("hits out of order: %v", h)
				}
				_ = x.Len()
				_ = x.MemoryBytes()
			}
		}()
	}
	wg.Wait()
	if err := x.WaitApprox(ctx); err != nil {
		t.Fatal(err)
	}
	// After the dust settles, approximate and exact agree on a face's own
	// vector.
	x.mu.RLock()
	var id uint64
	var v []float32
	for i, s := range x.slotOf {
		id = i
		c, r := x.chunks[s>>chunkBits], int(s&(chunkSize-1))
		v = slices.Clone(c.vecs[r*x.stride : r*x.stride+dim])
		break
	}
	x.mu.RUnlock()
	for _, mode := range []Mode{Exact, Approx} {
		h, err := x.Search(ctx, v, 1, nil, mode)
		if err != nil || len(h) != 1 || h[0].ID != id {
			t.Fatalf("%v: own vector of %d found %v, %v", mode, id, h, err)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Auto: "auto", Exact: "exact", Approx: "approx", Mode(7): "Mode(7)"} {
		if m.String() != want {
			t.Errorf("%d: %q, want %q", int(m), m.String(), want)
		}
	}
}

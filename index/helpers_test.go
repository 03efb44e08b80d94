package index

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// ref is a brute-force model of the index: what every search must agree
// with.
type ref struct {
	dim  int
	vecs map[uint64][]float32
	mem  map[uint64][]string
}

func newRef(dim int) *ref {
	return &ref{dim: dim, vecs: map[uint64][]float32{}, mem: map[uint64][]string{}}
}

func (r *ref) add(id uint64, v []float32, g []string) {
	r.vecs[id] = slices.Clone(v)
	r.mem[id] = slices.Clone(g)
}

func (r *ref) remove(id uint64) { delete(r.vecs, id); delete(r.mem, id) }

// search scores in float64, so it is independent of the kernels' rounding.
func (r *ref) search(q []float32, k int, galleries []string) []Hit {
	return r.filter(r.ranked(q), k, galleries)
}

// ranked is every face, best first.
func (r *ref) ranked(q []float32) []Hit {
	var hits []Hit
	for id, v := range r.vecs {
		var s float64
		for i := range v {
			s += float64(v[i]) * float64(q[i])
		}
		hits = append(hits, Hit{ID: id, Score: float32(s)})
	}
	sortHits(hits)
	return hits
}

// filter takes the first k of ranked that are in one of the galleries.
func (r *ref) filter(ranked []Hit, k int, galleries []string) []Hit {
	hits := []Hit{}
	for _, h := range ranked {
		if len(hits) == k {
			break
		}
		if len(galleries) == 0 || overlaps(r.mem[h.ID], galleries) {
			hits = append(hits, h)
		}
	}
	return hits
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// sameHits checks got against want: equal IDs rank by rank with scores
// within float32 rounding, except that where want's neighbouring scores
// are too close to order reliably either order is accepted.
func sameHits(t *testing.T, what string, got, want []Hit) {
	t.Helper()
	const tol = 1e-5
	if len(got) != len(want) {
		t.Fatalf("%s: %d hits, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if d := got[i].Score - want[i].Score; d > tol || d < -tol {
			t.Fatalf("%s: rank %d score %v, want %v\ngot  %v\nwant %v", what, i, got[i].Score, want[i].Score, got, want)
		}
		if got[i].ID != want[i].ID {
			near := (i > 0 && want[i-1].Score-want[i].Score < tol) ||
				(i+1 < len(want) && want[i].Score-want[i+1].Score < tol)
			if !near {
				t.Fatalf("%s: rank %d id %d, want %d\ngot  %v\nwant %v", what, i, got[i].ID, want[i].ID, got, want)
			}
		}
	}
}

func randVec(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	randUnit(r, v)
	return v
}

func mustNew(t testing.TB, o Options) *Index {
	t.Helper()
	x, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

package index

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// loadSynth builds an index over n synthetic unit vectors, all in gallery
// "g" and every third also in "thirds", with ids 1..n.
func loadSynth(t testing.TB, n, dim int, threshold int) (*Index, []float32) {
	t.Helper()
	data := synthVectors(n, dim, 42)
	x := mustNew(t, Options{Dim: dim, ApproxThreshold: threshold})
	err := x.Load(func(yield func(Entry) bool) {
		for i := range n {
			g := []string{"g"}
			if i%3 == 0 {
				g = append(g, "thirds")
			}
			if !yield(Entry{ID: uint64(i) + 1, Vec: data[i*dim : (i+1)*dim], Galleries: g}) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return x, data
}

func TestApproxRecall(t *testing.T) {
	ctx := context.Background()
	for _, dim := range []int{512, 192} {
		x, data := loadSynth(t, 20_000, dim, 1000)
		if err := x.WaitApprox(ctx); err != nil {
			t.Fatal(err)
		}
		qs, src := synthQueries(data, dim, 400, 7)
		agree, agreeU, nU := 0, 0, 0
		for i, q := range qs {
			gal := []string{"g"}
			if i%4 == 1 {
				gal = []string{"thirds"}
			}
			ex, err := x.Search(ctx, q, 5, gal, Exact)
			if err != nil {
				t.Fatal(err)
			}
			ap, err := x.Search(ctx, q, 5, gal, Approx)
			if err != nil {
				t.Fatal(err)
			}
			ok := ex[0].ID == ap[0].ID
			if ok {
				agree++
				// What the approximate search returns it scored exactly.
				if ex[0].Score != ap[0].Score {
					t.Fatalf("top-1 score %v, exact %v", ap[0].Score, ex[0].Score)
				}
			}
			if src[i] < 0 {
				nU++
				if ok {
					agreeU++
				}
			}
			var st searchStats
			if _, err := x.search(ctx, q, 5, gal, Auto, &st); err != nil || !st.approx {
				t.Fatalf("Auto over %d faces (threshold 1000) was not approximate (%v)", x.GallerySize(gal[0]), err)
			}
		}
		recall := float64(agree) / float64(len(qs))
		t.Logf("dim %d: recall@1 %.4f (strangers %d/%d)", dim, recall, agreeU, nU)
		if recall < 0.99 {
			t.Errorf("dim %d: recall@1 %.4f < 0.99", dim, recall)
		}
	}
}

func TestApproxBeforeReadyIsExact(t *testing.T) {
	ctx := context.Background()
	x, data := loadSynth(t, 3000, 192, -1)
	if err := x.WaitApprox(ctx); !errors.Is(err, ErrNoApprox) {
		t.Fatalf("WaitApprox with sketches disabled: %v", err)
	}
	if x.ApproxReady() {
		t.Fatal("ApproxReady with sketches disabled")
	}
	m := newRef(192)
	for i := range 3000 {
		m.add(uint64(i)+1, data[i*192:(i+1)*192], nil)
	}
	q := randVec(rand.New(rand.NewPCG(1, 1)), 192)
	got, err := x.Search(ctx, q, 10, nil, Approx)
	if err != nil {
		t.Fatal(err)
	}
	sameHits(t, "approx without sketches", got, m.search(q, 10, nil))
}

func TestAutoPicksExactForSmallGalleries(t *testing.T) {
	ctx := context.Background()
	x, _ := loadSynth(t, 3000, 192, 2000)
	if err := x.WaitApprox(ctx); err != nil {
		t.Fatal(err)
	}
	// "thirds" has 1000 faces, under the threshold: Auto is exact even if
	// approximate search would give the same top-1.
	r := rand.New(rand.NewPCG(2, 2))
	for range 20 {
		q := randVec(r, 192)
		ex, _ := x.Search(ctx, q, 10, []string{"thirds"}, Exact)
		au, _ := x.Search(ctx, q, 10, []string{"thirds"}, Auto)
		if !slices.Equal(ex, au) {
			t.Fatalf("Auto on a small gallery: %v, exact %v", au, ex)
		}
	}
}

func TestApproxSeesWrites(t *testing.T) {
	ctx := context.Background()
	x, _ := loadSynth(t, 5000, 512, 100)
	if err := x.WaitApprox(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	v := randVec(r, 512)
	if err := x.Add(99999, v, []string{"g"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := x.Search(ctx, v, 1, []string{"g"}, Approx); len(h) == 0 || h[0].ID != 99999 {
		t.Fatalf("approx after add: %v", h)
	}
	w := randVec(r, 512)
	if err := x.Add(99999, w, []string{"g"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := x.Search(ctx, w, 1, []string{"g"}, Approx); len(h) == 0 || h[0].ID != 99999 {
		t.Fatalf("approx after re-add: %v", h)
	}
	x.Remove(99999)
	if h, _ := x.Search(ctx, w, 1, []string{"g"}, Approx); len(h) > 0 && h[0].ID == 99999 {
		t.Fatal("approx found a removed face")
	}
}

func TestSketchEstimateWithinBound(t *testing.T) {
	for _, dim := range []int{192, 512} {
		s := newSketcher(dim)
		r := rand.New(rand.NewPCG(4, uint64(dim)))
		tmp := make([]float32, s.pdim)
		code := make([]uint64, s.words)
		var pcx float32
		var fac, errb float32
		out := []int32{0}
		miss := 0
		const trials = 2000
		for i := range trials {
			v, q := randVec(r, dim), randVec(r, dim)
			if i%2 == 0 {
				// Correlated pairs too, not only near-orthogonal ones.
				for j := range q {
					q[j] = 0.7*v[j] + 0.3*q[j]
				}
			}
			s.encode(v, tmp, sketchRow{code: code, pcx: &pcx, fac: &fac, errb: &errb})
			sq := s.prepare(q)
			sketchIP(code, s.words, sq.planes, out)
			est := fac * (sq.a*pcx + sq.b*float32(out[0]) + sq.c)
			var truth float32
			for j := range v {
				truth += v[j] * q[j]
			}
			if d := est - truth; d > sketchEps*sq.qnorm*errb || -d > sketchEps*sq.qnorm*errb {
				miss++
			}
		}
		// ε₀ = 2.6 standard errors: about 1% outside, one-sided half that.
		if miss > trials/50 {
			t.Errorf("dim %d: %d of %d estimates outside the bound", dim, miss, trials)
		}
	}
}

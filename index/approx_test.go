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

// TestAutoPicksExactForSmallGalleries checks the README's promise with the
// default options: a search over fewer than 50 000 faces is exact, even
// once the sketches exist. Comparing results would not show it (an
// approximate search rescores its winners exactly and usually returns
// the same hits), so it asserts which path the search took; the searches
// at the threshold are the control that Auto can take the other one.
func TestAutoPicksExactForSmallGalleries(t *testing.T) {
	if DefaultApproxThreshold != 50_000 {
		t.Fatalf("DefaultApproxThreshold = %d, the README promises exact search below 50 000", DefaultApproxThreshold)
	}
	ctx := context.Background()
	const dim = 32 // small vectors keep 50 000 faces cheap; the rule does not depend on dim
	n := DefaultApproxThreshold
	data := synthVectors(n, dim, 9)
	x := mustNew(t, Options{Dim: dim})
	err := x.Load(func(yield func(Entry) bool) {
		for i := range n {
			g := []string{"all"}
			if i < n-1 {
				g = append(g, "small") // one face short of the threshold
			}
			if !yield(Entry{ID: uint64(i) + 1, Vec: data[i*dim : (i+1)*dim], Galleries: g}) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.WaitApprox(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 2))
	for range 10 {
		q := randVec(r, dim)
		for _, tc := range []struct {
			galleries []string
			mode      Mode
			approx    bool
		}{
			{[]string{"small"}, Auto, false},
			{[]string{"small"}, Approx, true}, // the sketches cover it: exact is Auto's choice
			{[]string{"all"}, Auto, true},
			{nil, Auto, true},
		} {
			var st searchStats
			got, err := x.search(ctx, q, 10, tc.galleries, tc.mode, &st)
			if err != nil {
				t.Fatal(err)
			}
			if st.approx != tc.approx {
				t.Fatalf("%v over %v (%d faces): approximate = %v, want %v", tc.mode, tc.galleries, x.GallerySize(firstOr(tc.galleries, "all")), st.approx, tc.approx)
			}
			if !tc.approx {
				ex, err := x.Search(ctx, q, 10, tc.galleries, Exact)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ex, got) {
					t.Fatalf("Auto on a small gallery: %v, exact %v", got, ex)
				}
			}
		}
	}
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
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

package index

import (
	"context"
	"testing"
)

// Sizes of the Go benchmarks: the targets of the issue (exact over 100 000
// 512-d faces, approximate over 1 000 000).
const (
	benchExactSize  = 100_000
	benchApproxSize = 1_000_000
	benchDim        = 512
)

func benchSearch(b *testing.B, n int, mode Mode) {
	x, data := loadSynth(b, n, benchDim, 1)
	// Wait for the background sketch build even for exact search: it
	// would compete for the cores.
	if err := x.WaitApprox(context.Background()); err != nil {
		b.Fatal(err)
	}
	qs, _ := synthQueries(data, benchDim, 256, 9)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := x.Search(ctx, qs[i%len(qs)], 1, []string{"g"}, mode); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearchExact100k(b *testing.B) { benchSearch(b, benchExactSize, Exact) }

func BenchmarkSearchApprox(b *testing.B) { benchSearch(b, benchApproxSize, Approx) }

func BenchmarkLoad100k(b *testing.B) {
	data := synthVectors(benchExactSize, benchDim, 1)
	for b.Loop() {
		x := mustNew(b, Options{Dim: benchDim, ApproxThreshold: -1})
		err := x.Load(func(yield func(Entry) bool) {
			for i := range benchExactSize {
				if !yield(Entry{ID: uint64(i), Vec: data[i*benchDim : (i+1)*benchDim], Galleries: []string{"g"}}) {
					return
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func TestRunBenchSmall(t *testing.T) {
	rep, err := RunBench(context.Background(), BenchConfig{Size: 4000, Dim: 192, Queries: 60})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 4000 || rep.Dim != 192 || rep.ExactP50MS <= 0 || rep.ApproxP50MS <= 0 ||
		rep.BytesPerFace < 192*4 || rep.RecallAt1 < 0.9 || rep.SourceFoundAt1 < 0.99 {
		t.Fatalf("implausible report %+v", rep)
	}
}

package index

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunBenchEnv runs the full-size bench on request only:
// FACED_INDEX_BENCH=100000,1000000 go test -run RunBenchEnv -v ./index/
// (FACED_INDEX_BENCH_DIM, _QUERIES and _SEED optional).
func TestRunBenchEnv(t *testing.T) {
	sizes := os.Getenv("FACED_INDEX_BENCH")
	if sizes == "" {
		t.Skip("FACED_INDEX_BENCH not set: full-size bench runs only on request")
	}
	dim, _ := strconv.Atoi(os.Getenv("FACED_INDEX_BENCH_DIM"))
	nq, _ := strconv.Atoi(os.Getenv("FACED_INDEX_BENCH_QUERIES"))
	seed, _ := strconv.ParseInt(os.Getenv("FACED_INDEX_BENCH_SEED"), 10, 64)
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := RunBench(context.Background(), BenchConfig{Size: n, Dim: dim, Queries: nq, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rep)
		t.Logf("%s", b)
	}
}

// TestEpsSweepEnv measures recall@1, latency and exact re-scoring against
// ε₀ on one large synthetic gallery: FACED_INDEX_SWEEP=1000000.
func TestEpsSweepEnv(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FACED_INDEX_SWEEP"))
	if n == 0 {
		t.Skip("FACED_INDEX_SWEEP not set")
	}
	const dim = 512
	ctx := context.Background()
	x, data := loadSynth(t, n, dim, 1)
	if err := x.WaitApprox(ctx); err != nil {
		t.Fatal(err)
	}
	qs, src := synthQueries(data, dim, 1000, 2)
	exact := make([]uint64, len(qs))
	for i, q := range qs {
		h, _ := x.Search(ctx, q, 1, []string{"g"}, Exact)
		exact[i] = h[0].ID
	}
	for _, eps := range []float32{1.5, 2.0, 2.2, 2.6, 3.0} {
		x.eps = eps
		var ms []float64
		agree, agreeU, nU, resc := 0, 0, 0, 0
		for i, q := range qs {
			var st searchStats
			t0 := time.Now()
			h, _ := x.search(ctx, q, 1, []string{"g"}, Approx, &st)
			ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
			resc += st.rescored
			ok := h[0].ID == exact[i]
			if ok {
				agree++
			}
			if src[i] < 0 {
				nU++
				if ok {
					agreeU++
				}
			}
		}
		t.Logf("eps %.1f: p50 %.2f ms p95 %.2f ms recall@1 %.4f (enrolled %.4f, strangers %.4f) rescored/query %.0f",
			eps, percentile(ms, 0.5), percentile(ms, 0.95), float64(agree)/float64(len(qs)),
			float64(agree-agreeU)/float64(len(qs)-nU), float64(agreeU)/float64(nU), float64(resc)/float64(len(qs)))
	}
}

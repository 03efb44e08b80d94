package index

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"
)

// BenchConfig sizes RunBench.
type BenchConfig struct {
	Size    int   // faces in the gallery (default 100 000)
	Dim     int   // embedding dimension (default 512)
	Queries int   // probes per mode (default 1000)
	Seed    int64 // synthetic data seed (default 1)
}

// BenchReport is what `faced bench index` prints.
type BenchReport struct {
	Size    int    `json:"size"`
	Dim     int    `json:"dim"`
	Queries int    `json:"queries"`
	Workers int    `json:"workers"`
	Kernels string `json:"kernels"`
	// BuildS is Load of all faces until exact search serves (start-up).
	BuildS float64 `json:"build_s"`
	// ApproxBuildS is Load until the sketches for approximate search are
	// ready (built in the background after BuildS).
	ApproxBuildS float64 `json:"approx_build_s"`
	// BytesPerFace is the Go heap the index holds per face, measured;
	// IndexBytesPerFace is Index.MemoryBytes per face.
	BytesPerFace      float64 `json:"bytes_per_face"`
	IndexBytesPerFace float64 `json:"index_bytes_per_face"`
	ExactP50MS        float64 `json:"exact_p50_ms"`
	ExactP95MS        float64 `json:"exact_p95_ms"`
	ApproxP50MS       float64 `json:"approx_p50_ms"`
	ApproxP95MS       float64 `json:"approx_p95_ms"`
	// RecallAt1 is the share of queries whose approximate top-1 is the
	// exact top-1; split below into new photos of enrolled people and
	// strangers (one query in five).
	RecallAt1 float64 `json:"recall_at_1"`
	// RescoredPerQuery is the mean number of faces an approximate search
	// scored exactly after their sketch could not rule them out.
	RescoredPerQuery float64 `json:"rescored_per_query"`
	RecallEnrolled   float64 `json:"recall_enrolled"`
	RecallUnenrolled float64 `json:"recall_unenrolled"`
	// SourceFoundAt1 is the share of enrolled queries whose exact top-1 is
	// the face they were made from (a sanity check of the data).
	SourceFoundAt1 float64 `json:"source_found_at_1"`
}

// RunBench builds an index of cfg.Size synthetic unit vectors in one
// gallery and measures build time, memory, exact and approximate latency
// (one query at a time, k = 1) and recall@1 of approximate against exact.
func RunBench(ctx context.Context, cfg BenchConfig) (BenchReport, error) {
	if cfg.Size <= 0 {
		cfg.Size = 100_000
	}
	if cfg.Dim <= 0 {
		cfg.Dim = 512
	}
	if cfg.Queries <= 0 {
		cfg.Queries = 1000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	rep := BenchReport{Size: cfg.Size, Dim: cfg.Dim, Queries: cfg.Queries, Workers: runtime.NumCPU(),
		Kernels: "dot=" + kernelNames.dot + " sketch=" + kernelNames.sketch}
	data := synthVectors(cfg.Size, cfg.Dim, cfg.Seed)
	qs, src := synthQueries(data, cfg.Dim, cfg.Queries, cfg.Seed+1)
	gal := []string{"bench"}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// The approximate structure is always built here, whatever the size,
	// so both modes can be measured.
	x, err := New(Options{Dim: cfg.Dim, ApproxThreshold: 1})
	if err != nil {
		return rep, err
	}
	t0 := time.Now()
	err = x.Load(func(yield func(Entry) bool) {
		for i := range cfg.Size {
			if !yield(Entry{ID: uint64(i) + 1, Vec: data[i*cfg.Dim : (i+1)*cfg.Dim], Galleries: gal}) {
				return
			}
		}
	})
	if err != nil {
		return rep, fmt.Errorf("index: bench: %w", err)
	}
	rep.BuildS = time.Since(t0).Seconds()
	if err := x.WaitApprox(ctx); err != nil {
		return rep, fmt.Errorf("index: bench: %w", err)
	}
	rep.ApproxBuildS = time.Since(t0).Seconds()

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rep.BytesPerFace = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(cfg.Size)
	rep.IndexBytesPerFace = float64(x.MemoryBytes()) / float64(cfg.Size)

	rescored := 0
	run := func(mode Mode) ([]uint64, []float64, error) {
		// A few untimed searches first: page faults, pools, caches.
		for i := range min(10, len(qs)) {
			if _, err := x.Search(ctx, qs[i], 1, gal, mode); err != nil {
				return nil, nil, err
			}
		}
		top := make([]uint64, len(qs))
		ms := make([]float64, len(qs))
		for i, q := range qs {
			var st searchStats
			t := time.Now()
			h, err := x.search(ctx, q, 1, gal, mode, &st)
			ms[i] = float64(time.Since(t).Nanoseconds()) / 1e6
			if err != nil {
				return nil, nil, err
			}
			if mode == Approx {
				if !st.approx {
					return nil, nil, errors.New("approximate search fell back to exact")
				}
				rescored += st.rescored
			}
			if len(h) > 0 {
				top[i] = h[0].ID
			}
		}
		return top, ms, nil
	}
	exact, exactMS, err := run(Exact)
	if err != nil {
		return rep, fmt.Errorf("index: bench: %w", err)
	}
	approx, approxMS, err := run(Approx)
	if err != nil {
		return rep, fmt.Errorf("index: bench: %w", err)
	}
	rep.ExactP50MS, rep.ExactP95MS = percentile(exactMS, 0.5), percentile(exactMS, 0.95)
	rep.ApproxP50MS, rep.ApproxP95MS = percentile(approxMS, 0.5), percentile(approxMS, 0.95)

	var agree, agreeE, nE, agreeU, nU, found int
	for i := range qs {
		ok := exact[i] == approx[i]
		if ok {
			agree++
		}
		if src[i] < 0 {
			nU++
			if ok {
				agreeU++
			}
			continue
		}
		nE++
		if ok {
			agreeE++
		}
		if exact[i] == uint64(src[i])+1 {
			found++
		}
	}
	rep.RecallAt1 = ratio(agree, len(qs))
	rep.RescoredPerQuery = float64(rescored) / float64(len(qs))
	rep.RecallEnrolled = ratio(agreeE, nE)
	rep.RecallUnenrolled = ratio(agreeU, nU)
	rep.SourceFoundAt1 = ratio(found, nE)
	runtime.KeepAlive(data)
	return rep, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// percentile of ms by nearest rank.
func percentile(ms []float64, p float64) float64 {
	s := slices.Clone(ms)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

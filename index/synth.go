package index

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Synthetic data for RunBench and the tests: unit vectors uniform on the
// sphere (normalised Gaussians), the hardest case for any partitioning
// index since there are no clusters to exploit.

// synthVectors returns n unit vectors of dim floats, row after row. Rows are
// generated in parallel blocks, each from its own seeded stream, so the
// result depends only on the seed.
func synthVectors(n, dim int, seed int64) []float32 {
	out := make([]float32, n*dim)
	const block = 4096
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for b0 := 0; b0 < n; b0 += block {
		wg.Add(1)
		sem <- struct{}{}
		go func(b0 int) {
			defer wg.Done()
			defer func() { <-sem }()
			r := rand.New(rand.NewPCG(uint64(seed), uint64(b0)))
			for i := b0; i < min(b0+block, n); i++ {
				randUnit(r, out[i*dim:(i+1)*dim])
			}
		}(b0)
	}
	wg.Wait()
	return out
}

func randUnit(r *rand.Rand, v []float32) {
	var n2 float64
	for j := range v {
		f := r.NormFloat64()
		v[j] = float32(f)
		n2 += f * f
	}
	normalise(v, n2)
}

func normalise(v []float32, n2 float64) {
	inv := float32(1 / math.Sqrt(n2))
	for j := range v {
		v[j] *= inv
	}
}

// unenrolledEvery: one query in this many is a stranger, the rest are new
// photos of enrolled people.
const unenrolledEvery = 5

// synthQueries makes realistic probes for a gallery of unit vectors: a new
// photo of an enrolled person is the gallery vector plus independent noise,
// renormalised so its cosine to the source is uniform in [0.6, 0.8] (what
// ArcFace-class embedders give for two photos of one face); one query in
// unenrolledEvery is a fresh random vector, a person not enrolled. src[i]
// is the source row, or -1 for a stranger.
func synthQueries(gallery []float32, dim, count int, seed int64) (qs [][]float32, src []int) {
	n := len(gallery) / dim
	r := rand.New(rand.NewPCG(uint64(seed), 0xfeed))
	noise := make([]float32, dim)
	for i := range count {
		q := make([]float32, dim)
		if i%unenrolledEvery == unenrolledEvery-1 || n == 0 {
			randUnit(r, q)
			qs, src = append(qs, q), append(src, -1)
			continue
		}
		s := r.IntN(n)
		v := gallery[s*dim : (s+1)*dim]
		// noise ⟂ v, unit: then q = c·v + sqrt(1−c²)·noise has cosine c.
		randUnit(r, noise)
		var d, n2 float64
		for j := range noise {
			d += float64(noise[j]) * float64(v[j])
		}
		for j := range noise {
			noise[j] -= float32(d) * v[j]
			n2 += float64(noise[j]) * float64(noise[j])
		}
		normalise(noise, n2)
		c := 0.6 + 0.2*r.Float64()
		sn := math.Sqrt(1 - c*c)
		var q2 float64
		for j := range q {
			q[j] = float32(c)*v[j] + float32(sn)*noise[j]
			q2 += float64(q[j]) * float64(q[j])
		}
		normalise(q, q2)
		qs, src = append(qs, q), append(src, s)
	}
	return qs, src
}

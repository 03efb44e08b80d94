package index

import (
	"math/rand/v2"
	"testing"
)

// The dispatched kernels (assembly where the CPU has it) must agree with
// the Go versions.

func TestDotsF32MatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, stride := range []int{32, 192, 512, 96} {
		for _, n := range []int{1, 2, 63, 64, 200} {
			q := make([]float32, stride)
			rows := make([]float32, n*stride)
			for i := range q {
				q[i] = float32(r.NormFloat64())
			}
			for i := range rows {
				rows[i] = float32(r.NormFloat64())
			}
			got, want := make([]float32, n), make([]float32, n)
			dotsF32(q, rows, stride, got)
			dotsF32Generic(q, rows, stride, want)
			for i := range got {
				if d := got[i] - want[i]; d > 1e-3 || d < -1e-3 {
					t.Fatalf("stride %d n %d row %d: %v, want %v (%s)", stride, n, i, got[i], want[i], kernelNames.dot)
				}
			}
		}
	}
}

func TestSketchIPMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, words := range []int{4, 8, 2, 16} {
		for _, n := range []int{1, 5, 64} {
			codes := make([]uint64, n*words)
			planes := make([]uint64, 4*words)
			for i := range codes {
				codes[i] = r.Uint64()
			}
			for i := range planes {
				planes[i] = r.Uint64()
			}
			got, want := make([]int32, n), make([]int32, n)
			sketchIP(codes, words, planes, got)
			sketchIPGeneric(codes, words, planes, want)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("words %d n %d code %d: %d, want %d (%s)", words, n, i, got[i], want[i], kernelNames.sketch)
				}
			}
		}
	}
}

func TestFWHTIsOrthogonal(t *testing.T) {
	s := newSketcher(192)
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randVec(r, 192), randVec(r, 192)
	ra, rb := make([]float32, s.pdim), make([]float32, s.pdim)
	s.rotate(ra, a)
	s.rotate(rb, b)
	var d0, d1 float32
	for i := range a {
		d0 += a[i] * b[i]
	}
	for i := range ra {
		d1 += ra[i] * rb[i]
	}
	if d := d0 - d1; d > 1e-5 || d < -1e-5 {
		t.Fatalf("rotation changed a dot product: %v → %v", d0, d1)
	}
}

func TestSketchBoundsMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{8, 64, 5} {
		ip := make([]int32, n)
		pcx, fac, errb := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range n {
			ip[i] = int32(r.IntN(4000))
			pcx[i] = float32(r.IntN(512))
			fac[i] = float32(r.Float64())
			errb[i] = float32(r.Float64() * 0.05)
		}
		got, want := make([]float32, n), make([]float32, n)
		gm := sketchBounds(ip, pcx, fac, errb, 0.01, -0.02, 0.3, 0.1, got)
		wm := sketchBoundsGeneric(ip, pcx, fac, errb, 0.01, -0.02, 0.3, 0.1, want)
		for i := range got {
			if d := got[i] - want[i]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("n %d row %d: %v, want %v", n, i, got[i], want[i])
			}
		}
		if d := gm - wm; d > 1e-4 || d < -1e-4 {
			t.Fatalf("n %d: max %v, want %v", n, gm, wm)
		}
	}
}

package index

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every implementation of every kernel is run explicitly, not only the one
// dispatch picked, and checked against a reference written here (float64
// arithmetic, one bit at a time), so that the Go loop and the assembly
// are each tested on their own: comparing the dispatched kernel with the
// Go loop would compare the Go loop with itself on a CPU without the
// assembly's extensions. An implementation this CPU cannot run is skipped
// with the reason. Under qemu-aarch64 (TestKernelsUnderQemuArm64) only the
// Go implementations exist.

func TestKernelDispatch(t *testing.T) {
	// Dispatch must pick the last usable implementation: the assembly
	// wherever the CPU has it, so the fast path is the one served.
	lastUsable := func(names []string, missing []string) string {
		best := ""
		for i := range names {
			if missing[i] == "" {
				best = names[i]
			}
		}
		return best
	}
	var dn, dm, in, im []string
	for _, k := range dotsImpls {
		dn, dm = append(dn, k.name), append(dm, k.missing)
	}
	for _, k := range ipImpls {
		in, im = append(in, k.name), append(im, k.missing)
	}
	if want := lastUsable(dn, dm); kernelNames.dot != want {
		t.Errorf("dot kernel %q dispatched, want %q of %v", kernelNames.dot, want, dn)
	}
	if want := lastUsable(in, im); kernelNames.sketch != want {
		t.Errorf("sketch kernel %q dispatched, want %q of %v", kernelNames.sketch, want, in)
	}
	t.Logf("dispatched: dot=%s sketch=%s", kernelNames.dot, kernelNames.sketch)
}

func TestDotsF32Kernels(t *testing.T) {
	for _, k := range dotsImpls {
		t.Run(k.name, func(t *testing.T) {
			if k.missing != "" {
				t.Skip(k.missing)
			}
			r := rand.New(rand.NewPCG(1, 2))
			for _, stride := range []int{32, 192, 512, 96, 100} {
				for _, n := range []int{1, 2, 63, 64, 200} {
					q := make([]float32, stride)
					rows := make([]float32, n*stride)
					for i := range q {
						q[i] = float32(r.NormFloat64())
					}
					for i := range rows {
						rows[i] = float32(r.NormFloat64())
					}
					got := make([]float32, n)
					k.fn(q, rows, stride, got)
					for i := range got {
						want, mag := refDot(q, rows[i*stride:(i+1)*stride])
						// float32 rounding grows with the terms' magnitudes.
						if d := math.Abs(float64(got[i]) - want); d > 1e-5*mag+1e-6 {
							t.Fatalf("stride %d n %d row %d: %v, want %v (|diff| %.3g)", stride, n, i, got[i], want, d)
						}
					}
				}
			}
		})
	}
}

// refDot is the dot product in float64 and the sum of |a_i b_i|.
func refDot(a, b []float32) (dot, mag float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		dot += p
		mag += math.Abs(p)
	}
	return dot, mag
}

func TestSketchIPKernels(t *testing.T) {
	for _, k := range ipImpls {
		t.Run(k.name, func(t *testing.T) {
			if k.missing != "" {
				t.Skip(k.missing)
			}
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
					got := make([]int32, n)
					k.fn(codes, words, planes, got)
					for i := range got {
						if want := refSketchIP(codes[i*words:(i+1)*words], planes, words); got[i] != want {
							t.Fatalf("words %d n %d code %d: %d, want %d", words, n, i, got[i], want)
						}
					}
				}
			}
		})
	}
}

// refSketchIP is Σ_j 2^j · popcount(plane_j & code), one bit at a time.
func refSketchIP(code, planes []uint64, words int) int32 {
	var s int32
	for j := range 4 {
		for w := range words {
			for b := range 64 {
				if code[w]&planes[j*words+w]&(1<<b) != 0 {
					s += 1 << j
				}
			}
		}
	}
	return s
}

func TestSketchBoundsKernels(t *testing.T) {
	for _, k := range boundsImpls {
		t.Run(k.name, func(t *testing.T) {
			if k.missing != "" {
				t.Skip(k.missing)
			}
			r := rand.New(rand.NewPCG(7, 8))
			const a, b, c, e = 0.01, -0.02, 0.3, 0.1
			for _, n := range []int{8, 64, 5, 0} {
				ip := make([]int32, n)
				pcx, fac, errb := make([]float32, n), make([]float32, n), make([]float32, n)
				for i := range n {
					ip[i] = int32(r.IntN(4000))
					pcx[i] = float32(r.IntN(512))
					fac[i] = float32(r.Float64())
					errb[i] = float32(r.Float64() * 0.05)
				}
				got := make([]float32, n)
				gm := k.fn(ip, pcx, fac, errb, a, b, c, e, got)
				wm := math.Inf(-1)
				for i := range got {
					want := float64(fac[i])*(a*float64(pcx[i])+b*float64(ip[i])+c) + e*float64(errb[i])
					wm = max(wm, want)
					if d := math.Abs(float64(got[i]) - want); d > 1e-4 {
						t.Fatalf("n %d row %d: %v, want %v", n, i, got[i], want)
					}
				}
				if d := math.Abs(float64(gm) - wm); !(d <= 1e-4) && !(math.IsInf(wm, -1) && math.IsInf(float64(gm), -1)) {
					t.Fatalf("n %d: max %v, want %v", n, gm, wm)
				}
			}
		})
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

// BenchmarkDotsF32 is the exact scan's kernel over 100 000 512-d faces
// (200 MB, beyond any cache) on one core, as dispatched: its MB/s is the
// bandwidth index/doc.go quotes (`make bench` runs it).
func BenchmarkDotsF32(b *testing.B) {
	const n, dim = 100_000, 512
	r := rand.New(rand.NewPCG(9, 9))
	q := randVec(r, dim)
	rows := make([]float32, n*dim)
	for i := range rows {
		rows[i] = float32(r.NormFloat64())
	}
	out := make([]float32, n)
	b.SetBytes(int64(len(rows)) * 4)
	b.Logf("kernel %s", kernelNames.dot)
	for b.Loop() {
		dotsF32(q, rows, dim, out)
	}
}

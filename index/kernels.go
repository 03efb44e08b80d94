package index

import (
	"math"
	"math/bits"
)

// The two inner loops of every search. They are package variables so that
// kernels_amd64.go can swap in assembly when the CPU has it; the Go
// versions below are the portable fallback (arm64, old x86, -tags purego)
// and the reference the assembly is tested against.

// dotsF32 sets out[i] to the dot product of q with row i of rows, rows
// being stride floats apart and len(q) == stride (the tail of a row past
// the embedding's dimension is zero padding, so it adds nothing).
var dotsF32 = dotsF32Generic

// sketchIP sets out[i] to Σ_j 2^j · popcount(planes[j] & code_i), the
// integer part of the sketch estimate: codes holds len(out) codes of
// words uint64 each, planes the query's four bit-planes back to back.
var sketchIP = sketchIPGeneric

// sketchBounds sets out[i] = fac[i]·(a·pcx[i] + b·ip[i] + c) + e·errb[i],
// the estimate of row i's dot product plus its error allowance, and
// returns the largest (−Inf for none).
var sketchBounds = sketchBoundsGeneric

// kernelNames says which implementations were chosen, for bench reports.
var kernelNames = struct{ dot, sketch string }{"go", "go"}

// kernel is one implementation of a kernel. Every implementation this
// architecture has is listed, usable or not, so that tests run each one
// explicitly (not only the one dispatch picked) and say why one cannot
// run on this CPU.
type kernel[F any] struct {
	name    string
	fn      F
	missing string // why this CPU cannot run it; "" when it can
}

type (
	dotsFunc   = func(q, rows []float32, stride int, out []float32)
	ipFunc     = func(codes []uint64, words int, planes []uint64, out []int32)
	boundsFunc = func(ip []int32, pcx, fac, errb []float32, a, b, c, e float32, out []float32) float32
)

// The implementations, the portable Go first; kernels_amd64.go appends
// the assembly.
var (
	dotsImpls   = []kernel[dotsFunc]{{name: "go", fn: dotsF32Generic}}
	ipImpls     = []kernel[ipFunc]{{name: "go", fn: sketchIPGeneric}}
	boundsImpls = []kernel[boundsFunc]{{name: "go", fn: sketchBoundsGeneric}}
)

func dotsF32Generic(q, rows []float32, stride int, out []float32) {
	for i := range out {
		out[i] = dotGeneric(q, rows[i*stride:i*stride+len(q)])
	}
}

// dotGeneric keeps eight independent sums so the loop is not one long
// dependency chain of additions.
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
		s4 += a[i+4] * b[i+4]
		s5 += a[i+5] * b[i+5]
		s6 += a[i+6] * b[i+6]
		s7 += a[i+7] * b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func sketchIPGeneric(codes []uint64, words int, planes []uint64, out []int32) {
	p0, p1 := planes[0:words], planes[words:2*words]
	p2, p3 := planes[2*words:3*words], planes[3*words:4*words]
	for i := range out {
		c := codes[i*words : (i+1)*words]
		var s int
		for w, x := range c {
			s += bits.OnesCount64(x&p0[w]) + 2*bits.OnesCount64(x&p1[w]) +
				4*bits.OnesCount64(x&p2[w]) + 8*bits.OnesCount64(x&p3[w])
		}
		out[i] = int32(s)
	}
}

func sketchBoundsGeneric(ip []int32, pcx, fac, errb []float32, a, b, c, e float32, out []float32) float32 {
	best := float32(math.Inf(-1))
	ip, pcx, fac, errb = ip[:len(out)], pcx[:len(out)], fac[:len(out)], errb[:len(out)]
	for i := range out {
		v := fac[i]*(a*pcx[i]+b*float32(ip[i])+c) + e*errb[i]
		out[i] = v
		best = max(best, v)
	}
	return best
}

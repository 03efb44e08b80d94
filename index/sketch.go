package index

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// The approximate mode's per-face sketch, after RaBitQ (Gao & Long,
// SIGMOD 2024): the embedding is randomly rotated, and only the signs of the
// rotated coordinates are kept (one bit per dimension, 64 B for 512-d),
// plus three numbers that make the estimate of a dot product unbiased and
// give it an error bound. A query is rotated the same way and quantised to
// 4 bits per coordinate, so the estimate is four AND+POPCNT passes over
// the code. Search scans every sketch and computes the exact float32 dot
// product only for faces whose estimate plus its error bound could still
// enter the top k (approx.go).

const (
	// sketchRounds random sign flips, each followed by a Hadamard
	// transform, make the rotation: cheap (O(d log d)) and, after a few
	// rounds, close enough to a uniformly random rotation that no
	// coordinate of real embeddings stays special.
	sketchRounds = 3
	// queryBits is the query's quantisation; RaBitQ shows 4 bits add
	// little error next to the 1-bit codes.
	queryBits = 4
	// sketchSeed fixes the rotation: sketches are rebuilt at every start,
	// never stored, so any fixed seed will do.
	sketchSeed = 0x5eed_fade
)

// sketcher rotates and encodes vectors of one dimension.
type sketcher struct {
	dim   int // embedding dimension
	pdim  int // dim padded to a power of two, the Hadamard length
	words int // pdim / 64, uint64 words per code
	signs [sketchRounds][]float32
	scale float32 // pdim^(-rounds/2): keeps the rotation orthonormal
}

func newSketcher(dim int) *sketcher {
	pdim := 64
	for pdim < dim {
		pdim <<= 1
	}
	s := &sketcher{dim: dim, pdim: pdim, words: pdim / 64}
	r := rand.New(rand.NewPCG(sketchSeed, uint64(dim)))
	for k := range s.signs {
		s.signs[k] = make([]float32, pdim)
		for i := range s.signs[k] {
			s.signs[k][i] = float32(1 - 2*int(r.Uint32()&1))
		}
	}
	s.scale = float32(math.Pow(float64(pdim), -float64(sketchRounds)/2))
	return s
}

// rotate writes R·v into dst (len pdim).
func (s *sketcher) rotate(dst, v []float32) {
	n := copy(dst, v[:s.dim])
	clear(dst[n:])
	for _, sg := range s.signs {
		for i := range dst {
			dst[i] *= sg[i]
		}
		fwht(dst)
	}
	for i := range dst {
		dst[i] *= s.scale
	}
}

// fwht is the unnormalised fast Walsh-Hadamard transform, in place;
// len(a) is a power of two ≥ 4.
func fwht(a []float32) {
	n := len(a)
	// The first two butterfly stages as one 4-point transform: the
	// general loop below is slow on runs of one and two.
	for i := 0; i+4 <= n; i += 4 {
		x := a[i : i+4 : i+4]
		a0, a1, a2, a3 := x[0]+x[1], x[0]-x[1], x[2]+x[3], x[2]-x[3]
		x[0], x[1], x[2], x[3] = a0+a2, a1+a3, a0-a2, a1-a3
	}
	for h := 4; h < n; h <<= 1 {
		for i := 0; i < n; i += h << 1 {
			x, y := a[i:i+h:i+h], a[i+h:i+2*h:i+2*h]
			y = y[:len(x)]
			for j, u := range x {
				w := y[j]
				x[j], y[j] = u+w, u-w
			}
		}
	}
}

// sketchRow is where encode writes one face's sketch.
type sketchRow struct {
	code []uint64 // words bits: 1 where the rotated coordinate is > 0
	pcx  *float32 // popcount of code
	fac  *float32 // |v|² / ‖Rv‖₁: turns Σ sign·q' into an estimate of v·q
	errb *float32 // |v|·sqrt(pdim·|v|²/‖Rv‖₁² − 1)/sqrt(pdim−1): the estimate's error scale for a unit query
}

// encode sketches v; tmp is scratch of length pdim.
func (s *sketcher) encode(v, tmp []float32, out sketchRow) {
	s.rotate(tmp, v)
	clear(out.code)
	var l1, n2 float64
	for i, x := range tmp {
		if x > 0 {
			out.code[i>>6] |= 1 << (i & 63)
		}
		l1 += math.Abs(float64(x))
		n2 += float64(x) * float64(x)
	}
	pc := 0
	for _, w := range out.code {
		pc += bits.OnesCount64(w)
	}
	*out.pcx = float32(pc)
	if l1 == 0 {
		// A zero vector scores exactly 0 with everything.
		*out.fac, *out.errb = 0, 0
		return
	}
	*out.fac = float32(n2 / l1)
	// ⟨ô, ō⟩ = ‖o‖₁ / (sqrt(pdim)·‖o‖) is how well the sign code captures
	// the direction; RaBitQ's bound is sqrt(1/⟨ô,ō⟩² − 1)/sqrt(pdim − 1).
	r := float64(s.pdim)*n2/(l1*l1) - 1
	if r < 0 {
		r = 0
	}
	*out.errb = float32(math.Sqrt(n2) * math.Sqrt(r) / math.Sqrt(float64(s.pdim-1)))
}

// sketchQuery is a query prepared for scanning sketches:
// estimate(v·q) = fac_v · (a·pcx_v + b·ip_v + c), ip_v from sketchIP.
type sketchQuery struct {
	planes  []uint64 // queryBits bit-planes of the quantised rotated query
	a, b, c float32
	qnorm   float32
}

func (s *sketcher) prepare(q []float32) sketchQuery {
	rq := make([]float32, s.pdim)
	s.rotate(rq, q)
	lo, hi := rq[0], rq[0]
	var n2 float64
	for _, x := range rq {
		lo, hi = min(lo, x), max(hi, x)
		n2 += float64(x) * float64(x)
	}
	const levels = 1<<queryBits - 1
	delta := (hi - lo) / levels
	if delta == 0 {
		delta = 1
	}
	sq := sketchQuery{planes: make([]uint64, queryBits*s.words), qnorm: float32(math.Sqrt(n2))}
	su := 0
	for i, x := range rq {
		u := int((x-lo)/delta + 0.5)
		u = min(max(u, 0), levels)
		su += u
		for j := range queryBits {
			if u>>j&1 != 0 {
				sq.planes[j*s.words+i>>6] |= 1 << (i & 63)
			}
		}
	}
	// q'ᵢ ≈ lo + Δ·uᵢ and signᵢ = 2xᵢ − 1, so
	// Σ signᵢ·q'ᵢ ≈ 2·lo·pcx + 2Δ·⟨u,x⟩ − (lo·pdim + Δ·Σu).
	sq.a = 2 * lo
	sq.b = 2 * delta
	sq.c = -(lo*float32(s.pdim) + delta*float32(su))
	return sq
}

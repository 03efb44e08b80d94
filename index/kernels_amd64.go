//go:build amd64 && !purego

package index

import "golang.org/x/sys/cpu"

// Assembly kernels, chosen once at start-up by what the CPU (and the OS,
// which must save the wide registers) supports. x/sys/cpu does that
// CPUID/XGETBV dance correctly; the standard library does not export it.

//go:noescape
func dotsF32AVX2(q *float32, rows *float32, stride int, n int, out *float32)

//go:noescape
func sketchIP8AVX512(codes *uint64, planes *uint64, n int, out *int32)

//go:noescape
func sketchIP4AVX512(codes *uint64, planes *uint64, n int, out *int32)

//go:noescape
func sketchBoundsAVX2(ip *int32, pcx, fac, errb *float32, n int, a, b, c, e float32, out *float32) float32

func init() {
	avx2 := ""
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		avx2 = "CPU (or OS) lacks AVX2+FMA"
	}
	avx512 := ""
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512VL || !cpu.X86.HasAVX512VPOPCNTDQ {
		avx512 = "CPU (or OS) lacks AVX-512 F+VL+VPOPCNTDQ"
	}
	dotsImpls = append(dotsImpls, kernel[dotsFunc]{name: "avx2", fn: dotsF32AVX2Go, missing: avx2})
	boundsImpls = append(boundsImpls, kernel[boundsFunc]{name: "avx2", fn: sketchBoundsAVX2Go, missing: avx2})
	ipImpls = append(ipImpls, kernel[ipFunc]{name: "avx512", fn: sketchIPAVX512Go, missing: avx512})
	if avx2 == "" {
		kernelNames.dot = "avx2"
		dotsF32 = dotsF32AVX2Go
		sketchBounds = sketchBoundsAVX2Go
	}
	if avx512 == "" {
		kernelNames.sketch = "avx512"
		sketchIP = sketchIPAVX512Go
	}
}

func dotsF32AVX2Go(q, rows []float32, stride int, out []float32) {
	// The assembly consumes 32 floats per step; strides are padded to
	// that (see padDim), anything else takes the Go loop.
	if len(out) == 0 {
		return
	}
	if stride%32 != 0 || len(q) != stride || len(rows) < len(out)*stride {
		dotsF32Generic(q, rows, stride, out)
		return
	}
	dotsF32AVX2(&q[0], &rows[0], stride, len(out), &out[0])
}

func sketchBoundsAVX2Go(ip []int32, pcx, fac, errb []float32, a, b, c, e float32, out []float32) float32 {
	n := len(out)
	if n == 0 || n%8 != 0 || len(ip) < n || len(pcx) < n || len(fac) < n || len(errb) < n {
		return sketchBoundsGeneric(ip, pcx, fac, errb, a, b, c, e, out)
	}
	return sketchBoundsAVX2(&ip[0], &pcx[0], &fac[0], &errb[0], n, a, b, c, e, &out[0])
}

func sketchIPAVX512Go(codes []uint64, words int, planes []uint64, out []int32) {
	if len(out) == 0 {
		return
	}
	if len(codes) < len(out)*words || len(planes) < 4*words {
		panic("index: sketchIP: short buffers")
	}
	switch words {
	case 8:
		sketchIP8AVX512(&codes[0], &planes[0], len(out), &out[0])
	case 4:
		sketchIP4AVX512(&codes[0], &planes[0], len(out), &out[0])
	default:
		sketchIPGeneric(codes, words, planes, out)
	}
}

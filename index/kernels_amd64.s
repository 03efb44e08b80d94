//go:build amd64 && !purego

#include "textflag.h"

// func dotsF32AVX2(q *float32, rows *float32, stride int, n int, out *float32)
// out[i] = q · rows[i*stride : (i+1)*stride]; stride is a multiple of 32.
// Four accumulators hide the FMA latency; the scan is memory-bound anyway.
TEXT ·dotsF32AVX2(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ rows+8(FP), DI
	MOVQ stride+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), R8
	SHLQ $2, DX

row:
	TESTQ CX, CX
	JZ    done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ  AX, AX

step:
	VMOVUPS     0(SI)(AX*1), Y4
	VMOVUPS     32(SI)(AX*1), Y5
	VMOVUPS     64(SI)(AX*1), Y6
	VMOVUPS     96(SI)(AX*1), Y7
	VFMADD231PS 0(DI)(AX*1), Y4, Y0
	VFMADD231PS 32(DI)(AX*1), Y5, Y1
	VFMADD231PS 64(DI)(AX*1), Y6, Y2
	VFMADD231PS 96(DI)(AX*1), Y7, Y3
	ADDQ        $128, AX
	CMPQ        AX, DX
	JLT         step

	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	MOVSS        X0, (R8)
	ADDQ         $4, R8
	ADDQ         DX, DI
	DECQ         CX
	JMP          row

done:
	VZEROUPPER
	RET

// func sketchIP8AVX512(codes *uint64, planes *uint64, n int, out *int32)
// 512-bit codes: one ZMM register per code, VPOPCNTQ per query bit-plane,
// then weights 1,2,4,8 by Horner's rule and a horizontal sum.
TEXT ·sketchIP8AVX512(SB), NOSPLIT, $0-32
	MOVQ codes+0(FP), SI
	MOVQ planes+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), DI
	VMOVDQU64 0(DX), Z1
	VMOVDQU64 64(DX), Z2
	VMOVDQU64 128(DX), Z3
	VMOVDQU64 192(DX), Z4

loop8:
	TESTQ CX, CX
	JZ    done8
	VMOVDQU64 (SI), Z0
	VPANDQ    Z0, Z1, Z5
	VPANDQ    Z0, Z2, Z6
	VPANDQ    Z0, Z3, Z7
	VPANDQ    Z0, Z4, Z8
	VPOPCNTQ  Z5, Z5
	VPOPCNTQ  Z6, Z6
	VPOPCNTQ  Z7, Z7
	VPOPCNTQ  Z8, Z8
	VPSLLQ    $1, Z8, Z8
	VPADDQ    Z8, Z7, Z7
	VPSLLQ    $1, Z7, Z7
	VPADDQ    Z7, Z6, Z6
	VPSLLQ    $1, Z6, Z6
	VPADDQ    Z6, Z5, Z5
	VEXTRACTI64X4 $1, Z5, Y6
	VPADDQ    Y6, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPADDQ    X6, X5, X5
	VPSHUFD   $0x4e, X5, X6
	VPADDQ    X6, X5, X5
	VMOVD     X5, (DI)
	ADDQ      $64, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       loop8

done8:
	VZEROUPPER
	RET

// func sketchIP4AVX512(codes *uint64, planes *uint64, n int, out *int32)
// 256-bit codes (192-d embeddings padded to 256): the same on YMM (AVX-512VL).
TEXT ·sketchIP4AVX512(SB), NOSPLIT, $0-32
	MOVQ codes+0(FP), SI
	MOVQ planes+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), DI
	VMOVDQU64 0(DX), Y1
	VMOVDQU64 32(DX), Y2
	VMOVDQU64 64(DX), Y3
	VMOVDQU64 96(DX), Y4

loop4:
	TESTQ CX, CX
	JZ    done4
	VMOVDQU64 (SI), Y0
	VPANDQ    Y0, Y1, Y5
	VPANDQ    Y0, Y2, Y6
	VPANDQ    Y0, Y3, Y7
	VPANDQ    Y0, Y4, Y8
	VPOPCNTQ  Y5, Y5
	VPOPCNTQ  Y6, Y6
	VPOPCNTQ  Y7, Y7
	VPOPCNTQ  Y8, Y8
	VPSLLQ    $1, Y8, Y8
	VPADDQ    Y8, Y7, Y7
	VPSLLQ    $1, Y7, Y7
	VPADDQ    Y7, Y6, Y6
	VPSLLQ    $1, Y6, Y6
	VPADDQ    Y6, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPADDQ    X6, X5, X5
	VPSHUFD   $0x4e, X5, X6
	VPADDQ    X6, X5, X5
	VMOVD     X5, (DI)
	ADDQ      $32, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       loop4

done4:
	VZEROUPPER
	RET

// func sketchBoundsAVX2(ip *int32, pcx, fac, errb *float32, n int, a, b, c, e float32, out *float32) float32
// Eight rows per step: out = fac·(a·pcx + b·ip + c) + e·errb, and the max.
TEXT ·sketchBoundsAVX2(SB), NOSPLIT, $0-68
	MOVQ ip+0(FP), AX
	MOVQ pcx+8(FP), BX
	MOVQ fac+16(FP), DX
	MOVQ errb+24(FP), SI
	MOVQ n+32(FP), CX
	MOVQ out+56(FP), DI
	VBROADCASTSS a+40(FP), Y10
	VBROADCASTSS b+44(FP), Y11
	VBROADCASTSS c+48(FP), Y12
	VBROADCASTSS e+52(FP), Y13
	MOVL         $0xff800000, R8
	MOVL         R8, X14
	VBROADCASTSS X14, Y14
	XORQ         R9, R9

bstep:
	VCVTDQ2PS   (AX)(R9*4), Y0
	VFMADD213PS Y12, Y11, Y0
	VFMADD231PS (BX)(R9*4), Y10, Y0
	VMULPS      (DX)(R9*4), Y0, Y0
	VFMADD231PS (SI)(R9*4), Y13, Y0
	VMOVUPS     Y0, (DI)(R9*4)
	VMAXPS      Y0, Y14, Y14
	ADDQ        $8, R9
	CMPQ        R9, CX
	JLT         bstep

	VEXTRACTF128 $1, Y14, X15
	VMAXPS       X15, X14, X14
	VPERMILPS    $0x4e, X14, X15
	VMAXPS       X15, X14, X14
	VPERMILPS    $0xb1, X14, X15
	VMAXPS       X15, X14, X14
	VZEROUPPER
	MOVSS        X14, ret+64(FP)
	RET

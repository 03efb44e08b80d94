// Package index is faced's 1:N vector search: the embeddings of one
// embedder (unit float32 vectors, 512-d or 192-d; similarity is the dot
// product), with named galleries over them. It is the only package that
// searches vectors. The service rebuilds an Index from the store at
// start-up (Load) and keeps it in step with every write (Add, Remove,
// SetGalleries, DropGallery); every change is visible to the next Search.
//
// # Layout
//
// Vectors sit in chunks of 1024 rows of float32, each row padded to a
// multiple of 32 floats, so that growing never copies the slab and a chunk
// is a unit of parallel work. Ids map to slots; freed slots are reused.
// Membership is one bitset over slots per gallery (plus one of live slots):
// searching several galleries ORs their words, so a face in several of
// them is scored once, and removal is clearing bits. A device has tens of
// galleries, so changing a face's galleries walks all of them rather than
// keeping per-face lists.
//
// # Exact search
//
// Exact mode scores every searched face with a float32 dot product and
// keeps the true top k (ties by lower id) in per-worker heaps that share a
// rising floor. The scan is bound by memory bandwidth (100 000 × 512 × 4 B
// = 200 MB a query), so the kernel is AVX2+FMA assembly on amd64
// (kernels_amd64.s; `go test -run '^$' -bench DotsF32 ./index/`, part of
// `make bench`, reports its bandwidth on one core) and the chunks are
// split over Workers goroutines; elsewhere (arm64, -tags purego)
// an eight-way unrolled Go loop does the same work, tested against the
// assembly and under qemu-aarch64.
//
// # Approximate search: what was measured, and the choice
//
// Synthetic data as in RunBench: unit vectors uniform on the sphere, and
// realistic queries, 4 in 5 a new photo of an enrolled face (cosine 0.6–0.8
// to it), 1 in 5 a stranger (a fresh random vector). Recall@1 is agreement
// of the approximate top-1 with the exact one; for strangers that means
// finding the same best of a crowd of near-ties (≈0.22 at 1M), which is
// what separates the candidates. 2-core build machine, one query at a time
// (`faced bench index --size 1000000`, in `make bench`):
//
//	candidate (size)                        build      B/face  p50 / p95 ms   recall@1 (enrolled, strangers)
//	this package, exact (1M)                1.4–8 s    2157    41 / 58        1
//	this package, sketch + rescoring (1M)   +4–5 s bg  2157    3.2 / 7.0      0.998 (1.000, 0.990)
//
// FAISS 1.7.3 (Debian's build: flat, IVF1024 nprobe 128, HNSW32, PQ
// fast-scan with exact refinement) was tried once on the same data through
// Debian's python3-faiss, the library the C API wraps, and each index lost
// on recall@1 (none above 0.91, strangers far below) or on latency. No
// script of that run is kept, so no command here reproduces it and its
// figures are not quoted; the reasons below do not depend on them.
// (Debian builds FAISS for generic x86-64 against reference BLAS, so its
// flat scan and k-means are slow here; HNSW took minutes to build at
// 100k. A pure-Go HNSW such as coder/hnsw was
// not measured: it would build no faster than FAISS's C++, and the graph
// and IVF results show why neither fits this data: with no clusters a
// partition or graph must visit a large share of the gallery to find the
// best of a crowd of near-ties. FAISS would also mean cgo, a runtime
// library on every device, and deletions it handles poorly.)
//
// The chosen structure needs no training and is indifferent to how the
// data is distributed: a RaBitQ sketch per face (sketch.go: a random
// rotation, then one sign bit per dimension, 64 B for 512-d, plus three
// floats) whose estimate of a dot product comes with an error bound.
// Search is two passes (search.go): pass 1 estimates every searched face
// from its sketch with AVX-512 VPOPCNTQ (64 MB a query at 1M); the best
// estimates of a few runs are scored exactly to set a floor; pass 2 scores
// exactly, from the float32 vectors, only the faces whose estimate plus
// ε₀ error bounds reaches the floor. Every returned score is exact; only a
// face whose estimate is more than ε₀ bounds too low can be missed. One
// pass (floor rising while scanning) re-scored 14 500 faces a query at 1M
// (p50 6.0 ms); two passes re-score about 1 800. ε₀ at 1M, 1000 queries:
//
//	ε₀    p50 / p95 ms   recall@1 (strangers)   re-scored/query
//	1.5   2.9 / 4.5      0.996 (0.980)          527
//	2.0   3.0 / 5.8      0.997 (0.985)          1238
//	2.2   2.7 / 6.3      0.999 (0.995)          1715
//	2.6   2.6 / 8.1      1.000 (1.000)          3162
//	3.0   2.9 / 11.3     1.000 (1.000)          5550
//
// ε₀ = 2.2. p95 is the strangers' queries, which re-score most.
//
// # Start-up and memory
//
// Load copies 100 000 512-d faces in 0.12–0.23 s (1M: 1.4 s, up to 8 s when
// the virtual machine first faults the 2 GB in). Once the index holds
// ApproxThreshold faces (default 50 000, where an exact scan passes ~3 ms)
// the sketches are built in the background with Workers goroutines
// (100k: 0.5 s, 1M: 4–5 s) while exact search serves; WaitApprox and
// ApproxReady tell when Auto starts using them. They are not persisted:
// rebuilding costs less than a file format with its own invalidation.
// Memory is 2 164 B per 512-d face at 100k (2 048 of them the vector, 76
// the sketch), measured as Go heap growth.
//
// # Dependencies
//
// golang.org/x/sys/cpu picks the assembly at start-up: it checks the CPU
// and that the OS saves the wide registers (CPUID and XGETBV), which the
// standard library does not expose. Nothing else outside the standard
// library.
package index

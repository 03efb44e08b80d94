package index

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Hit is one search result. Score is the dot product of the query with the
// stored vector (the cosine, for unit vectors); results come best first,
// equal scores by lower ID.
type Hit struct {
	ID    uint64
	Score float32
}

// Mode chooses how Search finds its results.
type Mode int

const (
	// Auto searches approximately when the searched galleries hold at
	// least Options.ApproxThreshold faces and the approximate structure is
	// ready, and exactly otherwise.
	Auto Mode = iota
	// Exact scans every searched face: the true top k.
	Exact
	// Approx uses the sketches when they are ready and falls back to an
	// exact scan (a correct answer, only slower) while they are built.
	Approx
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Exact:
		return "exact"
	case Approx:
		return "approx"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultApproxThreshold is where Auto switches to approximate search: an
// exact scan of 50 000 512-d faces takes about 3 ms on the 2-core build
// machine, still well under one embedding, and below that exact answers
// cost too little to give up (see doc.go for the measurements).
const DefaultApproxThreshold = 50_000

// Options configures an Index.
type Options struct {
	// Dim is the embedding dimension; every vector must have it.
	Dim int
	// ApproxThreshold: once the index holds this many faces it also keeps
	// the approximate structure (one sketch per face, built in the
	// background), and Auto uses it for searches over at least this many
	// faces. 0 means DefaultApproxThreshold; negative means never.
	ApproxThreshold int
	// Workers is the number of goroutines one large search (and the
	// sketch build) scans with; 0 means runtime.NumCPU().
	Workers int
}

// Entry is one face for Load.
type Entry struct {
	ID        uint64
	Vec       []float32
	Galleries []string
}

var (
	// ErrNotFound: the id is not in the index.
	ErrNotFound = errors.New("index: id not found")
	// ErrDim: a vector or query of the wrong length.
	ErrDim = errors.New("index: wrong dimension")
	// ErrNoApprox: WaitApprox on an index that is not building sketches.
	ErrNoApprox = errors.New("index: approximate search not enabled")
)

// Vectors live in chunks of chunkSize slots, so growing never copies the
// whole slab, each chunk is a unit of parallel work, and a chunk's
// membership is chunkWords words of a bitset.
const (
	chunkBits  = 10
	chunkSize  = 1 << chunkBits
	chunkWords = chunkSize / 64
)

type chunk struct {
	vecs []float32 // chunkSize rows of stride floats
	ids  []uint64  // id per row (meaningful where the live bit is set)
	// sk is set once, by the background build under the read lock or at
	// birth under the write lock; hence atomic.
	sk atomic.Pointer[chunkSketch]
}

type chunkSketch struct {
	codes []uint64  // chunkSize codes of words uint64
	pcx   []float32 // float, as the bounds kernel consumes it
	fac   []float32
	errb  []float32
}

type gallery struct {
	bits bitset // by slot; a subset of the live bits
	n    int
}

// Index is a set of vectors of one embedding space, with named galleries
// over them. It is safe for concurrent use: searches run in parallel,
// writes are serialised (and wait for running searches).
type Index struct {
	dim       int
	stride    int // dim padded so rows suit the assembly kernel
	threshold int // <0: never sketch
	workers   int
	sk        *sketcher
	eps       float32 // sketchEps; a field so the measurements can vary it

	mu     sync.RWMutex
	chunks []*chunk
	nslots int     // slots ever handed out; slots ≥ nslots are unused
	free   []int32 // released slots, reused first
	slotOf map[uint64]int32
	live   bitset
	galls  map[string]*gallery
	tmp    []float32 // sketch scratch for writers (under mu)

	sketchOn    bool          // new and changed faces get sketches
	sketchReady bool          // every chunk has its sketch
	readyCh     chan struct{} // closed when sketchReady
}

// padDim rounds the dimension up to the assembly kernel's step.
func padDim(d int) int { return (d + 31) &^ 31 }

// New returns an empty index.
func New(opts Options) (*Index, error) {
	if opts.Dim <= 0 || opts.Dim > 1<<16 {
		return nil, fmt.Errorf("index: dimension %d out of range", opts.Dim)
	}
	th := opts.ApproxThreshold
	if th == 0 {
		th = DefaultApproxThreshold
	}
	w := opts.Workers
	if w <= 0 {
		w = runtime.NumCPU()
	}
	x := &Index{
		dim:       opts.Dim,
		stride:    padDim(opts.Dim),
		threshold: th,
		workers:   w,
		eps:       sketchEps,
		sk:        newSketcher(opts.Dim),
		slotOf:    make(map[uint64]int32),
		galls:     make(map[string]*gallery),
		readyCh:   make(chan struct{}),
	}
	x.tmp = make([]float32, x.sk.pdim)
	return x, nil
}

// Dim is the dimension the index was made for.
func (x *Index) Dim() int { return x.dim }

func (x *Index) checkVec(v []float32) error {
	if len(v) != x.dim {
		return fmt.Errorf("%w: got %d, want %d", ErrDim, len(v), x.dim)
	}
	for _, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return errors.New("index: vector has NaN or Inf")
		}
	}
	return nil
}

func checkGalleries(gs []string) error {
	for _, g := range gs {
		if g == "" {
			return errors.New("index: empty gallery name")
		}
	}
	return nil
}

// Add stores vec under id in the given galleries, replacing any previous
// vector and membership of id. The vector is copied.
func (x *Index) Add(id uint64, vec []float32, galleries []string) error {
	if err := x.checkVec(vec); err != nil {
		return fmt.Errorf("index: add %d: %w", id, err)
	}
	if err := checkGalleries(galleries); err != nil {
		return fmt.Errorf("index: add %d: %w", id, err)
	}
	x.mu.Lock()
	x.add(id, vec, galleries)
	start := x.maybeEnableSketch()
	x.mu.Unlock()
	if start {
		go x.buildSketches()
	}
	return nil
}

// add does Add's work under the write lock.
func (x *Index) add(id uint64, vec []float32, galleries []string) {
	slot, ok := x.slotOf[id]
	if ok {
		x.leaveAll(slot)
	} else {
		slot = x.allocSlot()
		x.slotOf[id] = slot
		x.live.set(int(slot))
	}
	c, r := x.chunks[slot>>chunkBits], int(slot&(chunkSize-1))
	c.ids[r] = id
	copy(c.vecs[r*x.stride:r*x.stride+x.dim], vec)
	if sk := c.sk.Load(); sk != nil {
		x.encodeRow(sk, c.vecs[r*x.stride:(r+1)*x.stride], r, x.tmp)
	}
	x.join(slot, galleries)
}

// Load adds every entry under one lock, as Add would: the start-up path
// from the store. It stops at the first invalid entry, returning its
// error with the entries before it in place. The sketches for approximate
// search, if the index is large enough, are built afterwards in the
// background (see WaitApprox), so exact search serves at once.
func (x *Index) Load(entries iter.Seq[Entry]) error {
	x.mu.Lock()
	var err error
	for e := range entries {
		if err = x.checkVec(e.Vec); err == nil {
			err = checkGalleries(e.Galleries)
		}
		if err != nil {
			err = fmt.Errorf("index: load %d: %w", e.ID, err)
			break
		}
		x.add(e.ID, e.Vec, e.Galleries)
	}
	start := x.maybeEnableSketch()
	x.mu.Unlock()
	if start {
		go x.buildSketches()
	}
	return err
}

// Remove takes id out of the index and every gallery; the next search no
// longer sees it. It reports whether id was there.
func (x *Index) Remove(id uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	slot, ok := x.slotOf[id]
	if !ok {
		return false
	}
	x.leaveAll(slot)
	x.live.clear(int(slot))
	delete(x.slotOf, id)
	x.chunks[slot>>chunkBits].ids[slot&(chunkSize-1)] = 0
	x.free = append(x.free, slot)
	return true
}

// SetGalleries replaces the galleries of id, keeping its vector.
func (x *Index) SetGalleries(id uint64, galleries []string) error {
	if err := checkGalleries(galleries); err != nil {
		return fmt.Errorf("index: set galleries of %d: %w", id, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	slot, ok := x.slotOf[id]
	if !ok {
		return fmt.Errorf("index: set galleries of %d: %w", id, ErrNotFound)
	}
	x.leaveAll(slot)
	x.join(slot, galleries)
	return nil
}

// DropGallery forgets a gallery; its faces stay in the index and in their
// other galleries.
func (x *Index) DropGallery(name string) {
	x.mu.Lock()
	delete(x.galls, name)
	x.mu.Unlock()
}

// Len is the number of faces.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.slotOf)
}

// GallerySize is the number of faces in a gallery (0 if there is none).
func (x *Index) GallerySize(name string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if g := x.galls[name]; g != nil {
		return g.n
	}
	return 0
}

// Galleries lists the gallery names (in no particular order).
func (x *Index) Galleries() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.galls))
	for name := range x.galls {
		out = append(out, name)
	}
	return out
}

// MemoryBytes estimates the memory the index holds: vector and sketch
// slabs, bitsets, and the id map.
func (x *Index) MemoryBytes() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var b int64
	for _, c := range x.chunks {
		b += int64(cap(c.vecs))*4 + int64(cap(c.ids))*8
		if s := c.sk.Load(); s != nil {
			b += int64(cap(s.codes))*8 + int64(cap(s.pcx)+cap(s.fac)+cap(s.errb))*4
		}
	}
	b += int64(cap(x.live)) * 8
	for name, g := range x.galls {
		b += int64(cap(g.bits))*8 + int64(len(name)) + 64
	}
	b += int64(cap(x.free)) * 4
	// A Go map entry of uint64→int32 with its control byte and the
	// table's load factor comes to about 24 bytes.
	b += int64(len(x.slotOf)) * 24
	return b
}

func (x *Index) allocSlot() int32 {
	if n := len(x.free); n > 0 {
		s := x.free[n-1]
		x.free = x.free[:n-1]
		return s
	}
	s := x.nslots
	if s>>chunkBits >= len(x.chunks) {
		c := &chunk{
			vecs: make([]float32, chunkSize*x.stride),
			ids:  make([]uint64, chunkSize),
		}
		if x.sketchOn {
			c.sk.Store(x.newChunkSketch())
		}
		x.chunks = append(x.chunks, c)
	}
	x.nslots++
	return int32(s)
}

// leaveAll takes a slot out of every gallery. It walks all galleries rather
// than keeping a list per face: a device has tens of galleries, not
// millions, and the walk costs less than the per-face lists would in
// memory.
func (x *Index) leaveAll(slot int32) {
	for name, g := range x.galls {
		if g.bits.clear(int(slot)) {
			g.n--
			if g.n == 0 {
				delete(x.galls, name)
			}
		}
	}
}

func (x *Index) join(slot int32, galleries []string) {
	for _, name := range galleries {
		g := x.galls[name]
		if g == nil {
			g = &gallery{}
			x.galls[name] = g
		}
		if g.bits.set(int(slot)) {
			g.n++
		}
	}
}

// bitset is a growable set of slots.
type bitset []uint64

// set adds i and reports whether it was absent.
func (b *bitset) set(i int) bool {
	w := i >> 6
	if w >= len(*b) {
		n := max(w+1, 2*len(*b), chunkWords)
		nb := make(bitset, n)
		copy(nb, *b)
		*b = nb
	}
	m := uint64(1) << (i & 63)
	was := (*b)[w]&m != 0
	(*b)[w] |= m
	return !was
}

// clear removes i and reports whether it was present.
func (b bitset) clear(i int) bool {
	w := i >> 6
	if w >= len(b) {
		return false
	}
	m := uint64(1) << (i & 63)
	was := b[w]&m != 0
	b[w] &^= m
	return was
}

func (b bitset) word(w int) uint64 {
	if w < len(b) {
		return b[w]
	}
	return 0
}

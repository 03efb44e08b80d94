package eval

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
)

// Open-set calibration: a door compares each probe with every enrolled
// face, so what matters is how often a stranger scores above the
// threshold against anyone. A pairs file holds a few thousand impostor
// pairs, too few to see a rate of 1e-5; every cross-identity pair of its
// images (about 30 million for LFW's 7 701) is not. The thresholds are
// read off that empirical distribution: no fitted curve, no
// extrapolation.

// Labelled is one embedded image and whose face it shows.
type Labelled struct {
	Identity string
	// Fold is the identity's cross-validation fold (LFW's view-2 folds are
	// identity-disjoint), or -1 when it has none: such images still count
	// in the thresholds and the acceptance rates, not in the held-out check.
	Fold int
	Vec  []float32
}

// OpenSetOptions tune OpenSet.
type OpenSetOptions struct {
	// FARs to place thresholds at; empty means the presets'.
	FARs []float64
	// MaxImpostors, when positive, scores a random sample of about this
	// many cross-identity pairs instead of all of them, drawn from Seed:
	// the same seed gives the same sample and the same thresholds.
	MaxImpostors int64
	Seed         uint64
	// Check are thresholds in use (by name) whose false-accept rate over
	// every cross-identity pair is measured and reported.
	Check map[string]float64
}

// OpenSetPoint is the threshold for one false-accept rate.
type OpenSetPoint struct {
	FAR float64 `json:"far"`
	// Threshold is the lowest similarity at which at most FAR of the
	// impostor pairs are accepted.
	Threshold float64 `json:"threshold"`
	// GAR is the share of genuine (same-identity) pairs it accepts.
	GAR float64 `json:"gar"`
	// HeldOutFAR is the false-accept rate on impostor pairs of held-out
	// folds, each fold's threshold fitted on the pairs of the other folds;
	// HeldOutAccepts of HeldOutPairs were accepted. Zero pairs: no folds.
	HeldOutFAR     float64 `json:"held_out_far"`
	HeldOutAccepts int64   `json:"held_out_accepts"`
	HeldOutPairs   int64   `json:"held_out_pairs"`
}

// OpenSetCheck is the measured rate of a threshold in use.
type OpenSetCheck struct {
	Name      string  `json:"name"`
	Threshold float64 `json:"threshold"`
	FAR       float64 `json:"far"`
	GAR       float64 `json:"gar"`
}

// OpenSetReport is what OpenSet measured.
type OpenSetReport struct {
	Images        int            `json:"images"`
	Identities    int            `json:"identities"`
	ImpostorPairs int64          `json:"impostor_pairs"`
	GenuinePairs  int64          `json:"genuine_pairs"`
	Sampled       bool           `json:"sampled"`
	Points        []OpenSetPoint `json:"points"`
	Checks        []OpenSetCheck `json:"checks,omitempty"`
}

// histogram bins similarities in [-1, 1] finely enough (3e-5) that a
// threshold read off a bin edge is exact for practical purposes.
const histBins = 1 << 16

type histogram [histBins]int64

func bin(s float32) int {
	b := int((float64(s) + 1) / 2 * histBins)
	return min(max(b, 0), histBins-1)
}

// binLow is the lowest similarity that falls in bin b.
func binLow(b int) float64 { return float64(b)/histBins*2 - 1 }

// above counts the scores in bins b and up.
func (h *histogram) above(b int) int64 {
	var n int64
	for i := b; i < histBins; i++ {
		n += h[i]
	}
	return n
}

// threshold is the lowest bin edge at which at most far of the scores
// are at or above it.
func (h *histogram) threshold(far float64) (edge int) {
	var total int64
	for _, c := range h {
		total += c
	}
	allowed := int64(math.Floor(far * float64(total)))
	var n int64
	for b := histBins - 1; b >= 0; b-- {
		if n+h[b] > allowed {
			return b + 1
		}
		n += h[b]
	}
	return 0
}

// OpenSet scores every cross-identity pair (or a seeded sample) and every
// same-identity pair of the images, and places a threshold at each FAR.
func OpenSet(imgs []Labelled, opt OpenSetOptions) (OpenSetReport, error) {
	if len(imgs) < 2 {
		return OpenSetReport{}, errors.New("eval: open set needs at least 2 images")
	}
	fars := opt.FARs
	if len(fars) == 0 {
		for _, f := range PresetFARs {
			fars = append(fars, f)
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(fars)))
	}
	dim := len(imgs[0].Vec)
	folds := 0
	ids := map[string]bool{}
	for i, im := range imgs {
		if len(im.Vec) != dim || dim == 0 {
			return OpenSetReport{}, fmt.Errorf("eval: image %d has a %d-d vector, want %d", i, len(im.Vec), dim)
		}
		if !finite32(im.Vec) {
			return OpenSetReport{}, fmt.Errorf("eval: image %d has a non-finite vector", i)
		}
		folds = max(folds, im.Fold+1)
		ids[im.Identity] = true
	}
	if len(ids) < 2 {
		return OpenSetReport{}, errors.New("eval: open set needs at least 2 identities")
	}
	// Sampling keeps each pair with probability p, decided by a hash of
	// the pair and the seed, so the sample does not depend on scheduling.
	var total int64 = int64(len(imgs)) * int64(len(imgs)-1) / 2
	p := 1.0
	if opt.MaxImpostors > 0 && opt.MaxImpostors < total {
		p = float64(opt.MaxImpostors) / float64(total)
	}

	// One histogram of impostors per pair of folds (so any fold can be
	// held out), one of genuine pairs. Fold -1 goes to the extra slot.
	slots := folds + 1
	type partial struct {
		imp  []*histogram // slots*slots, lazily allocated
		gen  histogram
		nImp int64
	}
	workers := runtime.GOMAXPROCS(0)
	parts := make([]*partial, workers)
	var wg sync.WaitGroup
	rows := make(chan int, 64)
	for w := range workers {
		parts[w] = &partial{imp: make([]*histogram, slots*slots)}
		wg.Go(func() {
			pt := parts[w]
			for i := range rows {
				a := imgs[i]
				sa := slot(a.Fold, folds)
				for j := i + 1; j < len(imgs); j++ {
					b := imgs[j]
					if a.Identity == b.Identity {
						pt.gen[bin(dot(a.Vec, b.Vec))]++
						continue
					}
					if p < 1 && !keep(opt.Seed, i, j, p) {
						continue
					}
					sb := slot(b.Fold, folds)
					k := min(sa, sb)*slots + max(sa, sb)
					if pt.imp[k] == nil {
						pt.imp[k] = new(histogram)
					}
					pt.imp[k][bin(dot(a.Vec, b.Vec))]++
					pt.nImp++
				}
			}
		})
	}
	for i := range imgs {
		rows <- i
	}
	close(rows)
	wg.Wait()

	imp := make([]*histogram, slots*slots)
	var gen, all histogram
	rep := OpenSetReport{Images: len(imgs), Identities: len(ids), Sampled: p < 1}
	for _, pt := range parts {
		rep.ImpostorPairs += pt.nImp
		for k, h := range pt.imp {
			if h == nil {
				continue
			}
			if imp[k] == nil {
				imp[k] = new(histogram)
			}
			for b, c := range h {
				imp[k][b] += c
				all[b] += c
			}
		}
		for b, c := range pt.gen {
			gen[b] += c
		}
	}
	rep.GenuinePairs = gen.above(0)
	if rep.ImpostorPairs == 0 {
		return OpenSetReport{}, errors.New("eval: no cross-identity pair was scored")
	}
	rate := func(h *histogram, edge int, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(h.above(edge)) / float64(n)
	}
	for _, far := range fars {
		edge := all.threshold(far)
		pt := OpenSetPoint{FAR: far, Threshold: binLow(edge), GAR: rate(&gen, edge, rep.GenuinePairs)}
		for k := range folds {
			var train histogram
			for a := range slots {
				for b := a; b < slots; b++ {
					h := imp[a*slots+b]
					if h == nil || a == k || b == k {
						continue
					}
					for i, c := range h {
						train[i] += c
					}
				}
			}
			test := imp[k*slots+k]
			if test == nil {
				continue
			}
			e := train.threshold(far)
			pt.HeldOutAccepts += test.above(e)
			pt.HeldOutPairs += test.above(0)
		}
		if pt.HeldOutPairs > 0 {
			pt.HeldOutFAR = float64(pt.HeldOutAccepts) / float64(pt.HeldOutPairs)
		}
		rep.Points = append(rep.Points, pt)
	}
	names := make([]string, 0, len(opt.Check))
	for n := range opt.Check {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return opt.Check[names[i]] < opt.Check[names[j]] })
	for _, n := range names {
		thr := opt.Check[n]
		edge := bin(float32(thr))
		if binLow(edge) < thr {
			edge++ // count only bins wholly at or above the threshold
		}
		rep.Checks = append(rep.Checks, OpenSetCheck{Name: n, Threshold: thr,
			FAR: rate(&all, edge, rep.ImpostorPairs), GAR: rate(&gen, edge, rep.GenuinePairs)})
	}
	return rep, nil
}

func slot(fold, folds int) int {
	if fold < 0 || fold >= folds {
		return folds
	}
	return fold
}

// keep decides, from the seed and the pair alone, whether a sampled run
// scores pair (i, j).
func keep(seed uint64, i, j int, p float64) bool {
	r := rand.New(rand.NewPCG(seed, uint64(i)<<32|uint64(j)))
	return r.Float64() < p
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a) &^ 3
	for i := 0; i < n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for i := n; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

func finite32(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/facedhq/faced/models"
)

// synthetic makes people identities with photos each: every photo is its
// person's random direction plus noise, so same-person pairs score high
// and different-person pairs near 0, as a face embedder's do.
func synthetic(people, photos, dim int, seed uint64) []Labelled {
	r := rand.New(rand.NewPCG(seed, 0))
	var out []Labelled
	for p := range people {
		centre := make([]float32, dim)
		for i := range centre {
			centre[i] = float32(r.NormFloat64())
		}
		centre = models.L2Normalize(centre)
		for range photos {
			v := make([]float32, dim)
			for i := range v {
				v[i] = centre[i] + 0.08*float32(r.NormFloat64())
			}
			out = append(out, Labelled{Identity: string(rune('A'+p%26)) + string(rune('a'+p/26)), Fold: p % 10, Vec: models.L2Normalize(v)})
		}
	}
	return out
}

// TestOpenSetThresholds: each threshold accepts at most its FAR of the
// impostor pairs, counted independently here, and is the lowest that does
// (one bin lower accepts more).
func TestOpenSetThresholds(t *testing.T) {
	imgs := synthetic(200, 3, 32, 7)
	rep, err := OpenSet(imgs, OpenSetOptions{FARs: []float64{1e-2, 1e-3}})
	if err != nil {
		t.Fatal(err)
	}
	var neg []float64
	var gen int64
	for i := range imgs {
		for j := i + 1; j < len(imgs); j++ {
			if imgs[i].Identity != imgs[j].Identity {
				neg = append(neg, float64(models.Cosine(imgs[i].Vec, imgs[j].Vec)))
			} else {
				gen++
			}
		}
	}
	if rep.ImpostorPairs != int64(len(neg)) || rep.GenuinePairs != gen {
		t.Fatalf("scored %d impostor and %d genuine pairs, want %d and %d", rep.ImpostorPairs, rep.GenuinePairs, len(neg), gen)
	}
	for _, p := range rep.Points {
		accepted := 0
		for _, s := range neg {
			if s >= p.Threshold {
				accepted++
			}
		}
		if got := float64(accepted) / float64(len(neg)); got > p.FAR*1.0001 {
			t.Errorf("FAR %g: threshold %.4f accepts %.2g of impostors", p.FAR, p.Threshold, got)
		}
		lower := p.Threshold - 2.0/histBins
		more := 0
		for _, s := range neg {
			if s >= lower {
				more++
			}
		}
		if float64(more)/float64(len(neg)) <= p.FAR && more > accepted {
			t.Errorf("FAR %g: a lower threshold %.4f still meets the rate", p.FAR, lower)
		}
		if p.GAR < 0.99 {
			t.Errorf("FAR %g: GAR %.3f on well-separated synthetic people", p.FAR, p.GAR)
		}
		if p.HeldOutPairs == 0 {
			t.Errorf("FAR %g: no held-out pairs although every identity has a fold", p.FAR)
		}
	}
}

// TestOpenSetSeedReproducible: a sampled calibration gives the same
// thresholds from the same seed, and a different sample from another.
func TestOpenSetSeedReproducible(t *testing.T) {
	imgs := synthetic(150, 2, 16, 3)
	opt := OpenSetOptions{FARs: []float64{1e-2}, MaxImpostors: 5000, Seed: 42}
	a, err := OpenSet(imgs, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := OpenSet(imgs, opt)
	if a.ImpostorPairs != b.ImpostorPairs || a.Points[0] != b.Points[0] {
		t.Fatalf("same seed, different calibration: %+v vs %+v", a.Points[0], b.Points[0])
	}
	if !a.Sampled || math.Abs(float64(a.ImpostorPairs)-5000) > 500 {
		t.Fatalf("sampled %d pairs (sampled=%v), want about 5000", a.ImpostorPairs, a.Sampled)
	}
	opt.Seed = 43
	c, _ := OpenSet(imgs, opt)
	if c.ImpostorPairs == a.ImpostorPairs && c.Points[0] == a.Points[0] {
		t.Fatalf("seeds 42 and 43 drew the same sample")
	}
}

func TestOpenSetChecksMeasureFAR(t *testing.T) {
	imgs := synthetic(100, 2, 16, 5)
	rep, err := OpenSet(imgs, OpenSetOptions{FARs: []float64{1e-2}, Check: map[string]float64{"everyone": -1, "no one": 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		want := map[string]float64{"everyone": 1, "no one": 0}[c.Name]
		if c.FAR != want {
			t.Errorf("check %q: FAR %v, want %v", c.Name, c.FAR, want)
		}
	}
}

func TestOpenSetRefusesBadInput(t *testing.T) {
	good := synthetic(3, 2, 4, 1)
	bad := append([]Labelled(nil), good...)
	bad[1].Vec = []float32{1, 2}
	nan := append([]Labelled(nil), good...)
	nan[2].Vec = []float32{float32(math.NaN()), 0, 0, 0}
	one := synthetic(1, 3, 4, 1)
	for name, imgs := range map[string][]Labelled{"mixed dims": bad, "NaN": nan, "one person": one, "empty": nil} {
		if _, err := OpenSet(imgs, OpenSetOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestEnrolmentRun: more photos per person can only raise best-of TAR on
// the same probes.
func TestEnrolmentRun(t *testing.T) {
	imgs := synthetic(40, 5, 16, 9)
	pts, err := EnrolmentRun(imgs, 0.9, []int{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]EnrolmentPoint{}
	for _, p := range pts {
		got[string(rune('0'+p.Photos))+p.Strategy] = p
		if p.Persons != 40 || p.Probes != 80 {
			t.Errorf("%+v: want 40 persons with 2 probes each (5 photos, the first 3 kept for enrolment)", p)
		}
	}
	if len(pts) != 3 {
		t.Fatalf("%d points, want 1/best, 3/best, 3/mean", len(pts))
	}
	if got["3best"].TAR < got["1best"].TAR {
		t.Errorf("3 photos best-of TAR %.3f below 1 photo's %.3f", got["3best"].TAR, got["1best"].TAR)
	}
	if _, err := EnrolmentRun(imgs, 0.5, []int{0}); err == nil {
		t.Error("0 photos: no error")
	}
}

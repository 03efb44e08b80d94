package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFitImpostorsRecoversNormal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	neg := make([]float64, 20000)
	for i := range neg {
		neg[i] = 0.02 + 0.08*r.NormFloat64()
	}
	fit, cals, err := Calibrate(neg, 1e-3, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(fit.Mean-0.02) > 0.003 || math.Abs(fit.StdDev-0.08) > 0.003 {
		t.Fatalf("fit %+v, want mean 0.02 sd 0.08", fit)
	}
	// z(1e-3) = 3.0902, z(1e-5) = 4.2649
	for i, z := range []float64{3.0902, 4.2649} {
		if want := 0.02 + z*0.08; math.Abs(cals[i].Fitted-want) > 0.01 {
			t.Errorf("FAR %g: fitted %.4f, want %.4f", cals[i].FAR, cals[i].Fitted, want)
		}
	}
	// With 20000 samples FAR 1e-3 is observable: the empirical threshold
	// lands near the fitted one.
	if math.Abs(cals[0].Empirical-cals[0].Fitted) > 0.02 {
		t.Errorf("empirical %.4f far from fitted %.4f", cals[0].Empirical, cals[0].Fitted)
	}
	if !(cals[1].Fitted > cals[0].Fitted) {
		t.Error("stricter FAR must give a higher threshold")
	}
}

func TestFitImpostorsRejectsBadInput(t *testing.T) {
	for _, neg := range [][]float64{nil, {0.1}, {0.1, math.NaN()}} {
		if _, err := FitImpostors(neg); err == nil {
			t.Errorf("%v accepted", neg)
		}
	}
}

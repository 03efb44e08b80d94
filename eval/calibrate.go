package eval

import (
	"errors"
	"math"
)

// PresetFARs are the false-accept rates the strict, medium and low
// thresholds are calibrated to.
var PresetFARs = map[string]float64{"strict": 1e-5, "medium": 1e-4, "low": 1e-3}

// Calibration is the threshold for one target false-accept rate.
type Calibration struct {
	FAR float64 `json:"far"`
	// Empirical is FARThreshold over the impostor scores: exact, but with N
	// impostors any FAR below 1/N collapses to "above the highest one".
	Empirical float64 `json:"empirical"`
	// Fitted extrapolates a normal distribution fitted to the impostor
	// scores. Impostor cosines of a face embedder are close to normal
	// (many weakly correlated dimensions), so this reaches FARs the sample
	// is too small to show; it is what the presets use.
	Fitted float64 `json:"fitted"`
}

// ImpostorFit is the normal distribution fitted to impostor scores.
type ImpostorFit struct {
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"std_dev"`
	N      int     `json:"n"`
}

// FitImpostors fits a normal distribution to impostor scores.
func FitImpostors(neg []float64) (ImpostorFit, error) {
	if len(neg) < 2 {
		return ImpostorFit{}, errors.New("eval: need at least 2 impostor scores to fit")
	}
	var sum float64
	for _, s := range neg {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return ImpostorFit{}, errors.New("eval: impostor scores must be finite")
		}
		sum += s
	}
	mean := sum / float64(len(neg))
	var ss float64
	for _, s := range neg {
		ss += (s - mean) * (s - mean)
	}
	return ImpostorFit{Mean: mean, StdDev: math.Sqrt(ss / float64(len(neg)-1)), N: len(neg)}, nil
}

// Threshold is the score a normal impostor exceeds with probability far.
func (f ImpostorFit) Threshold(far float64) float64 {
	z := math.Sqrt2 * math.Erfinv(1-2*far)
	return f.Mean + z*f.StdDev
}

// Calibrate computes the empirical and fitted thresholds for each FAR.
func Calibrate(neg []float64, fars ...float64) (ImpostorFit, []Calibration, error) {
	fit, err := FitImpostors(neg)
	if err != nil {
		return ImpostorFit{}, nil, err
	}
	out := make([]Calibration, len(fars))
	for i, far := range fars {
		out[i] = Calibration{FAR: far, Empirical: FARThreshold(neg, far), Fitted: fit.Threshold(far)}
	}
	return fit, out, nil
}

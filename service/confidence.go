package service

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Calibration places an embedder's cosine similarities on the 0–1
// confidence scale every API reports. The three cosines are the thresholds
// at false-accept rates 1e-3 (low), 1e-4 (medium) and 1e-5 (strict), read
// off every cross-identity pair of LFW's 7 701 images (29.6 million) by
// `faced eval verify` with the default pipeline (eval.OpenSet); each was
// checked on held-out folds (README, "Similarity and confidence").
type Calibration struct {
	Low, Medium, Strict float32
}

// Confidence anchors: where the calibrated cosines land on the 0–1 scale.
// Medium sits at 0.75, FindFace's documented default threshold, so a
// client passing 0.75 gets a false-accept rate of about 1e-4.
const (
	confLow    = 0.70
	confMedium = 0.75
	confStrict = 0.80
)

// Calibrations by embedder ID name (the part before "@"), measured with
// `faced eval verify --pairs lfw/pairs.txt --images lfw/images` (add
// --flip, --embedder for the others).
var Calibrations = map[string]Calibration{
	"arcface-r512":      {Low: 0.3382, Medium: 0.4129, Strict: 0.4819},
	"arcface-r512+flip": {Low: 0.3393, Medium: 0.4145, Strict: 0.4837},
	"mobilefacenet-192": {Low: 0.4501, Medium: 0.5314, Strict: 0.6022},
}

// Confidence maps a cosine similarity in [-1, 1] to [0, 1], piecewise
// linearly through (-1, 0), (Low, 0.70), (Medium, 0.75), (Strict, 0.80),
// (1, 1). It is monotonic, so thresholds on either scale agree.
func (c Calibration) Confidence(cos float32) float32 {
	xs := [5]float32{-1, c.Low, c.Medium, c.Strict, 1}
	ys := [5]float32{0, confLow, confMedium, confStrict, 1}
	cos = min(max(cos, -1), 1)
	for i := 1; i < len(xs); i++ {
		if cos <= xs[i] {
			return ys[i-1] + (ys[i]-ys[i-1])*(cos-xs[i-1])/(xs[i]-xs[i-1])
		}
	}
	return 1
}

// Threshold is a match threshold on the confidence scale. None means "no
// decision" (FindFace's threshold=none: report similarities only).
type Threshold struct {
	Value float32
	None  bool
}

// Presets are the named thresholds, on the confidence scale.
var Presets = map[string]float32{"low": confLow, "medium": confMedium, "strict": confStrict}

// DefaultThreshold is medium (FAR about 1e-4).
var DefaultThreshold = Threshold{Value: confMedium}

// ParseThreshold reads "strict", "medium", "low", "none", or a number in
// [0, 1]; empty gives def.
func ParseThreshold(s string, def Threshold) (Threshold, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return def, nil
	}
	if s == "none" {
		return Threshold{None: true}, nil
	}
	if v, ok := Presets[s]; ok {
		return Threshold{Value: v}, nil
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return Threshold{}, fmt.Errorf("%w: threshold %q: want strict, medium, low, none or a number from 0 to 1", ErrInvalid, s)
	}
	return Threshold{Value: float32(v)}, nil
}

// Accepts reports whether a confidence passes the threshold (always true
// for None).
func (t Threshold) Accepts(conf float32) bool { return t.None || conf >= t.Value }

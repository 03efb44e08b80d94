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
	// Zero is the cosine at the centre of the impostor distribution (the
	// mean over the 3000 different-person pairs of LFW's pairs.txt, which
	// faced eval verify prints as "impostor similarities mean"), which
	// reads confZero. Most
	// embedders centre strangers on cosine 0, the zero value; a fusion
	// with dlib-resnet-128, whose strangers score 0.83 on their own, does
	// not, and without it a stranger would read about 0.4.
	Zero float32
}

// Confidence anchors: where the calibrated cosines land on the 0–1 scale.
// Medium sits at 0.75, FindFace's documented default threshold, so a
// client passing 0.75 gets a false-accept rate of about 1e-4. Cosine 0
// (unrelated faces: the centre of the impostor distribution) sits at
// confZero, so a clear non-match reads near 0 rather than around 0.5, as
// it did when the map ran straight from (-1, 0) to (Low, 0.70).
const (
	confZero   = 0.05
	confLow    = 0.70
	confMedium = 0.75
	confStrict = 0.80
)

// Calibrations by embedder ID name (the part before "@"), measured with
// `faced eval verify --pairs lfw/pairs.txt --images lfw/images` (add
// --flip, --embedder for the others).
// The fused pair with mobilefacenet-192-onnx (the default) and with its
// TFLite twin read the same presets to four decimals: the conversion
// gives the same vectors to 2e-5.
var Calibrations = map[string]Calibration{
	"arcface-r512":                        {Low: 0.3382, Medium: 0.4129, Strict: 0.4819},
	"arcface-r512+flip":                   {Low: 0.3393, Medium: 0.4145, Strict: 0.4837},
	"mobilefacenet-192":                   {Low: 0.4501, Medium: 0.5314, Strict: 0.6022},
	"mobilefacenet-192-onnx":              {Low: 0.4501, Medium: 0.5309, Strict: 0.5992},
	"arcface-r512+mobilefacenet-192":      {Low: 0.3736, Medium: 0.4488, Strict: 0.5128},
	"arcface-r512+mobilefacenet-192-onnx": {Low: 0.3736, Medium: 0.4488, Strict: 0.5128},
	// With vision.flip both embedders also see the mirror image: four
	// embedder runs a face for +0.1 point (99.23 %, GAR at medium 96.8 %).
	"arcface-r512+mobilefacenet-192-onnx+flip": {Low: 0.3760, Medium: 0.4519, Strict: 0.5170},
	// The default: dlib's ResNet (trained on other faces, framed tighter)
	// as a third member. 99.32 %, GAR at medium 96.65 %; strangers centre
	// on 0.284 (impostor pairs of pairs.txt).
	"arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128": {Low: 0.5511, Medium: 0.6052, Strict: 0.6514, Zero: 0.284},
	// ... with vision.flip: six embedder runs a face; 99.22 %, GAR at
	// medium 96.99 %.
	"arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128+flip": {Low: 0.5540, Medium: 0.6086, Strict: 0.6554, Zero: 0.285},
}

// LookupCalibration returns the presets of an embedder, by the name part
// of its ID: from extra (a configuration's custom models) first, then the
// built-in table. The service, config check and eval all look up here.
func LookupCalibration(name string, extra map[string]Calibration) (Calibration, bool) {
	if c, ok := extra[name]; ok {
		return c, true
	}
	c, ok := Calibrations[name]
	return c, ok
}

// anchors are the knots of the map: cosines and their confidences.
func (c Calibration) anchors() (xs, ys [6]float32) {
	// A custom embedder whose low preset is at or below its zero gets the
	// knot halfway between -1 and low, keeping the map strictly increasing.
	zero := c.Zero
	if c.Low <= zero || zero <= -1 {
		zero = (c.Low - 1) / 2
	}
	return [6]float32{-1, zero, c.Low, c.Medium, c.Strict, 1},
		[6]float32{0, confZero, confLow, confMedium, confStrict, 1}
}

// Confidence maps a cosine similarity to [0, 1], piecewise linearly
// through (-1, 0), (Zero, 0.05), (Low, 0.70), (Medium, 0.75), (Strict, 0.80),
// (1, 1); cosines outside [-1, 1] (rounding: 1.0000002) count as the
// bound. It is strictly increasing, so a threshold on either scale
// selects the same matches (Similarity is its inverse). Confidence is a
// rank on a calibrated scale, not a probability: 0.75 means "as similar
// as the pair at which one stranger in 10 000 is accepted", not "75 %
// likely the same person".
func (c Calibration) Confidence(cos float32) float32 {
	xs, ys := c.anchors()
	return interp(ClampSimilarity(cos), xs, ys)
}

// Similarity is the inverse of Confidence: the cosine whose confidence is
// conf (clamped to [0, 1]).
func (c Calibration) Similarity(conf float32) float32 {
	xs, ys := c.anchors()
	return interp(min(max(conf, 0), 1), ys, xs)
}

// PresetSimilarities are the cosines of the named presets for this
// embedder: what `faced eval verify` prints beside the confidences the
// API takes.
func (c Calibration) PresetSimilarities() map[string]float32 {
	return map[string]float32{"low": c.Low, "medium": c.Medium, "strict": c.Strict}
}

// interp is the piecewise-linear map through (xs[i], ys[i]); v is within
// [xs[0], xs[len-1]].
func interp(v float32, xs, ys [6]float32) float32 {
	for i := 1; i < len(xs); i++ {
		if v <= xs[i] {
			return ys[i-1] + (ys[i]-ys[i-1])*(v-xs[i-1])/(xs[i]-xs[i-1])
		}
	}
	return ys[len(ys)-1]
}

// ClampSimilarity bounds a cosine to [-1, 1]: float32 rounding makes the
// cosine of two unit vectors reach 1.0000002.
func ClampSimilarity(c float32) float32 {
	if c != c { // NaN: a zero vector; no similarity at all
		return -1
	}
	return min(max(c, -1), 1)
}

// Threshold is a match threshold on the confidence scale. None means "no
// decision" (FindFace's threshold=none: report similarities only). A
// threshold given on the similarity scale (similarity_threshold) is
// converted to the confidence scale by Calibration.Confidence, which is
// strictly increasing, so it selects the same matches.
type Threshold struct {
	Value float32
	None  bool
}

// Presets are the named thresholds, on the confidence scale.
var Presets = map[string]float32{"low": confLow, "medium": confMedium, "strict": confStrict}

// PresetNames lists the presets from the most to the least permissive.
var PresetNames = []string{"low", "medium", "strict"}

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

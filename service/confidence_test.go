package service

import (
	"errors"
	"testing"
)

func TestConfidenceAnchorsAndMonotonic(t *testing.T) {
	c := Calibrations["arcface-r512"]
	for _, tc := range []struct{ cos, want float32 }{
		{-1, 0}, {0, 0.05}, {c.Low, 0.70}, {c.Medium, 0.75}, {c.Strict, 0.80}, {1, 1}, {2, 1}, {-3, 0}, {1.0000002, 1},
	} {
		if got := c.Confidence(tc.cos); got < tc.want-1e-6 || got > tc.want+1e-6 {
			t.Errorf("Confidence(%v) = %v, want %v", tc.cos, got, tc.want)
		}
	}
	prev := float32(-1)
	for x := float32(-1); x <= 1; x += 0.001 {
		got := c.Confidence(x)
		if got <= prev && x > -1 {
			t.Fatalf("not strictly increasing at %v: %v <= %v", x, got, prev)
		}
		prev = got
	}
}

// TestZeroAnchorsStrangers: a calibration whose strangers centre above
// cosine 0 (the fusion with dlib-resnet-128) reads confZero there, stays
// strictly increasing, and falls back to the halfway knot when Zero is
// not below Low.
func TestZeroAnchorsStrangers(t *testing.T) {
	c := Calibrations["arcface-r512+mobilefacenet-192-onnx+dlib-resnet-128"]
	if c.Zero <= 0 {
		t.Fatalf("the default's calibration has Zero %v, want its strangers' centre", c.Zero)
	}
	if got := c.Confidence(c.Zero); got < confZero-1e-6 || got > confZero+1e-6 {
		t.Errorf("Confidence(Zero %v) = %v, want %v", c.Zero, got, confZero)
	}
	for _, bad := range []Calibration{
		{Low: 0.3, Medium: 0.4, Strict: 0.5, Zero: 0.3},
		{Low: 0.3, Medium: 0.4, Strict: 0.5, Zero: 0.9},
		{Low: 0.3, Medium: 0.4, Strict: 0.5, Zero: -1},
		c,
	} {
		prev := float32(-1)
		for x := float32(-1); x <= 1; x += 0.001 {
			got := bad.Confidence(x)
			if got <= prev && x > -1 {
				t.Fatalf("%+v: not strictly increasing at %v: %v <= %v", bad, x, got, prev)
			}
			prev = got
		}
		if got := bad.Confidence(bad.Low); got < confLow-1e-6 || got > confLow+1e-6 {
			t.Errorf("%+v: Confidence(Low) = %v, want %v", bad, got, confLow)
		}
	}
}

// TestClearNonMatchesReadLow: the clear non-match (similarity
// -0.16) read 0.44 on the old map; every cosine at or below 0 must now
// read at most 0.05, and the stranger at 0.11 well below every preset.
func TestClearNonMatchesReadLow(t *testing.T) {
	for name, c := range Calibrations {
		for _, cos := range []float32{-1, -0.5, -0.16, 0} {
			if got := c.Confidence(cos); got > 0.05+1e-6 {
				t.Errorf("%s: Confidence(%v) = %v, want <= 0.05", name, cos, got)
			}
		}
		if got := c.Confidence(0.11); got >= 0.5 {
			t.Errorf("%s: Confidence(0.11) = %v, want < 0.5", name, got)
		}
	}
}

// TestSimilarityInvertsConfidence: similarity_threshold is converted
// through Confidence; Similarity must give the cosine back, and the
// presets' cosines the calibration's.
func TestSimilarityInvertsConfidence(t *testing.T) {
	for name, c := range Calibrations {
		for x := float32(-1); x <= 1; x += 0.01 {
			if back := c.Similarity(c.Confidence(x)); back < x-1e-4 || back > x+1e-4 {
				t.Fatalf("%s: Similarity(Confidence(%v)) = %v", name, x, back)
			}
		}
		for preset, cos := range c.PresetSimilarities() {
			if got := c.Confidence(cos); got < Presets[preset]-1e-6 || got > Presets[preset]+1e-6 {
				t.Errorf("%s: preset %s at cosine %v reads %v, want %v", name, preset, cos, got, Presets[preset])
			}
		}
	}
	// A custom embedder calibrated at or below cosine 0 stays strictly
	// increasing.
	c := Calibration{Low: -0.1, Medium: 0.05, Strict: 0.2}
	prev := float32(-1)
	for x := float32(-0.999); x <= 1; x += 0.001 {
		got := c.Confidence(x)
		if got <= prev {
			t.Fatalf("custom calibration: not increasing at %v", x)
		}
		prev = got
	}
}

func TestParseThreshold(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Threshold
		ok   bool
	}{
		{"", DefaultThreshold, true},
		{"strict", Threshold{Value: 0.80}, true},
		{"MEDIUM", Threshold{Value: 0.75}, true},
		{"low", Threshold{Value: 0.70}, true},
		{"none", Threshold{None: true}, true},
		{"0.9", Threshold{Value: 0.9}, true},
		{"0", Threshold{Value: 0}, true},
		{"1.5", Threshold{}, false},
		{"-0.1", Threshold{}, false},
		{"NaN", Threshold{}, false},
		{"lax", Threshold{}, false},
	} {
		got, err := ParseThreshold(tc.in, DefaultThreshold)
		if tc.ok != (err == nil) || (tc.ok && got != tc.want) {
			t.Errorf("ParseThreshold(%q) = %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseThreshold(%q): error %v is not ErrInvalid", tc.in, err)
		}
	}
	if !(Threshold{None: true}).Accepts(0) || (Threshold{Value: 0.8}).Accepts(0.79) || !(Threshold{Value: 0.8}).Accepts(0.8) {
		t.Error("Accepts")
	}
}

func TestGalleryChange(t *testing.T) {
	cur := []string{"a", "b"}
	for _, tc := range []struct {
		c    GalleryChange
		want []string
	}{
		{GalleryChange{Add: []string{"c", "a"}}, []string{"a", "b", "c"}},
		{GalleryChange{Del: []string{"a"}}, []string{"b"}},
		{GalleryChange{SetGiven: true, Set: []string{"x"}, Add: []string{"y"}}, []string{"x", "y"}},
		{GalleryChange{SetGiven: true}, []string{}},
	} {
		got := tc.c.Apply(cur)
		if len(got) != len(tc.want) {
			t.Errorf("%+v: %v, want %v", tc.c, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%+v: %v, want %v", tc.c, got, tc.want)
			}
		}
	}
	if len(cur) != 2 || cur[0] != "a" {
		t.Error("Apply modified its input")
	}
}

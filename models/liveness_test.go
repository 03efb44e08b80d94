package models

import (
	"math"
	"testing"

	"github.com/facedhq/faced/accel"
)

func TestDecodeLiveness3Class(t *testing.T) {
	spec := mustSpec(t, "minifasnet-3class")
	e10 := math.Exp(10)
	tests := []struct {
		logits []float32
		want   float64
	}{
		{[]float32{10, 0, 0}, e10 / (e10 + 2)}, // class 0 is live
		{[]float32{0, 10, 0}, 1 / (e10 + 2)},
		{[]float32{0, 0, 10}, 1 / (e10 + 2)},
		{[]float32{0, 0, 0}, 1.0 / 3},
		{[]float32{1, 1, 0}, math.E / (2*math.E + 1)},
	}
	for _, tc := range tests {
		got, err := DecodeLiveness(spec, []accel.Tensor{{Shape: []int64{1, 3}, Data: tc.logits}})
		if err != nil {
			t.Fatal(err)
		}
		checkApprox(t, "live", got, float32(tc.want), 1e-6)
	}
	if got, _ := DecodeLiveness(spec, []accel.Tensor{{Data: []float32{10, 0, 0}}}); got < 0.999 {
		t.Errorf("[10,0,0] → %v, want ~1", got)
	}
}

func TestDecodeLivenessLeaf(t *testing.T) {
	spec := mustSpec(t, "face-antispoofing")
	tests := []struct {
		name      string
		cls, mask []float32
		want      float32
	}{
		{"no spoof", []float32{0.3, 0.5, 0.9}, []float32{0, 0, 0}, 1},
		{"spoof 0.2", []float32{0.1, -0.1, 5}, []float32{1, 1, 0}, 0.5}, // |−0.1| counts
		{"spoof 0.1", []float32{0.1, 0, 0}, []float32{1, 0, 0}, 0.75},
		{"spoof 0.4", []float32{0.4, 0, 0}, []float32{1, 0, 0}, 0},
		{"spoof 3", []float32{1, 1, 1}, []float32{1, 1, 1}, 0},
	}
	for _, tc := range tests {
		got, err := DecodeLiveness(spec, []accel.Tensor{{Data: tc.cls}, {Data: tc.mask}})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkApprox(t, tc.name, got, tc.want, 1e-6)
	}
}

func TestDecodeLivenessErrors(t *testing.T) {
	three := mustSpec(t, "minifasnet-3class")
	leaf := mustSpec(t, "face-antispoofing")
	other := three
	other.Family = "liveness-unknown"
	nan := float32(math.NaN())
	tests := []struct {
		name string
		spec Spec
		outs []accel.Tensor
	}{
		{"3class no output", three, nil},
		{"3class 2 logits", three, []accel.Tensor{{Data: []float32{1, 2}}}},
		{"3class 4 logits", three, []accel.Tensor{{Data: []float32{1, 2, 3, 4}}}},
		{"3class NaN", three, []accel.Tensor{{Data: []float32{1, nan, 3}}}},
		{"leaf no output", leaf, nil},
		{"leaf one output", leaf, []accel.Tensor{{Data: []float32{1, 2}}}},
		{"leaf length mismatch", leaf, []accel.Tensor{{Data: []float32{1, 2}}, {Data: []float32{1}}}},
		{"leaf NaN mask", leaf, []accel.Tensor{{Data: []float32{1, 2}}, {Data: []float32{nan, 1}}}},
		{"unknown family", other, []accel.Tensor{{Data: []float32{1, 2, 3}}}},
	}
	for _, tc := range tests {
		if got, err := DecodeLiveness(tc.spec, tc.outs); err == nil {
			t.Errorf("%s: no error, got %v", tc.name, got)
		}
	}
	// Every liveness model of the catalogue has a decoder.
	for _, s := range mustManifest(t).ByTask(TaskLiveness) {
		if s.Family != "liveness-3class" && s.Family != "liveness-leaf" {
			t.Errorf("%s: family %q has no decoder", s.Name, s.Family)
		}
	}
}

package models

import (
	"math"
	"slices"
	"testing"

	"github.com/facedhq/faced/accel"
)

func TestEmbedderID(t *testing.T) {
	for _, tc := range []struct{ model, want string }{
		{"arcface-r512", "arcface-r512@87aacdfe5751"},
		{"mobilefacenet-192", "mobilefacenet-192@d8ba40c0127f"},
	} {
		e, err := NewEmbedder(mustSpec(t, tc.model))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.ID(); got != tc.want {
			t.Errorf("ID = %q, want %q", got, tc.want)
		}
		if e.Spec().Name != tc.model {
			t.Errorf("Spec().Name = %q", e.Spec().Name)
		}
	}
	// New weights under the same name are a new space.
	s := mustSpec(t, "arcface-r512")
	s.SHA256 = "0123456789ab" + s.SHA256[12:]
	if EmbedderID(s) == EmbedderID(mustSpec(t, "arcface-r512")) {
		t.Error("different weights, same ID")
	}
}

func TestNewEmbedderRejectsOtherTasks(t *testing.T) {
	for _, name := range []string{"ultraface-rfb320", "landmark68", "minifasnet-3class"} {
		if _, err := NewEmbedder(mustSpec(t, name)); err == nil {
			t.Errorf("NewEmbedder(%s): no error", name)
		}
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// toyEmbedder is arcface-r512's spec with a tiny dimension, so outputs can
// be written by hand.
func toyEmbedder(t *testing.T, dim int) *Embedder {
	t.Helper()
	spec := mustSpec(t, "arcface-r512")
	spec.Dim = dim
	e, err := NewEmbedder(spec)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmbedderDecode(t *testing.T) {
	e := toyEmbedder(t, 4)
	raw := []float32{3, 4, 0, 0}
	got, err := e.Decode([]accel.Tensor{{Shape: []int64{1, 4}, Data: raw}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0.6, 0.8, 0, 0}; len(got) != 4 || !approx(got[0], want[0], 1e-6) || !approx(got[1], want[1], 1e-6) || got[2] != 0 || got[3] != 0 {
		t.Errorf("Decode = %v, want %v", got, want)
	}
	if !slices.Equal(raw, []float32{3, 4, 0, 0}) {
		t.Errorf("Decode modified the output tensor: %v", raw)
	}

	// Only the first batch row is read.
	got, err = toyEmbedder(t, 3).Decode([]accel.Tensor{{Shape: []int64{2, 3}, Data: []float32{0, 0, -2, 9, 9, 9}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []float32{0, 0, -1}) {
		t.Errorf("first row = %v, want [0 0 -1]", got)
	}

	// A random-looking vector comes out with unit norm.
	v := make([]float32, 512)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*1.7)) * 40
	}
	got, err = toyEmbedder(t, 512).Decode([]accel.Tensor{{Shape: []int64{1, 512}, Data: v}})
	if err != nil {
		t.Fatal(err)
	}
	if n := norm(got); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm %v, want 1", n)
	}
	checkApprox(t, "self cosine", Cosine(got, got), 1, 1e-5)

	got, err = toyEmbedder(t, 8).Decode([]accel.Tensor{{Shape: []int64{1, 8}, Data: make([]float32, 8)}})
	if err != nil || !slices.Equal(got, make([]float32, 8)) {
		t.Errorf("zero vector: %v, %v; want zeros", got, err)
	}
}

func TestEmbedderDecodeErrors(t *testing.T) {
	e, err := NewEmbedder(mustSpec(t, "mobilefacenet-192"))
	if err != nil {
		t.Fatal(err)
	}
	vec := func(bad float32) []float32 {
		v := make([]float32, 192)
		v[0], v[7] = 1, bad
		return v
	}
	for name, outs := range map[string][]accel.Tensor{
		"no outputs": nil,
		"no shape":   {{Data: []float32{1, 2}}},
		"zero dim":   {{Shape: []int64{1, 0}, Data: []float32{}}},
		"wrong dim":  {{Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}},
		"short data": {{Shape: []int64{1, 192}, Data: []float32{1, 2, 3}}},
		"NaN":        {{Shape: []int64{1, 192}, Data: vec(float32(math.NaN()))}},
		"Inf":        {{Shape: []int64{1, 192}, Data: vec(float32(math.Inf(1)))}},
	} {
		if got, err := e.Decode(outs); err == nil {
			t.Errorf("%s: no error, got %v", name, got)
		}
	}
}

func TestCosine(t *testing.T) {
	s := float32(math.Sqrt(0.5))
	tests := []struct {
		name string
		a, b []float32
		want float32
	}{
		{"identical", []float32{0.6, 0.8}, []float32{0.6, 0.8}, 1},
		{"opposite", []float32{0.6, 0.8}, []float32{-0.6, -0.8}, -1},
		{"orthogonal", []float32{1, 0}, []float32{0, 1}, 0},
		{"45 degrees", []float32{1, 0}, []float32{s, s}, s},
		{"length mismatch", []float32{1, 0, 5}, []float32{1, 0}, 1},
		{"empty", nil, nil, 0},
	}
	for _, tc := range tests {
		if got := Cosine(tc.a, tc.b); !approx(got, tc.want, 1e-6) {
			t.Errorf("%s: Cosine = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestL2Normalize(t *testing.T) {
	v := []float32{0, -5, 12}
	got := L2Normalize(v)
	if &got[0] != &v[0] {
		t.Error("L2Normalize did not work in place")
	}
	if !approx(got[1], -5.0/13, 1e-6) || !approx(got[2], 12.0/13, 1e-6) || got[0] != 0 {
		t.Errorf("L2Normalize = %v", got)
	}
}

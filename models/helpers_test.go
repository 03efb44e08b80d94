package models

import (
	"math"
	"testing"
)

// approx reports whether got is within tol of want.
func approx(got, want, tol float32) bool {
	return math.Abs(float64(got)-float64(want)) <= float64(tol)
}

func checkApprox(t *testing.T, what string, got, want, tol float32) {
	t.Helper()
	if !approx(got, want, tol) {
		t.Errorf("%s = %v, want %v (±%v)", what, got, want, tol)
	}
}

// mustManifest loads the embedded manifest or stops the test.
func mustManifest(t *testing.T) *Manifest {
	t.Helper()
	m, err := LoadManifest()
	if err != nil {
		t.Fatalf("LoadManifest: %v", err)
	}
	return m
}

// mustSpec returns the named model of the embedded manifest.
func mustSpec(t *testing.T, name string) Spec {
	t.Helper()
	s, err := mustManifest(t).Model(name)
	if err != nil {
		t.Fatalf("Model(%q): %v", name, err)
	}
	return s
}

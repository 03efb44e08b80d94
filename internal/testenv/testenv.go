// Package testenv finds what tests need outside the package under test: the
// fetched runtimes and models (`make deps`) and the shared evaluation photos.
package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/models"
)

// DepsDir returns the dependency folder, failing the test when `make deps`
// has not been run: every test machine is expected to have it.
func DepsDir(t testing.TB) string {
	t.Helper()
	d := models.FindDir()
	if d == "" {
		t.Fatal("runtimes and models not found: run `make deps` (or set FACED_DEPS_DIR)")
	}
	return d
}

// RepoRoot is the folder holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("go.mod not found above " + wd)
		}
	}
}

// DataDir returns ../shared/data beside the checkout (override with
// FACED_TEST_DATA), read-only evaluation photos.
func DataDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("FACED_TEST_DATA")
	if d == "" {
		d = filepath.Join(RepoRoot(t), "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(d, "deepface", "master.csv")); err != nil {
		t.Fatalf("shared test data not found at %s: %v", d, err)
	}
	return d
}

// ReadPhoto reads a photo below DataDir, e.g. "deepface/img1.jpg".
func ReadPhoto(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(DataDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Specs lists the catalogue's models of one format.
func Specs(t testing.TB, format models.Format) []models.Spec {
	t.Helper()
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []models.Spec
	for _, s := range m.Models {
		if s.Format == format {
			out = append(out, s)
		}
	}
	return out
}

// Model reads a catalogue model, verified, ready for a backend.
func Model(t testing.TB, name string) (models.Spec, accel.Model) {
	t.Helper()
	spec := ModelSpec(t, name)
	data, err := spec.Load(DepsDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return spec, accel.Model{Name: spec.Name, Format: accel.Format(spec.Format), Data: data}
}

// ModelSpec is the catalogue's entry for a model, failing the test when it
// has none.
func ModelSpec(t testing.TB, name string) models.Spec {
	t.Helper()
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Model(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FramedArcFace is arcface-r512's file declared as a custom embedder,
// "arcface-framed", with dlib's ResNet framing (align_zoom 1.2,
// align_shift_y -20) at its own 112 side: a second crop geometry without a
// second model file.
func FramedArcFace(t testing.TB) models.Spec {
	t.Helper()
	s := ModelSpec(t, "arcface-r512")
	s.Name, s.Source, s.Family, s.Crop = "arcface-framed", "configuration", "", ""
	s.File = filepath.Join(DepsDir(t), s.File)
	s.AlignZoom, s.AlignShiftY = 1.2, -20
	return s
}

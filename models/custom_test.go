package models

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/accel"
)

// customEmbedder is arcface-r512 declared by hand.
func customEmbedder(t *testing.T) Spec {
	s := mustSpec(t, "arcface-r512")
	s.Name, s.Source, s.Family, s.Crop = "byo-arcface", "configuration", "", ""
	return s
}

func TestValidateCustom(t *testing.T) {
	if errs := ValidateCustom(customEmbedder(t)); len(errs) > 0 {
		t.Fatalf("arcface-r512 as a custom embedder: %v", errs)
	}
	det := mustSpec(t, "ultraface-rfb320")
	det.Name = "byo-ultraface"
	if errs := ValidateCustom(det); len(errs) > 0 {
		t.Fatalf("ultraface-rfb320 as a custom detector: %v", errs)
	}
	// Any square side works, framed as declared: the aligned crop is
	// warped at the input's size.
	framed := customEmbedder(t)
	framed.Input.Shape, framed.AlignZoom, framed.AlignShiftY = []int64{1, 3, 150, 150}, 1.2, -20
	if errs := ValidateCustom(framed); len(errs) > 0 {
		t.Fatalf("a 150x150 embedder with align_zoom 1.2, align_shift_y -20: %v", errs)
	}
	for _, tc := range []struct {
		what  string
		base  Spec
		edit  func(*Spec)
		field string
	}{
		{"no name", customEmbedder(t), func(s *Spec) { s.Name = "" }, "name"},
		{"@ in name", customEmbedder(t), func(s *Spec) { s.Name = "a@b" }, "name"},
		{"landmarks task", customEmbedder(t), func(s *Spec) { s.Task = TaskLandmarks }, "task"},
		{"format", customEmbedder(t), func(s *Spec) { s.Format = "pt" }, "format"},
		{"no file", customEmbedder(t), func(s *Spec) { s.File = " " }, "file"},
		{"file extension", customEmbedder(t), func(s *Spec) { s.File = "m.tflite" }, "file"},
		{"short sha256", customEmbedder(t), func(s *Spec) { s.SHA256 = "abc" }, "sha256"},
		{"no licence", customEmbedder(t), func(s *Spec) { s.License = "" }, "license"},
		{"layout", customEmbedder(t), func(s *Spec) { s.Input.Layout = "CHW" }, "input.layout"},
		{"colour", customEmbedder(t), func(s *Spec) { s.Input.Color = "YUV" }, "input.color"},
		{"3-d shape", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{3, 112, 112} }, "input.shape"},
		{"batch 2", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{2, 3, 112, 112} }, "input.shape"},
		{"channels", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{1, 4, 112, 112} }, "input.shape"},
		{"zero scale", customEmbedder(t), func(s *Spec) { s.Input.Scale = 0 }, "input.scale"},
		{"norm", customEmbedder(t), func(s *Spec) { s.Input.Norm = "zscore" }, "input.norm"},
		{"non-square embedder", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{1, 3, 112, 96} }, "input.shape"},
		{"tiny embedder", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{1, 3, 16, 16} }, "input.shape"},
		{"huge embedder", customEmbedder(t), func(s *Spec) { s.Input.Shape = []int64{1, 3, 1024, 1024} }, "input.shape"},
		{"zoom too far", customEmbedder(t), func(s *Spec) { s.AlignZoom = 3 }, "align_zoom"},
		{"shift too far", customEmbedder(t), func(s *Spec) { s.AlignShiftY = -41 }, "align_shift_y"},
		{"detector zoom", det, func(s *Spec) { s.AlignZoom = 1.2 }, "align_zoom"},
		{"gray embedder", customEmbedder(t), func(s *Spec) { s.Input.Color = "GRAY"; s.Input.Shape = []int64{1, 1, 112, 112} }, "input.color"},
		{"no dim", customEmbedder(t), func(s *Spec) { s.Dim = 0 }, "dim"},
		{"box crop", customEmbedder(t), func(s *Spec) { s.Crop = "box" }, "crop"},
		{"embedder family", customEmbedder(t), func(s *Spec) { s.Family = "ultraface" }, "family"},
		{"no family", det, func(s *Spec) { s.Family = "" }, "family"},
		{"unknown family", det, func(s *Spec) { s.Family = "yolo" }, "family"},
		{"detector dim", det, func(s *Spec) { s.Dim = 4 }, "dim"},
		{"detector output", det, func(s *Spec) { s.Output = "x" }, "output"},
		{"blazeface size", det, func(s *Spec) { s.Family = "blazeface"; s.Input.Shape = []int64{1, 3, 300, 300} }, "input.shape"},
	} {
		s := tc.base
		s.Input.Shape = slices.Clone(s.Input.Shape)
		tc.edit(&s)
		errs := ValidateCustom(s)
		if !slices.ContainsFunc(errs, func(err error) bool {
			var se *SpecError
			return errors.As(err, &se) && se.Field == tc.field
		}) {
			t.Errorf("%s: %v, want an error on %s", tc.what, errs, tc.field)
		}
	}
}

// DetectorFamilies names exactly what NewDetector decodes: each family of
// the catalogue's detectors is listed, and an unlisted one is refused.
func TestDetectorFamiliesInStep(t *testing.T) {
	m := mustManifest(t)
	for _, s := range m.ByTask(TaskDetect) {
		if !slices.Contains(DetectorFamilies, s.Family) {
			t.Errorf("catalogue detector family %q not in DetectorFamilies", s.Family)
		}
	}
	for _, f := range DetectorFamilies {
		i := slices.IndexFunc(m.ByTask(TaskDetect), func(s Spec) bool { return s.Family == f })
		if i < 0 {
			t.Errorf("DetectorFamilies lists %q, which no catalogue detector has", f)
			continue
		}
		if _, err := NewDetector(m.ByTask(TaskDetect)[i]); err != nil {
			t.Errorf("NewDetector(%s): %v", f, err)
		}
	}
	s := mustSpec(t, "ultraface-rfb320")
	s.Family = "yolo"
	if _, err := NewDetector(s); !errors.Is(err, ErrUnknownFamily) {
		t.Errorf("unknown family: %v", err)
	}
}

func TestAddCustom(t *testing.T) {
	m := mustManifest(t)
	n := len(m.Models)
	clash := customEmbedder(t)
	clash.Name = "arcface-r512"
	if err := m.AddCustom(customEmbedder(t), clash); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("a catalogue name: %v", err)
	}
	if err := m.AddCustom(customEmbedder(t), customEmbedder(t)); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("a name declared twice: %v", err)
	}
	bad := customEmbedder(t)
	bad.Dim = 0
	if err := m.AddCustom(bad); err == nil || !strings.Contains(err.Error(), "dim") {
		t.Fatalf("an invalid declaration: %v", err)
	}
	if len(m.Models) != n {
		t.Fatalf("failed AddCustom changed the manifest: %d models, was %d", len(m.Models), n)
	}
	if err := m.AddCustom(customEmbedder(t)); err != nil {
		t.Fatal(err)
	}
	s, err := m.Model("byo-arcface")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Custom || s.Family != "embedder" || s.Crop != "aligned" {
		t.Errorf("added spec %+v", s)
	}
	// Same file, another name: another embedding space.
	if EmbedderID(s) == EmbedderID(mustSpec(t, "arcface-r512")) {
		t.Error("custom embedder shares the catalogue model's id")
	}
}

// A declared file is read from its absolute path; a wrong digest names
// the file's and the declared one, without the catalogue's `make deps`
// advice.
func TestCustomLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.onnx")
	data := []byte("not really a model")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := customEmbedder(t)
	s.File, s.SHA256, s.Custom = path, SHA256Hex(data), true
	got, err := s.Load("/nonexistent")
	if err != nil || string(got) != string(data) {
		t.Fatalf("Load: %q, %v", got, err)
	}
	s.SHA256 = strings.Repeat("ab", 32)
	_, err = s.Load("/nonexistent")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), SHA256Hex(data)) || !strings.Contains(err.Error(), s.SHA256) ||
		!strings.Contains(err.Error(), "byo-arcface") || strings.Contains(err.Error(), "make deps") {
		t.Fatalf("wrong digest: %v", err)
	}
}

// An embedder with an output name reads that output, wherever it is.
func TestEmbedderOutputName(t *testing.T) {
	s := customEmbedder(t)
	s.Dim, s.Output = 2, "emb"
	e, err := NewEmbedder(s)
	if err != nil {
		t.Fatal(err)
	}
	outs := []accel.Tensor{
		{Name: "logits", Shape: []int64{1, 2}, Data: []float32{1, 0}},
		{Name: "emb", Shape: []int64{1, 2}, Data: []float32{0, 3}},
	}
	v, err := e.Decode(outs)
	if err != nil || v[0] != 0 || v[1] != 1 {
		t.Fatalf("Decode = %v, %v", v, err)
	}
	if _, err := e.Decode(outs[:1]); err == nil || !strings.Contains(err.Error(), `"emb"`) {
		t.Fatalf("missing output: %v", err)
	}
}

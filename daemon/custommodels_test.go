package daemon

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

const arcfaceSHA = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"

// Every problem of a declaration is reported against its setting.
func TestCustomModelsValidate(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `
vision:
  embedder: mine
  detector: arcface-r512
  landmarks: mine
  custom_models:
    - name: mine
      task: embed
      format: onnx
      file: models/fr_feature.onnx
      sha256: `+strings.ToUpper(arcfaceSHA)+`
      license: MIT
      input: {shape: [1, 3, 112, 112], layout: NCHW, color: RGB, mean: 127, scale: 0.0078125}
      dim: 512
      calibration: {low: 0.34, medium: 0.41, strict: 0.46, zero: 0.1}
    - name: arcface-r512
      task: embed
      format: onnx
      file: x.onnx
      sha256: nothex
      input: {shape: [1, 3, 160, 128], layout: NCHW, color: RGB, mean: 127, scale: 0}
    - name: mine
      task: detect
      family: yolo
      format: onnx
      file: d.onnx
      sha256: `+arcfaceSHA+`
      license: proprietary
      input: {shape: [1, 3, 240, 320], layout: NCHW, color: RGB, mean: 127, scale: 0.0078125}
      calibration: {low: 0.3, medium: 0.4, strict: 0.5}
      align_zoom: 1.2
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		fields = append(fields, fe.Field)
	}
	for _, want := range []string{
		"vision.custom_models[1].name",        // a catalogue name
		"vision.custom_models[1].sha256",      // not hex
		"vision.custom_models[1].license",     // missing
		"vision.custom_models[1].input.shape", // not square
		"vision.custom_models[1].input.scale", // zero
		"vision.custom_models[1].dim",         // missing
		"vision.custom_models[1].calibration", // missing for an embedder
		"vision.custom_models[2].name",        // declared twice
		"vision.custom_models[2].family",      // no such decoder
		"vision.custom_models[2].calibration", // a detector has none
		"vision.custom_models[2].align_zoom",  // a detector has no aligned crop
		"vision.detector",                     // an embedder as detector
		"vision.landmarks",                    // a custom embedder as landmarks
	} {
		if !slices.Contains(fields, want) {
			t.Errorf("no error on %s; got %v", want, err)
		}
	}
	for _, f := range fields {
		if strings.HasPrefix(f, "vision.custom_models[0]") || f == "vision.embedder" {
			t.Errorf("valid declaration or reference reported: %s (%v)", f, err)
		}
	}

	// Just the first declaration: valid, upper-case digest accepted, and
	// its calibration reaches the service.
	cfg.Vision.CustomModels = cfg.Vision.CustomModels[:1]
	cfg.Vision.Detector, cfg.Vision.Landmarks = DefaultVision().Detector, DefaultVision().Landmarks
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := cfg.ServiceConfig().Calibrations["mine"]; c.Medium != 0.41 || c.Zero != 0.1 {
		t.Errorf("calibration %+v", c)
	}
	// Strangers cannot centre at or above the low preset.
	cfg.Vision.CustomModels[0].Calibration.Zero = 0.34
	var fe *FieldError
	if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "vision.custom_models[0].calibration.zero" {
		t.Errorf("zero at low: %v", err)
	}
	cfg.Vision.CustomModels[0].Calibration.Zero = 0.1
	if s := cfg.Vision.CustomModels[0].spec(); !filepath.IsAbs(s.File) || s.SHA256 != arcfaceSHA {
		t.Errorf("spec file %q sha %q", s.File, s.SHA256)
	}
}

// align_zoom and align_shift_y reach the model's spec, and an out-of-range
// one is reported against its setting.
func TestCustomModelFraming(t *testing.T) {
	decl := func(zoom, shift string) Config {
		t.Helper()
		cfg, err := LoadConfig(writeConfig(t, `
vision:
  embedder: framed
  custom_models:
    - name: framed
      task: embed
      format: onnx
      file: models/fr_feature.onnx
      sha256: `+arcfaceSHA+`
      license: MIT
      input: {shape: [1, 3, 150, 150], layout: NCHW, color: RGB, mean: 127, scale: 0.0078125}
      dim: 512
      align_zoom: `+zoom+`
      align_shift_y: `+shift+`
      calibration: {low: 0.34, medium: 0.41, strict: 0.46}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := decl("1.2", "-20")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g := cfg.Vision.CustomModels[0].spec().Geometry()
	if g.Side != 150 || float32(g.Zoom) != 1.2 || g.ShiftY != -20 {
		t.Errorf("geometry %+v, want side 150, zoom 1.2, shift -20", g)
	}
	for _, tc := range []struct{ zoom, shift, field string }{
		{"2.5", "0", "vision.custom_models[0].align_zoom"},
		{"1", "-45", "vision.custom_models[0].align_shift_y"},
	} {
		err := decl(tc.zoom, tc.shift).Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("align_zoom %s, align_shift_y %s: %v, want an error on %s", tc.zoom, tc.shift, err, tc.field)
		}
	}
}

// A custom detector (the catalogue's UltraFace file under another name)
// finds what the catalogue model finds.
func TestCustomDetector(t *testing.T) {
	deps := testenv.DepsDir(t)
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	uf, err := m.Model("ultraface-rfb320")
	if err != nil {
		t.Fatal(err)
	}
	photo := testenv.ReadPhoto(t, "deepface/couple.jpg")
	boxes := func(detector string, custom []CustomModel) []face.Box {
		t.Helper()
		cfg := DefaultVision()
		cfg.DepsDir, cfg.Attributes, cfg.Liveness, cfg.Embedder, cfg.Align = deps, false, "", "", "landmarks"
		cfg.Detector, cfg.CustomModels = detector, custom
		v, err := OpenVision(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		faces, err := v.Pipeline.Detect(t.Context(), photo, face.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var out []face.Box
		for _, f := range faces {
			out = append(out, f.Box)
		}
		return out
	}
	want := boxes("ultraface-rfb320", nil)
	custom := []CustomModel{{
		Name: "byo-ultraface", Task: "detect", Family: "ultraface", Format: "onnx",
		File: filepath.Join(deps, uf.File), SHA256: uf.SHA256, License: "MIT",
		Input:   CustomInput{Name: "input", Shape: []int64{1, 3, 240, 320}, Layout: "NCHW", Color: "RGB", Mean: 127, Scale: 0.0078125},
		MinFace: uf.MinFace, MinScore: uf.MinScore,
	}}
	got := boxes("byo-ultraface", custom)
	if len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("custom detector boxes %v, catalogue %v", got, want)
	}
}

// Three embedders, one of them declared with its own framing: the
// pipeline eval and bench open (no calibration needed there) fuses all
// three, in the order given, and embeds with each.
func TestOpenVisionThreeEmbedders(t *testing.T) {
	deps := testenv.DepsDir(t)
	af, mfn := testenv.ModelSpec(t, "arcface-r512"), testenv.ModelSpec(t, "mobilefacenet-192-onnx")
	cfg := DefaultVision()
	cfg.DepsDir, cfg.Attributes, cfg.Liveness = deps, false, ""
	cfg.Embedder = "arcface-r512+mobilefacenet-192-onnx+framed"
	cfg.CustomModels = []CustomModel{{
		Name: "framed", Task: "embed", Format: "onnx", File: filepath.Join(deps, af.File), SHA256: af.SHA256, License: "MIT",
		Input: CustomInput{Name: af.Input.Name, Shape: af.Input.Shape, Layout: af.Input.Layout, Color: af.Input.Color, Mean: af.Input.Mean, Scale: af.Input.Scale},
		Dim:   512, AlignZoom: 1.2, AlignShiftY: -20,
		Calibration: &CustomCalibration{Low: 0.3, Medium: 0.4, Strict: 0.5},
	}}
	v, err := OpenVision(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	want := "arcface-r512+mobilefacenet-192-onnx+framed@" + af.SHA256[:6] + mfn.SHA256[:6] + af.SHA256[:6]
	if got := v.Pipeline.EmbedderID(); got != want {
		t.Errorf("EmbedderID = %q, want %q", got, want)
	}
	faces, err := v.Pipeline.Detect(t.Context(), testenv.ReadPhoto(t, "deepface/img1.jpg"), face.Options{Embed: true, Selector: face.SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("%d faces, %v", len(faces), err)
	}
	if n := len(faces[0].Embedding); n != 512+192+512 {
		t.Errorf("embedding of %d values, want 1216", n)
	}
}

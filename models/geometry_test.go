package models

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// The ArcFace geometry is the template itself, bit for bit: crops (and so
// embeddings) of every catalogue embedder without align_zoom or
// align_shift_y are what they were before geometries.
func TestArcFaceGeometryIsTheTemplate(t *testing.T) {
	if got := ArcFaceGeometry.Template(); got != ArcFaceTemplate {
		t.Fatalf("ArcFaceGeometry.Template() = %v, want ArcFaceTemplate %v", got, ArcFaceTemplate)
	}
	for _, name := range []string{"arcface-r512", "mobilefacenet-192", "mobilefacenet-192-onnx"} {
		if g := mustSpec(t, name).Geometry(); g != ArcFaceGeometry {
			t.Errorf("%s: Geometry() = %+v, want %+v", name, g, ArcFaceGeometry)
		}
	}
}

// A zoomed, shifted geometry of another side puts each point where the
// formula says, computed here independently; the eyes' distance grows by
// zoom*S/112 and the points move up by the shift.
func TestGeometryTemplate(t *testing.T) {
	g := Geometry{Side: 150, Zoom: 1.2, ShiftY: -20}
	got := g.Template()
	for i, p := range ArcFaceTemplate {
		wantX := (float64(p.X)-56)*1.2*150/112 + 75
		wantY := (float64(p.Y)-56)*1.2*150/112 + 75 - 20*150.0/112
		checkApprox(t, "x", got[i].X, float32(wantX), 1e-4)
		checkApprox(t, "y", got[i].Y, float32(wantY), 1e-4)
	}
	// The left eye by hand: (38.2946-56)*1.2*150/112 + 75 = 46.5449;
	// (51.6963-56)*1.607143 + 75 - 26.7857 = 41.2977.
	checkApprox(t, "left eye x", got[0].X, 46.5449, 1e-3)
	checkApprox(t, "left eye y", got[0].Y, 41.2977, 1e-3)
	eyes := func(p [5]Point) float64 { return math.Hypot(float64(p[1].X-p[0].X), float64(p[1].Y-p[0].Y)) }
	if r := eyes(got) / eyes(ArcFaceTemplate); math.Abs(r-1.2*150/112) > 1e-4 {
		t.Errorf("eye distance ratio %.5f, want %.5f", r, 1.2*150/112)
	}
	spec := mustSpec(t, "arcface-r512")
	spec.AlignZoom, spec.AlignShiftY = 1.2, -20
	spec.Input.Shape = []int64{1, 3, 150, 150}
	if sg := spec.Geometry(); sg.Side != 150 || math.Abs(sg.Zoom-1.2) > 1e-6 || sg.ShiftY != -20 {
		t.Errorf("Spec.Geometry() = %+v", sg)
	}
}

func TestValidateAlign(t *testing.T) {
	for _, tc := range []struct {
		what        string
		zoom, shift float32
		base        string
		field       string // "" means valid
	}{
		{"defaults", 0, 0, "arcface-r512", ""},
		{"dlib framing", 1.2, -20, "arcface-r512", ""},
		{"smallest zoom", 0.5, -40, "arcface-r512", ""},
		{"largest zoom", 2, -20, "arcface-r512", ""},
		{"mouth below the crop at zoom 1", 1, 40, "arcface-r512", "align_shift_y"},
		{"zoom too small", 0.49, 0, "arcface-r512", "align_zoom"},
		{"zoom too big", 2.01, 0, "arcface-r512", "align_zoom"},
		{"negative zoom", -1, 0, "arcface-r512", "align_zoom"},
		{"NaN zoom", float32(math.NaN()), 0, "arcface-r512", "align_zoom"},
		{"shift too far up", 1, -40.5, "arcface-r512", "align_shift_y"},
		{"shift too far down", 1, 41, "arcface-r512", "align_shift_y"},
		{"NaN shift", 1, float32(math.NaN()), "arcface-r512", "align_shift_y"},
		{"mouth below the crop", 2, 40, "arcface-r512", "align_shift_y"},
		{"zoom on a box crop", 1.2, 0, "minifasnet-3class", "align_zoom"},
		{"shift on a detector", 0, -10, "ultraface-rfb320", "align_shift_y"},
	} {
		s := mustSpec(t, tc.base)
		s.AlignZoom, s.AlignShiftY = tc.zoom, tc.shift
		errs := ValidateAlign(s)
		if tc.field == "" {
			if len(errs) > 0 {
				t.Errorf("%s: %v, want valid", tc.what, errs)
			}
			continue
		}
		if !slices.ContainsFunc(errs, func(err error) bool {
			var se *SpecError
			return errors.As(err, &se) && se.Field == tc.field
		}) {
			t.Errorf("%s: %v, want an error on %s", tc.what, errs, tc.field)
		}
	}
}

// The catalogue's models all pass, and the two fields come from JSON by
// their manifest names.
func TestManifestAlignFields(t *testing.T) {
	for _, s := range mustManifest(t).Models {
		if errs := ValidateAlign(s); len(errs) > 0 {
			t.Errorf("%s: %v", s.Name, errs)
		}
	}
	var s Spec
	if err := json.Unmarshal([]byte(`{"name":"x","crop":"aligned","align_zoom":1.2,"align_shift_y":-20}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.AlignZoom != 1.2 || s.AlignShiftY != -20 {
		t.Errorf("parsed %v / %v", s.AlignZoom, s.AlignShiftY)
	}
	// A bad value names the model and the field.
	bad := mustSpec(t, "arcface-r512")
	bad.AlignZoom = 7
	m := &Manifest{}
	if err := m.AddCustom(bad); err == nil || !strings.Contains(err.Error(), `"arcface-r512"`) || !strings.Contains(err.Error(), "align_zoom") {
		t.Errorf("AddCustom with align_zoom 7: %v", err)
	}
}

// dlib's face ResNet needs its own framing: on LFW it verifies 98.9 % of
// the pairs with it and 87.4 % on the ArcFace framing resized to 150
// (measured with faced eval verify, all 6000 pairs). Its catalogue entry
// must carry align_zoom 1.2 and align_shift_y -20.
func TestDlibResNetFraming(t *testing.T) {
	s, err := mustManifest(t).Model("dlib-resnet-128")
	if err != nil {
		t.Fatal(err)
	}
	want := Geometry{Side: 150, Zoom: float64(float32(1.2)), ShiftY: -20}
	if g := s.Geometry(); g != want {
		t.Errorf("dlib-resnet-128: geometry %+v, want %+v (manifest: \"align_zoom\": 1.2, \"align_shift_y\": -20)", g, want)
	}
}

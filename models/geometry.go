package models

import (
	"fmt"
	"math"
)

// Geometry is how an "aligned" crop frames the face: the crop's side in
// pixels (the embedder's input side), and the zoom and vertical shift of
// the ArcFace template within it. Embedders trained on the same framing
// have equal Geometries and can share one warp of the photo; it is
// comparable, so it can key a map.
type Geometry struct {
	Side   int
	Zoom   float64
	ShiftY float64 // in 112-template pixels, negative = up
}

// ArcFaceGeometry is the 112x112 ArcFace crop: what quality, kept crops
// (face.Options.KeepAligned) and the ArcFace-trained embedders use.
var ArcFaceGeometry = Geometry{Side: AlignedSize, Zoom: 1}

// The bounds of AlignZoom and AlignShiftY. Outside them the face is either
// a small part of the crop or cut by it; no embedder we know of was
// trained on such a framing, so a value there is more likely a typo.
const (
	MinAlignZoom  = 0.5
	MaxAlignZoom  = 2
	MaxAlignShift = 40
)

// Geometry is the framing of this model's aligned crop: its input side,
// AlignZoom (0: 1) and AlignShiftY.
func (s Spec) Geometry() Geometry {
	z := float64(s.AlignZoom)
	if z == 0 {
		z = 1
	}
	return Geometry{Side: s.Input.Width(), Zoom: z, ShiftY: float64(s.AlignShiftY)}
}

// Template is where the five points of FivePoints sit in a crop of this
// geometry: each ArcFace template point p becomes
//
//	p' = (p - 56) * Zoom * Side/112 + Side/2, with y' also + ShiftY * Side/112.
//
// The ArcFace geometry gives ArcFaceTemplate exactly (float64 arithmetic
// undoes the shift about the centre without rounding), so its crops and
// embeddings are the same as before geometries existed.
func (g Geometry) Template() [5]Point {
	const c = AlignedSize / 2
	k := g.Zoom * float64(g.Side) / AlignedSize
	half := float64(g.Side) / 2
	var out [5]Point
	for i, p := range ArcFaceTemplate {
		out[i] = Point{
			X: float32((float64(p.X)-c)*k + half),
			Y: float32((float64(p.Y)-c)*k + half + g.ShiftY*float64(g.Side)/AlignedSize),
		}
	}
	return out
}

// ValidateAlign checks a model's align_zoom and align_shift_y: only an
// "aligned" crop has them (an embedder, whose crop is aligned even when a
// declaration leaves it empty), within the bounds above, and the template
// they give must stay inside the crop. Each problem is a *SpecError.
func ValidateAlign(s Spec) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	aligned := s.Crop == "aligned" || (s.Task == TaskEmbed && s.Crop == "")
	if !aligned {
		if s.AlignZoom != 0 {
			bad("align_zoom", "only a model that sees the aligned face (an embedder) has one, got %v on crop %q", s.AlignZoom, s.Crop)
		}
		if s.AlignShiftY != 0 {
			bad("align_shift_y", "only a model that sees the aligned face (an embedder) has one, got %v on crop %q", s.AlignShiftY, s.Crop)
		}
		return errs
	}
	z, sh := float64(s.AlignZoom), float64(s.AlignShiftY)
	zoomOK := z == 0 || (z >= MinAlignZoom && z <= MaxAlignZoom) // also refuses NaN
	if !zoomOK {
		bad("align_zoom", "want %v..%v (0 or absent: 1, the ArcFace framing), got %v", MinAlignZoom, MaxAlignZoom, s.AlignZoom)
	}
	shiftOK := sh >= -MaxAlignShift && sh <= MaxAlignShift
	if !shiftOK {
		bad("align_shift_y", "want -%d..%d pixels of the 112x112 template (negative: up), got %v", MaxAlignShift, MaxAlignShift, s.AlignShiftY)
	}
	if !zoomOK || !shiftOK || len(s.Input.Shape) != 4 || s.Input.Width() <= 0 {
		return errs
	}
	g := s.Geometry()
	for _, p := range g.Template() {
		side := float32(g.Side)
		if !(p.X >= 0 && p.X <= side && p.Y >= 0 && p.Y <= side) {
			bad("align_shift_y", "align_zoom %v with align_shift_y %v puts the face's landmarks outside the crop (%v, %v in %dx%d)",
				g.Zoom, g.ShiftY, math.Round(float64(p.X)), math.Round(float64(p.Y)), g.Side, g.Side)
			break
		}
	}
	return errs
}

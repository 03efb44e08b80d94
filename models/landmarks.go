package models

import (
	"fmt"

	"github.com/facedhq/faced/accel"
)

// DecodeLandmarks68 reads the 68-point landmark network's output: 136
// values, (x, y) pairs normalised to the square face crop it was fed, in the
// iBUG 300-W order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67
// mouth).
func DecodeLandmarks68(outs []accel.Tensor) ([]Point, error) {
	if len(outs) == 0 || len(outs[0].Data) != 136 {
		return nil, fmt.Errorf("models: landmark68: want 136 values")
	}
	v := outs[0].Data
	if !finite(v) {
		return nil, fmt.Errorf("models: landmark68: non-finite output")
	}
	pts := make([]Point, 68)
	for i := range pts {
		pts[i] = Point{v[2*i], v[2*i+1]}
	}
	return pts, nil
}

// FivePoints reduces 68 landmarks to the five the ArcFace template uses, in
// its order: eye on the image's left, eye on the image's right, nose tip,
// mouth corner on the left, mouth corner on the right. Eye centres average
// four lid points (the corners move with gaze less than the lids do), mouth
// corners average the outer and inner lip corner.
func FivePoints(p []Point) ([5]Point, error) {
	if len(p) != 68 {
		return [5]Point{}, fmt.Errorf("models: five points need 68 landmarks, got %d", len(p))
	}
	mean := func(idx ...int) Point {
		var m Point
		for _, i := range idx {
			m.X += p[i].X
			m.Y += p[i].Y
		}
		n := float32(len(idx))
		return Point{m.X / n, m.Y / n}
	}
	return [5]Point{
		mean(37, 38, 40, 41),
		mean(43, 44, 46, 47),
		p[30],
		mean(48, 60),
		mean(54, 64),
	}, nil
}

// ArcFaceTemplate is where the five points of FivePoints sit in a 112x112
// aligned face, as the ArcFace/InsightFace embedders were trained.
var ArcFaceTemplate = [5]Point{
	{38.2946, 51.6963},
	{73.5318, 51.5014},
	{56.0252, 71.7366},
	{41.5493, 92.3655},
	{70.7299, 92.2041},
}

// AlignedSize is the side of the aligned face crop in pixels.
const AlignedSize = 112

package face

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// Reframe turns a photo into a w x h JPEG the way a camera would frame it:
// scaled to cover the frame and cropped about the centre. Benchmarks use it
// to get camera-sized frames from the evaluation photos.
func Reframe(data []byte, w, h int) ([]byte, error) {
	if w < 1 || h < 1 || w > 8192 || h > 8192 {
		return nil, fmt.Errorf("face: reframe: bad size %dx%d", w, h)
	}
	img, err := Decode(data, DefaultLimits())
	if err != nil {
		return nil, err
	}
	defer img.Close()
	s := max(float64(w)/float64(img.Width), float64(h)/float64(img.Height))
	sw, sh := max(w, int(float64(img.Width)*s+0.5)), max(h, int(float64(img.Height)*s+0.5))
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(img.Mat, &scaled, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	x, y := (sw-w)/2, (sh-h)/2
	roi := scaled.Region(image.Rect(x, y, x+w, y+h))
	defer roi.Close()
	return EncodeJPEG(roi, 90)
}

// Place turns a photo into a w x h JPEG in which the face inside box
// (photo pixels) is facePx wide, as a camera further away would see it: the
// photo is scaled by facePx / box width and put with its face at the
// frame's centre, on a textured grey background (noise, so the detector
// sees no flat margin that would flatter it, and no second face).
// Benchmarks use it for "a person a few metres away" frames.
func Place(data []byte, box Box, w, h, facePx int) ([]byte, error) {
	if w < 1 || h < 1 || w > 8192 || h > 8192 || facePx < 1 {
		return nil, fmt.Errorf("face: place: bad size %dx%d, face %d px", w, h, facePx)
	}
	if box.Width() < 1 || box.Height() < 1 {
		return nil, fmt.Errorf("face: place: empty face box")
	}
	img, err := Decode(data, DefaultLimits())
	if err != nil {
		return nil, err
	}
	defer img.Close()
	s := float64(facePx) / float64(box.Width())
	sw, sh := max(1, int(float64(img.Width)*s+0.5)), max(1, int(float64(img.Height)*s+0.5))
	if sw > 8192 || sh > 8192 {
		return nil, fmt.Errorf("face: place: a %d px face makes the photo %dx%d", facePx, sw, sh)
	}
	scaled := gocv.NewMat()
	defer scaled.Close()
	interp := gocv.InterpolationArea
	if s > 1 {
		interp = gocv.InterpolationLinear
	}
	gocv.Resize(img.Mat, &scaled, image.Pt(sw, sh), 0, 0, interp)

	frame := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer frame.Close()
	gocv.RandN(&frame, gocv.NewScalar(120, 120, 120, 0), gocv.NewScalar(25, 25, 25, 0))
	// The face centre in the scaled photo goes to the frame centre; the
	// part of the photo that falls inside the frame is copied.
	cx := int(float64(box.X1+box.X2)/2*s + 0.5)
	cy := int(float64(box.Y1+box.Y2)/2*s + 0.5)
	dst := image.Rect(w/2-cx, h/2-cy, w/2-cx+sw, h/2-cy+sh).Intersect(image.Rect(0, 0, w, h))
	if dst.Empty() {
		return nil, fmt.Errorf("face: place: the face falls outside the frame")
	}
	src := dst.Sub(image.Pt(w/2-cx, h/2-cy))
	from := scaled.Region(src)
	defer from.Close()
	to := frame.Region(dst)
	defer to.Close()
	from.CopyTo(&to)
	return EncodeJPEG(frame, 90)
}

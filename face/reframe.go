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

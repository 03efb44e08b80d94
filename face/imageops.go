package face

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// The helpers here are the only places the pipeline hands geometry to
// OpenCV. Each checks its rectangle and sizes first: an out-of-range ROI or
// an empty Mat is a C++ assertion in OpenCV, which aborts the process.

// toPixels resizes a BGR image to w x h and converts it to the colour order
// a network wants.
func toPixels(src gocv.Mat, w, h int, colorOrder string) (models.Pixels, error) {
	if src.Empty() || w <= 0 || h <= 0 {
		return models.Pixels{}, fmt.Errorf("face: empty image or size %dx%d", w, h)
	}
	resized := gocv.NewMat()
	defer resized.Close()
	interp := gocv.InterpolationLinear
	if src.Cols() > w*2 || src.Rows() > h*2 {
		interp = gocv.InterpolationArea // antialiases strong downscales
	}
	gocv.Resize(src, &resized, image.Pt(w, h), 0, 0, interp)
	return matPixels(resized, colorOrder)
}

// matPixels converts a BGR Mat (already at the right size) to pixels in the
// requested colour order.
func matPixels(bgr gocv.Mat, colorOrder string) (models.Pixels, error) {
	out := bgr
	var conv gocv.Mat
	switch colorOrder {
	case "RGB":
		conv = gocv.NewMat()
		gocv.CvtColor(bgr, &conv, gocv.ColorBGRToRGB)
		out = conv
	case "GRAY":
		conv = gocv.NewMat()
		gocv.CvtColor(bgr, &conv, gocv.ColorBGRToGray)
		out = conv
	case "BGR":
	default:
		return models.Pixels{}, fmt.Errorf("face: unknown colour order %q", colorOrder)
	}
	if conv.Ptr() != nil {
		defer conv.Close()
	}
	return models.Pixels{Width: out.Cols(), Height: out.Rows(), Channels: out.Channels(), Data: out.ToBytes()}, nil
}

// letterboxPixels fits the whole photo into a w x h network input keeping
// its aspect ratio, padding the rest with black, and returns the mapping
// back to photo pixels.
func letterboxPixels(src gocv.Mat, w, h int, colorOrder string) (models.Pixels, letterbox, error) {
	lb := newLetterbox(src.Cols(), src.Rows(), w, h)
	rw := max(1, min(w, int(float32(src.Cols())*lb.scale+0.5)))
	rh := max(1, min(h, int(float32(src.Rows())*lb.scale+0.5)))
	resized := gocv.NewMat()
	defer resized.Close()
	interp := gocv.InterpolationLinear
	if lb.scale < 0.5 {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(src, &resized, image.Pt(rw, rh), 0, 0, interp)
	left, top := (w-rw)/2, (h-rh)/2
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(resized, &padded, top, h-rh-top, left, w-rw-left, gocv.BorderConstant, color.RGBA{})
	// Recompute the mapping from the integer sizes actually used.
	lb = letterbox{scale: float32(rw) / float32(src.Cols()), padX: float32(left), padY: float32(top), inW: float32(w), inH: float32(h)}
	px, err := matPixels(padded, colorOrder)
	return px, lb, err
}

// cropPixels cuts r out of the photo and resizes it for a network.
func cropPixels(src gocv.Mat, r image.Rectangle, w, h int, colorOrder string) (models.Pixels, error) {
	if r.Empty() || !r.In(image.Rect(0, 0, src.Cols(), src.Rows())) {
		return models.Pixels{}, fmt.Errorf("face: crop %v outside the %dx%d photo", r, src.Cols(), src.Rows())
	}
	roi := src.Region(r)
	defer roi.Close()
	return toPixels(roi, w, h, colorOrder)
}

// cropPaddedPixels cuts r out of the photo, filling what lies outside it
// with black, and resizes it for a network.
func cropPaddedPixels(src gocv.Mat, r image.Rectangle, w, h int, colorOrder string) (models.Pixels, error) {
	bounds := image.Rect(0, 0, src.Cols(), src.Rows())
	in := r.Intersect(bounds)
	// The box came from this photo, so r is at most a few times its size;
	// refuse anything else rather than allocate it.
	if in.Empty() || r.Dx() > 4*bounds.Dx()+4 || r.Dy() > 4*bounds.Dy()+4 {
		return models.Pixels{}, fmt.Errorf("face: crop %v does not fit the %dx%d photo", r, src.Cols(), src.Rows())
	}
	roi := src.Region(in)
	defer roi.Close()
	if in == r {
		return toPixels(roi, w, h, colorOrder)
	}
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(roi, &padded, in.Min.Y-r.Min.Y, r.Max.Y-in.Max.Y, in.Min.X-r.Min.X, r.Max.X-in.Max.X, gocv.BorderConstant, color.RGBA{})
	return toPixels(padded, w, h, colorOrder)
}

// warpAligned applies a similarity transform and cuts the size x size
// aligned face.
func warpAligned(src gocv.Mat, m similarity, size int) (gocv.Mat, error) {
	mat := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer mat.Close()
	for i, v := range m {
		mat.SetDoubleAt(i/3, i%3, v)
	}
	dst := gocv.NewMat()
	gocv.WarpAffineWithParams(src, &dst, mat, image.Pt(size, size), gocv.InterpolationLinear, gocv.BorderConstant, color.RGBA{})
	if dst.Empty() {
		dst.Close()
		return gocv.Mat{}, fmt.Errorf("face: alignment produced an empty crop")
	}
	return dst, nil
}

// sharpness is the variance of the Laplacian of a BGR image's grey levels:
// high for crisp edges, low for blur.
func sharpness(bgr gocv.Mat) float64 {
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(bgr, &gray, gocv.ColorBGRToGray)
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(gray, &lap, gocv.MatTypeCV64F, 3, 1, 0, gocv.BorderDefault)
	mean, std := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer std.Close()
	gocv.MeanStdDev(lap, &mean, &std)
	s := std.GetDoubleAt(0, 0)
	return s * s
}

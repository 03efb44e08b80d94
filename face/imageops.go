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
	rw := max(1, min(w, int(float32(src.Cols())*lb.scaleX+0.5)))
	rh := max(1, min(h, int(float32(src.Rows())*lb.scaleY+0.5)))
	resized := gocv.NewMat()
	defer resized.Close()
	interp := gocv.InterpolationLinear
	if lb.scaleX < 0.5 {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(src, &resized, image.Pt(rw, rh), 0, 0, interp)
	left, top := (w-rw)/2, (h-rh)/2
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(resized, &padded, top, h-rh-top, left, w-rw-left, gocv.BorderConstant, color.RGBA{})
	// Recompute the mapping from the integer sizes actually used.
	lb = letterbox{scaleX: float32(rw) / float32(src.Cols()), scaleY: float32(rh) / float32(src.Rows()),
		padX: float32(left), padY: float32(top), inW: float32(w), inH: float32(h)}
	px, err := matPixels(padded, colorOrder)
	return px, lb, err
}

// resizePixels shrinks the photo to w x h and converts it to a network's
// colour order: the one image the tiled pass cuts its tiles from.
func resizePixels(src gocv.Mat, w, h int, colorOrder string) (models.Pixels, error) {
	resized, err := shrink(src, w, h)
	if err != nil {
		return models.Pixels{}, err
	}
	defer resized.Close()
	return matPixels(resized, colorOrder)
}

// shrink resizes a photo to w x h, no bigger than it, antialiased. OpenCV's
// INTER_AREA antialiases, but at a scale that is not 1/n it is slow (13 ms
// for 1080p to 0.3 on the build machine, four times a 320x240 detector
// run), while halving with it (a 2x2 mean) is fast. So: halve while the
// photo is at least twice the target (on even sizes, where a half is
// exact), then resize the rest of the way linearly, which at a scale of
// 1/2 or more reads every source pixel. The steps compose to exactly
// w/cols by h/rows. The caller closes the result.
func shrink(src gocv.Mat, w, h int) (gocv.Mat, error) {
	if src.Empty() || w <= 0 || h <= 0 || w > src.Cols() || h > src.Rows() {
		return gocv.Mat{}, fmt.Errorf("face: cannot shrink a %dx%d image to %dx%d", src.Cols(), src.Rows(), w, h)
	}
	cur := src
	for cur.Cols()%2 == 0 && cur.Rows()%2 == 0 && cur.Cols() >= 2*w && cur.Rows() >= 2*h {
		half := gocv.NewMat()
		gocv.Resize(cur, &half, image.Pt(cur.Cols()/2, cur.Rows()/2), 0, 0, gocv.InterpolationArea)
		if cur.Ptr() != src.Ptr() {
			cur.Close()
		}
		cur = half
	}
	interp := gocv.InterpolationLinear
	if cur.Cols() > 2*w || cur.Rows() > 2*h {
		interp = gocv.InterpolationArea // an odd size stopped the halving
	}
	out := gocv.NewMat()
	gocv.Resize(cur, &out, image.Pt(w, h), 0, 0, interp)
	if cur.Ptr() != src.Ptr() {
		cur.Close()
	}
	return out, nil
}

// cutPixels copies r out of an image already in a network's colour order
// into a w x h input, centred on black where r is smaller (as
// letterboxPixels pads), and returns where r's corner landed in the input.
// r must lie inside the image and be at most w x h.
func cutPixels(src models.Pixels, r image.Rectangle, w, h int) (models.Pixels, image.Point) {
	c := src.Channels
	pad := image.Pt((w-r.Dx())/2, (h-r.Dy())/2)
	out := models.Pixels{Width: w, Height: h, Channels: c, Data: make([]uint8, w*h*c)}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		from := (y*src.Width + r.Min.X) * c
		to := ((y-r.Min.Y+pad.Y)*w + pad.X) * c
		copy(out.Data[to:to+r.Dx()*c], src.Data[from:from+r.Dx()*c])
	}
	return out, pad
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

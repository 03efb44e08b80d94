package face

import (
	"fmt"

	"gocv.io/x/gocv"
)

// FormatVideo marks an Image taken from a video decoder rather than from
// encoded photo bytes.
const FormatVideo Format = "video"

// CheckFrameSize tells whether a video frame of w x h may be decoded under
// lim: the same bounds Decode applies to a photo's header. Video sources
// call it with the size the stream declares, before the first frame is
// decoded.
func CheckFrameSize(w, h int, lim Limits) error {
	lim = lim.withDefaults()
	switch {
	case w <= 0 || h <= 0:
		return fmt.Errorf("%w: video frame %dx%d", ErrCorrupt, w, h)
	case w > hardMaxSide || h > hardMaxSide:
		return fmt.Errorf("%w: video frame %dx%d, a side exceeds %d", ErrTooManyPixels, w, h, hardMaxSide)
	case int64(w)*int64(h) > lim.MaxPixels:
		return fmt.Errorf("%w: video frame %dx%d is %d pixels, limit %d", ErrTooManyPixels, w, h, int64(w)*int64(h), lim.MaxPixels)
	case w < lim.MinSide || h < lim.MinSide:
		return fmt.Errorf("%w: video frame %dx%d, each side must be at least %d", ErrTooSmall, w, h, lim.MinSide)
	}
	return nil
}

// FrameImage wraps a decoded video frame as an Image, taking ownership of
// mat (it is closed on error). The frame must be 8-bit BGR within lim: a
// decoder that changes size mid-stream, or hands over something else, is
// refused here rather than met by an OpenCV assertion later.
func FrameImage(mat gocv.Mat, lim Limits) (*Image, error) {
	if mat.Empty() {
		mat.Close()
		return nil, fmt.Errorf("%w: empty video frame", ErrCorrupt)
	}
	if mat.Type() != gocv.MatTypeCV8UC3 {
		t := mat.Type()
		mat.Close()
		return nil, fmt.Errorf("%w: video frame of type %v, want 8-bit BGR", ErrCorrupt, t)
	}
	w, h := mat.Cols(), mat.Rows()
	if err := CheckFrameSize(w, h, lim); err != nil {
		mat.Close()
		return nil, err
	}
	return &Image{Mat: mat, Format: FormatVideo, Width: w, Height: h}, nil
}

// Clone returns a copy of the image with its own pixels.
func (im *Image) Clone() *Image {
	return &Image{Mat: im.Mat.Clone(), Format: im.Format, Width: im.Width, Height: im.Height}
}

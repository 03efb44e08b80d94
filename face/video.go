package face

import (
	"errors"
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// Video reads frames from a video stream or device through OpenCV's video
// I/O (FFmpeg for files and network streams, V4L2 for devices). Frames
// are checked as photos are: the size the stream declares before the
// first frame is decoded, every frame's size and type after.
type Video struct {
	cap *gocv.VideoCapture
	lim Limits
}

// ErrVideoEnded is returned by Read at the end of a file, or when a
// stream stops delivering.
var ErrVideoEnded = errors.New("face: video: no more frames")

// OpenVideo opens a file or network URL (device < 0) or a V4L2 device
// number. It fails when the stream does not open or declares frames over
// lim.
func OpenVideo(url string, device int, lim Limits) (*Video, error) {
	var (
		vc  *gocv.VideoCapture
		err error
	)
	if device >= 0 {
		vc, err = gocv.VideoCaptureDeviceWithAPI(device, gocv.VideoCaptureV4L2)
	} else {
		vc, err = gocv.VideoCaptureFileWithAPI(url, gocv.VideoCaptureFFmpeg)
	}
	if err != nil || !vc.IsOpened() {
		// gocv's error text ("Error opening file ... api backend: 1900")
		// says nothing to an installer; the caller names the source.
		if vc != nil {
			vc.Close()
		}
		return nil, errors.New("the stream did not open (unreachable, refused, timed out, or not a video)")
	}
	w := int(vc.Get(gocv.VideoCaptureFrameWidth))
	h := int(vc.Get(gocv.VideoCaptureFrameHeight))
	if err := CheckFrameSize(w, h, lim); err != nil {
		vc.Close()
		return nil, err
	}
	return &Video{cap: vc, lim: lim}, nil
}

// FPS is the frame rate the stream declares (0 when it declares none).
func (v *Video) FPS() float64 { return v.cap.Get(gocv.VideoCaptureFPS) }

// Read decodes the next frame.
func (v *Video) Read() (*Image, error) {
	mat := gocv.NewMat()
	if !v.cap.Read(&mat) {
		mat.Close()
		return nil, ErrVideoEnded
	}
	return FrameImage(mat, v.lim)
}

// Close releases the stream.
func (v *Video) Close() error { return v.cap.Close() }

// Mark is a box and its label drawn by Annotate. Known draws it green (a
// recognised person), otherwise amber.
type Mark struct {
	Box   Box
	Label string
	Known bool
}

// Annotate draws the marks on img (pass a Clone to keep the original)
// and encodes it as JPEG.
func Annotate(img *Image, marks []Mark, quality int) ([]byte, error) {
	if img == nil || img.Mat.Empty() {
		return nil, fmt.Errorf("%w: nothing to annotate", ErrEmpty)
	}
	out := &img.Mat
	green, amber := color.RGBA{G: 200, A: 255}, color.RGBA{R: 255, G: 160, A: 255}
	for _, m := range marks {
		if !m.Box.valid(img.Width, img.Height) {
			continue
		}
		col := amber
		if m.Known {
			col = green
		}
		r := image.Rect(int(m.Box.X1), int(m.Box.Y1), int(m.Box.X2), int(m.Box.Y2))
		gocv.Rectangle(out, r, col, 2)
		if m.Label != "" {
			gocv.PutText(out, m.Label, image.Pt(r.Min.X, max(12, r.Min.Y-6)), gocv.FontHersheySimplex, 0.7, col, 2)
		}
	}
	return EncodeJPEG(*out, quality)
}

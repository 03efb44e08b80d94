package camera

import (
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"time"

	"github.com/facedhq/faced/face"
)

// overlay is a face box and its track's label on the shown frame.
type overlay struct {
	box   face.Box
	label string
}

// ErrNoFrame is returned before the first frame was processed.
var ErrNoFrame = errors.New("camera: no frame processed yet")

// FrameJPEG returns the last processed frame with its faces' boxes and
// labels (names of decided persons, "unknown", "spoof"), as JPEG. It is
// drawn on a copy, on request, so watching costs nothing when nobody does.
func (c *Camera) FrameJPEG() ([]byte, error) {
	// Only the copy is made under the lock: drawing and encoding a 1080p
	// frame takes tens of milliseconds, which capture and process must
	// not wait for.
	c.mu.Lock()
	if c.shown == nil {
		c.mu.Unlock()
		return nil, ErrNoFrame
	}
	img := c.shown.img.Clone()
	marks := make([]face.Mark, len(c.overlays))
	for i, o := range c.overlays {
		marks[i] = face.Mark{Box: o.box, Label: o.label, Known: o.label != "" && o.label != "unknown" && o.label != "spoof"}
	}
	c.mu.Unlock()
	defer img.Close()
	return face.Annotate(img, marks, 80)
}

// frameSignal returns a channel closed at the next processed frame.
func (c *Camera) frameSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shownSig
}

// ServeMJPEG streams annotated frames as multipart/x-mixed-replace until
// the client goes away or ctx ends: one part per processed frame.
func (c *Camera) ServeMJPEG(ctx context.Context, w http.ResponseWriter) error {
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	for {
		if jpg, err := c.FrameJPEG(); err == nil {
			part, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":   {"image/jpeg"},
				"Content-Length": {fmt.Sprint(len(jpg))},
			})
			if err != nil {
				return err
			}
			if _, err := part.Write(jpg); err != nil {
				return err
			}
			// A viewer that stops reading must not hold the handler.
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := rc.Flush(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.frameSignal():
		case <-time.After(2 * time.Second): // resend: keeps a stalled camera's viewer informed
		}
	}
}

package face

import (
	"image"
	"math"

	"github.com/facedhq/faced/models"
)

// Point is a position in photo pixels.
type Point struct {
	X float32 `json:"x"`
	Y float32 `json:"y"`
}

// Box is a face rectangle in photo pixels.
type Box struct {
	X1 float32 `json:"x1"`
	Y1 float32 `json:"y1"`
	X2 float32 `json:"x2"`
	Y2 float32 `json:"y2"`
}

// Width of the box.
func (b Box) Width() float32 { return b.X2 - b.X1 }

// Height of the box.
func (b Box) Height() float32 { return b.Y2 - b.Y1 }

// Area of the box.
func (b Box) Area() float32 { return max(b.Width(), 0) * max(b.Height(), 0) }

// clampTo keeps the box inside a w x h photo.
func (b Box) clampTo(w, h int) Box {
	fw, fh := float32(w), float32(h)
	return Box{
		X1: min(max(b.X1, 0), fw), Y1: min(max(b.Y1, 0), fh),
		X2: min(max(b.X2, 0), fw), Y2: min(max(b.Y2, 0), fh),
	}
}

// letterbox maps between a photo and a network input it was fitted into
// with its aspect ratio kept and the rest padded.
type letterbox struct {
	// input pixels per photo pixel; the two differ only by the rounding
	// of a resize to whole pixels
	scaleX, scaleY float32
	padX, padY     float32 // padding before the photo, in input pixels
	inW, inH       float32
}

func newLetterbox(photoW, photoH, inW, inH int) letterbox {
	s := min(float32(inW)/float32(photoW), float32(inH)/float32(photoH))
	return letterbox{
		scaleX: s, scaleY: s,
		padX: (float32(inW) - s*float32(photoW)) / 2,
		padY: (float32(inH) - s*float32(photoH)) / 2,
		inW:  float32(inW), inH: float32(inH),
	}
}

// toPhoto maps a normalised network-input point back to photo pixels.
func (l letterbox) toPhoto(p models.Point) Point {
	return Point{(p.X*l.inW - l.padX) / l.scaleX, (p.Y*l.inH - l.padY) / l.scaleY}
}

// squareCrop is the region a "box" crop network sees: a square of side
// max(w,h)·scale centred on the box, shrunk if the photo is too small and
// shifted (not cut) to stay inside the photo, as the Silent-Face and
// faceplugin networks were trained.
func squareCrop(b Box, photoW, photoH int, scale float32) image.Rectangle {
	side := max(b.Width(), b.Height())
	if side <= 0 {
		return image.Rectangle{}
	}
	limit := float32(min(photoW, photoH))
	s := min(side*scale, limit)
	cx, cy := (b.X1+b.X2)/2, (b.Y1+b.Y2)/2
	x1, y1 := cx-s/2, cy-s/2
	x1 = min(max(x1, 0), float32(photoW)-s)
	y1 = min(max(y1, 0), float32(photoH)-s)
	r := image.Rect(int(x1), int(y1), int(x1+s), int(y1+s))
	return r.Intersect(image.Rect(0, 0, photoW, photoH))
}

// centredSquare is a square of side max(w,h)·scale centred on the box. Unlike
// squareCrop it may extend past the photo: the caller pads, so a face cut
// by the photo's edge stays centred in what the network sees.
func centredSquare(b Box, scale float32) image.Rectangle {
	s := max(b.Width(), b.Height()) * scale
	cx, cy := (b.X1+b.X2)/2, (b.Y1+b.Y2)/2
	x1, y1 := int(cx-s/2), int(cy-s/2)
	return image.Rect(x1, y1, x1+int(s), y1+int(s))
}

// eyeCrop is the square around one eye the eye-state network sees: centred
// on the four lid points, 1.6 times the eye's corner-to-corner width.
func eyeCrop(pts []Point, corner1, corner2 int, lids [4]int, photoW, photoH int) image.Rectangle {
	var cx, cy float32
	for _, i := range lids {
		cx += pts[i].X / 4
		cy += pts[i].Y / 4
	}
	w := float32(math.Hypot(float64(pts[corner2].X-pts[corner1].X), float64(pts[corner2].Y-pts[corner1].Y))) * 1.6
	if w < 2 {
		return image.Rectangle{}
	}
	r := image.Rect(int(cx-w/2), int(cy-w/2), int(cx+w/2), int(cy+w/2))
	return r.Intersect(image.Rect(0, 0, photoW, photoH))
}

// similarity is a 2x3 affine matrix [a -b tx; b a ty]: rotation, uniform
// scale and translation.
type similarity [6]float64

// fitSimilarity finds the least-squares similarity transform taking src to
// dst (Umeyama's closed form without reflection). It is deterministic,
// unlike OpenCV's RANSAC estimator, so the same photo always gives the same
// crop and the same embedding.
func fitSimilarity(src, dst []Point) (similarity, bool) {
	n := float64(len(src))
	if len(src) != len(dst) || n < 2 {
		return similarity{}, false
	}
	var sx, sy, dx, dy float64
	for i := range src {
		sx += float64(src[i].X)
		sy += float64(src[i].Y)
		dx += float64(dst[i].X)
		dy += float64(dst[i].Y)
	}
	sx, sy, dx, dy = sx/n, sy/n, dx/n, dy/n
	var num1, num2, den float64
	for i := range src {
		px, py := float64(src[i].X)-sx, float64(src[i].Y)-sy
		qx, qy := float64(dst[i].X)-dx, float64(dst[i].Y)-dy
		num1 += px*qx + py*qy
		num2 += px*qy - py*qx
		den += px*px + py*py
	}
	if den < 1e-9 {
		return similarity{}, false
	}
	a, b := num1/den, num2/den
	return similarity{a, -b, dx - (a*sx - b*sy), b, a, dy - (b*sx + a*sy)}, true
}

// apply maps a point through the transform.
func (m similarity) apply(p Point) Point {
	x, y := float64(p.X), float64(p.Y)
	return Point{float32(m[0]*x + m[1]*y + m[2]), float32(m[3]*x + m[4]*y + m[5])}
}

// valid reports a finite box of positive size that overlaps a w x h image.
func (b Box) valid(w, h int) bool {
	for _, v := range [4]float32{b.X1, b.Y1, b.X2, b.Y2} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return b.X2 > b.X1 && b.Y2 > b.Y1 && b.X2 > 0 && b.Y2 > 0 && b.X1 < float32(w) && b.Y1 < float32(h)
}

// scaled maps the box from photo pixels to those of the photo resized by
// sx, sy.
func (b Box) scaled(sx, sy float32) Box {
	return Box{b.X1 * sx, b.Y1 * sy, b.X2 * sx, b.Y2 * sy}
}

package face

import (
	"cmp"
	"context"
	"image"
	"math"
	"slices"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// Detection at a distance.
//
// A detector sees a fixed, small input (UltraFace 320x240, BlazeFace
// 128x128). Fitting a whole 1080p frame into it shrinks a face 3 m from the
// camera to a few input pixels, below what any of our detectors finds. So
// detection runs in up to two passes:
//
//  1. the whole photo, letterboxed into the input: every face the detector
//     can see at that scale, which is every face of a close-up or a
//     portrait. If one of them is a close-up (FaceSearch.CloseUp of the
//     photo's short side), detection stops here: the fast path.
//  2. overlapping tiles of the photo at the scale where a face of
//     FaceSearch.MinFace photo pixels becomes the detector's smallest
//     reliable face (models.Spec.MinFace input pixels). The photo is
//     resampled to that scale once and the tiles, each exactly the
//     detector's input, are cut from it (see tilePlan). Tiles overlap by
//     more than the largest face pass 1 could miss, so every such face lies
//     whole inside at least one tile; detections cut by an inner tile edge
//     are dropped, and the passes are merged by non-maximum suppression.
//
// The second pass runs only where it adds something: when its scale is
// clearly finer than the first pass's (a 640x480 photo needs one pass).

// FaceSearch bounds the faces detection looks for.
type FaceSearch struct {
	// MinFace is the smallest face looked for, in photo pixels. Zero means
	// 20 px, or 1/48 of the photo's longer side if that is bigger (40 px
	// on 1080p: a person about 5 m from a typical door camera).
	MinFace float32
	// CloseUp ends detection after the whole-photo pass when it found a
	// face at least this fraction of the photo's shorter side. Zero means
	// 0.2; a negative value always runs both passes.
	CloseUp float32
}

// Defaults of FaceSearch.
const (
	defaultMinFace         = 20
	defaultMinFaceFraction = 1.0 / 48
	defaultCloseUp         = 0.2
	// defaultNetMinFace is assumed for a detector whose manifest entry
	// gives no min_face.
	defaultNetMinFace = 20
	// finerScale: the tiled pass runs only if its scale is this much
	// finer than the whole-photo pass's.
	finerScale = 1.25
)

func (s FaceSearch) minFace(w, h int) float32 {
	if s.MinFace > 0 {
		return s.MinFace
	}
	return max(defaultMinFace, defaultMinFaceFraction*float32(max(w, h)))
}

func (s FaceSearch) closeUp() float32 {
	if s.CloseUp == 0 {
		return defaultCloseUp
	}
	return s.CloseUp
}

// tile is one detector run of the tiled pass: a region of the resampled
// photo, at most the detector's input size (smaller only where the whole
// resampled photo is), padded into the input.
type tile struct {
	rect image.Rectangle // in resampled-photo pixels
	// inner marks the sides of rect that lie inside the photo (left, top,
	// right, bottom): a detection touching one is cut by the tile edge.
	inner [4]bool
}

// tilePlan is the tiled pass: the photo resampled once, to size, and tiles
// cut from that one image at whole-pixel offsets. Resampling each tile from
// the full photo instead costs a resize per tile (most of the detection
// time on a 1080p frame); cutting at whole pixels of one resampled image
// means every tile sees exactly the pixels that image holds, and maps
// back to the photo by one scale per axis.
type tilePlan struct {
	size  image.Point // the resampled photo
	tiles []tile
}

// planTiles covers a w x h photo, resampled to the scale that brings a face
// of minFace photo pixels to netMin input pixels, with tiles of the
// detector's input size. It returns no tiles when the whole-photo pass
// already runs at that scale (or finer), or when the tiles would be no
// finer than it.
func planTiles(w, h, inW, inH int, netMin, minFace float32) tilePlan {
	if w <= 0 || h <= 0 || inW <= 0 || inH <= 0 || netMin <= 0 || minFace <= 0 {
		return tilePlan{}
	}
	whole := min(float32(inW)/float32(w), float32(inH)/float32(h))
	// Never upscale: a face smaller than the detector's minimum in the
	// original photo is too small to recognise anyway.
	fine := min(netMin/minFace, 1)
	if fine <= whole*finerScale {
		return tilePlan{}
	}
	sw := max(1, int(math.Round(float64(w)*float64(fine))))
	sh := max(1, int(math.Round(float64(h)*float64(fine))))
	// The biggest face the whole-photo pass may miss (netMin input pixels
	// there), with a margin for the box being larger than the face's core,
	// in resampled pixels.
	overlap := int(math.Ceil(float64(1.5 * netMin / whole * fine)))
	xs := spans(sw, min(inW, sw), overlap)
	ys := spans(sh, min(inH, sh), overlap)
	plan := tilePlan{size: image.Pt(sw, sh), tiles: make([]tile, 0, len(xs)*len(ys))}
	for _, y := range ys {
		for _, x := range xs {
			r := image.Rect(x[0], y[0], x[1], y[1])
			plan.tiles = append(plan.tiles, tile{rect: r, inner: [4]bool{r.Min.X > 0, r.Min.Y > 0, r.Max.X < sw, r.Max.Y < sh}})
		}
	}
	return plan
}

// spans cuts [0, n) into the fewest windows of length size that overlap by
// at least overlap, spread evenly; one window [0, n) if n fits in size.
func spans(n, size, overlap int) [][2]int {
	if size >= n {
		return [][2]int{{0, n}}
	}
	overlap = min(overlap, size/2)
	count := int(math.Ceil(float64(n-overlap) / float64(size-overlap)))
	count = max(count, 2)
	out := make([][2]int, count)
	for i := range count {
		// Even spread: the first window starts at 0 and the last ends at n.
		start := int(math.Round(float64(i) * float64(n-size) / float64(count-1)))
		out[i] = [2]int{start, start + size}
	}
	return out
}

// cutByEdge reports whether a detection, in resampled-photo pixels, touches
// one of the tile's inner edges, so that part of the face lies in another
// tile.
func (t tile) cutByEdge(b Box) bool {
	const margin = 2
	r := t.rect
	return (t.inner[0] && b.X1 <= float32(r.Min.X)+margin) ||
		(t.inner[1] && b.Y1 <= float32(r.Min.Y)+margin) ||
		(t.inner[2] && b.X2 >= float32(r.Max.X)-margin) ||
		(t.inner[3] && b.Y2 >= float32(r.Max.Y)-margin)
}

// detect runs the detector over the photo: the whole photo, then, unless it
// found a close-up, the tiles planTiles asks for.
func (p *Pipeline) detect(ctx context.Context, img gocv.Mat, search FaceSearch) ([]detection, error) {
	n := p.nets[models.TaskDetect]
	in := n.spec.Input
	w, h := img.Cols(), img.Rows()
	px, lb, err := letterboxPixels(img, in.Width(), in.Height(), in.Color)
	if err != nil {
		return nil, err
	}
	out, err := p.detectPixels(ctx, px, lb, w, h)
	if err != nil {
		return nil, err
	}
	closeUp := search.closeUp() * float32(min(w, h))
	for _, d := range out {
		if search.closeUp() > 0 && max(d.box.Width(), d.box.Height()) >= closeUp {
			return out, nil
		}
	}
	netMin := n.spec.MinFace
	if netMin <= 0 {
		netMin = defaultNetMinFace
	}
	plan := planTiles(w, h, in.Width(), in.Height(), netMin, search.minFace(w, h))
	if len(plan.tiles) == 0 {
		return out, nil
	}
	tiled, err := p.detectTiles(ctx, img, plan)
	if err != nil {
		return nil, err
	}
	return mergeDetections(append(out, tiled...)), nil
}

// detectTiles runs the tiled pass: what each tile finds, in photo pixels,
// except detections cut by an inner tile edge; not yet merged.
func (p *Pipeline) detectTiles(ctx context.Context, img gocv.Mat, plan tilePlan) ([]detection, error) {
	in := p.nets[models.TaskDetect].spec.Input
	w, h := img.Cols(), img.Rows()
	scaled, err := resizePixels(img, plan.size.X, plan.size.Y, in.Color)
	if err != nil {
		return nil, err
	}
	sx, sy := float32(plan.size.X)/float32(w), float32(plan.size.Y)/float32(h)
	var out []detection
	for _, t := range plan.tiles {
		px, pad := cutPixels(scaled, t.rect, in.Width(), in.Height())
		// From the input back to the photo: undo the padding, move to the
		// tile's place, undo the scale.
		lb := letterbox{scaleX: sx, scaleY: sy, padX: float32(pad.X - t.rect.Min.X), padY: float32(pad.Y - t.rect.Min.Y),
			inW: float32(in.Width()), inH: float32(in.Height())}
		found, err := p.detectPixels(ctx, px, lb, w, h)
		if err != nil {
			return nil, err
		}
		for _, d := range found {
			if !t.cutByEdge(d.box.scaled(sx, sy)) {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// detectPixels runs the detector once on an input and maps what it finds
// back to the w x h photo.
func (p *Pipeline) detectPixels(ctx context.Context, px models.Pixels, lb letterbox, w, h int) ([]detection, error) {
	raw, err := p.run(ctx, p.nets[models.TaskDetect], px)
	if err != nil {
		return nil, err
	}
	found, err := p.detector.Decode(raw, p.cfg.MinScore)
	if err != nil {
		return nil, err
	}
	var out []detection
	for _, d := range found {
		tl, br := lb.toPhoto(models.Point{X: d.Box.X1, Y: d.Box.Y1}), lb.toPhoto(models.Point{X: d.Box.X2, Y: d.Box.Y2})
		box := Box{tl.X, tl.Y, br.X, br.Y}.clampTo(w, h)
		if box.Width() < 1 || box.Height() < 1 {
			continue
		}
		det := detection{box: box, score: d.Score}
		for _, k := range d.Keypoints {
			det.keypoints = append(det.keypoints, lb.toPhoto(k))
		}
		out = append(out, det)
	}
	return out, nil
}

// Two detections are one face when they overlap by mergeIoU, or when
// mergeInside of the smaller lies inside the bigger (a tile and the whole
// photo may frame the same face a little differently).
const (
	mergeIoU    = 0.4
	mergeInside = 0.8
)

// mergeDetections keeps, of detections that are one face, the best
// scoring, best first.
func mergeDetections(dets []detection) []detection {
	slices.SortStableFunc(dets, func(a, b detection) int { return cmp.Compare(b.score, a.score) })
	var kept []detection
	for _, d := range dets {
		if !slices.ContainsFunc(kept, func(k detection) bool { return sameFace(k.box, d.box) }) {
			kept = append(kept, d)
		}
	}
	return kept
}

func sameFace(a, b Box) bool {
	inter := Box{max(a.X1, b.X1), max(a.Y1, b.Y1), min(a.X2, b.X2), min(a.Y2, b.Y2)}.Area()
	if inter <= 0 {
		return false
	}
	union := a.Area() + b.Area() - inter
	return inter/union > mergeIoU || inter/min(a.Area(), b.Area()) > mergeInside
}

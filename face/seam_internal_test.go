package face

import (
	"context"
	"image"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// TestTileSeamFaceFoundOnce puts a real face, 48 px wide (at the limit of
// what the whole-photo pass on 1080p may see), on the seams of the tiled
// pass: the inner edges where one tile cuts the face and a neighbour holds
// it whole, just inside such an edge, and a corner where four tiles meet.
// Each time the tiled pass alone, and the whole search, must find the face
// exactly once, where it was put. (UltraFace does not report the half of a
// face a tile edge cuts at this size, so the cut-by-edge filter itself is
// covered by TestCutByEdge.)
func TestTileSeamFaceFoundOnce(t *testing.T) {
	dir := testenv.DepsDir(t)
	o, err := onnxrt.New(accel.Config{LibDir: models.LibDir(dir), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	p, err := New(ctx, Config{DepsDir: dir, Backends: []accel.Backend{o}, Detector: "ultraface-rfb320", Landmarks: "landmark68"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	found, err := p.Detect(ctx, photo, Options{})
	if err != nil || len(found) != 1 {
		t.Fatalf("deepface/img1.jpg: %d faces, %v", len(found), err)
	}
	const w, h, facePx = 1920, 1080, 48
	// A frame twice the size with the face at its centre, from which a
	// 1920x1080 window puts the face anywhere.
	placed, err := Place(photo, found[0].Box, 2*w, 2*h, facePx)
	if err != nil {
		t.Fatal(err)
	}
	big, err := Decode(placed, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	faceH := found[0].Box.Height() * facePx / found[0].Box.Width()

	in := p.nets[models.TaskDetect].spec.Input
	plan := planTiles(w, h, in.Width(), in.Height(), p.nets[models.TaskDetect].spec.MinFace, p.cfg.Search.minFace(w, h))
	if len(plan.tiles) < 4 {
		t.Fatalf("a 1080p frame has %d tiles, want a tiled pass with seams both ways", len(plan.tiles))
	}
	sx, sy := float32(w)/float32(plan.size.X), float32(h)/float32(plan.size.Y)
	// The first tile's right and bottom edges (the face cut there lies
	// whole in the next column or row), the second column's left edge, and
	// the point where the first four tiles overlap.
	first, second := plan.tiles[0].rect, plan.tiles[1].rect
	seams := map[string]Point{
		"right edge": {float32(first.Max.X) * sx, float32(h) / 2},
		// Mostly inside the first tile, a fifth of it over the edge.
		"fifth over right edge":  {float32(first.Max.X)*sx - 0.3*facePx, float32(h) / 2},
		"fifth over bottom edge": {float32(first.Min.X+first.Max.X) / 2 * sx, float32(first.Max.Y)*sy - 0.3*faceH},
		"left edge":              {float32(second.Min.X) * sx, float32(h) / 2},
		"bottom edge":            {float32(first.Min.X+first.Max.X) / 2 * sx, float32(first.Max.Y) * sy},
		"corner":                 {float32(first.Max.X) * sx, float32(first.Max.Y) * sy},
	}
	for name, at := range seams {
		t.Run(name, func(t *testing.T) {
			// The face centre is at (w, h) in the big frame: a window whose
			// corner is (w, h) - at puts it at at.
			corner := image.Pt(w-int(at.X+0.5), h-int(at.Y+0.5))
			win := big.Mat.Region(image.Rectangle{Min: corner, Max: corner.Add(image.Pt(w, h))})
			frame := win.Clone()
			win.Close()
			defer frame.Close()

			// The tiled pass alone (the whole-photo pass may or may not see
			// a face this small), and the whole search.
			tiled, err := p.detectTiles(ctx, frame, plan)
			if err != nil {
				t.Fatal(err)
			}
			all, err := p.detect(ctx, frame, FaceSearch{})
			if err != nil {
				t.Fatal(err)
			}
			want := Box{at.X - facePx/2, at.Y - faceH/2, at.X + facePx/2, at.Y + faceH/2}
			// Each tile that holds the face whole may find it; none may
			// report the part of it that an inner edge cut off.
			for _, d := range tiled {
				if iou(d.box, want) < 0.5 {
					t.Errorf("a tile reported %v, not the face at %v (cut by its edge?)", d.box, want)
				}
			}
			for pass, dets := range map[string][]detection{"tiled pass": mergeDetections(tiled), "search": all} {
				if len(dets) != 1 {
					t.Errorf("%s: %d faces (%v), want one at %v", pass, len(dets), dets, want)
				} else if iou(dets[0].box, want) < 0.5 {
					t.Errorf("%s: the face at %v, want about %v", pass, dets[0].box, want)
				}
			}
		})
	}
}

func iou(a, b Box) float32 {
	inter := Box{max(a.X1, b.X1), max(a.Y1, b.Y1), min(a.X2, b.X2), min(a.Y2, b.Y2)}.Area()
	return inter / (a.Area() + b.Area() - inter)
}

package face

import (
	"image"
	"testing"
)

// TestPlanTiles: which photos get a tiled pass, and that the tiles cover
// the photo with the overlap the whole-photo pass needs.
func TestPlanTiles(t *testing.T) {
	const inW, inH, netMin = 320, 240, 12
	cases := []struct {
		name      string
		w, h      int
		minFace   float32
		wantTiles bool
	}{
		// 640x480 at 20 px: the whole photo runs at 0.5, the tiles would at
		// 0.6: not finer enough to pay for themselves.
		{"vga portrait", 640, 480, 20, false},
		{"small photo", 300, 200, 20, false},
		{"1024 scene", 1024, 768, 21.3, true},
		{"1080p at 40 px", 1920, 1080, 40, true},
		// A minimum face the whole-photo pass already reaches.
		{"1080p at 100 px", 1920, 1080, 100, false},
		{"tall photo", 480, 2000, 20, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tiles := planTiles(c.w, c.h, inW, inH, netMin, c.minFace)
			if (len(tiles) > 0) != c.wantTiles {
				t.Fatalf("%d tiles, want tiles: %v", len(tiles), c.wantTiles)
			}
			if len(tiles) == 0 {
				return
			}
			whole := min(float32(inW)/float32(c.w), float32(inH)/float32(c.h))
			overlap := int(1.5 * netMin / whole)
			bounds := image.Rect(0, 0, c.w, c.h)
			// Every point of the photo is in a tile, and every face up to the
			// overlap size lies whole inside one tile: check squares of that
			// size on a grid.
			for y := 0; y+overlap <= c.h; y += max(1, overlap/3) {
				for x := 0; x+overlap <= c.w; x += max(1, overlap/3) {
					sq := image.Rect(x, y, x+overlap, y+overlap)
					found := false
					for _, tl := range tiles {
						if !tl.rect.In(bounds) {
							t.Fatalf("tile %v outside the %dx%d photo", tl.rect, c.w, c.h)
						}
						if sq.In(tl.rect) {
							found = true
							break
						}
					}
					if !found {
						t.Fatalf("a %d px face at %v lies whole in no tile of %v", overlap, sq, tiles)
					}
				}
			}
			// Tiles have the detector's aspect ratio (unless the photo is
			// smaller than a tile in one direction) and are no bigger than
			// the scale needs.
			tw := int(inW / (netMin / c.minFace))
			for _, tl := range tiles {
				if tl.rect.Dx() != min(tw, c.w) {
					t.Errorf("tile %v: width %d, want %d", tl.rect, tl.rect.Dx(), min(tw, c.w))
				}
			}
		})
	}
}

func TestPlanTilesRefusesNonsense(t *testing.T) {
	for _, c := range [][6]float32{{0, 480, 320, 240, 12, 20}, {640, 480, 320, 240, 0, 20}, {640, 480, 320, 240, 12, 0}, {640, 480, 0, 240, 12, 20}} {
		if tiles := planTiles(int(c[0]), int(c[1]), int(c[2]), int(c[3]), c[4], c[5]); tiles != nil {
			t.Errorf("planTiles%v = %v, want none", c, tiles)
		}
	}
}

func TestSpans(t *testing.T) {
	for _, c := range []struct{ n, size, overlap int }{{1000, 400, 50}, {1000, 1000, 50}, {1001, 1000, 50}, {1920, 533, 90}, {100, 60, 40}} {
		s := spans(c.n, c.size, c.overlap)
		if s[0][0] != 0 || s[len(s)-1][1] != c.n {
			t.Errorf("spans(%v) = %v: does not cover [0, %d)", c, s, c.n)
		}
		for i := 1; i < len(s); i++ {
			if ov := s[i-1][1] - s[i][0]; ov < min(c.overlap, c.size/2) {
				t.Errorf("spans(%v) = %v: overlap %d between %d and %d", c, s, ov, i-1, i)
			}
		}
		for _, w := range s {
			if w[1]-w[0] != min(c.size, c.n) {
				t.Errorf("spans(%v) = %v: window %v is not %d long", c, s, w, c.size)
			}
		}
	}
}

func TestCutByEdge(t *testing.T) {
	tl := tile{rect: image.Rect(100, 100, 400, 300), inner: [4]bool{true, true, false, true}}
	for _, c := range []struct {
		b   Box
		cut bool
	}{
		{Box{150, 150, 200, 200}, false},
		{Box{100, 150, 140, 190}, true},  // at the left, an inner edge
		{Box{350, 150, 400, 190}, false}, // at the right, the photo's border
		{Box{150, 260, 190, 300}, true},  // at the bottom, inner
	} {
		if got := tl.cutByEdge(c.b); got != c.cut {
			t.Errorf("cutByEdge(%v) = %v, want %v", c.b, got, c.cut)
		}
	}
}

func TestMergeDetections(t *testing.T) {
	dets := []detection{
		{box: Box{0, 0, 100, 100}, score: 0.8},
		{box: Box{5, 5, 95, 95}, score: 0.9},     // the same face, framed tighter by a tile
		{box: Box{300, 0, 340, 40}, score: 0.95}, // another face
		{box: Box{10, 10, 60, 60}, score: 0.7},   // inside the first: the same face
	}
	got := mergeDetections(dets)
	if len(got) != 2 || got[0].score != 0.95 || got[1].score != 0.9 {
		t.Fatalf("merged %+v, want the 0.95 and the 0.9 detections", got)
	}
}

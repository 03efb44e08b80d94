package face

import (
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// TestPlanTiles: which photos get a tiled pass, and that the tiles cover
// the resampled photo with the overlap the whole-photo pass needs.
func TestPlanTiles(t *testing.T) {
	const inW, inH, netMin = 320, 240, 12
	cases := []struct {
		name      string
		w, h      int
		minFace   float32
		wantTiles int
	}{
		// 640x480 at 20 px: the whole photo runs at 0.5, the tiles would at
		// 0.6: not finer enough to pay for themselves.
		{"vga portrait", 640, 480, 20, 0},
		{"small photo", 300, 200, 20, 0},
		{"1024 scene", 1024, 768, 21.3, 4},
		// 576x324 at 0.3: two columns, two rows.
		{"1080p at 40 px", 1920, 1080, 40, 4},
		{"1080p at 20 px", 1920, 1080, 20, 20},
		// A minimum face the whole-photo pass already reaches.
		{"1080p at 100 px", 1920, 1080, 100, 0},
		// 288x1200 at 0.6: one column, narrower than the input.
		{"tall photo", 480, 2000, 20, 8},
		{"odd sizes", 1023, 767, 21.3, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := planTiles(c.w, c.h, inW, inH, netMin, c.minFace)
			if len(plan.tiles) != c.wantTiles {
				t.Fatalf("%d tiles, want %d", len(plan.tiles), c.wantTiles)
			}
			if len(plan.tiles) == 0 {
				return
			}
			fine := netMin / c.minFace
			if want := image.Pt(int(float32(c.w)*fine+0.5), int(float32(c.h)*fine+0.5)); plan.size != want {
				t.Fatalf("resampled to %v, want %v (scale %v)", plan.size, want, fine)
			}
			whole := min(float32(inW)/float32(c.w), float32(inH)/float32(c.h))
			overlap := int(1.5 * netMin / whole * fine)
			bounds := image.Rectangle{Max: plan.size}
			// Every point of the resampled photo is in a tile, and every
			// face up to the overlap size lies whole inside one tile: check
			// squares of that size on a grid.
			for y := 0; y+overlap <= plan.size.Y; y += max(1, overlap/3) {
				for x := 0; x+overlap <= plan.size.X; x += max(1, overlap/3) {
					sq := image.Rect(x, y, x+overlap, y+overlap)
					found := false
					for _, tl := range plan.tiles {
						if sq.In(tl.rect) {
							found = true
							break
						}
					}
					if !found {
						t.Fatalf("a %d px face at %v lies whole in no tile of %v", overlap, sq, plan.tiles)
					}
				}
			}
			// Tiles lie inside the resampled photo, are the detector's input
			// size (or the photo's, where it is smaller), and know which of
			// their edges are inner ones.
			for _, tl := range plan.tiles {
				if !tl.rect.In(bounds) {
					t.Fatalf("tile %v outside the resampled %v", tl.rect, plan.size)
				}
				if tl.rect.Size() != image.Pt(min(inW, plan.size.X), min(inH, plan.size.Y)) {
					t.Errorf("tile %v is not %dx%d", tl.rect, min(inW, plan.size.X), min(inH, plan.size.Y))
				}
				want := [4]bool{tl.rect.Min.X > 0, tl.rect.Min.Y > 0, tl.rect.Max.X < plan.size.X, tl.rect.Max.Y < plan.size.Y}
				if tl.inner != want {
					t.Errorf("tile %v: inner edges %v, want %v", tl.rect, tl.inner, want)
				}
			}
		})
	}
}

func TestPlanTilesRefusesNonsense(t *testing.T) {
	for _, c := range [][6]float32{{0, 480, 320, 240, 12, 20}, {640, 480, 320, 240, 0, 20}, {640, 480, 320, 240, 12, 0}, {640, 480, 0, 240, 12, 20}} {
		if plan := planTiles(int(c[0]), int(c[1]), int(c[2]), int(c[3]), c[4], c[5]); plan.tiles != nil {
			t.Errorf("planTiles%v = %v, want none", c, plan)
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

// TestCutPixels: a tile is the resampled photo's pixels at whole-pixel
// offsets, unchanged, and a tile smaller than the input sits centred on
// black.
func TestCutPixels(t *testing.T) {
	src := models.Pixels{Width: 7, Height: 5, Channels: 3, Data: make([]uint8, 7*5*3)}
	for i := range src.Data {
		src.Data[i] = uint8(i + 1) // no zeros: padding is told apart
	}
	at := func(p models.Pixels, x, y, c int) uint8 { return p.Data[(y*p.Width+x)*p.Channels+c] }

	r := image.Rect(2, 1, 6, 4)
	got, pad := cutPixels(src, r, 4, 3)
	if pad != (image.Point{}) || got.Width != 4 || got.Height != 3 {
		t.Fatalf("full-size tile: %dx%d, pad %v", got.Width, got.Height, pad)
	}
	for y := range 3 {
		for x := range 4 {
			for c := range 3 {
				if at(got, x, y, c) != at(src, r.Min.X+x, r.Min.Y+y, c) {
					t.Fatalf("tile pixel (%d,%d) channel %d is %d, want the photo's %d", x, y, c, at(got, x, y, c), at(src, r.Min.X+x, r.Min.Y+y, c))
				}
			}
		}
	}

	got, pad = cutPixels(src, image.Rect(0, 0, 7, 5), 9, 8)
	if pad != image.Pt(1, 1) {
		t.Fatalf("padded tile: pad %v, want (1,1)", pad)
	}
	for y := range 8 {
		for x := range 9 {
			inside := image.Pt(x, y).In(image.Rect(1, 1, 8, 6))
			for c := range 3 {
				v := at(got, x, y, c)
				switch {
				case inside && v != at(src, x-1, y-1, c):
					t.Fatalf("padded tile (%d,%d): %d, want the photo's %d", x, y, v, at(src, x-1, y-1, c))
				case !inside && v != 0:
					t.Fatalf("padding at (%d,%d) is %d, want black", x, y, v)
				}
			}
		}
	}
}

// TestShrink: sizes come out as asked, from even and odd photos; a
// halving step is the mean of 2x2 blocks (no pixel is skipped, unlike a
// linear resize at a strong downscale); growing is refused.
func TestShrink(t *testing.T) {
	for _, c := range [][4]int{{1920, 1080, 576, 324}, {1024, 767, 576, 431}, {1023, 768, 377, 283}, {640, 480, 320, 240}, {10, 10, 10, 10}} {
		src := gocv.NewMatWithSize(c[1], c[0], gocv.MatTypeCV8UC3)
		out, err := shrink(src, c[2], c[3])
		src.Close()
		if err != nil {
			t.Fatalf("shrink %v: %v", c, err)
		}
		if out.Cols() != c[2] || out.Rows() != c[3] {
			t.Errorf("shrink %dx%d to %dx%d gave %dx%d", c[0], c[1], c[2], c[3], out.Cols(), out.Rows())
		}
		out.Close()
	}

	// One bright pixel in each 4x4 block: a quarter-size image must carry
	// its energy (1/16 of 160 = 10), where sampling would see 0 or 160.
	src := gocv.NewMatWithSize(64, 64, gocv.MatTypeCV8UC1)
	defer src.Close()
	for y := 1; y < 64; y += 4 {
		for x := 2; x < 64; x += 4 {
			src.SetUCharAt(y, x, 160)
		}
	}
	out, err := shrink(src, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for y := range 16 {
		for x := range 16 {
			if v := out.GetUCharAt(y, x); v != 10 {
				t.Fatalf("shrunk pixel (%d,%d) = %d, want the block mean 10", x, y, v)
			}
		}
	}

	big := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV8UC3)
	defer big.Close()
	if _, err := shrink(big, 11, 10); err == nil {
		t.Error("shrink to a bigger size accepted")
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

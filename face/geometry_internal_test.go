package face

import (
	"bytes"
	"context"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// landmarkPipeline is UltraFace with the 68-point landmarks, on ONNX
// Runtime.
func landmarkPipeline(t *testing.T) *Pipeline {
	t.Helper()
	dir := testenv.DepsDir(t)
	o, err := onnxrt.New(accel.Config{LibDir: models.LibDir(dir), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	p, err := New(context.Background(), Config{DepsDir: dir, Backends: []accel.Backend{o}, Detector: "ultraface-rfb320", Landmarks: "landmark68"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dlibGeometry is dlib's face ResNet framing: 150x150, zoom 1.2, 20
// template pixels up.
var dlibGeometry = models.Geometry{Side: 150, Zoom: 1.2, ShiftY: -20}

// TestGeometryCropLandsOnTemplate aligns a real face (landmarks from the
// real 68-point model) into several geometries, then finds the landmarks
// again on each crop, set in a grey frame so the detector sees a whole
// face: they must sit where the geometry's template says, and for the
// zoomed, shifted framings clearly not where the ArcFace template resized
// to the side would put them (so the check tells the framings apart).
func TestGeometryCropLandsOnTemplate(t *testing.T) {
	p := landmarkPipeline(t)
	ctx := context.Background()
	img, err := Decode(testenv.ReadPhoto(t, "deepface/img1.jpg"), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	faces, err := p.DetectImage(ctx, img, Options{Selector: SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("deepface/img1.jpg: %d faces, %v", len(faces), err)
	}
	five := faces[0].Landmarks

	for _, g := range []models.Geometry{models.ArcFaceGeometry, dlibGeometry, {Side: 112, Zoom: 1.2, ShiftY: -20}, {Side: 160, Zoom: 0.8, ShiftY: 10}} {
		crop, err := p.align(img.Mat, five, g)
		if err != nil {
			t.Fatal(err)
		}
		if crop.Cols() != g.Side || crop.Rows() != g.Side {
			t.Fatalf("%+v: crop is %dx%d", g, crop.Cols(), crop.Rows())
		}
		found := landmarksInCrop(t, p, crop)
		crop.Close()
		want := templatePoints(g)
		plain := templatePoints(models.Geometry{Side: g.Side, Zoom: 1})
		// One face's landmarks never all sit on the template (the fit is
		// least squares, and mouths differ in width), but their centroid
		// and spread are what the fit matches: compare those. The
		// tolerance, 3 % of the side, covers the landmark model's own
		// wobble between a photo and a crop of it.
		c, s := spread(found[:])
		wc, ws := spread(want)
		pc, ps := spread(plain)
		tol := 0.03 * float64(g.Side)
		off, offPlain := math.Hypot(c.X-wc.X, c.Y-wc.Y), math.Hypot(c.X-pc.X, c.Y-pc.Y)
		t.Logf("%+v: centroid %.1f px from the template's (%.1f from the ArcFace one's), spread %.3f of the template's (%.3f of the ArcFace one's)",
			g, off, offPlain, s/ws, s/ps)
		if off > tol || math.Abs(s/ws-1) > 0.06 {
			t.Errorf("%+v: landmarks found %v, centroid %.1f px from the template's (tolerance %.1f), spread %.3f of its; template %v", g, found, off, tol, s/ws, want)
		}
		if g.Zoom != 1 && offPlain < 2*tol && math.Abs(s/ps-1) < 0.12 {
			t.Errorf("%+v: landmarks where the plain ArcFace template puts them: the framing made no difference", g)
		}
	}
}

// vec is a point in float64, for the test's sums.
type vec struct{ X, Y float64 }

// spread is the centroid of points and their RMS distance from it.
func spread(pts []Point) (vec, float64) {
	var c vec
	n := float64(len(pts))
	for _, p := range pts {
		c.X += float64(p.X) / n
		c.Y += float64(p.Y) / n
	}
	var ss float64
	for _, p := range pts {
		dx, dy := float64(p.X)-c.X, float64(p.Y)-c.Y
		ss += dx*dx + dy*dy
	}
	return c, math.Sqrt(ss / n)
}

// landmarksInCrop finds the five landmarks of the face in an aligned crop,
// in crop pixels: the crop is put in the middle of a grey frame three
// times its size, where the detector finds it.
func landmarksInCrop(t *testing.T, p *Pipeline, crop gocv.Mat) [5]Point {
	t.Helper()
	side := crop.Cols()
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 3*side, 3*side, gocv.MatTypeCV8UC3)
	defer frame.Close()
	roi := frame.Region(image.Rect(side, side, 2*side, 2*side))
	crop.CopyTo(&roi)
	roi.Close()
	faces, err := p.DetectImage(context.Background(), &Image{Mat: frame, Width: 3 * side, Height: 3 * side}, Options{Selector: SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("%dx%d crop: %d faces, %v", side, side, len(faces), err)
	}
	var out [5]Point
	for i, q := range faces[0].Landmarks {
		out[i] = Point{q.X - float32(side), q.Y - float32(side)}
	}
	return out
}

// The ArcFace geometry's crop is, byte for byte, the crop made before
// geometries existed (the ArcFace template straight into fitSimilarity, a
// 112 warp), so no stored embedding changes; and embedders that share a
// geometry share its warp.
func TestArcFaceCropUnchanged(t *testing.T) {
	p := landmarkPipeline(t)
	img, err := Decode(testenv.ReadPhoto(t, "deepface/img2.jpg"), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	faces, err := p.DetectImage(context.Background(), img, Options{Selector: SelectBiggest})
	if err != nil || len(faces) != 1 {
		t.Fatalf("%d faces, %v", len(faces), err)
	}
	five := faces[0].Landmarks
	for _, keypoints := range []bool{false, true} {
		if keypoints { // BlazeFace: one mouth point
			five[3] = Point{(five[3].X + five[4].X) / 2, (five[3].Y + five[4].Y) / 2}
			five[4] = five[3]
		}
		src, dst := five[:], make([]Point, 5)
		for i, q := range models.ArcFaceTemplate {
			dst[i] = Point{q.X, q.Y}
		}
		if keypoints {
			mouth := Point{(models.ArcFaceTemplate[3].X + models.ArcFaceTemplate[4].X) / 2, (models.ArcFaceTemplate[3].Y + models.ArcFaceTemplate[4].Y) / 2}
			src, dst = five[:4], append(dst[:3], mouth)
		}
		m, ok := fitSimilarity(src, dst)
		if !ok {
			t.Fatal("degenerate")
		}
		old, err := warpAligned(img.Mat, m, models.AlignedSize)
		if err != nil {
			t.Fatal(err)
		}
		now, err := p.align(img.Mat, five, models.ArcFaceGeometry)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old.ToBytes(), now.ToBytes()) {
			t.Errorf("keypoints %v: the ArcFace crop changed", keypoints)
		}
		old.Close()
		now.Close()
	}

	p.embedders = []embedStage{{geometry: models.ArcFaceGeometry}, {geometry: dlibGeometry}, {geometry: models.ArcFaceGeometry}, {geometry: dlibGeometry}}
	p.geometries = p.distinctGeometries()
	warps := 0
	crops, err := p.embedderCrops(img.Mat, func(g models.Geometry) (gocv.Mat, error) {
		warps++
		return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), g.Side, g.Side, gocv.MatTypeCV8UC3), nil
	})
	p.embedders, p.geometries = nil, nil
	if err != nil {
		t.Fatal(err)
	}
	defer closeCrops(crops)
	dlibCrop := crops[dlibGeometry]
	if warps != 1 || len(crops) != 2 || dlibCrop.Cols() != 150 {
		t.Errorf("two embedders of each of two geometries: %d warps, %d crops; want 1 warp (the ArcFace crop is given), 2 crops", warps, len(crops))
	}
}

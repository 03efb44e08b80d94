package face_test

import (
	"cmp"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
)

// widerSample reads the n photos of wider/annotations_ge40px.csv whose
// smallest face is smallest (the hard end: people furthest from the
// camera), with their face boxes.
func widerSample(t *testing.T, n int) (names []string, truth map[string][]face.Box) {
	t.Helper()
	dir := filepath.Join(testenv.DataDir(t), "wider")
	f, err := os.Open(filepath.Join(dir, "annotations_ge40px.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	truth = map[string][]face.Box{}
	for _, r := range recs[1:] {
		var v [4]float32
		for i := range v {
			x, err := strconv.ParseFloat(r[i+1], 32)
			if err != nil {
				t.Fatalf("annotation %v: %v", r, err)
			}
			v[i] = float32(x)
		}
		if _, ok := truth[r[0]]; !ok {
			names = append(names, r[0])
		}
		truth[r[0]] = append(truth[r[0]], face.Box{X1: v[0], Y1: v[1], X2: v[2], Y2: v[3]})
	}
	smallest := func(name string) float32 {
		m := float32(1 << 20)
		for _, b := range truth[name] {
			m = min(m, b.Width())
		}
		return m
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(smallest(a), smallest(b)) })
	return names[:min(n, len(names))], truth
}

// recall is the share of true faces some detection overlaps at IoU 0.5.
func recall(t *testing.T, p *face.Pipeline, names []string, truth map[string][]face.Box, search face.FaceSearch) float64 {
	t.Helper()
	var hit, all int
	for _, name := range names {
		faces, err := p.Detect(context.Background(), testenv.ReadPhoto(t, filepath.Join("wider", "images", name)), face.Options{Search: search})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, tb := range truth[name] {
			all++
			if slices.ContainsFunc(faces, func(f face.Face) bool { return iou(tb, f.Box) >= 0.5 }) {
				hit++
			}
		}
	}
	return float64(hit) / float64(all)
}

// TestDetectionAtDistance: on real scenes (wider/, faces of 40 px and
// more in 1024-px photos: a person a few metres from a door camera), the
// default search finds faces the whole-photo pass alone misses. The full
// set is `faced eval detect` (make eval); this is its 30 hardest photos.
func TestDetectionAtDistance(t *testing.T) {
	p := newPipeline(t, face.Config{Detector: "ultraface-rfb320", Landmarks: "landmark68"})
	names, truth := widerSample(t, 30)
	tiled := recall(t, p, names, truth, face.FaceSearch{})
	// A minimum face as big as the photo: the whole-photo pass only.
	whole := recall(t, p, names, truth, face.FaceSearch{MinFace: 4096})
	t.Logf("recall on %d wider photos: %.3f with tiles, %.3f whole photo only", len(names), tiled, whole)
	if tiled < 0.8 {
		t.Errorf("recall %.3f with the default search, want >= 0.8", tiled)
	}
	if tiled < whole+0.03 {
		t.Errorf("tiles found no more faces than the whole-photo pass (%.3f vs %.3f)", tiled, whole)
	}
}

// TestCloseUpStaysOnePass: a portrait is detected in the whole-photo pass
// alone, so it costs one detector run: the detector's run count shows it.
func TestCloseUpStaysOnePass(t *testing.T) {
	runs := map[string]int{}
	p := newPipeline(t, face.Config{Detector: "ultraface-rfb320", Landmarks: "landmark68",
		Observe: func(model string, _ time.Duration) { runs[model]++ }})
	for _, photo := range []string{"deepface/img1.jpg", "deepface/img2.jpg"} {
		clear(runs)
		faces, err := p.Detect(context.Background(), testenv.ReadPhoto(t, photo), face.Options{})
		if err != nil || len(faces) != 1 {
			t.Fatalf("%s: %d faces, %v", photo, len(faces), err)
		}
		if runs["ultraface-rfb320"] != 1 {
			t.Errorf("%s: the detector ran %d times, want once (a close-up)", photo, runs["ultraface-rfb320"])
		}
	}
	// A scene with small faces takes the tiled pass.
	clear(runs)
	names, _ := widerSample(t, 1)
	if _, err := p.Detect(context.Background(), testenv.ReadPhoto(t, filepath.Join("wider", "images", names[0])), face.Options{}); err != nil {
		t.Fatal(err)
	}
	if runs["ultraface-rfb320"] < 2 {
		t.Errorf("a 1024-px scene ran the detector %d times, want the tiled pass too", runs["ultraface-rfb320"])
	}
}

// TestFlipEmbedding: with Flip, a photo and its mirror image
// (deepface/img11_reflection.jpg is img11.jpg mirrored) embed to nearly
// the same vector, closer than without it, and the embedder ID says so.
func TestFlipEmbedding(t *testing.T) {
	plain := newPipeline(t, face.Config{})
	flip := newPipeline(t, face.Config{Flip: true})
	cos := func(p *face.Pipeline) float32 {
		a, b := embed(t, p, "deepface/img11.jpg"), embed(t, p, "deepface/img11_reflection.jpg")
		var s float32
		for i := range a.Embedding {
			s += a.Embedding[i] * b.Embedding[i]
		}
		return s
	}
	cp, cf := cos(plain), cos(flip)
	t.Logf("photo vs its mirror: cosine %.4f plain, %.4f with flip", cp, cf)
	if cf < 0.97 || cf <= cp {
		t.Errorf("with flip the mirror pair scores %.4f (plain %.4f), want >= 0.97 and above plain", cf, cp)
	}
	if id := flip.EmbedderID(); !strings.HasPrefix(id, "arcface-r512+flip@") {
		t.Errorf("flip embedder id %q, want arcface-r512+flip@...", id)
	}
	if flip.EmbedderID() == plain.EmbedderID() {
		t.Error("flip and plain pipelines share an embedder id: their vectors would mix")
	}
}

package face_test

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// TestFusedEmbedder: a fused embedding is the two embedders' unit vectors
// joined, so its cosine with another is the mean of their cosines; it has
// both dimensions, and an embedder ID naming both.
func TestFusedEmbedder(t *testing.T) {
	base := face.Config{Detector: "ultraface-rfb320", Landmarks: "landmark68"}
	cfgA, cfgB, cfgF := base, base, base
	cfgA.Embedder = "arcface-r512"
	cfgB.Embedder = "mobilefacenet-192"
	cfgF.Embedder, cfgF.FuseEmbedder = "arcface-r512", "mobilefacenet-192"
	a, b, fused := newPipeline(t, cfgA), newPipeline(t, cfgB), newPipeline(t, cfgF)

	if got, want := fused.EmbedderDim(), 512+192; got != want {
		t.Errorf("EmbedderDim = %d, want %d", got, want)
	}
	id := fused.EmbedderID()
	if !regexp.MustCompile(`^arcface-r512\+mobilefacenet-192@[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("EmbedderID = %q, want arcface-r512+mobilefacenet-192@<12 hex>", id)
	}
	idA, _, _ := strings.Cut(a.EmbedderID(), "@")
	_, sumA, _ := strings.Cut(a.EmbedderID(), "@")
	_, sumB, _ := strings.Cut(b.EmbedderID(), "@")
	if _, sum, _ := strings.Cut(id, "@"); idA != "arcface-r512" || sum != sumA[:6]+sumB[:6] {
		t.Errorf("EmbedderID digest %q, want %q+%q", sum, sumA[:6], sumB[:6])
	}
	names := map[string]bool{}
	for _, s := range fused.Models() {
		names[s.Name] = true
	}
	if !names["arcface-r512"] || !names["mobilefacenet-192"] {
		t.Errorf("Models() = %v, want both embedders listed", names)
	}

	checkFusedMean(t, fused, []*face.Pipeline{a, b}, [2]string{"deepface/img1.jpg", "deepface/img2.jpg"}, [2]string{"deepface/img1.jpg", "deepface/img3.jpg"})
}

func TestFusedEmbedderErrors(t *testing.T) {
	dir, backends := backendsFor(t)
	for _, c := range []struct {
		name string
		cfg  face.Config
		want string
	}{
		{"no embedder", face.Config{Embedder: "", FuseEmbedder: "mobilefacenet-192"}, "needs an embedder"},
		{"itself", face.Config{Embedder: "arcface-r512", FuseEmbedder: "arcface-r512"}, "with itself"},
		{"not an embedder", face.Config{Embedder: "arcface-r512", FuseEmbedder: "landmark68"}, "is a landmarks model"},
		{"unknown", face.Config{Embedder: "arcface-r512", FuseEmbedder: "no-such-model"}, "no-such-model"},
		{"third is the first", face.Config{Embedder: "arcface-r512", FuseEmbedder: "mobilefacenet-192+arcface-r512"}, "with itself"},
		{"twice", face.Config{Embedder: "arcface-r512", FuseEmbedder: "mobilefacenet-192+mobilefacenet-192"}, "with itself"},
		{"four", face.Config{Embedder: "arcface-r512", FuseEmbedder: "mobilefacenet-192+mobilefacenet-192-onnx+arcface-framed"}, "at most 3"},
		{"empty third", face.Config{Embedder: "arcface-r512", FuseEmbedder: "mobilefacenet-192+"}, "joined by '+'"},
		{"too long together", face.Config{Embedder: "arcface-r512", FuseEmbedder: "wide"}, "4608 values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			// Declared 4096 wide: accepted alone, too wide fused (never
			// run, so the file need not make 4096 values).
			wide := testenv.FramedArcFace(t)
			wide.Name, wide.Dim = "wide", models.MaxDim
			cfg.CustomModels = []models.Spec{wide}
			cfg.DepsDir, cfg.Backends = dir, backends
			cfg.Detector, cfg.Landmarks = "ultraface-rfb320", "landmark68"
			p, err := face.New(context.Background(), cfg)
			if err == nil {
				p.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to say %q", err, c.want)
			}
		})
	}
}

// TestThreeEmbedders: arcface-r512, mobilefacenet-192-onnx and its TFLite
// twin (another embedder by name and file) fused: each unit vector is
// scaled by 1/sqrt(3), so the fused cosine is the mean of the three
// cosines; the ID names all three with 6 hex digits of each file.
func TestThreeEmbedders(t *testing.T) {
	base := face.Config{Detector: "ultraface-rfb320", Landmarks: "landmark68"}
	names := []string{"arcface-r512", "mobilefacenet-192-onnx", "mobilefacenet-192"}
	singles := make([]*face.Pipeline, len(names))
	for i, n := range names {
		cfg := base
		cfg.Embedder = n
		singles[i] = newPipeline(t, cfg)
	}
	cfg := base
	cfg.Embedder, cfg.FuseEmbedder = names[0], names[1]+"+"+names[2]
	fused := newPipeline(t, cfg)

	wantID := strings.Join(names, "+") + "@"
	for _, p := range singles {
		_, sum, _ := strings.Cut(p.EmbedderID(), "@")
		wantID += sum[:6]
	}
	if got := fused.EmbedderID(); got != wantID {
		t.Errorf("EmbedderID = %q, want %q", got, wantID)
	}
	if got := fused.EmbedderDim(); got != 512+192+192 {
		t.Errorf("EmbedderDim = %d, want 896", got)
	}
	if got := len(fused.Models()); got != 5 {
		t.Errorf("Models() lists %d models, want detector, landmarks and the three embedders", got)
	}
	checkFusedMean(t, fused, singles, [2]string{"deepface/img1.jpg", "deepface/img2.jpg"}, [2]string{"deepface/img1.jpg", "deepface/img3.jpg"})
}

// checkFusedMean checks that fused embeddings are unit length and that
// the fused cosine of each pair is the mean of the single embedders'.
func checkFusedMean(t *testing.T, fused *face.Pipeline, singles []*face.Pipeline, pairs ...[2]string) {
	t.Helper()
	for _, pair := range pairs {
		cos := func(p *face.Pipeline) float64 {
			x, y := embed(t, p, pair[0]), embed(t, p, pair[1])
			return float64(models.Cosine(x.Embedding, y.Embedding))
		}
		var mean float64
		for _, p := range singles {
			mean += cos(p) / float64(len(singles))
		}
		x := embed(t, fused, pair[0])
		if len(x.Embedding) != fused.EmbedderDim() || x.EmbedderID != fused.EmbedderID() {
			t.Fatalf("fused embedding: %d values, id %q", len(x.Embedding), x.EmbedderID)
		}
		var norm float64
		for _, v := range x.Embedding {
			norm += float64(v) * float64(v)
		}
		if math.Abs(norm-1) > 1e-4 {
			t.Errorf("fused embedding has squared norm %.6f, want 1", norm)
		}
		if cf := cos(fused); math.Abs(cf-mean) > 1e-4 {
			t.Errorf("%v: fused cosine %.5f, want the mean of the embedders' %.5f", pair, cf, mean)
		}
	}
}

// TestZoomedEmbedder: an embedder framed otherwise gets its own crop, so
// its vectors differ from the same network's on the ArcFace crop, yet
// still verify the same person; fused with an ArcFace-framed embedder the
// cosine is still the mean; and re-embedding from the kept 112 ArcFace
// crop (the zoomed framing warped from it, a strip at the bottom black)
// comes close to embedding from the photo.
func TestZoomedEmbedder(t *testing.T) {
	base := face.Config{Detector: "ultraface-rfb320", Landmarks: "landmark68", CustomModels: []models.Spec{testenv.FramedArcFace(t)}}
	plainCfg, zoomCfg, fusedCfg := base, base, base
	plainCfg.Embedder = "arcface-r512"
	zoomCfg.Embedder = "arcface-framed"
	fusedCfg.Embedder, fusedCfg.FuseEmbedder = "arcface-r512", "mobilefacenet-192-onnx+arcface-framed"
	plain, zoomed, fused := newPipeline(t, plainCfg), newPipeline(t, zoomCfg), newPipeline(t, fusedCfg)
	mfnCfg := base
	mfnCfg.Embedder = "mobilefacenet-192-onnx"
	mfn := newPipeline(t, mfnCfg)

	a, b := embed(t, zoomed, "deepface/img1.jpg"), embed(t, zoomed, "deepface/img2.jpg")
	c := models.Cosine(embed(t, plain, "deepface/img1.jpg").Embedding, a.Embedding)
	t.Logf("zoomed and ArcFace-framed vectors of one photo: cosine %.4f", c)
	if c > 0.95 {
		t.Errorf("zoomed and ArcFace-framed vectors of one photo: cosine %.3f, want them clearly apart (another crop)", c)
	}
	if c := models.Cosine(a.Embedding, b.Embedding); c < 0.5 {
		t.Errorf("zoomed framing, same person: cosine %.3f, want >= 0.5", c)
	}
	checkFusedMean(t, fused, []*face.Pipeline{plain, mfn, zoomed}, [2]string{"deepface/img1.jpg", "deepface/img2.jpg"})

	for _, p := range []*face.Pipeline{plain, zoomed, fused} {
		for _, photo := range []string{"deepface/img1.jpg", "deepface/img5.jpg"} {
			faces, err := p.Detect(context.Background(), testenv.ReadPhoto(t, photo), face.Options{Embed: true, KeepAligned: true, Selector: face.SelectBiggest})
			if err != nil || len(faces) != 1 {
				t.Fatalf("%s: %d faces, %v", photo, len(faces), err)
			}
			again, err := p.EmbedAligned(context.Background(), faces[0].Aligned)
			if err != nil {
				t.Fatal(err)
			}
			c := models.Cosine(faces[0].Embedding, again)
			t.Logf("%s %s: re-embedded from the kept crop vs from the photo: cosine %.4f", p.EmbedderID(), photo, c)
			if c < 0.9 {
				t.Errorf("%s %s: re-embedded from the kept crop, cosine %.4f with the photo's, want > 0.9", p.EmbedderID(), photo, c)
			}
		}
	}
}

package face_test

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/face"
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

	for _, pair := range [][2]string{{"deepface/img1.jpg", "deepface/img2.jpg"}, {"deepface/img1.jpg", "deepface/img3.jpg"}} {
		cos := func(p *face.Pipeline) float64 {
			x, y := embed(t, p, pair[0]), embed(t, p, pair[1])
			return float64(models.Cosine(x.Embedding, y.Embedding))
		}
		ca, cb := cos(a), cos(b)
		x := embed(t, fused, pair[0])
		if len(x.Embedding) != 704 || x.EmbedderID != id {
			t.Fatalf("fused embedding: %d values, id %q", len(x.Embedding), x.EmbedderID)
		}
		var norm float64
		for _, v := range x.Embedding {
			norm += float64(v) * float64(v)
		}
		if math.Abs(norm-1) > 1e-4 {
			t.Errorf("fused embedding has squared norm %.6f, want 1", norm)
		}
		if cf := cos(fused); math.Abs(cf-(ca+cb)/2) > 1e-4 {
			t.Errorf("%v: fused cosine %.5f, want the mean of %.5f and %.5f", pair, cf, ca, cb)
		}
	}
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
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
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

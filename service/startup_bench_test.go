package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// BenchmarkStartup100k measures what a restart costs with 100 000 enrolled
// faces: opening the store and rebuilding the index ("store+index"), and
// loading the default models ("models"). Ready-to-serve is their sum.
func BenchmarkStartup100k(b *testing.B) {
	const persons, perPerson = 1000, 100
	path := filepath.Join(b.TempDir(), "faced.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dim, embedder := vision.Pipeline.EmbedderDim(), vision.Pipeline.EmbedderID()
	if _, err := db.CreateGallery(ctx, store.Gallery{Name: "default"}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for p := range persons {
		faces := make([]store.NewFace, perPerson)
		for i := range faces {
			v := make([]float32, dim)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			faces[i] = store.NewFace{Face: store.Face{Galleries: []string{"default"}, Embedding: models.L2Normalize(v),
				EmbedderID: embedder, PhotoHash: fmt.Sprintf("%064x", p*perPerson+i)}}
		}
		if _, _, err := db.CreatePerson(ctx, store.Person{ID: fmt.Sprintf("p%d", p)}, faces); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()

	b.Run("store+index", func(b *testing.B) {
		for b.Loop() {
			db, err := store.Open(path, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			svc, err := service.New(ctx, db, vision.Pipeline, service.Config{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if svc.IndexSize() != persons*perPerson {
				b.Fatalf("index has %d faces", svc.IndexSize())
			}
			db.Close()
		}
	})
	b.Run("models", func(b *testing.B) {
		for b.Loop() {
			v, err := daemon.OpenVision(ctx, daemon.DefaultVision())
			if err != nil {
				b.Fatal(err)
			}
			v.Close()
		}
	})
}

package service_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestThreeEmbedderReembed: faces enrolled (crops kept) with the default
// pair move to a three-way fusion whose third embedder is framed otherwise
// (testenv.FramedArcFace: arcface-r512's file declared with align_zoom 1.2,
// align_shift_y -20, as dlib's ResNet wants), re-embedded from the kept 112 ArcFace crops; each
// person is then found from another photo. The service refuses the
// combination without a calibration and takes one from Config.Calibrations
// under the joined name.
func TestThreeEmbedderReembed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "faced.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pair, err := service.New(ctx, db, vision.Pipeline, service.Config{KeepImages: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	enrollPeople(t, pair)

	framed := testenv.FramedArcFace(t)
	three, err := face.New(ctx, face.Config{
		DepsDir: vision.DepsDir, Backends: vision.Backends, Detector: "ultraface-rfb320", Landmarks: "landmark68",
		Embedder: "arcface-r512", FuseEmbedder: "mobilefacenet-192-onnx+" + framed.Name, CustomModels: []models.Spec{framed},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer three.Close()
	name := "arcface-r512+mobilefacenet-192-onnx+" + framed.Name

	if _, err := service.New(ctx, db, three, service.Config{KeepImages: true}, nil); err == nil || !strings.Contains(err.Error(), "has no calibration") {
		t.Fatalf("three embedders without a calibration: %v", err)
	}
	// Not a measured calibration: the default pair's presets, for the
	// test to have thresholds at all.
	calib := map[string]service.Calibration{name: service.Calibrations["arcface-r512+mobilefacenet-192-onnx"]}
	var logs testenv.Buffer
	svc, err := service.New(ctx, db, three, service.Config{KeepImages: true, Calibrations: calib}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svc.EmbedderID(), name+"@") {
		t.Fatalf("embedder %q", svc.EmbedderID())
	}
	r, err := svc.Reembed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reembedded != len(people) || r.Failed != 0 {
		t.Fatalf("reembed: %+v, want all %d faces moved\n%s", r, len(people), logs.String())
	}
	for _, p := range people {
		res := identify(t, svc, service.IdentifyRequest{Photo: photo(t, p.probe), Threshold: service.DefaultThreshold})
		if got := topPerson(res); got != p.id {
			t.Errorf("%s: found %q, want %s", p.probe, got, p.id)
		} else {
			t.Logf("%s: %s at similarity %.3f", p.probe, got, res[0].Matches[0].Similarity)
		}
	}
}

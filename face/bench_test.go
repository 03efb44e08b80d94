package face_test

import (
	"context"
	"testing"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
)

// BenchmarkDetectAlignEmbed measures the recognition path on a 640x480
// one-face photo, one request at a time on one inference thread: the
// issue's "<= 25 ms on one core" target. `faced bench pipeline` reports the
// same per stage and on all cores.
func BenchmarkDetectAlignEmbed(b *testing.B) {
	photo, err := face.Reframe(testenv.ReadPhoto(b, "deepface/img1.jpg"), 640, 480)
	if err != nil {
		b.Fatal(err)
	}
	for _, cfg := range []face.Config{
		{Detector: "blazeface-front-onnx", Align: "keypoints", Embedder: "arcface-r512"},
		{Detector: "ultraface-rfb320", Landmarks: "landmark68", Embedder: "arcface-r512"},
	} {
		b.Run(cfg.Detector, func(b *testing.B) {
			p := newPipeline(b, cfg)
			opts := face.Options{Embed: true, Selector: face.SelectBiggest}
			ctx := context.Background()
			for b.Loop() {
				faces, err := p.Detect(ctx, photo, opts)
				if err != nil || len(faces) != 1 {
					b.Fatalf("%d faces, %v", len(faces), err)
				}
			}
		})
	}
}

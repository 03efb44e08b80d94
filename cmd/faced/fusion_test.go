package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

// threeEmbedders are three catalogue embedders: arcface-r512, and
// MobileFaceNet in ONNX and in TFLite (twins, but two embedders by name
// and file). No built-in calibration covers them.
const threeEmbedders = "arcface-r512+mobilefacenet-192-onnx+mobilefacenet-192"

// eval verify measures a three-way fusion (how its calibration is found):
// the report names all three with 6 hex digits of each file, has no
// confidences for want of a calibration, and still verifies deepface's
// pairs. Four embedders, or one twice, are refused.
func TestEvalVerifyThreeEmbedders(t *testing.T) {
	images := filepath.Join(testenv.DataDir(t), "deepface")
	args := []string{"eval", "verify", "--json", "--pairs", filepath.Join(images, "master.csv"), "--images", images}
	var r verifyJSON
	decodeJSON(t, mustFaced(t, append(args, "--embedder", threeEmbedders)...), &r, verifyKeys...)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(threeEmbedders) + `@[0-9a-f]{18}$`).MatchString(r.Embedder) {
		t.Errorf("embedder %q, want %s@<18 hex>", r.Embedder, threeEmbedders)
	}
	t.Logf("deepface, %s: accuracy %.4f, AUC %.4f", r.Embedder, r.Accuracy, r.AUC)
	if r.Accuracy < 0.9 || r.AUC < 0.95 {
		t.Errorf("accuracy %.4f, AUC %.4f: want a working fusion (>= 0.9, >= 0.95)", r.Accuracy, r.AUC)
	}
	if r.ThresholdConfidence != nil || len(r.APIPresets) != 0 {
		t.Errorf("an uncalibrated combination got confidences: %v, %v", r.ThresholdConfidence, r.APIPresets)
	}
	for _, tc := range []struct{ embedder, want string }{
		{threeEmbedders + "+arcface-r512", "at most 3 can be fused"},
		{"arcface-r512+mobilefacenet-192+arcface-r512", "with itself"},
	} {
		if _, _, err := faced(t, append(args, "--embedder", tc.embedder)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--embedder %s: %v, want %q", tc.embedder, err, tc.want)
		}
	}
}

// bench runs a three-way fusion and reports it by its setting.
func TestBenchThreeEmbedders(t *testing.T) {
	images := filepath.Join(testenv.DataDir(t), "deepface")
	var r struct {
		Embedder string `json:"embedder"`
		Images   int    `json:"images"`
	}
	out := mustFaced(t, "bench", "pipeline", "--images", images, "--calls", "2", "--max-images", "1", "--embedder", threeEmbedders, "--json")
	decodeJSON(t, out, &r, "embedder", "images")
	if r.Embedder != threeEmbedders || r.Images != 1 {
		t.Errorf("bench reports embedder %q, %d images", r.Embedder, r.Images)
	}
}

// config check takes a+b+c where it takes a+b, and refuses it for the
// same reasons: no calibration, an embedder twice, more than three.
func TestConfigCheckFusion(t *testing.T) {
	for _, tc := range []struct{ embedder, want string }{
		{threeEmbedders, `config: vision.embedder: no calibration for the fused embedders "` + threeEmbedders + `"`},
		{"arcface-r512+mobilefacenet-192-onnx+arcface-r512", "fuses embedder arcface-r512 with itself"},
		{threeEmbedders + "+arcface-r512", "fuses 4 embedders: at most 3 can be fused"},
		{"arcface-r512+mobilefacenet-192-onnx+", "want one embedder, or up to 3 joined by '+'"},
	} {
		path := filepath.Join(t.TempDir(), "faced.yaml")
		writeFile(t, path, "vision:\n  embedder: "+tc.embedder+"\n")
		_, stderr, err := faced(t, "config", "check", "--config", path)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: %v\n%s\nwant %q", tc.embedder, err, stderr, tc.want)
		}
	}
	// The default pair still passes.
	path := filepath.Join(t.TempDir(), "faced.yaml")
	writeFile(t, path, "vision:\n  embedder: arcface-r512+mobilefacenet-192-onnx\n")
	if _, stderr, err := faced(t, "config", "check", "--config", path); err != nil {
		t.Errorf("the calibrated pair: %v\n%s", err, stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

package toonnx_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/accel/tflite"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/models/toonnx"
)

// TestMobileFaceNetParity converts the catalogue's MobileFaceNet.tflite and
// runs both files on the same face-like input: ONNX Runtime on the
// conversion must give TensorFlow Lite's embedding.
func TestMobileFaceNetParity(t *testing.T) {
	dir := testenv.DepsDir(t)
	src, err := os.ReadFile(filepath.Join(dir, "models", "MobileFaceNet.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	onnx, err := toonnx.TFLiteToONNX(src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := toonnx.TFLiteToONNX(src)
	if err != nil || string(again) != string(onnx) {
		t.Error("converting twice gave different bytes: the result could not be pinned")
	}

	cfg := accel.Config{LibDir: models.LibDir(dir), Threads: 1}
	ort, err := onnxrt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ort.Close()
	tfl, err := tflite.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tfl.Close()

	// Two different inputs in one batch: the conversion takes any batch.
	const side = 112
	x := make([]float32, 2*side*side*3)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)+math.Cos(float64(i/3)*0.011)) * 0.7
	}
	in := accel.Tensor{Name: "input", Shape: []int64{2, side, side, 3}, Data: x}
	run := func(b accel.Backend, format accel.Format, data []byte) []float32 {
		s, err := b.NewSession(context.Background(), accel.Model{Name: "mobilefacenet", Format: format, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out, err := s.Run(context.Background(), []accel.Tensor{in})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || len(out[0].Data) != 2*192 {
			t.Fatalf("%s: outputs %v", b.Name(), out)
		}
		return out[0].Data
	}
	want := run(tfl, accel.TFLite, src)
	got := run(ort, accel.ONNX, onnx)
	var worst, scale float64
	for i := range want {
		worst = max(worst, math.Abs(float64(want[i]-got[i])))
		scale = max(scale, math.Abs(float64(want[i])))
	}
	t.Logf("max |diff| %.3g of largest %.3g", worst, scale)
	if worst > 1e-4*scale {
		t.Errorf("ONNX differs from TFLite by up to %.3g (largest value %.3g)", worst, scale)
	}
	if same := want[:192]; equal(same, want[192:]) {
		t.Error("both batch rows gave the same embedding: the inputs were not both used")
	}
}

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzFromTFLite: a damaged or hostile file is an error, never a crash
// or a runaway allocation.
func FuzzFromTFLite(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x10\x00\x00\x00TFL3"))
	f.Add([]byte("\x08\x00\x00\x00TFL3\xff\xff\xff\x7f\x00\x00"))
	if src, err := os.ReadFile(filepath.Join(os.Getenv("FACED_DEPS_DIR"), "models", "MobileFaceNet.tflite")); err == nil {
		for _, n := range []int{64, 1024, 4096, len(src) / 2} {
			f.Add(src[:n])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		toonnx.TFLiteToONNX(data)
	})
}

func TestFromTFLiteRefuses(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":      nil,
		"not tflite": []byte("\x08\x00\x00\x00ONNXxxxxxxxx"),
		"truncated":  []byte("\x10\x00\x00\x00TFL3"),
	} {
		if _, _, _, err := toonnx.FromTFLite(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

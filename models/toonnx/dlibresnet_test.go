package toonnx_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/models/toonnx"
)

// dlibSource reads the catalogue's dlib-resnet-128 source from the deps
// folder, where make deps extracts it: the TF.js weights manifest and a
// reader for the shards beside it.
func dlibSource(t *testing.T, dir string) (models.Spec, []byte, func(string) ([]byte, error)) {
	t.Helper()
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := m.Model("dlib-resnet-128")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, spec.ConvertedFrom))
	if err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
	shard := func(p string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, path.Dir(spec.ConvertedFrom), p))
	}
	return spec, manifest, shard
}

// dlibTestInput is two different 150x150 RGB images of 0-254 values, the
// ones scripts/tfjs-reference.js gives face-api.
func dlibTestInput() []float32 {
	const n = 150 * 150 * 3
	x := make([]float32, 2*n)
	for b := range 2 {
		for i := range n {
			x[b*n+i] = float32((i*7919 + b*104729) % 255)
		}
	}
	return x
}

// TestDlibResNetParity converts the catalogue's face-api.js weights and
// runs the result on ONNX Runtime: it must give the descriptors
// @vladmandic/face-api's own TensorFlow.js code computes
// (testdata/dlib-resnet-128.ref.json, from scripts/tfjs-reference.js), and
// the bytes make deps pins.
func TestDlibResNetParity(t *testing.T) {
	dir := testenv.DepsDir(t)
	spec, manifest, shard := dlibSource(t, dir)
	onnx, err := toonnx.DlibResNetToONNX(manifest, shard)
	if err != nil {
		t.Fatal(err)
	}
	again, err := toonnx.DlibResNetToONNX(manifest, shard)
	if err != nil || string(again) != string(onnx) {
		t.Error("converting twice gave different bytes: the result could not be pinned")
	}
	if got := models.SHA256Hex(onnx); got != spec.SHA256 {
		t.Errorf("conversion sha256 %s, the catalogue pins %s", got, spec.SHA256)
	}

	raw, err := os.ReadFile(filepath.Join("testdata", "dlib-resnet-128.ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Descriptors [][]float64 `json:"descriptors"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Descriptors) != 2 || len(ref.Descriptors[0]) != 128 || len(ref.Descriptors[1]) != 128 {
		t.Fatalf("reference: want 2 descriptors of 128 values")
	}

	ort, err := onnxrt.New(accel.Config{LibDir: models.LibDir(dir), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ort.Close()
	s, err := ort.NewSession(context.Background(), accel.Model{Name: spec.Name, Format: accel.ONNX, Data: onnx})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := accel.Tensor{Name: spec.Input.Name, Shape: []int64{2, 150, 150, 3}, Data: dlibTestInput()}
	out, err := s.Run(context.Background(), []accel.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || len(out[0].Data) != 2*128 {
		t.Fatalf("outputs %v", out)
	}
	var worst, scale float64
	for b, want := range ref.Descriptors {
		for i, w := range want {
			worst = max(worst, math.Abs(float64(out[0].Data[b*128+i])-w))
			scale = max(scale, math.Abs(w))
		}
	}
	t.Logf("max |diff| %.3g of largest %.3g", worst, scale)
	if worst > 1e-4 {
		t.Errorf("ONNX differs from TensorFlow.js by up to %.3g (largest value %.3g)", worst, scale)
	}
	if equal(out[0].Data[:128], out[0].Data[128:]) {
		t.Error("both batch rows gave the same descriptor: the inputs were not both used")
	}
}

// TestDlibResNetRefuses: weights that do not make dlib's network are an
// error naming the weight, not a model that fails at run time.
func TestDlibResNetRefuses(t *testing.T) {
	_, manifest, shard := dlibSource(t, testenv.DepsDir(t))
	for name, edit := range map[string]func(w []map[string]any){
		"conv64_1/conv2/scale/biases": func(w []map[string]any) { // missing
			for i := range w {
				if w[i]["name"] == "conv64_1/conv2/scale/biases" {
					w[i]["name"] = "renamed"
				}
			}
		},
		"conv32_down/conv/filters": func(w []map[string]any) { // wrong shape, same size
			w[0]["shape"] = []int{7, 7, 32, 3}
		},
	} {
		var groups []map[string]any
		if err := json.Unmarshal(manifest, &groups); err != nil {
			t.Fatal(err)
		}
		var weights []map[string]any
		raw, _ := json.Marshal(groups[0]["weights"])
		json.Unmarshal(raw, &weights)
		edit(weights)
		groups[0]["weights"] = weights
		changed, _ := json.Marshal(groups)
		_, err := toonnx.DlibResNetToONNX(changed, shard)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming it", name, err)
		}
	}
}

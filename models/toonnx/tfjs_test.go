package toonnx_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/models/toonnx"
)

// shards serves named shard files; any other name is missing.
func shards(files map[string][]byte) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		b, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return b, nil
	}
}

func float32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestReadTFJSWeights(t *testing.T) {
	manifest := `[{"paths": ["a.bin", "b.bin"], "weights": [
		{"name": "w", "shape": [2, 2], "dtype": "float32"},
		{"name": "q8", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
		{"name": "q16", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 2}}
	]}]`
	data := append(float32Bytes(1, -2.5, 3e-8, 4), 0, 3, 255, 0x10, 0x00)
	// The weights run on across the shard boundary.
	w, err := toonnx.ReadTFJSWeights([]byte(manifest), shards(map[string][]byte{"a.bin": data[:10], "b.bin": data[10:]}))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]float32{
		"w":   {1, -2.5, 3e-8, 4},
		"q8":  {-1, 0.5, 126.5},
		"q16": {6},
	} {
		got := w[name]
		if got == nil || !equal(got.Floats, want) || len(got.Floats) != len(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if s := w["w"].Shape; len(s) != 2 || s[0] != 2 || s[1] != 2 {
		t.Errorf("w shape %v", s)
	}
}

// TestReadTFJSWeightsRefuses: anything but float32 weights whose bytes
// match the manifest is an error naming the weight or shard.
func TestReadTFJSWeightsRefuses(t *testing.T) {
	four := float32Bytes(1, 2, 3, 4)
	for _, c := range []struct {
		why, manifest string
		shard         []byte
		naming        string
	}{
		{"not JSON", `{`, four, "manifest"},
		{"no groups", `[]`, four, "no weight groups"},
		{"no shard named", `[{"paths": [], "weights": []}]`, four, "no shard"},
		{"missing shard", `[{"paths": ["gone.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "float32"}]}]`, four, "gone.bin"},
		{"short shard", `[{"paths": ["s.bin"], "weights": [{"name": "w", "shape": [5], "dtype": "float32"}]}]`, four, "w"},
		{"bytes left over", `[{"paths": ["s.bin"], "weights": [{"name": "w", "shape": [3], "dtype": "float32"}]}]`, four, "left over"},
		{"int32", `[{"paths": ["s.bin"], "weights": [{"name": "i", "shape": [4], "dtype": "int32"}]}]`, four, "i"},
		{"float16", `[{"paths": ["s.bin"], "weights": [{"name": "h", "shape": [8], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]`, four, "h"},
		{"int8 quantised", `[{"paths": ["s.bin"], "weights": [{"name": "q", "shape": [16], "dtype": "float32", "quantization": {"dtype": "int8", "scale": 1, "min": 0}}]}]`, four, "q"},
		{"no scale", `[{"paths": ["s.bin"], "weights": [{"name": "q", "shape": [16], "dtype": "float32", "quantization": {"dtype": "uint8", "min": 0}}]}]`, four, "q"},
		{"negative shape", `[{"paths": ["s.bin"], "weights": [{"name": "n", "shape": [-1, -4], "dtype": "float32"}]}]`, four, "n"},
		{"huge shape", `[{"paths": ["s.bin"], "weights": [{"name": "big", "shape": [65536, 65536, 65536], "dtype": "float32"}]}]`, four, "big"},
		{"twice", `[{"paths": ["s.bin"], "weights": [{"name": "d", "shape": [2], "dtype": "float32"}, {"name": "d", "shape": [2], "dtype": "float32"}]}]`, four, "d"},
	} {
		_, err := toonnx.ReadTFJSWeights([]byte(c.manifest), shards(map[string][]byte{"s.bin": c.shard}))
		if err == nil {
			t.Errorf("%s: accepted", c.why)
			continue
		}
		if !strings.Contains(err.Error(), c.naming) {
			t.Errorf("%s: error %q does not name %q", c.why, err, c.naming)
		}
	}
	_, err := toonnx.ReadTFJSWeights([]byte(`[{"paths": ["gone.bin"], "weights": []}]`), shards(nil))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing shard: err = %v, want it wrapped", err)
	}
}

// FuzzReadTFJSWeights: a damaged or hostile manifest or shard is an error,
// never a crash or a runaway allocation; the dlib network is built from
// whatever it reads.
func FuzzReadTFJSWeights(f *testing.F) {
	f.Add([]byte(`[]`), []byte{})
	f.Add([]byte(`[{"paths": ["s.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}]`), float32Bytes(1, 2))
	f.Add([]byte(`[{"paths": ["s.bin"], "weights": [{"name": "q", "shape": [2, 1], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1e300, "min": -1e300}}]}]`), []byte{0, 255})
	f.Add([]byte(`[{"paths": ["s.bin", "s.bin"], "weights": [{"name": "fc", "shape": [256, 0], "dtype": "float32"}]}]`), []byte{})
	dir := filepath.Join(os.Getenv("FACED_DEPS_DIR"), "models")
	if m, err := os.ReadFile(filepath.Join(dir, "face_recognition_model-weights_manifest.json")); err == nil {
		if bin, err := os.ReadFile(filepath.Join(dir, "face_recognition_model.bin")); err == nil {
			f.Add(m, bin[:4096])
			f.Add(m[:len(m)/2], bin[:64])
		}
	}
	f.Fuzz(func(t *testing.T, manifest, shard []byte) {
		read := func(string) ([]byte, error) { return shard, nil }
		toonnx.ReadTFJSWeights(manifest, read)
		toonnx.DlibResNetToONNX(manifest, read)
	})
}

package toonnx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// A TensorFlow.js weights manifest is a JSON array of weight groups; each
// group names its shard files, read in order and concatenated, and the
// weights their bytes hold, one after the other. Models whose architecture
// is written in code (face-api.js's) ship only this and the shards.
type tfjsGroup struct {
	Paths   []string `json:"paths"`
	Weights []struct {
		Name         string            `json:"name"`
		Shape        []int64           `json:"shape"`
		DType        string            `json:"dtype"`
		Quantization *tfjsQuantisation `json:"quantization"`
	} `json:"weights"`
}

// tfjsQuantisation is a weight's "quantization" entry: the dtype it is
// stored as and how to widen it back.
type tfjsQuantisation struct {
	DType string   `json:"dtype"`
	Scale *float64 `json:"scale"`
	Min   *float64 `json:"min"`
}

// maxTFJSWeights bounds the values one manifest may declare (1 GiB of
// float32), so a damaged manifest cannot ask for an absurd allocation.
const maxTFJSWeights = 1 << 28

func parseTFJSManifest(manifest []byte) ([]tfjsGroup, error) {
	var groups []tfjsGroup
	if err := json.Unmarshal(manifest, &groups); err != nil {
		return nil, fmt.Errorf("toonnx: tfjs weights manifest: %w", err)
	}
	if len(groups) == 0 {
		return nil, errors.New("toonnx: tfjs weights manifest: no weight groups")
	}
	return groups, nil
}

// ReadTFJSWeights reads the float32 weights of a TensorFlow.js weights
// manifest; shard returns the bytes of one file the manifest names.
//
// A weight is stored either as float32 or, as face-api.js ships its models,
// quantised to uint8 or uint16 with a scale and minimum; it is widened the
// way TensorFlow.js's decodeWeights does (value*scale + min, rounded to
// float32), so the weights are the ones the browser runs. Anything else
// (float16, int32 or string weights, a quantisation without its scale, a
// shard that is missing, short or too long) is refused with an error naming
// the weight or the shard.
func ReadTFJSWeights(manifest []byte, shard func(path string) ([]byte, error)) (map[string]*Tensor, error) {
	groups, err := parseTFJSManifest(manifest)
	if err != nil {
		return nil, err
	}
	weights := make(map[string]*Tensor)
	var total int64
	for _, g := range groups {
		if len(g.Paths) == 0 {
			return nil, errors.New("toonnx: tfjs weights manifest: a group names no shard")
		}
		var data []byte
		for _, p := range g.Paths {
			b, err := shard(p)
			if err != nil {
				return nil, fmt.Errorf("toonnx: tfjs shard %s: %w", p, err)
			}
			data = append(data, b...)
		}
		for _, w := range g.Weights {
			n := int64(1)
			for _, d := range w.Shape {
				if d < 0 || d > maxTFJSWeights || n*d > maxTFJSWeights {
					return nil, fmt.Errorf("toonnx: tfjs weight %s: bad shape %v", w.Name, w.Shape)
				}
				n *= d
			}
			if total += n; total > maxTFJSWeights {
				return nil, fmt.Errorf("toonnx: tfjs weight %s: more than %d values in all", w.Name, maxTFJSWeights)
			}
			if _, dup := weights[w.Name]; dup {
				return nil, fmt.Errorf("toonnx: tfjs weight %s is declared twice", w.Name)
			}
			if w.DType != "float32" {
				return nil, fmt.Errorf("toonnx: tfjs weight %s: dtype %q, want float32", w.Name, w.DType)
			}
			decode, width, err := tfjsDecoder(w.Quantization)
			if err != nil {
				return nil, fmt.Errorf("toonnx: tfjs weight %s: %w", w.Name, err)
			}
			if int64(len(data)) < n*width {
				return nil, fmt.Errorf("toonnx: tfjs weight %s: the shards %v end %d bytes early", w.Name, g.Paths, n*width-int64(len(data)))
			}
			t := &Tensor{Shape: w.Shape, Floats: make([]float32, n)}
			for i := range t.Floats {
				t.Floats[i] = decode(data[int64(i)*width:])
			}
			data = data[n*width:]
			weights[w.Name] = t
		}
		if len(data) != 0 {
			return nil, fmt.Errorf("toonnx: tfjs shards %v: %d bytes left over after the last weight", g.Paths, len(data))
		}
	}
	return weights, nil
}

// tfjsDecoder returns how one stored value becomes a float32, and its width
// in bytes; q is nil for a plain float32 weight.
func tfjsDecoder(q *tfjsQuantisation) (func([]byte) float32, int64, error) {
	if q == nil {
		return func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }, 4, nil
	}
	if q.Scale == nil || q.Min == nil {
		return nil, 0, fmt.Errorf("%s quantisation without scale and min", q.DType)
	}
	// The explicit float64 conversion of the product stops the compiler
	// from fusing it with the addition (as it may on arm64): the result,
	// and so the converted model's pinned sha256, is the same everywhere.
	scale, lo := *q.Scale, *q.Min
	switch q.DType {
	case "uint8":
		return func(b []byte) float32 { return float32(float64(float64(b[0])*scale) + lo) }, 1, nil
	case "uint16":
		return func(b []byte) float32 { return float32(float64(float64(binary.LittleEndian.Uint16(b))*scale) + lo) }, 2, nil
	}
	return nil, 0, fmt.Errorf("quantisation dtype %q is not supported (uint8 and uint16 are)", q.DType)
}

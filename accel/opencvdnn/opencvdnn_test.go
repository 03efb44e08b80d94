package opencvdnn_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/opencvdnn"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

func newBackend(t *testing.T) *opencvdnn.Backend {
	t.Helper()
	b, err := opencvdnn.New(accel.Config{Device: accel.CPU, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// wantOutputs are the output names of each ONNX model in graph order, as
// ONNX Runtime reports them; OpenCV's own layer order differs (fr_detect's
// unconnected layers come back as boxes, scores), so this pins the order
// the backend promises.
var wantOutputs = map[string][]string{
	"ultraface-rfb320":     {"scores", "boxes"},
	"blazeface-front-onnx": {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"},
	"blazeface-back-onnx":  {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"},
	"landmark68":           {"output"},
	"arcface-r512":         {"output"},
	"minifasnet-3class":    {"output"},
	"ssrnet-age":           ssrOutputs,
	"ssrnet-gender":        ssrOutputs,
	"expression7":          {"output"},
	"hopenet-pose":         {"output", "617", "618"},
	"eye-state":            {"output"},
	// converted at make deps time (models/toonnx)
	"mobilefacenet-192-onnx": {"output"},
	"dlib-resnet-128":        {"output"},
}

// ssrOutputs is SSR-Net's graph output order (models.ssrOutputs decodes in
// this order too).
var ssrOutputs = []string{
	"prob_stage_1", "prob_stage_2", "prob_stage_3",
	"stage1_delta_k", "stage2_delta_k", "stage3_delta_k",
	"index_offset_stage1", "index_offset_stage2", "index_offset_stage3",
}

// TestRunsEveryONNXModel loads each ONNX model of the catalogue and runs it
// on a zero input of its declared shape: the declared outputs must come back
// in graph order, with as many values as their shapes say, all finite.
func TestRunsEveryONNXModel(t *testing.T) {
	b := newBackend(t)
	for _, spec := range testenv.Specs(t, models.FormatONNX) {
		t.Run(spec.Name, func(t *testing.T) {
			_, model := testenv.Model(t, spec.Name)
			s, err := b.NewSession(context.Background(), model)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if len(s.Inputs()) != 1 {
				t.Fatalf("inputs %v, want one", s.Inputs())
			}
			in := s.Inputs()[0]
			// A free dimension (-1, the converted models' batch) takes the
			// manifest's size.
			if in.Name != spec.Input.Name || !slices.EqualFunc(in.Shape, spec.Input.Shape, func(got, want int64) bool { return got == want || got == -1 }) {
				t.Errorf("input %q %v, manifest says %q %v", in.Name, in.Shape, spec.Input.Name, spec.Input.Shape)
			}
			var names []string
			for _, o := range s.Outputs() {
				names = append(names, o.Name)
			}
			want, ok := wantOutputs[spec.Name]
			if !ok {
				t.Fatalf("no expected outputs for %s: add it to wantOutputs (got %q)", spec.Name, names)
			}
			if !slices.Equal(names, want) {
				t.Errorf("outputs %q, want %q", names, want)
			}

			x := accel.Tensor{Shape: spec.Input.Shape, Data: make([]float32, accel.NumElements(spec.Input.Shape))}
			out, err := s.Run(context.Background(), []accel.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(want) {
				t.Fatalf("%d outputs, want %d", len(out), len(want))
			}
			for i, o := range out {
				if o.Name != want[i] {
					t.Errorf("output %d is %q, want %q", i, o.Name, want[i])
				}
				if err := o.Validate(); err != nil || len(o.Data) == 0 {
					t.Errorf("output %q: %d values for shape %v: %v", o.Name, len(o.Data), o.Shape, err)
				}
				for _, v := range o.Data {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Errorf("output %q: non-finite value %v", o.Name, v)
						break
					}
				}
			}
		})
	}
}

// OpenCV asserts on mismatched blobs by throwing, which would abort the
// process through cgo: wrong inputs must be refused with an error first.
func TestRejectsWrongInputs(t *testing.T) {
	b := newBackend(t)
	_, model := testenv.Model(t, "arcface-r512")
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cases := map[string][]accel.Tensor{
		"wrong size":     {{Shape: []int64{1, 3, 64, 64}, Data: make([]float32, 3*64*64)}},
		"wrong rank":     {{Shape: []int64{3, 112, 112}, Data: make([]float32, 3*112*112)}},
		"short data":     {{Shape: []int64{1, 3, 112, 112}, Data: make([]float32, 10)}},
		"unknown name":   {{Name: "nope", Shape: []int64{1, 3, 112, 112}, Data: make([]float32, 3*112*112)}},
		"two inputs":     {{Shape: []int64{1, 3, 112, 112}, Data: make([]float32, 3*112*112)}, {Shape: []int64{1}, Data: []float32{0}}},
		"no inputs":      {},
		"zero dimension": {{Shape: []int64{1, 3, 0, 112}}},
	}
	for name, in := range cases {
		if _, err := s.Run(context.Background(), in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The session still works afterwards.
	if _, err := s.Run(context.Background(), []accel.Tensor{{Shape: []int64{1, 3, 112, 112}, Data: make([]float32, 3*112*112)}}); err != nil {
		t.Fatal(err)
	}
}

func TestRejectsTFLiteModel(t *testing.T) {
	b := newBackend(t)
	_, err := b.NewSession(context.Background(), accel.Model{Name: "x", Format: accel.TFLite, Data: []byte("x")})
	if !errors.Is(err, accel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// readNetFromONNX throws on bytes it cannot parse, and through gocv that
// aborts the process: garbage must come back as an error.
func TestRejectsGarbageModel(t *testing.T) {
	b := newBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	_, model := testenv.Model(t, "eye-state")
	real := model.Data
	cases := map[string][]byte{
		"empty":     nil,
		"text":      []byte("hello, this is not a network"),
		"random":    random,
		"truncated": real[:len(real)/2],
		// A well-formed protobuf with a graph field that holds no graph.
		"no graph": {0x08, 0x07, 0x3a, 0x00},
	}
	for name, data := range cases {
		s, err := b.NewSession(context.Background(), accel.Model{Name: name, Format: accel.ONNX, Data: data})
		if err == nil {
			s.Close()
			t.Errorf("%s: loaded", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

// tinyModel encodes a one-node ONNX model y = op(x) by hand, x and y float
// tensors of shape dims (a string is a symbolic, dynamic dimension).
func tinyModel(op string, dims ...any) []byte {
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	varintField := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch d := d.(type) {
		case int:
			dim = varintField(nil, 1, uint64(d)) // dim_value
		case string:
			dim = bytesField(nil, 2, []byte(d)) // dim_param
		}
		shape = bytesField(shape, 1, dim)
	}
	tensorType := bytesField(varintField(nil, 1, 1), 2, shape) // elem_type FLOAT, shape
	typ := bytesField(nil, 1, tensorType)
	valueInfo := func(name string) []byte { return bytesField(bytesField(nil, 1, []byte(name)), 2, typ) }

	node := bytesField(bytesField(nil, 1, []byte("x")), 2, []byte("y")) // input, output
	node = bytesField(node, 4, []byte(op))                              // op_type
	graph := bytesField(nil, 1, node)
	graph = bytesField(graph, 2, []byte("tiny"))
	graph = bytesField(graph, 11, valueInfo("x"))
	graph = bytesField(graph, 12, valueInfo("y"))

	model := varintField(nil, 1, 7)                       // ir_version
	model = bytesField(model, 8, varintField(nil, 2, 13)) // opset_import: default domain, 13
	return bytesField(model, 7, graph)
}

// A well-formed model that OpenCV cannot run makes cv::dnn throw, which
// through plain gocv would abort the process: it must be an error.
func TestUnsupportedOperatorIsAnError(t *testing.T) {
	b := newBackend(t)
	s, err := b.NewSession(context.Background(), accel.Model{Name: "bogus-op", Format: accel.ONNX, Data: tinyModel("FacedNoSuchOp", 1, 4)})
	if err == nil {
		s.Close()
		t.Fatal("model with an unknown operator loaded")
	}
	t.Log(err)
}

// A dynamic dimension is reported as -1 and accepts any size; the output
// shape then comes from OpenCV.
func TestDynamicBatch(t *testing.T) {
	b := newBackend(t)
	s, err := b.NewSession(context.Background(), accel.Model{Name: "relu", Format: accel.ONNX, Data: tinyModel("Relu", "N", 4)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if in := s.Inputs()[0]; in.Name != "x" || !slices.Equal(in.Shape, []int64{-1, 4}) || in.DType != accel.Float32 {
		t.Fatalf("input %+v", in)
	}
	x := accel.Tensor{Shape: []int64{2, 4}, Data: []float32{-1, 2, -3, 4, 5, -6, 7, -8}}
	out, err := s.Run(context.Background(), []accel.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 2, 0, 4, 5, 0, 7, 0}
	if out[0].Name != "y" || !slices.Equal(out[0].Shape, []int64{2, 4}) || !slices.Equal(out[0].Data, want) {
		t.Fatalf("got %+v, want y [2 4] %v", out[0], want)
	}
}

// Debian's OpenCV is built without CUDA: asking for the GPU must fail at
// construction with ErrUnavailable, not fall back to the CPU as OpenCV
// itself would.
func TestCUDAUnavailableWithoutGPUBuild(t *testing.T) {
	b, err := opencvdnn.New(accel.Config{Device: accel.CUDA})
	if err == nil {
		b.Close()
		t.Skip("this OpenCV has a usable CUDA DNN backend (GPU machine)")
	}
	if !errors.Is(err, accel.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	t.Log(err)
}

// OpenCL is either used on a GPU or refused: never a silent CPU fallback.
func TestOpenCLUsableOrUnavailable(t *testing.T) {
	b, err := opencvdnn.New(accel.Config{Device: accel.OpenCL})
	if err != nil {
		if !errors.Is(err, accel.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		t.Skip(err)
	}
	defer b.Close()
	_, model := testenv.Model(t, "eye-state")
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestUnknownDevice(t *testing.T) {
	_, err := opencvdnn.New(accel.Config{Device: accel.EdgeTPU})
	if !errors.Is(err, accel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	b := newBackend(t)
	_, model := testenv.Model(t, "eye-state")
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(context.Background(), []accel.Tensor{{Shape: []int64{1, 1, 24, 24}, Data: make([]float32, 24*24)}})
	if !errors.Is(err, accel.ErrClosed) {
		t.Fatalf("run after close: %v, want ErrClosed", err)
	}
	b.Close()
	b.Close()
	if _, err := b.NewSession(context.Background(), model); !errors.Is(err, accel.ErrClosed) {
		t.Fatalf("NewSession after close: %v, want ErrClosed", err)
	}
}

func TestThreadsAreProcessWide(t *testing.T) {
	if before := opencvdnn.Threads(); before > 0 {
		defer func() {
			if _, err := opencvdnn.New(accel.Config{Threads: before}); err != nil {
				t.Fatal(err)
			}
		}()
	}
	if _, err := opencvdnn.New(accel.Config{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	if got := opencvdnn.Threads(); got != 2 {
		t.Fatalf("Threads() = %d after Threads: 2", got)
	}
}

func TestCancelledContext(t *testing.T) {
	b := newBackend(t)
	_, model := testenv.Model(t, "eye-state")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.NewSession(ctx, model); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

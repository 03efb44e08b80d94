package onnxrt_test

import (
	"context"
	"errors"
	"testing"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

func newBackend(t *testing.T, dev accel.Device) *onnxrt.Backend {
	t.Helper()
	b, err := onnxrt.New(accel.Config{LibDir: models.LibDir(testenv.DepsDir(t)), Device: dev, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRunsEveryONNXModel loads each ONNX model of the catalogue and runs it
// on a zero input of its declared shape: outputs must have the declared
// element counts and be finite.
func TestRunsEveryONNXModel(t *testing.T) {
	b := newBackend(t, accel.CPU)
	for _, spec := range testenv.Specs(t, models.FormatONNX) {
		t.Run(spec.Name, func(t *testing.T) {
			_, model := testenv.Model(t, spec.Name)
			s, err := b.NewSession(context.Background(), model)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := s.Inputs()[0]
			if in.Name != spec.Input.Name {
				t.Errorf("input name %q, manifest says %q", in.Name, spec.Input.Name)
			}
			x := accel.Tensor{Shape: spec.Input.Shape, Data: make([]float32, accel.NumElements(spec.Input.Shape))}
			out, err := s.Run(context.Background(), []accel.Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(s.Outputs()) {
				t.Fatalf("%d outputs, want %d", len(out), len(s.Outputs()))
			}
			for _, o := range out {
				if int64(len(o.Data)) != accel.NumElements(o.Shape) || len(o.Data) == 0 {
					t.Errorf("output %q: %d values for shape %v", o.Name, len(o.Data), o.Shape)
				}
			}
		})
	}
}

func TestRejectsWrongInputShape(t *testing.T) {
	b := newBackend(t, accel.CPU)
	_, model := testenv.Model(t, "arcface-r512")
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Run(context.Background(), []accel.Tensor{{Shape: []int64{1, 3, 64, 64}, Data: make([]float32, 3*64*64)}})
	if err == nil {
		t.Fatal("wrong input shape accepted")
	}
}

func TestRejectsTFLiteModel(t *testing.T) {
	b := newBackend(t, accel.CPU)
	_, err := b.NewSession(context.Background(), accel.Model{Name: "x", Format: accel.TFLite, Data: []byte("x")})
	if !errors.Is(err, accel.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// The npm build of ONNX Runtime is CPU-only: asking for CUDA must fail at
// construction with ErrUnavailable, not at the first request.
func TestCUDAUnavailableOnCPUBuild(t *testing.T) {
	dir := testenv.DepsDir(t)
	b, err := onnxrt.New(accel.Config{LibDir: models.LibDir(dir), Device: accel.CUDA})
	if err == nil {
		b.Close()
		t.Skip("this ONNX Runtime has a CUDA provider (GPU machine)")
	}
	if !errors.Is(err, accel.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// Package accel is the seam between faced and the inference runtimes.
//
// A Backend (ONNX Runtime, TensorFlow Lite, OpenCV DNN) turns verified model
// bytes into Sessions; a Session runs float32 tensors in and float32 tensors
// out. Quantised runtimes (an Edge TPU model takes uint8) convert at the
// boundary with the tensor's own quantisation parameters, so callers always
// speak float32 and never see which runtime they are on.
//
// Only the accel/* packages import inference runtimes; this package imports
// none, so everything above it builds and tests without cgo runtimes loaded.
package accel

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Errors callers branch on.
var (
	// ErrUnsupported reports a model format, device or tensor type that a
	// backend cannot run.
	ErrUnsupported = errors.New("accel: unsupported")
	// ErrUnavailable reports a runtime library or accelerator that is not
	// installed on this machine.
	ErrUnavailable = errors.New("accel: unavailable")
	// ErrClosed reports use of a closed session or backend.
	ErrClosed = errors.New("accel: closed")
)

// DType is the element type of a tensor as the model declares it.
type DType string

// The element types the backends report.
const (
	Float32 DType = "float32"
	Uint8   DType = "uint8"
	Int8    DType = "int8"
	Int32   DType = "int32"
	Int64   DType = "int64"
	Other   DType = "other"
)

// TensorInfo describes one input or output of a model. A dimension of -1 is
// dynamic (usually the batch).
type TensorInfo struct {
	Name  string
	Shape []int64
	DType DType
}

// Tensor is a dense float32 tensor in row-major order.
type Tensor struct {
	Name  string
	Shape []int64
	Data  []float32
}

// NumElements is the product of the shape's dimensions.
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// Validate checks that the data length matches the shape.
func (t Tensor) Validate() error {
	for _, d := range t.Shape {
		if d <= 0 {
			return fmt.Errorf("accel: tensor %q: invalid shape %v", t.Name, t.Shape)
		}
	}
	if n := NumElements(t.Shape); int64(len(t.Data)) != n {
		return fmt.Errorf("accel: tensor %q: %d values for shape %v (want %d)", t.Name, len(t.Data), t.Shape, n)
	}
	return nil
}

// Format is a model file format.
type Format string

// The model formats the backends know.
const (
	ONNX   Format = "onnx"
	TFLite Format = "tflite"
)

// Model is a network ready to load: its bytes have been verified by the
// caller (see models.ReadVerified).
type Model struct {
	Name   string
	Format Format
	Data   []byte
}

// Device names the execution target inside a backend.
type Device string

// The devices backends may offer. Not every backend offers every device:
// asking for one it lacks fails with ErrUnsupported or ErrUnavailable.
const (
	CPU      Device = "cpu"      // every backend; TFLite uses XNNPACK here
	CUDA     Device = "cuda"     // onnxrt and opencvdnn built with CUDA (Jetson)
	TensorRT Device = "tensorrt" // onnxrt with the TensorRT EP (Jetson)
	EdgeTPU  Device = "edgetpu"  // tflite through libedgetpu's external delegate
	OpenCL   Device = "opencl"   // opencvdnn with an OpenCL target
)

// Config selects and tunes a backend.
type Config struct {
	// LibDir holds the runtime shared libraries (libonnxruntime.so.1,
	// libtensorflowlite_c.so); empty means the system search path.
	LibDir string
	// Device is where sessions run; empty means CPU.
	Device Device
	// Threads per session; 0 lets the runtime choose.
	Threads int
	// EdgeTPULibrary is the path of libedgetpu.so.1 for the edgetpu device;
	// empty means the system search path.
	EdgeTPULibrary string
}

// Backend loads models into sessions. A Backend is safe for concurrent use.
type Backend interface {
	// Name is the backend's configuration name: onnxrt, tflite or opencvdnn.
	Name() string
	// Device is where this backend's sessions run.
	Device() Device
	// Formats lists the model formats the backend can load.
	Formats() []Format
	// NewSession compiles a model. The session may keep a reference to
	// model.Data for its lifetime.
	NewSession(ctx context.Context, model Model) (Session, error)
	// Close releases the runtime. Sessions must be closed first.
	Close() error
}

// Session runs one loaded model. A Session is not safe for concurrent use:
// use a Pool to serve concurrent callers.
type Session interface {
	Inputs() []TensorInfo
	Outputs() []TensorInfo
	// Run feeds inputs (matched to Inputs by name, or by position when names
	// are empty) and returns one tensor per Outputs entry, in that order.
	// The returned tensors are owned by the caller.
	Run(ctx context.Context, inputs []Tensor) ([]Tensor, error)
	Close() error
}

// Supports reports whether b can load models of format f.
func Supports(b Backend, f Format) bool {
	return slices.Contains(b.Formats(), f)
}

// MatchInputs orders inputs to follow infos, by name where names are given,
// else by position, and checks each against its declared shape (dynamic
// dimensions accept any size). Backends call it before touching the runtime.
func MatchInputs(infos []TensorInfo, inputs []Tensor) ([]Tensor, error) {
	if len(inputs) != len(infos) {
		return nil, fmt.Errorf("accel: got %d inputs, model takes %d", len(inputs), len(infos))
	}
	ordered := make([]Tensor, len(infos))
	for i, in := range inputs {
		j := i
		if in.Name != "" {
			j = slices.IndexFunc(infos, func(ti TensorInfo) bool { return ti.Name == in.Name })
			if j < 0 {
				return nil, fmt.Errorf("accel: model has no input %q", in.Name)
			}
		}
		if err := in.Validate(); err != nil {
			return nil, err
		}
		if !shapeFits(infos[j].Shape, in.Shape) {
			return nil, fmt.Errorf("accel: input %q: shape %v does not fit %v", infos[j].Name, in.Shape, infos[j].Shape)
		}
		ordered[j] = in
	}
	return ordered, nil
}

func shapeFits(declared, got []int64) bool {
	if len(declared) != len(got) {
		return false
	}
	for i, d := range declared {
		if d > 0 && d != got[i] {
			return false
		}
	}
	return true
}

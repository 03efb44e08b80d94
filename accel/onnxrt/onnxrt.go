// Package onnxrt runs ONNX models on ONNX Runtime through
// github.com/yalue/onnxruntime_go.
//
// The runtime library (libonnxruntime.so.1, 1.30 from onnxruntime-node) is
// loaded at start-up from the configured folder, so a faced binary starts on
// machines that only have the other backends. The CPU execution provider is
// the default; CUDA and TensorRT are appended on request and fail with a
// clear error when the library was built without them (the npm build is
// CPU-only; Jetson images ship a GPU build).
package onnxrt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/facedhq/faced/accel"
)

// Name is the backend's configuration name.
const Name = "onnxrt"

// LibraryName is the file name of the runtime inside Config.LibDir.
const LibraryName = "libonnxruntime.so.1"

// ONNX Runtime keeps one process-wide environment; onnxruntime_go exposes it
// as package state. Backends share it and the last Close tears it down.
var (
	envMu   sync.Mutex
	envRefs int
)

// Backend is an ONNX Runtime instance configured for one device.
type Backend struct {
	cfg    accel.Config
	closed bool
	mu     sync.Mutex
}

// New loads the runtime and checks that the requested device can be used.
func New(cfg accel.Config) (*Backend, error) {
	if cfg.Device == "" {
		cfg.Device = accel.CPU
	}
	switch cfg.Device {
	case accel.CPU, accel.CUDA, accel.TensorRT:
	default:
		return nil, fmt.Errorf("onnxrt: device %q: %w (use cpu, cuda or tensorrt)", cfg.Device, accel.ErrUnsupported)
	}
	if err := acquireEnv(cfg.LibDir); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg}
	// Probe the execution provider once, so a missing CUDA/TensorRT build is
	// reported at start-up, not on the first request.
	if cfg.Device != accel.CPU {
		opts, err := b.sessionOptions()
		if err != nil {
			b.Close()
			return nil, err
		}
		opts.Destroy()
	}
	return b, nil
}

func acquireEnv(libDir string) error {
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 {
		envRefs++
		return nil
	}
	lib := LibraryName
	if libDir != "" {
		lib = filepath.Join(libDir, LibraryName)
		if _, err := os.Stat(lib); err != nil {
			return fmt.Errorf("onnxrt: %w: %s not found (run `make deps` or install the faced package)", accel.ErrUnavailable, lib)
		}
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("onnxrt: %w: load %s: %v", accel.ErrUnavailable, lib, err)
	}
	envRefs = 1
	return nil
}

func releaseEnv() error {
	envMu.Lock()
	defer envMu.Unlock()
	envRefs--
	if envRefs == 0 {
		return ort.DestroyEnvironment()
	}
	return nil
}

// Name implements accel.Backend.
func (b *Backend) Name() string { return Name }

// Device implements accel.Backend.
func (b *Backend) Device() accel.Device { return b.cfg.Device }

// Formats implements accel.Backend.
func (b *Backend) Formats() []accel.Format { return []accel.Format{accel.ONNX} }

// Version is the loaded runtime's version string.
func (b *Backend) Version() string { return ort.GetVersion() }

// Close releases this backend's share of the runtime.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return releaseEnv()
}

func (b *Backend) sessionOptions() (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxrt: session options: %w", err)
	}
	if b.cfg.Threads > 0 {
		if err := opts.SetIntraOpNumThreads(b.cfg.Threads); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: set threads: %w", err)
		}
		// One request runs one model at a time; inter-op parallelism only
		// adds threads that compete with the pool.
		if err := opts.SetInterOpNumThreads(1); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: set inter-op threads: %w", err)
		}
	}
	switch b.cfg.Device {
	case accel.CUDA:
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: %w: this ONNX Runtime build has no CUDA execution provider: %v", accel.ErrUnavailable, err)
		}
		defer cuda.Destroy()
		if err := opts.AppendExecutionProviderCUDA(cuda); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: %w: CUDA execution provider: %v", accel.ErrUnavailable, err)
		}
	case accel.TensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: %w: this ONNX Runtime build has no TensorRT execution provider: %v", accel.ErrUnavailable, err)
		}
		defer trt.Destroy()
		if err := opts.AppendExecutionProviderTensorRT(trt); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("onnxrt: %w: TensorRT execution provider: %v", accel.ErrUnavailable, err)
		}
	}
	return opts, nil
}

// NewSession implements accel.Backend.
func (b *Backend) NewSession(ctx context.Context, model accel.Model) (accel.Session, error) {
	if model.Format != accel.ONNX {
		return nil, fmt.Errorf("onnxrt: %s: format %q: %w", model.Name, model.Format, accel.ErrUnsupported)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inInfo, outInfo, err := ort.GetInputOutputInfoWithONNXData(model.Data)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: %s: read model: %w", model.Name, err)
	}
	s := &session{inputs: convertInfo(inInfo), outputs: convertInfo(outInfo)}
	for _, ti := range append(append([]accel.TensorInfo{}, s.inputs...), s.outputs...) {
		if ti.DType != accel.Float32 {
			return nil, fmt.Errorf("onnxrt: %s: tensor %q is %s: %w (only float32 models)", model.Name, ti.Name, ti.DType, accel.ErrUnsupported)
		}
	}
	opts, err := b.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(model.Data, names(s.inputs), names(s.outputs), opts)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: %s: create session: %w", model.Name, err)
	}
	return s, nil
}

type session struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []accel.TensorInfo
	outputs []accel.TensorInfo
}

func (s *session) Inputs() []accel.TensorInfo  { return s.inputs }
func (s *session) Outputs() []accel.TensorInfo { return s.outputs }

func (s *session) Run(ctx context.Context, inputs []accel.Tensor) ([]accel.Tensor, error) {
	if s.sess == nil {
		return nil, accel.ErrClosed
	}
	ordered, err := accel.MatchInputs(s.inputs, inputs)
	if err != nil {
		return nil, err
	}
	ins := make([]ort.Value, len(ordered))
	defer func() {
		for _, v := range ins {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range ordered {
		v, err := ort.NewTensor(ort.NewShape(t.Shape...), t.Data)
		if err != nil {
			return nil, fmt.Errorf("onnxrt: input %q: %w", s.inputs[i].Name, err)
		}
		ins[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()

	runOpts, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxrt: run options: %w", err)
	}
	defer runOpts.Destroy()
	// A cancelled request stops the inference instead of finishing it for
	// nobody.
	// stop does not wait for a Terminate already started: wait for it, or
	// it could run on the options Destroy (deferred above) has freed.
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(terminated)
		runOpts.Terminate()
	})
	defer func() {
		if !stop() {
			<-terminated
		}
	}()
	if err := s.sess.RunWithOptions(ins, outs, runOpts); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("onnxrt: run: %w", err)
	}

	result := make([]accel.Tensor, len(outs))
	for i, v := range outs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnxrt: output %q: %w: not a float32 tensor", s.outputs[i].Name, accel.ErrUnsupported)
		}
		result[i] = accel.Tensor{
			Name:  s.outputs[i].Name,
			Shape: append([]int64(nil), t.GetShape()...),
			Data:  append([]float32(nil), t.GetData()...),
		}
	}
	return result, nil
}

func (s *session) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

func convertInfo(in []ort.InputOutputInfo) []accel.TensorInfo {
	out := make([]accel.TensorInfo, len(in))
	for i, x := range in {
		dt := accel.Other
		if x.OrtValueType == ort.ONNXTypeTensor {
			switch x.DataType {
			case ort.TensorElementDataTypeFloat:
				dt = accel.Float32
			case ort.TensorElementDataTypeUint8:
				dt = accel.Uint8
			case ort.TensorElementDataTypeInt8:
				dt = accel.Int8
			case ort.TensorElementDataTypeInt32:
				dt = accel.Int32
			case ort.TensorElementDataTypeInt64:
				dt = accel.Int64
			}
		}
		out[i] = accel.TensorInfo{Name: x.Name, Shape: append([]int64(nil), x.Dimensions...), DType: dt}
	}
	return out
}

func names(infos []accel.TensorInfo) []string {
	out := make([]string, len(infos))
	for i, ti := range infos {
		out[i] = ti.Name
	}
	return out
}

var _ accel.Backend = (*Backend)(nil)

// Package opencvdnn runs ONNX models on OpenCV's DNN module through
// gocv.io/x/gocv.
//
// It is the backend for machines that already carry OpenCV (Debian's
// libopencv-dev, or a Jetson image whose OpenCV is built with CUDA) and no
// ONNX Runtime. OpenCV is linked at build time, so Config.LibDir is unused.
//
// Three things differ from the other backends and shape this package:
//
//   - gocv 0.31 calls OpenCV without catching C++ exceptions, and a
//     cv::Exception that unwinds into cgo aborts the process. Loading a model
//     and running it therefore go through a small C++ shim (shim.cpp) that
//     turns every exception into an error; gocv provides the Mats, the
//     backend/target constants and the version. Inputs are also checked
//     against the model's declared shapes before OpenCV sees them.
//   - OpenCV does not report a model's inputs and outputs as the ONNX graph
//     declares them, so they are read from the protobuf (onnxinfo.go). That
//     keeps Outputs in graph order with graph names, exactly as the onnxrt
//     backend reports them.
//   - OpenCV falls back to the CPU, with only a log line, when the requested
//     CUDA or OpenCL target is missing. New asks
//     cv::dnn::getAvailableTargets instead, so a missing accelerator fails at
//     start-up with accel.ErrUnavailable rather than running slowly on the
//     wrong device.
//
// OpenCV's thread pool is process-wide: Config.Threads calls
// cv::setNumThreads, which also affects every other OpenCV call in the
// process (image decoding and resizing in package face), and the last
// backend created wins. 0 leaves OpenCV's default (one thread per core).
package opencvdnn

// The flags mirror gocv's own cgo.go so both link the same OpenCV.

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/accel"
)

// Name is the backend's configuration name.
const Name = "opencvdnn"

// Backend is an OpenCV DNN configuration for one device.
type Backend struct {
	device  accel.Device
	backend gocv.NetBackendType
	target  gocv.NetTargetType

	mu     sync.Mutex
	closed bool
}

// New checks that the requested device is usable by this OpenCV build on
// this machine and applies the thread count.
func New(cfg accel.Config) (*Backend, error) {
	if cfg.Device == "" {
		cfg.Device = accel.CPU
	}
	b := &Backend{device: cfg.Device}
	switch cfg.Device {
	case accel.CPU:
		b.backend, b.target = gocv.NetBackendOpenCV, gocv.NetTargetCPU
	case accel.CUDA:
		b.backend, b.target = gocv.NetBackendCUDA, gocv.NetTargetCUDA
	case accel.OpenCL:
		// NetTargetFP32 is DNN_TARGET_OPENCL. The FP16 target would change
		// results beyond what parity with the other backends allows.
		b.backend, b.target = gocv.NetBackendOpenCV, gocv.NetTargetFP32
	default:
		return nil, fmt.Errorf("opencvdnn: device %q: %w (use cpu, cuda or opencl)", cfg.Device, accel.ErrUnsupported)
	}
	if err := b.checkTarget(); err != nil {
		return nil, err
	}
	if cfg.Threads > 0 {
		// Process-wide; see the package comment. cv::setNumThreads(0) would
		// mean "no threading", which is why 0 is not passed through.
		C.ocvdnn_set_num_threads(C.int(cfg.Threads))
	}
	return b, nil
}

// checkTarget fails with ErrUnavailable when OpenCV would silently run the
// requested device's networks on the CPU instead.
func (b *Backend) checkTarget() error {
	switch C.ocvdnn_has_target(C.int(b.backend), C.int(b.target)) {
	case 1:
	case 0:
		switch b.device {
		case accel.CUDA:
			// Debian's OpenCV is built without CUDA (its build information
			// has no "NVIDIA CUDA" line); a Jetson build lists the target
			// only when a CUDA device is usable too.
			why := "built without CUDA"
			if line := buildLine("NVIDIA CUDA"); line != "" {
				why = line + ", but no usable CUDA device"
			}
			return fmt.Errorf("opencvdnn: %w: OpenCV %s offers no CUDA DNN target (%s)",
				accel.ErrUnavailable, gocv.OpenCVVersion(), why)
		case accel.OpenCL:
			why := "built without OpenCL"
			if line := buildLine("OpenCL:"); line != "" {
				why = line + ", but no OpenCL platform or device found"
			}
			return fmt.Errorf("opencvdnn: %w: OpenCV %s cannot use OpenCL (%s)",
				accel.ErrUnavailable, gocv.OpenCVVersion(), why)
		default:
			return fmt.Errorf("opencvdnn: %w: OpenCV lists no DNN target for %s", accel.ErrUnavailable, b.device)
		}
	default:
		return fmt.Errorf("opencvdnn: %w: cannot query OpenCV's DNN targets", accel.ErrUnavailable)
	}
	// OpenCV DNN's OpenCL path is only used on GPUs; on a CPU OpenCL device
	// (pocl, Intel CPU runtime) it logs a warning and runs on the CPU.
	if b.device == accel.OpenCL && C.ocvdnn_opencl_is_gpu() == 0 {
		return fmt.Errorf("opencvdnn: %w: OpenCV's default OpenCL device is not a GPU", accel.ErrUnavailable)
	}
	return nil
}

// buildLine is the line of cv::getBuildInformation() that mentions key, or
// "", for error messages.
func buildLine(key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	line := C.ocvdnn_build_line(ck)
	if line == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(line))
	return C.GoString(line)
}

// Name implements accel.Backend.
func (b *Backend) Name() string { return Name }

// Device implements accel.Backend.
func (b *Backend) Device() accel.Device { return b.device }

// Formats implements accel.Backend.
func (b *Backend) Formats() []accel.Format { return []accel.Format{accel.ONNX} }

// Version is the linked OpenCV's version string.
func (b *Backend) Version() string { return "OpenCV " + gocv.OpenCVVersion() }

// Threads is OpenCV's current, process-wide thread count.
func Threads() int { return int(C.ocvdnn_get_num_threads()) }

// Close marks the backend closed. OpenCV itself has no per-backend state to
// release.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// NewSession implements accel.Backend. It parses the model's interface,
// loads it into OpenCV and, when every input has a static shape, runs it
// once on zeros: OpenCV creates layers lazily on the first forward pass, so
// an unsupported operator would otherwise only show on the first request.
func (b *Backend) NewSession(ctx context.Context, model accel.Model) (accel.Session, error) {
	if model.Format != accel.ONNX {
		return nil, fmt.Errorf("opencvdnn: %s: format %q: %w", model.Name, model.Format, accel.ErrUnsupported)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("opencvdnn: %w", accel.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(model.Data) == 0 {
		return nil, fmt.Errorf("opencvdnn: %s: empty model", model.Name)
	}
	// Read the interface first: it also rejects bytes that are not an ONNX
	// protobuf before OpenCV's parser sees them.
	info, err := parseModelInfo(model.Data)
	if err != nil {
		return nil, fmt.Errorf("opencvdnn: %s: not an ONNX model: %w", model.Name, err)
	}
	for _, ti := range append(append([]accel.TensorInfo{}, info.inputs...), info.outputs...) {
		if ti.DType != accel.Float32 {
			return nil, fmt.Errorf("opencvdnn: %s: tensor %q is %s: %w (only float32 models)", model.Name, ti.Name, ti.DType, accel.ErrUnsupported)
		}
	}
	static := true
	for _, ti := range info.inputs {
		// The input blob is a cv::Mat of the tensor's shape.
		if len(ti.Shape) == 0 || len(ti.Shape) > C.OCVDNN_MAX_DIMS {
			return nil, fmt.Errorf("opencvdnn: %s: input %q has shape %v: %w (need rank 1 to %d)",
				model.Name, ti.Name, ti.Shape, accel.ErrUnsupported, C.OCVDNN_MAX_DIMS)
		}
		for _, d := range ti.Shape {
			if d < 0 {
				static = false
			}
		}
	}

	s := &session{name: model.Name, inputs: info.inputs, outputs: info.outputs}
	var net C.OcvNet
	if err := cerr(C.ocvdnn_read_onnx(unsafe.Pointer(&model.Data[0]), C.size_t(len(model.Data)), &net)); err != nil {
		return nil, fmt.Errorf("opencvdnn: %s: load: %w", model.Name, err)
	}
	s.net = net
	if err := cerr(C.ocvdnn_set_preferable(net, C.int(b.backend), C.int(b.target))); err != nil {
		s.Close()
		return nil, fmt.Errorf("opencvdnn: %s: set target: %w", model.Name, err)
	}
	for _, ti := range s.inputs {
		s.cInputs = append(s.cInputs, C.CString(ti.Name))
	}
	for _, ti := range s.outputs {
		s.cOutputs = append(s.cOutputs, C.CString(ti.Name))
	}
	if static {
		zeros := make([]accel.Tensor, len(s.inputs))
		for i, ti := range s.inputs {
			zeros[i] = accel.Tensor{Name: ti.Name, Shape: ti.Shape, Data: make([]float32, accel.NumElements(ti.Shape))}
		}
		if _, err := s.Run(ctx, zeros); err != nil {
			s.Close()
			return nil, fmt.Errorf("%w (first run, on zero inputs)", err)
		}
	}
	return s, nil
}

// cerr turns a shim result into an error, freeing the message. OpenCV's
// ONNX importer nests messages over several indented lines; they are joined
// into one so that log lines stay whole.
func cerr(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(strings.Join(strings.Fields(C.GoString(msg)), " "))
}

type session struct {
	name     string
	net      C.OcvNet // nil once closed
	inputs   []accel.TensorInfo
	outputs  []accel.TensorInfo
	cInputs  []*C.char
	cOutputs []*C.char
}

func (s *session) Inputs() []accel.TensorInfo  { return s.inputs }
func (s *session) Outputs() []accel.TensorInfo { return s.outputs }

// Run implements accel.Session. OpenCV cannot interrupt a forward pass, so
// ctx is only checked before it starts.
func (s *session) Run(ctx context.Context, inputs []accel.Tensor) ([]accel.Tensor, error) {
	if s.net == nil {
		return nil, fmt.Errorf("opencvdnn: %w", accel.ErrClosed)
	}
	ordered, err := accel.MatchInputs(s.inputs, inputs)
	if err != nil {
		return nil, fmt.Errorf("opencvdnn: %s: %w", s.name, err)
	}
	for i, t := range ordered {
		if err := s.setInput(i, t); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var blobs C.OcvBlobs
	if err := cerr(C.ocvdnn_forward(s.net, &s.cOutputs[0], C.int(len(s.cOutputs)), &blobs)); err != nil {
		return nil, fmt.Errorf("opencvdnn: %s: run: %w", s.name, err)
	}
	defer C.ocvdnn_blobs_free(blobs)
	if n := int(C.ocvdnn_blobs_len(blobs)); n != len(s.outputs) {
		return nil, fmt.Errorf("opencvdnn: %s: OpenCV returned %d outputs, model declares %d", s.name, n, len(s.outputs))
	}
	result := make([]accel.Tensor, len(s.outputs))
	for i, info := range s.outputs {
		t, err := copyBlob(blobs, i, info)
		if err != nil {
			return nil, fmt.Errorf("opencvdnn: %s: %w", s.name, err)
		}
		result[i] = t
	}
	return result, nil
}

// setInput copies t into a CV_32F Mat of t's shape (NCHW or NHWC, whatever
// the model declares: OpenCV's ONNX importer follows the graph) and hands it
// to the net, which keeps a reference until the next call.
func (s *session) setInput(i int, t accel.Tensor) error {
	info := s.inputs[i]
	sizes := make([]int, len(t.Shape))
	for j, d := range t.Shape {
		// cv::Mat sizes are C ints; MatchInputs has checked d > 0.
		if d > math.MaxInt32 {
			return fmt.Errorf("opencvdnn: %s: input %q: dimension %d too large", s.name, info.Name, d)
		}
		sizes[j] = int(d)
	}
	blob := gocv.NewMatWithSizes(sizes, gocv.MatTypeCV32F)
	defer blob.Close()
	dst, err := blob.DataPtrFloat32()
	if err != nil {
		return fmt.Errorf("opencvdnn: %s: input %q: %w", s.name, info.Name, err)
	}
	if len(dst) != len(t.Data) {
		return fmt.Errorf("opencvdnn: %s: input %q: blob holds %d values, tensor %d", s.name, info.Name, len(dst), len(t.Data))
	}
	copy(dst, t.Data)
	if err := cerr(C.ocvdnn_set_input(s.net, unsafe.Pointer(blob.Ptr()), s.cInputs[i])); err != nil {
		return fmt.Errorf("opencvdnn: %s: input %q: %w", s.name, info.Name, err)
	}
	return nil
}

// copyBlob copies output i out of OpenCV's memory. The shape is the one the
// graph declares when it is static and holds the same number of values:
// OpenCV sometimes drops or adds unit dimensions (a [N] output can come back
// as [N,1]), and callers decode by the declared shape, as on onnxrt.
func copyBlob(blobs C.OcvBlobs, i int, info accel.TensorInfo) (accel.Tensor, error) {
	var (
		typ, ndims C.int
		sizes      [C.OCVDNN_MAX_DIMS]C.int
	)
	p := C.ocvdnn_blob(blobs, C.int(i), &typ, &ndims, &sizes[0])
	if p == nil {
		return accel.Tensor{}, fmt.Errorf("output %q: %w: OpenCV returned an empty, non-contiguous or non-float Mat (type %d)", info.Name, accel.ErrUnsupported, int(typ))
	}
	shape := make([]int64, int(ndims))
	for j := range shape {
		shape[j] = int64(sizes[j])
	}
	n := accel.NumElements(shape)
	if len(info.Shape) > 0 && accel.NumElements(info.Shape) == n {
		static := true
		for _, d := range info.Shape {
			static = static && d > 0
		}
		if static {
			shape = append([]int64(nil), info.Shape...)
		}
	}
	data := make([]float32, n)
	copy(data, unsafe.Slice((*float32)(unsafe.Pointer(p)), n))
	return accel.Tensor{Name: info.Name, Shape: shape, Data: data}, nil
}

// Close releases the network. It is safe to call more than once.
func (s *session) Close() error {
	if s.net != nil {
		C.ocvdnn_net_free(s.net)
		s.net = nil
	}
	for _, p := range append(s.cInputs, s.cOutputs...) {
		C.free(unsafe.Pointer(p))
	}
	s.cInputs, s.cOutputs = nil, nil
	return nil
}

var _ accel.Backend = (*Backend)(nil)

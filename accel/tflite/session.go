package tflite

/*
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/facedhq/faced/accel"
)

// session is one model on one interpreter.
//
// Batching: TensorFlow Lite models declare a fixed batch (MobileFaceNet.tflite
// says [2,112,112,3]), but callers send whatever batch they have. When every
// input and output has the same first dimension the session reports it as
// dynamic (-1) and, on the first run with another batch, resizes the inputs
// and reallocates. Graphs that bake the batch into a RESHAPE cannot be
// resized (MobileFaceNet fails to prepare), and some resize "successfully"
// but fold the batch into another dimension (BlazeFace's outputs stay
// [1, 896*b, 16]); for those the session goes back to the declared batch for
// good and runs the input in chunks of it, zero-padding the last one.
type session struct {
	b    *Backend
	lib  *C.faced_tflite
	name string

	// data is the C copy of the model: TfLiteModelCreate does not copy the
	// bytes, and Go memory may not be kept by C.
	data  unsafe.Pointer
	model *C.TfLiteModel
	errs  *C.faced_errbuf // what the runtime reported for this interpreter

	interp *C.TfLiteInterpreter
	// delegate belongs to interp and is deleted after it.
	delegate     *C.TfLiteDelegate
	delegateKind string // "xnnpack", "edgetpu" or "builtin"

	inputs, outputs []accel.TensorInfo
	declared        [][]int64 // input shapes in the model
	current         [][]int64 // input shapes the interpreter is allocated for
	// batch is the declared first dimension shared by all inputs and
	// outputs, or 0 when the model has none and shapes are fixed.
	batch int64
	// fixedBatch: resizing the batch failed; run in chunks of batch.
	fixedBatch bool
	closed     bool
}

// newSession loads model on b, which has already counted the session.
func newSession(b *Backend, model accel.Model) (*session, error) {
	s := &session{b: b, lib: b.lib, name: model.Name}
	s.errs = (*C.faced_errbuf)(C.calloc(1, C.sizeof_faced_errbuf))
	s.data = C.CBytes(model.Data)
	if s.errs == nil || s.data == nil {
		s.Close()
		return nil, fmt.Errorf("tflite: %s: out of memory", s.name)
	}
	// TfLiteModelCreate runs the flatbuffer verifier, so random or truncated
	// bytes are refused here rather than read out of bounds later.
	s.model = C.faced_model_create(s.lib, s.data, C.size_t(len(model.Data)))
	if s.model == nil {
		s.Close()
		return nil, fmt.Errorf("tflite: %s: not a valid TensorFlow Lite model (%d bytes)", s.name, len(model.Data))
	}
	if err := s.build(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.describe(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// build creates the interpreter with the device's delegate, allocated at
// the declared input shapes.
func (s *session) build() error {
	s.teardown()
	switch s.b.cfg.Device {
	case accel.EdgeTPU:
		d := C.faced_external_create(s.lib, s.b.edgeTPULib)
		if d == nil {
			return fmt.Errorf("tflite: %s: %w: the Edge TPU delegate could not be created (was the accelerator unplugged?)",
				s.name, accel.ErrUnavailable)
		}
		it, err := s.newInterpreter(d)
		if err != nil {
			C.faced_external_delete(s.lib, d)
			return err
		}
		s.interp, s.delegate, s.delegateKind = it, d, "edgetpu"
	default:
		useOptions := C.int(0)
		if s.b.xnnpackOptions {
			useOptions = 1
		}
		if d := C.faced_xnnpack_create(s.lib, C.int(s.b.cfg.Threads), useOptions); d != nil {
			it, err := s.newInterpreter(d)
			if err == nil {
				s.interp, s.delegate, s.delegateKind = it, d, "xnnpack"
				return nil
			}
			// XNNPACK refused the graph. The builtin kernels run every op
			// TensorFlow Lite knows, so the model still runs, only slower;
			// the session's Delegate() says so.
			C.faced_xnnpack_delete(s.lib, d)
		}
		it, err := s.newInterpreter(nil)
		if err != nil {
			return err
		}
		s.interp, s.delegateKind = it, "builtin"
	}
	return nil
}

// newInterpreter creates and allocates an interpreter, applying d when not
// nil. The options are only read during creation.
func (s *session) newInterpreter(d *C.TfLiteDelegate) (*C.TfLiteInterpreter, error) {
	opts := C.faced_options_create(s.lib)
	if opts == nil {
		return nil, fmt.Errorf("tflite: %s: out of memory", s.name)
	}
	defer C.faced_options_delete(s.lib, opts)
	if s.b.cfg.Threads > 0 {
		C.faced_options_set_num_threads(s.lib, opts, C.int32_t(s.b.cfg.Threads))
	}
	C.faced_options_set_reporter(s.lib, opts, s.errs)
	if d != nil {
		C.faced_options_add_delegate(s.lib, opts, d)
	}
	s.clearErrors()
	it := C.faced_interpreter_create(s.lib, s.model, opts)
	if it == nil {
		return nil, fmt.Errorf("tflite: %s: create interpreter: %s", s.name, s.errorText())
	}
	if C.faced_allocate(s.lib, it) != C.kTfLiteOk {
		C.faced_interpreter_delete(s.lib, it)
		return nil, fmt.Errorf("tflite: %s: allocate tensors: %s", s.name, s.errorText())
	}
	return it, nil
}

// teardown deletes the interpreter and then its delegate.
func (s *session) teardown() {
	if s.interp != nil {
		C.faced_interpreter_delete(s.lib, s.interp)
		s.interp = nil
	}
	if s.delegate != nil {
		switch s.delegateKind {
		case "xnnpack":
			C.faced_xnnpack_delete(s.lib, s.delegate)
		case "edgetpu":
			C.faced_external_delete(s.lib, s.delegate)
		}
		s.delegate = nil
	}
	s.delegateKind = ""
}

func (s *session) clearErrors() {
	s.errs.len = 0
	s.errs.msg[0] = 0
}

func (s *session) errorText() string {
	if s.errs.len == 0 {
		return "no detail from TensorFlow Lite"
	}
	return C.GoString(&s.errs.msg[0])
}

// describe reads the model's inputs and outputs from the fresh interpreter.
func (s *session) describe() error {
	nin := int(C.faced_input_count(s.lib, s.interp))
	nout := int(C.faced_output_count(s.lib, s.interp))
	s.inputs = make([]accel.TensorInfo, nin)
	s.declared = make([][]int64, nin)
	for i := range nin {
		t := C.faced_input_tensor(s.lib, s.interp, C.int32_t(i))
		s.inputs[i] = s.info(t)
		s.declared[i] = slices.Clone(s.inputs[i].Shape)
	}
	s.current = cloneShapes(s.declared)
	s.outputs = make([]accel.TensorInfo, nout)
	for i := range nout {
		s.outputs[i] = s.info(C.faced_output_tensor(s.lib, s.interp, C.int32_t(i)))
	}
	for _, ti := range slices.Concat(s.inputs, s.outputs) {
		if ti.DType == accel.Other {
			return fmt.Errorf("tflite: %s: tensor %q: %w element type (float32, uint8, int8, int32 and int64 only)",
				s.name, ti.Name, accel.ErrUnsupported)
		}
	}

	s.batch = commonBatch(s.inputs, s.outputs)
	if s.batch > 0 {
		for i := range s.inputs {
			s.inputs[i].Shape[0] = -1
		}
		for i := range s.outputs {
			s.outputs[i].Shape[0] = -1
		}
	}
	return nil
}

// commonBatch is the first dimension shared by every input and output, or
// 0 when there is none.
func commonBatch(inputs, outputs []accel.TensorInfo) int64 {
	var batch int64
	for _, ti := range slices.Concat(inputs, outputs) {
		if len(ti.Shape) < 2 || ti.Shape[0] <= 0 || (batch != 0 && ti.Shape[0] != batch) {
			return 0
		}
		batch = ti.Shape[0]
	}
	if len(inputs) == 0 {
		return 0
	}
	return batch
}

func (s *session) info(t *C.TfLiteTensor) accel.TensorInfo {
	return accel.TensorInfo{
		Name:  C.GoString(C.faced_tensor_name(s.lib, t)),
		Shape: s.shape(t),
		DType: dtype(C.faced_tensor_type(s.lib, t)),
	}
}

func (s *session) shape(t *C.TfLiteTensor) []int64 {
	n := int(C.faced_tensor_num_dims(s.lib, t))
	shape := make([]int64, max(n, 0))
	for i := range shape {
		shape[i] = int64(C.faced_tensor_dim(s.lib, t, C.int32_t(i)))
	}
	return shape
}

func dtype(t C.TfLiteType) accel.DType {
	switch t {
	case C.kTfLiteFloat32:
		return accel.Float32
	case C.kTfLiteUInt8:
		return accel.Uint8
	case C.kTfLiteInt8:
		return accel.Int8
	case C.kTfLiteInt32:
		return accel.Int32
	case C.kTfLiteInt64:
		return accel.Int64
	}
	return accel.Other
}

func (s *session) Inputs() []accel.TensorInfo  { return s.inputs }
func (s *session) Outputs() []accel.TensorInfo { return s.outputs }

// Delegate says what runs the model: "xnnpack", "edgetpu", or "builtin"
// when the CPU fell back to TensorFlow Lite's own kernels.
func (s *session) Delegate() string { return s.delegateKind }

// Run implements accel.Session.
func (s *session) Run(ctx context.Context, inputs []accel.Tensor) ([]accel.Tensor, error) {
	if s.closed {
		return nil, fmt.Errorf("tflite: %s: %w", s.name, accel.ErrClosed)
	}
	ordered, err := accel.MatchInputs(s.inputs, inputs)
	if err != nil {
		return nil, fmt.Errorf("tflite: %s: %w", s.name, err)
	}
	if s.interp == nil {
		// An earlier rebuild failed (say, the Edge TPU went away); try again
		// rather than leave the session broken for good.
		if err := s.build(); err != nil {
			return nil, err
		}
		s.current = cloneShapes(s.declared)
	}
	if s.batch == 0 {
		return s.runOnce(ctx, ordered)
	}
	n := ordered[0].Shape[0]
	for i, t := range ordered {
		if t.Shape[0] != n {
			return nil, fmt.Errorf("tflite: %s: input %q has batch %d, input %q has %d",
				s.name, s.inputs[0].Name, n, s.inputs[i].Name, t.Shape[0])
		}
	}
	if n == s.current[0][0] {
		return s.runOnce(ctx, ordered)
	}
	if !s.fixedBatch {
		ok, err := s.resize(n)
		if err != nil {
			return nil, err
		}
		if ok {
			return s.runOnce(ctx, ordered)
		}
	}
	return s.runChunks(ctx, ordered, n)
}

// resize reallocates the interpreter for batch n. It reports false, with
// the interpreter rebuilt at the declared batch, when the graph cannot take
// that batch.
func (s *session) resize(n int64) (bool, error) {
	shapes := cloneShapes(s.declared)
	ok := true
	for i, shape := range shapes {
		shape[0] = n
		dims := make([]C.int, len(shape))
		for j, d := range shape {
			dims[j] = C.int(d)
		}
		if C.faced_resize_input(s.lib, s.interp, C.int32_t(i), &dims[0], C.int32_t(len(dims))) != C.kTfLiteOk {
			ok = false
			break
		}
	}
	s.clearErrors()
	ok = ok && C.faced_allocate(s.lib, s.interp) == C.kTfLiteOk
	for i := range s.outputs {
		if !ok {
			break
		}
		out := s.shape(C.faced_output_tensor(s.lib, s.interp, C.int32_t(i)))
		ok = len(out) > 0 && out[0] == n
	}
	if ok {
		s.current = shapes
		return true, nil
	}
	// The interpreter is half-resized; a new one at the declared shapes is
	// the state every later chunked run expects.
	s.fixedBatch = true
	if err := s.build(); err != nil {
		return false, err
	}
	s.current = cloneShapes(s.declared)
	return false, nil
}

// runChunks runs a batch of n in pieces of the declared batch.
func (s *session) runChunks(ctx context.Context, ordered []accel.Tensor, n int64) ([]accel.Tensor, error) {
	step := s.batch
	result := make([]accel.Tensor, len(s.outputs))
	for start := int64(0); start < n; start += step {
		m := min(step, n-start)
		chunk := make([]accel.Tensor, len(ordered))
		for i, t := range ordered {
			per := accel.NumElements(t.Shape[1:])
			data := t.Data[start*per : (start+m)*per]
			if m < step {
				padded := make([]float32, step*per)
				copy(padded, data)
				data = padded
			}
			chunk[i] = accel.Tensor{Name: t.Name, Shape: s.current[i], Data: data}
		}
		outs, err := s.runOnce(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for j, o := range outs {
			if len(o.Shape) == 0 || o.Shape[0] != step {
				return nil, fmt.Errorf("tflite: %s: output %q has shape %v, expected batch %d",
					s.name, o.Name, o.Shape, step)
			}
			per := accel.NumElements(o.Shape[1:])
			if result[j].Data == nil {
				result[j] = accel.Tensor{
					Name:  o.Name,
					Shape: append([]int64{n}, o.Shape[1:]...),
					Data:  make([]float32, 0, n*per),
				}
			}
			result[j].Data = append(result[j].Data, o.Data[:m*per]...)
		}
	}
	return result, nil
}

// runOnce feeds inputs whose shapes are the interpreter's current ones.
func (s *session) runOnce(ctx context.Context, inputs []accel.Tensor) ([]accel.Tensor, error) {
	for i, t := range inputs {
		tensor := C.faced_input_tensor(s.lib, s.interp, C.int32_t(i))
		if err := s.write(tensor, t.Data); err != nil {
			return nil, fmt.Errorf("tflite: %s: input %q: %w", s.name, s.inputs[i].Name, err)
		}
	}
	// Invoke cannot be interrupted, so a request cancelled by now is not
	// started.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.clearErrors()
	if C.faced_invoke(s.lib, s.interp) != C.kTfLiteOk {
		return nil, fmt.Errorf("tflite: %s: invoke: %s", s.name, s.errorText())
	}
	outs := make([]accel.Tensor, len(s.outputs))
	for i := range outs {
		tensor := C.faced_output_tensor(s.lib, s.interp, C.int32_t(i))
		shape := s.shape(tensor)
		data, err := s.read(tensor, accel.NumElements(shape))
		if err != nil {
			return nil, fmt.Errorf("tflite: %s: output %q: %w", s.name, s.outputs[i].Name, err)
		}
		outs[i] = accel.Tensor{Name: s.outputs[i].Name, Shape: shape, Data: data}
	}
	return outs, nil
}

// elemSize is the byte size of the element types accepted by describe.
func elemSize(t C.TfLiteType) int {
	switch t {
	case C.kTfLiteUInt8, C.kTfLiteInt8:
		return 1
	case C.kTfLiteInt64:
		return 8
	}
	return 4
}

// buffer returns the tensor's memory after checking it holds n elements.
func (s *session) buffer(t *C.TfLiteTensor, n int) (unsafe.Pointer, C.TfLiteType, error) {
	typ := C.faced_tensor_type(s.lib, t)
	if dtype(typ) == accel.Other {
		return nil, typ, fmt.Errorf("%w element type %d", accel.ErrUnsupported, typ)
	}
	size := int(C.faced_tensor_byte_size(s.lib, t))
	if size != n*elemSize(typ) {
		return nil, typ, fmt.Errorf("tensor holds %d bytes, want %d values of %s", size, n, dtype(typ))
	}
	p := C.faced_tensor_data(s.lib, t)
	if p == nil && n > 0 {
		return nil, typ, fmt.Errorf("tensor not allocated")
	}
	return p, typ, nil
}

// write copies float32 values into a tensor, quantising for uint8/int8.
func (s *session) write(t *C.TfLiteTensor, data []float32) error {
	n := len(data)
	p, typ, err := s.buffer(t, n)
	if err != nil || n == 0 {
		return err
	}
	q := C.faced_tensor_quant(s.lib, t)
	scale, zero := float64(q.scale), float64(q.zero_point)
	switch typ {
	case C.kTfLiteFloat32:
		copy(unsafe.Slice((*float32)(p), n), data)
	case C.kTfLiteUInt8:
		dst := unsafe.Slice((*uint8)(p), n)
		for i, v := range data {
			dst[i] = uint8(quantize(v, scale, zero, 0, math.MaxUint8))
		}
	case C.kTfLiteInt8:
		dst := unsafe.Slice((*int8)(p), n)
		for i, v := range data {
			dst[i] = int8(quantize(v, scale, zero, math.MinInt8, math.MaxInt8))
		}
	case C.kTfLiteInt32:
		dst := unsafe.Slice((*int32)(p), n)
		for i, v := range data {
			dst[i] = int32(quantize(v, 0, 0, math.MinInt32, math.MaxInt32))
		}
	case C.kTfLiteInt64:
		dst := unsafe.Slice((*int64)(p), n)
		for i, v := range data {
			// 2^63 is not an int64: clamp just inside it.
			dst[i] = int64(quantize(v, 0, 0, -(1 << 63), (1<<63)-1024))
		}
	}
	return nil
}

// quantize maps v to the integer grid: round(v/scale) + zero, or plain
// rounding when the tensor has no quantisation (scale 0), clamped to the
// type's range. NaN becomes the zero point, the quantised 0.
func quantize(v float32, scale, zero, lo, hi float64) float64 {
	x := float64(v)
	if scale != 0 {
		x /= scale
	}
	x = math.Round(x) + zero
	switch {
	case math.IsNaN(x):
		return min(max(zero, lo), hi)
	case x < lo:
		return lo
	case x > hi:
		return hi
	}
	return x
}

// read copies n values out of a tensor as float32, dequantising uint8/int8.
func (s *session) read(t *C.TfLiteTensor, n int64) ([]float32, error) {
	p, typ, err := s.buffer(t, int(n))
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	q := C.faced_tensor_quant(s.lib, t)
	scale, zero := float32(q.scale), float32(q.zero_point)
	if scale == 0 { // not quantised: the integers are the values
		scale, zero = 1, 0
	}
	switch typ {
	case C.kTfLiteFloat32:
		copy(out, unsafe.Slice((*float32)(p), n))
	case C.kTfLiteUInt8:
		for i, v := range unsafe.Slice((*uint8)(p), n) {
			out[i] = (float32(v) - zero) * scale
		}
	case C.kTfLiteInt8:
		for i, v := range unsafe.Slice((*int8)(p), n) {
			out[i] = (float32(v) - zero) * scale
		}
	case C.kTfLiteInt32:
		for i, v := range unsafe.Slice((*int32)(p), n) {
			out[i] = float32(v)
		}
	case C.kTfLiteInt64:
		for i, v := range unsafe.Slice((*int64)(p), n) {
			out[i] = float32(v)
		}
	}
	return out, nil
}

// Close implements accel.Session. It is idempotent.
func (s *session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.teardown()
	if s.model != nil {
		C.faced_model_delete(s.lib, s.model)
		s.model = nil
	}
	// The interpreter and model are gone, so nothing reads these any more.
	C.free(s.data)
	C.free(unsafe.Pointer(s.errs))
	s.data, s.errs = nil, nil
	s.b.release()
	return nil
}

func cloneShapes(shapes [][]int64) [][]int64 {
	out := make([][]int64, len(shapes))
	for i, s := range shapes {
		out[i] = slices.Clone(s)
	}
	return out
}

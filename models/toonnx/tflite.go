package toonnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// TensorFlow Lite's schema (tensorflow/lite/schema/schema.fbs): the builtin
// operators, tensor types and enum values this reader knows.
const (
	tflAdd             = 0
	tflConv2D          = 3
	tflDepthwiseConv2D = 4
	tflMul             = 18
	tflRelu            = 19
	tflReshape         = 22
	tflSub             = 41
	tflAbs             = 101

	tflFloat32 = 0
	tflInt32   = 2

	tflPaddingSame  = 0
	tflPaddingValid = 1

	tflActNone = 0
	tflActRelu = 1
)

var tflOps = map[int32]string{
	tflAdd: "AddV2", tflSub: "Sub", tflMul: "Mul", tflRelu: "Relu", tflAbs: "Abs",
	tflConv2D: "_FusedConv2D", tflDepthwiseConv2D: "FusedDepthwiseConv2dNative", tflReshape: "Reshape",
}

// FromTFLite reads the first subgraph of a TensorFlow Lite flatbuffer as a
// Model, and returns the names of its input and output nodes. Its
// convolutions carry their bias and fused ReLU as TensorFlow's fused
// operators do. A fixed batch baked into a RESHAPE's target shape
// (MobileFaceNet.tflite's [2, 192]) is made -1, so the ONNX model takes any
// batch.
func FromTFLite(data []byte) (m *Model, inputs []string, outputs []Output, err error) {
	defer func() {
		// The reader checks offsets as it goes; a bounds panic it missed
		// still means a damaged file, not a crash.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("toonnx: tflite: damaged file: %v", r)
		}
	}()
	fb := flatbuf(data)
	root, err := fb.root()
	if err != nil {
		return nil, nil, nil, err
	}
	var codes []int32
	for _, oc := range fb.tables(root, 1) {
		// builtin_code (field 3) replaced the byte-wide deprecated code
		// (field 0), which stays the real one up to 127.
		code := int32(fb.int8(oc, 0, 0))
		if c := fb.int32(oc, 3, 0); c > code {
			code = c
		}
		codes = append(codes, code)
	}
	subgraphs := fb.tables(root, 2)
	if len(subgraphs) == 0 {
		return nil, nil, nil, errors.New("toonnx: tflite: no subgraph")
	}
	buffers := fb.tables(root, 4)
	sg := subgraphs[0]
	tensors := fb.tables(sg, 0)
	name := func(i int32) (string, error) {
		if i < 0 || int(i) >= len(tensors) {
			return "", fmt.Errorf("toonnx: tflite: tensor %d of %d", i, len(tensors))
		}
		return "t" + strconv.Itoa(int(i)) + "/" + strings.ReplaceAll(fb.string(tensors[i], 3), ":", "_"), nil
	}

	m = &Model{Weights: make(map[string]*Tensor)}
	// The graph's inputs and outputs keep their shapes with the batch
	// (TFLite's fixed first dimension) made free.
	anyBatch := func(i int32) []int64 {
		shape := toInt64s(fb.int32s(tensors[i], 0))
		if len(shape) > 0 {
			shape[0] = -1
		}
		return shape
	}
	for _, i := range fb.int32s(sg, 1) {
		n, err := name(i)
		if err != nil {
			return nil, nil, nil, err
		}
		m.Nodes = append(m.Nodes, Node{Name: n, Op: "Placeholder", Shape: anyBatch(i)})
		inputs = append(inputs, n)
	}
	graphOutputs := fb.int32s(sg, 2)
	for k, i := range graphOutputs {
		n, err := name(i)
		if err != nil {
			return nil, nil, nil, err
		}
		// "output", or "output0", "output1"... when there are several.
		out := "output"
		if len(graphOutputs) > 1 {
			out += strconv.Itoa(k)
		}
		outputs = append(outputs, Output{Node: n, Name: out, Shape: anyBatch(i)})
	}
	// Constants: tensors whose buffer holds data.
	for i, t := range tensors {
		b := fb.uint32(t, 2, 0)
		if b == 0 || int(b) >= len(buffers) {
			continue
		}
		raw := fb.bytes(buffers[b], 0)
		if len(raw) == 0 {
			continue
		}
		n, _ := name(int32(i))
		w, err := tflConstant(fb.int8(t, 1, 0), toInt64s(fb.int32s(t, 0)), raw)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("toonnx: tflite: tensor %s: %w", n, err)
		}
		m.Weights[n] = w
	}

	for k, op := range fb.tables(sg, 3) {
		idx := fb.uint32(op, 0, 0)
		if int(idx) >= len(codes) {
			return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: opcode %d of %d", k, idx, len(codes))
		}
		tfOp, ok := tflOps[codes[idx]]
		if !ok {
			return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: builtin %d is not supported", k, codes[idx])
		}
		var ins []string
		for _, i := range fb.int32s(op, 1) {
			if i < 0 { // an optional input left out
				continue
			}
			n, err := name(i)
			if err != nil {
				return nil, nil, nil, err
			}
			ins = append(ins, n)
		}
		outs := fb.int32s(op, 2)
		if len(outs) != 1 {
			return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d has %d outputs, want 1", k, len(outs))
		}
		out, err := name(outs[0])
		if err != nil {
			return nil, nil, nil, err
		}
		n := Node{Name: out, Op: tfOp, Inputs: ins}
		opts, hasOpts := fb.table(op, 4)
		act := int8(tflActNone)
		switch codes[idx] {
		case tflConv2D, tflDepthwiseConv2D:
			if !hasOpts {
				return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: convolution without options", k)
			}
			dw := codes[idx] == tflDepthwiseConv2D
			actField, dilField := 3, 4
			if dw { // depth_multiplier (field 3) shifts the rest
				actField, dilField = 4, 5
			}
			mult := int32(1)
			if dw {
				mult = fb.int32(opts, 3, 1)
			}
			if err := tflConvNode(&n, m.Weights, mult, dw, fb.int8(opts, 0, 0), fb.int32(opts, 1, 1), fb.int32(opts, 2, 1),
				fb.int32(opts, dilField, 1), fb.int32(opts, dilField+1, 1)); err != nil {
				return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: %w", k, err)
			}
			if fb.int8(opts, actField, tflActNone) == tflActRelu {
				n.Lists["fused_ops"] = append(n.Lists["fused_ops"], "Relu")
			} else if a := fb.int8(opts, actField, tflActNone); a != tflActNone {
				return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: fused activation %d is not supported", k, a)
			}
		case tflAdd, tflSub, tflMul:
			if hasOpts {
				act = fb.int8(opts, 0, tflActNone)
			}
		case tflReshape:
			if err := tflReshapeNode(&n, m.Weights); err != nil {
				return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: %w", k, err)
			}
		}
		switch act {
		case tflActNone:
			m.Nodes = append(m.Nodes, n)
		case tflActRelu: // the activation becomes a node of its own
			n.Name = out + "/pre_relu"
			m.Nodes = append(m.Nodes, n, Node{Name: out, Op: "Relu", Inputs: []string{n.Name}})
		default:
			return nil, nil, nil, fmt.Errorf("toonnx: tflite: operator %d: fused activation %d is not supported", k, act)
		}
	}
	// Every constant, the rewritten filters and shapes included, is a
	// node the converter can reach by name.
	names := slices.Sorted(maps.Keys(m.Weights))
	for _, n := range names {
		m.Nodes = append(m.Nodes, Node{Name: n, Op: "Const"})
	}
	return m, inputs, outputs, nil
}

// tflConvNode turns a TFLite convolution into TensorFlow's fused form:
// filters to HWIO (HWCM for depthwise), bias as the fused BiasAdd.
func tflConvNode(n *Node, w map[string]*Tensor, mult int32, depthwise bool, padding int8, strideW, strideH, dilW, dilH int32) error {
	if len(n.Inputs) != 3 {
		return fmt.Errorf("want input, filter and bias, got %d inputs", len(n.Inputs))
	}
	f, ok := w[n.Inputs[1]]
	if !ok || len(f.Shape) != 4 || f.Floats == nil {
		return fmt.Errorf("want a constant 4-D float filter")
	}
	if _, ok := w[n.Inputs[2]]; !ok {
		return fmt.Errorf("want a constant bias")
	}
	name := n.Inputs[1] + "/hwio"
	if depthwise {
		// [1, H, W, C*M] is already [H, W, C, M] in memory.
		if mult < 1 || f.Shape[3]%int64(mult) != 0 {
			return fmt.Errorf("depth multiplier %d does not divide %d channels", mult, f.Shape[3])
		}
		w[name] = &Tensor{Shape: []int64{f.Shape[1], f.Shape[2], f.Shape[3] / int64(mult), int64(mult)}, Floats: f.Floats}
	} else {
		// [O, H, W, I] -> [H, W, I, O]
		o, h, wd, i := f.Shape[0], f.Shape[1], f.Shape[2], f.Shape[3]
		data := make([]float32, len(f.Floats))
		for a := int64(0); a < o; a++ {
			for y := int64(0); y < h; y++ {
				for x := int64(0); x < wd; x++ {
					for b := int64(0); b < i; b++ {
						data[((y*wd+x)*i+b)*o+a] = f.Floats[((a*h+y)*wd+x)*i+b]
					}
				}
			}
		}
		w[name] = &Tensor{Shape: []int64{h, wd, i, o}, Floats: data}
	}
	n.Inputs[1] = name
	pad := map[int8]string{tflPaddingSame: "SAME", tflPaddingValid: "VALID"}[padding]
	if pad == "" {
		return fmt.Errorf("padding %d is not supported", padding)
	}
	n.Strs = map[string]string{"padding": pad}
	n.Ints = map[string][]int64{
		"strides":   {1, int64(strideH), int64(strideW), 1},
		"dilations": {1, int64(dilH), int64(dilW), 1},
	}
	n.Lists = map[string][]string{"fused_ops": {"BiasAdd"}}
	return nil
}

// tflReshapeNode gives a RESHAPE a target shape of its own whose batch is
// free.
func tflReshapeNode(n *Node, w map[string]*Tensor) error {
	if len(n.Inputs) != 2 {
		return fmt.Errorf("want input and shape, got %d inputs", len(n.Inputs))
	}
	s, ok := w[n.Inputs[1]]
	if !ok || s.Ints == nil || len(s.Ints) == 0 {
		return fmt.Errorf("want a constant int32 target shape")
	}
	ints := append([]int32{-1}, s.Ints[1:]...)
	name := n.Inputs[1] + "/any_batch"
	w[name] = &Tensor{Shape: []int64{int64(len(ints))}, Ints: ints}
	n.Inputs[1] = name
	return nil
}

func tflConstant(typ int8, shape []int64, raw []byte) (*Tensor, error) {
	n := numElements(shape)
	if int64(len(raw)) != 4*n {
		return nil, fmt.Errorf("%d bytes for shape %v", len(raw), shape)
	}
	t := &Tensor{Shape: shape}
	switch typ {
	case tflFloat32:
		t.Floats = make([]float32, n)
		for i := range t.Floats {
			t.Floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case tflInt32:
		t.Ints = make([]int32, n)
		for i := range t.Ints {
			t.Ints[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor type %d is not supported", typ)
	}
	return t, nil
}

func toInt64s(v []int32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// TFLiteToONNX converts a TensorFlow Lite model with one input and one
// output to ONNX: the NHWC input named "input", the output "output", any
// batch.
func TFLiteToONNX(data []byte) ([]byte, error) {
	m, ins, outs, err := FromTFLite(data)
	if err != nil {
		return nil, err
	}
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("toonnx: tflite: %d inputs and %d outputs, want one of each", len(ins), len(outs))
	}
	return Convert(m, "input", outs)
}

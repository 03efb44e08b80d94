// Package toonnx writes a TensorFlow-style graph (NHWC, TensorFlow's
// operator names) as an ONNX model, so that a face network published only
// for another runtime runs on ONNX Runtime like the catalogue's other
// models. FromTFLite reads such a graph out of a TensorFlow Lite file.
// DlibResNetToONNX builds one network whose graph no file holds (face-api.js
// writes it in code) from its TensorFlow.js weights (ReadTFJSWeights).
//
// It is not a general converter. It knows the operators the converted
// catalogue models use (convolutions and depthwise convolutions with their
// bias and ReLU, the element-wise arithmetic that batch norm and PReLU were
// folded into, reshape) and refuses any other with an error naming the
// operator. The conversion is deterministic: the same file gives the same
// bytes, so the result is pinned by sha256 in the manifest like a
// downloaded file.
//
// TensorFlow graphs are NHWC; ONNX convolutions are NCHW. The ONNX model
// keeps the graph's NHWC input and transposes once at the start; every
// four-dimensional activation after that is NCHW, and constants and axes are
// rewritten to match.
package toonnx

// Model is a graph: its nodes in any order and its constants by name.
type Model struct {
	Nodes   []Node
	Weights map[string]*Tensor
}

// Node is one graph node, with TensorFlow's operator name and attributes.
type Node struct {
	Name   string
	Op     string
	Inputs []string
	// Shape is a Placeholder's NHWC shape (-1: any).
	Shape []int64
	// Ints, Strs and Lists are the attributes: "strides", "dilations"
	// (NHWC, 4 values); "padding" ("SAME" or "VALID"); "fused_ops"
	// (["BiasAdd"] or ["BiasAdd", "Relu"]).
	Ints  map[string][]int64
	Strs  map[string]string
	Lists map[string][]string
}

// Tensor is a constant: float32 or int32 values in row-major order.
type Tensor struct {
	Shape  []int64
	Floats []float32
	Ints   []int32
}

func (t *Tensor) size() int64 { return numElements(t.Shape) }

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

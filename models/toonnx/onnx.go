package toonnx

import (
	"encoding/binary"
	"math"
)

// The ONNX protobuf messages this package writes, encoded by hand: the
// handful of fields a model needs takes two wire types (varint and
// length-delimited), which does not justify generated code for all of
// onnx.proto, nor a module: fetchdeps runs this at make deps time, before
// any Go module is downloaded, and must build from the standard library
// alone (packaging's fresh-root test checks that). Field numbers are
// onnx.proto's (IR version 7).

const (
	irVersion    = 7
	opsetVersion = 13

	onnxFloat = 1 // TensorProto.DataType
	onnxInt64 = 7

	attrInt    = 2 // AttributeProto.AttributeType
	attrString = 3
	attrInts   = 7
)

type onnxNode struct {
	op      string
	name    string
	inputs  []string
	outputs []string
	attrs   []onnxAttr
}

type onnxAttr struct {
	name string
	typ  int
	i    int64
	s    string
	ints []int64
}

func intsAttr(name string, v ...int64) onnxAttr { return onnxAttr{name: name, typ: attrInts, ints: v} }
func intAttr(name string, v int64) onnxAttr     { return onnxAttr{name: name, typ: attrInt, i: v} }
func strAttr(name, v string) onnxAttr           { return onnxAttr{name: name, typ: attrString, s: v} }

type initializer struct {
	name   string
	shape  []int64
	floats []float32
	int64s []int64
}

// valueInfo is a graph input or output: a float tensor whose dimensions are
// fixed (>= 0) or named (dimNames[i] when dims[i] < 0).
type valueInfo struct {
	name     string
	dims     []int64
	dimNames []string
}

type onnxGraph struct {
	name         string
	nodes        []onnxNode
	initializers []initializer
	inputs       []valueInfo
	outputs      []valueInfo
}

// Protocol Buffers wire types.
const (
	wireVarint = 0
	wireBytes  = 2
)

func appendTag(b []byte, num, wire int) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|uint64(wire))
}

func appendMessage(b []byte, num int, msg []byte) []byte {
	b = appendTag(b, num, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(msg)))
	return append(b, msg...)
}

func appendString(b []byte, num int, s string) []byte {
	return appendMessage(b, num, []byte(s))
}

func appendVarint(b []byte, num int, v uint64) []byte {
	return binary.AppendUvarint(appendTag(b, num, wireVarint), v)
}

// appendPackedInts writes a packed repeated int64 (negative values as
// ten-byte two's complement varints, as protobuf does).
func appendPackedInts(b []byte, num int, v []int64) []byte {
	var p []byte
	for _, x := range v {
		p = binary.AppendUvarint(p, uint64(x))
	}
	return appendMessage(b, num, p)
}

// encodeModel writes a ModelProto.
func encodeModel(g *onnxGraph, producer string) []byte {
	var m []byte
	m = appendVarint(m, 1, irVersion)       // ir_version
	m = appendString(m, 2, producer)        // producer_name
	m = appendMessage(m, 7, encodeGraph(g)) // graph
	var opset []byte
	opset = appendString(opset, 1, "")           // domain: the default one
	opset = appendVarint(opset, 2, opsetVersion) // version
	m = appendMessage(m, 8, opset)               // opset_import
	return m
}

func encodeGraph(g *onnxGraph) []byte {
	var b []byte
	for _, n := range g.nodes {
		b = appendMessage(b, 1, encodeNode(n))
	}
	b = appendString(b, 2, g.name)
	for _, t := range g.initializers {
		b = appendMessage(b, 5, encodeTensor(t))
	}
	for _, v := range g.inputs {
		b = appendMessage(b, 11, encodeValueInfo(v))
	}
	for _, v := range g.outputs {
		b = appendMessage(b, 12, encodeValueInfo(v))
	}
	return b
}

func encodeNode(n onnxNode) []byte {
	var b []byte
	for _, in := range n.inputs {
		b = appendString(b, 1, in)
	}
	for _, out := range n.outputs {
		b = appendString(b, 2, out)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.op)
	for _, a := range n.attrs {
		b = appendMessage(b, 5, encodeAttr(a))
	}
	return b
}

func encodeAttr(a onnxAttr) []byte {
	var b []byte
	b = appendString(b, 1, a.name)
	switch a.typ {
	case attrInt:
		b = appendVarint(b, 3, uint64(a.i))
	case attrString:
		b = appendString(b, 4, a.s)
	case attrInts:
		b = appendPackedInts(b, 8, a.ints)
	}
	b = appendVarint(b, 20, uint64(a.typ))
	return b
}

func encodeTensor(t initializer) []byte {
	var b []byte
	b = appendPackedInts(b, 1, t.shape)
	var raw []byte
	if t.int64s != nil {
		b = appendVarint(b, 2, onnxInt64)
		raw = make([]byte, 8*len(t.int64s))
		for i, v := range t.int64s {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
	} else {
		b = appendVarint(b, 2, onnxFloat)
		raw = make([]byte, 4*len(t.floats))
		for i, v := range t.floats {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	}
	b = appendString(b, 8, t.name)
	b = appendMessage(b, 9, raw) // raw_data, little-endian
	return b
}

func encodeValueInfo(v valueInfo) []byte {
	var shape []byte
	for i, d := range v.dims {
		var dim []byte
		if d >= 0 {
			dim = appendVarint(dim, 1, uint64(d)) // dim_value
		} else {
			dim = appendString(dim, 2, v.dimNames[i]) // dim_param
		}
		shape = appendMessage(shape, 1, dim)
	}
	var tensorType []byte
	tensorType = appendVarint(tensorType, 1, onnxFloat) // elem_type
	if v.dims != nil {                                  // no shape: any rank
		tensorType = appendMessage(tensorType, 2, shape)
	}
	var typ []byte
	typ = appendMessage(typ, 1, tensorType) // tensor_type
	var b []byte
	b = appendString(b, 1, v.name)
	b = appendMessage(b, 2, typ)
	return b
}

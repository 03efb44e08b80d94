package opencvdnn

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/facedhq/faced/accel"
)

// OpenCV DNN does not report a network's inputs and outputs as the model
// declares them (getUnconnectedOutLayers is in layer order, not graph
// order, and carries no shapes), so the session reads them from the ONNX
// protobuf itself. Walking the wire format also screens the bytes before
// they reach OpenCV: only the few fields below are decoded, everything else
// is skipped, and any malformed field is an error.
//
// Field numbers are those of onnx/onnx.proto (IR version 3 and later).
const (
	modelIRVersion = 1 // ModelProto.ir_version: int64
	modelGraph     = 7 // ModelProto.graph: GraphProto

	graphInitializer       = 5  // GraphProto.initializer: repeated TensorProto
	graphInput             = 11 // GraphProto.input: repeated ValueInfoProto
	graphOutput            = 12 // GraphProto.output: repeated ValueInfoProto
	graphSparseInitializer = 15 // GraphProto.sparse_initializer: repeated SparseTensorProto

	tensorName        = 8 // TensorProto.name: string
	sparseTensorValue = 1 // SparseTensorProto.values: TensorProto

	valueInfoName = 1 // ValueInfoProto.name: string
	valueInfoType = 2 // ValueInfoProto.type: TypeProto

	typeTensor = 1 // TypeProto.tensor_type: TypeProto.Tensor (other kinds: sequences, maps...)

	tensorTypeElem  = 1 // TypeProto.Tensor.elem_type: int32 (TensorProto.DataType)
	tensorTypeShape = 2 // TypeProto.Tensor.shape: TensorShapeProto

	shapeDim = 1 // TensorShapeProto.dim: repeated Dimension

	dimValue = 1 // Dimension.dim_value: int64; dim_param (2) is symbolic, i.e. dynamic
)

// elemTypes maps TensorProto.DataType to accel's element types.
var elemTypes = map[uint64]accel.DType{
	1: accel.Float32, // FLOAT
	2: accel.Uint8,   // UINT8
	3: accel.Int8,    // INT8
	6: accel.Int32,   // INT32
	7: accel.Int64,   // INT64
}

// modelInfo is the interface of an ONNX model as its graph declares it.
type modelInfo struct {
	inputs  []accel.TensorInfo
	outputs []accel.TensorInfo
}

// parseModelInfo reads graph.input and graph.output of an ONNX ModelProto.
// Inputs that are also initializers (weights listed as inputs, as IR < 4
// exporters do) are not real inputs and are dropped, as ONNX Runtime and
// OpenCV both do.
func parseModelInfo(data []byte) (modelInfo, error) {
	var (
		graph      []byte
		sawGraph   bool
		sawVersion bool
	)
	err := walk(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == modelIRVersion && typ == protowire.VarintType:
			sawVersion = true
		case num == modelGraph && typ == protowire.BytesType:
			// Protobuf would merge repeated occurrences; no exporter writes
			// them, so a second graph is more likely corruption.
			if sawGraph {
				return errors.New("more than one graph")
			}
			sawGraph = true
			graph = v
		}
		return nil
	})
	if err != nil {
		return modelInfo{}, err
	}
	if !sawVersion || !sawGraph {
		return modelInfo{}, errors.New("no ir_version or graph field")
	}

	var ins, outs [][]byte
	initializers := map[string]bool{}
	err = walk(graph, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case graphInput:
			ins = append(ins, v)
		case graphOutput:
			outs = append(outs, v)
		case graphInitializer:
			name, err := stringField(v, tensorName)
			if err != nil {
				return fmt.Errorf("initializer: %w", err)
			}
			initializers[name] = true
		case graphSparseInitializer:
			values, err := bytesField(v, sparseTensorValue)
			if err != nil {
				return fmt.Errorf("sparse initializer: %w", err)
			}
			name, err := stringField(values, tensorName)
			if err != nil {
				return fmt.Errorf("sparse initializer: %w", err)
			}
			initializers[name] = true
		}
		return nil
	})
	if err != nil {
		return modelInfo{}, fmt.Errorf("graph: %w", err)
	}

	var info modelInfo
	for _, v := range ins {
		ti, err := parseValueInfo(v)
		if err != nil {
			return modelInfo{}, fmt.Errorf("graph input: %w", err)
		}
		if !initializers[ti.Name] {
			info.inputs = append(info.inputs, ti)
		}
	}
	for _, v := range outs {
		ti, err := parseValueInfo(v)
		if err != nil {
			return modelInfo{}, fmt.Errorf("graph output: %w", err)
		}
		info.outputs = append(info.outputs, ti)
	}
	if len(info.inputs) == 0 || len(info.outputs) == 0 {
		return modelInfo{}, fmt.Errorf("graph declares %d inputs and %d outputs", len(info.inputs), len(info.outputs))
	}
	return info, nil
}

// parseValueInfo decodes a ValueInfoProto. A tensor without a shape gets a
// nil Shape; a dimension without a positive dim_value is dynamic (-1), as
// ONNX Runtime reports it.
func parseValueInfo(b []byte) (accel.TensorInfo, error) {
	ti := accel.TensorInfo{DType: accel.Other}
	var typeProto []byte
	err := walk(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case valueInfoName:
			ti.Name = string(v)
		case valueInfoType:
			typeProto = v
		}
		return nil
	})
	if err != nil {
		return ti, err
	}
	// Names reach OpenCV as C strings.
	if ti.Name == "" || strings.IndexByte(ti.Name, 0) >= 0 {
		return ti, fmt.Errorf("invalid name %q", ti.Name)
	}
	tensorType, err := bytesField(typeProto, typeTensor)
	if err != nil || tensorType == nil {
		return ti, err // not a tensor (sequence, map...): DType Other
	}
	var shape []byte
	err = walk(tensorType, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == tensorTypeElem && typ == protowire.VarintType:
			if dt, ok := elemTypes[x]; ok {
				ti.DType = dt
			}
		case num == tensorTypeShape && typ == protowire.BytesType:
			shape = v
		}
		return nil
	})
	if err != nil || shape == nil {
		return ti, err
	}
	ti.Shape = []int64{}
	err = walk(shape, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != shapeDim || typ != protowire.BytesType {
			return nil
		}
		d := int64(-1)
		err := walk(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
			if num == dimValue && typ == protowire.VarintType && x > 0 && x <= math.MaxInt64 {
				d = int64(x)
			}
			return nil
		})
		ti.Shape = append(ti.Shape, d)
		return err
	})
	return ti, err
}

// walk calls f for each field of the message encoded in b: v is the payload
// of a length-delimited field, x the value of a varint. It fails on the first
// malformed field, so truncated or random bytes are rejected.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			// ONNX uses no groups and no fixed-width fields in the
			// messages read here, but they are valid protobuf elsewhere.
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// bytesField returns the payload of the last length-delimited field num of
// the message b (protobuf's last-one-wins rule for singular fields), or nil.
func bytesField(b []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	err := walk(b, func(n protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if n == num && typ == protowire.BytesType {
			out = v
		}
		return nil
	})
	return out, err
}

func stringField(b []byte, num protowire.Number) (string, error) {
	v, err := bytesField(b, num)
	return string(v), err
}

package toonnx

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Output names one graph node whose value the ONNX model returns, and the
// name it gets there.
type Output struct {
	Node string // TensorFlow node name, e.g. "embeddings"
	Name string // ONNX output name
	// Shape is the output's shape (-1: any), declared in the model:
	// OpenCV's ONNX importer refuses an output without one.
	Shape []int64
}

// Convert writes the part of m that computes outputs as an ONNX model whose
// single input, named input, is the graph's NHWC placeholder.
func Convert(m *Model, input string, outputs []Output) ([]byte, error) {
	if len(outputs) == 0 {
		return nil, fmt.Errorf("toonnx: no outputs named")
	}
	c := &converter{
		m:      m,
		input:  input,
		nodes:  make(map[string]*Node, len(m.Nodes)),
		values: make(map[string]value),
		consts: make(map[string]string),
	}
	for i := range m.Nodes {
		c.nodes[m.Nodes[i].Name] = &m.Nodes[i]
	}
	c.g.name = "converted"
	for _, out := range outputs {
		v, err := c.value(out.Node, 0)
		if err != nil {
			return nil, err
		}
		if v.c != nil {
			return nil, fmt.Errorf("toonnx: output %s is a constant", out.Node)
		}
		if v.nchw {
			v = c.toNHWC(v)
		}
		c.emit("Identity", []string{v.name}, []string{out.Name})
		c.g.outputs = append(c.g.outputs, valueInfo{name: out.Name, dims: out.Shape, dimNames: dimNames(out.Shape)})
	}
	if len(c.g.inputs) != 1 {
		return nil, fmt.Errorf("toonnx: the outputs depend on %d placeholders, want 1", len(c.g.inputs))
	}
	return encodeModel(&c.g, "faced toonnx"), nil
}

// value is a converted TensorFlow tensor.
type value struct {
	name string // ONNX tensor name
	rank int
	nchw bool    // a 4-D activation held as NCHW (the graph's is NHWC)
	c    *Tensor // set for a constant, which is emitted only where used
}

type converter struct {
	m      *Model
	input  string
	nodes  map[string]*Node
	values map[string]value
	consts map[string]string // initializer by constant name and layout
	g      onnxGraph
	serial int
}

// maxDepth bounds the recursion through a graph's inputs.
const maxDepth = 10000

func (c *converter) value(ref string, depth int) (value, error) {
	name := strings.TrimSuffix(ref, ":0")
	if strings.Contains(name, ":") {
		return value{}, fmt.Errorf("toonnx: input %s: only a node's first output is supported", ref)
	}
	if v, ok := c.values[name]; ok {
		return v, nil
	}
	if depth > maxDepth {
		return value{}, fmt.Errorf("toonnx: the graph is deeper than %d nodes (a cycle?)", maxDepth)
	}
	n, ok := c.nodes[name]
	if !ok {
		return value{}, fmt.Errorf("toonnx: no node %s", name)
	}
	var in []value
	for _, ref := range n.Inputs {
		if strings.HasPrefix(ref, "^") { // control dependency
			continue
		}
		v, err := c.value(ref, depth+1)
		if err != nil {
			return value{}, err
		}
		in = append(in, v)
	}
	v, err := c.convert(n, in)
	if err != nil {
		return value{}, fmt.Errorf("toonnx: node %s (%s): %w", n.Name, n.Op, err)
	}
	c.values[name] = v
	return v, nil
}

func (c *converter) fresh(base string) string {
	c.serial++
	return base + "#" + strconv.Itoa(c.serial)
}

func (c *converter) emit(op string, inputs, outputs []string, attrs ...onnxAttr) {
	c.g.nodes = append(c.g.nodes, onnxNode{op: op, name: outputs[0], inputs: inputs, outputs: outputs, attrs: attrs})
}

// node emits op on inputs into a fresh tensor and returns its name.
func (c *converter) node(op, base string, inputs []string, attrs ...onnxAttr) string {
	out := c.fresh(base)
	c.emit(op, inputs, []string{out}, attrs...)
	return out
}

func (c *converter) floats(name string, shape []int64, data []float32) string {
	c.g.initializers = append(c.g.initializers, initializer{name: name, shape: shape, floats: data})
	return name
}

func (c *converter) int64s(base string, data ...int64) string {
	name := c.fresh(base)
	c.g.initializers = append(c.g.initializers, initializer{name: name, shape: []int64{int64(len(data))}, int64s: data})
	return name
}

func (c *converter) toNHWC(v value) value {
	return value{name: c.node("Transpose", v.name+"/nhwc", []string{v.name}, intsAttr("perm", 0, 2, 3, 1)), rank: 4}
}

// operand returns the ONNX name of an element-wise operand. A constant
// beside an NCHW activation is broadcast the NumPy way against NHWC, so it is
// widened to rank 4 and transposed to NCHW with it.
func (c *converter) operand(v value, nchw bool) (string, error) {
	if v.c == nil {
		return v.name, nil
	}
	t := v.c
	if t.Floats == nil {
		return "", fmt.Errorf("constant %s is not float", v.name)
	}
	if !nchw || len(t.Shape) == 0 || t.size() == 1 {
		return c.constant(v.name, "", t.Shape, t.Floats), nil
	}
	if len(t.Shape) > 4 {
		return "", fmt.Errorf("constant %s has rank %d", v.name, len(t.Shape))
	}
	shape := append(slices.Repeat([]int64{1}, 4-len(t.Shape)), t.Shape...)
	return c.constant(v.name, "nchw", []int64{shape[0], shape[3], shape[1], shape[2]}, transposeNHWC(t.Floats, shape)), nil
}

// constant emits a constant once per layout.
func (c *converter) constant(name, layout string, shape []int64, data []float32) string {
	key := name + "/" + layout
	if n, ok := c.consts[key]; ok {
		return n
	}
	n := c.floats(c.fresh(name), shape, data)
	c.consts[key] = n
	return n
}

// transposeNHWC reorders 4-D data from NHWC to NCHW.
func transposeNHWC(data []float32, s []int64) []float32 {
	return permute4(data, [4]int64{s[0], s[1], s[2], s[3]}, [4]int{0, 3, 1, 2})
}

// hwioToOIHW reorders a convolution's filters from TensorFlow's
// [H, W, I, O] to ONNX's [O, I, H, W].
func hwioToOIHW(f []float32, kh, kw, ci, co int64) []float32 {
	return permute4(f, [4]int64{kh, kw, ci, co}, [4]int{3, 2, 0, 1})
}

// permute4 reorders row-major 4-D data of the given shape so that output
// axis k is input axis perm[k].
func permute4(data []float32, shape [4]int64, perm [4]int) []float32 {
	var stride [4]int64 // each input axis's stride in the output
	n := int64(1)
	for k := 3; k >= 0; k-- {
		stride[perm[k]] = n
		n *= shape[perm[k]]
	}
	out := make([]float32, len(data))
	i := 0
	for a := int64(0); a < shape[0]; a++ {
		for b := int64(0); b < shape[1]; b++ {
			for c := int64(0); c < shape[2]; c++ {
				for d := int64(0); d < shape[3]; d++ {
					out[a*stride[0]+b*stride[1]+c*stride[2]+d*stride[3]] = data[i]
					i++
				}
			}
		}
	}
	return out
}

var elementwise = map[string]string{
	"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul",
}

var unary = map[string]string{"Relu": "Relu", "Abs": "Abs"}

func (c *converter) convert(n *Node, in []value) (value, error) {
	if op, ok := elementwise[n.Op]; ok {
		return c.binary(n, op, in)
	}
	if op, ok := unary[n.Op]; ok {
		if err := arity(in, 1); err != nil {
			return value{}, err
		}
		if in[0].c != nil {
			return value{}, fmt.Errorf("constant operand: fold it before converting")
		}
		return value{name: c.node(op, n.Name, []string{in[0].name}), rank: in[0].rank, nchw: in[0].nchw}, nil
	}
	switch n.Op {
	case "Placeholder":
		return c.placeholder(n)
	case "Const":
		t, ok := c.m.Weights[n.Name]
		if !ok {
			return value{}, fmt.Errorf("no weights for the constant")
		}
		return value{name: n.Name, rank: len(t.Shape), c: t}, nil
	case "_FusedConv2D", "FusedDepthwiseConv2dNative":
		return c.conv(n, in)
	case "Reshape":
		return c.reshape(n, in)
	}
	return value{}, fmt.Errorf("operator not supported")
}

func arity(in []value, n int) error {
	if len(in) != n {
		return fmt.Errorf("want %d inputs, got %d", n, len(in))
	}
	return nil
}

func (c *converter) placeholder(n *Node) (value, error) {
	if len(n.Shape) != 4 {
		return value{}, fmt.Errorf("want a 4-D NHWC image input, got %d dimensions", len(n.Shape))
	}
	vi := valueInfo{name: c.input, dims: n.Shape, dimNames: dimNames(n.Shape)}
	c.g.inputs = append(c.g.inputs, vi)
	return value{name: c.node("Transpose", n.Name+"/nchw", []string{c.input}, intsAttr("perm", 0, 3, 1, 2)), rank: 4, nchw: true}, nil
}

func (c *converter) binary(n *Node, op string, in []value) (value, error) {
	if err := arity(in, 2); err != nil {
		return value{}, err
	}
	a, b := in[0], in[1]
	if a.c != nil && b.c != nil {
		return value{}, fmt.Errorf("both operands are constants: fold them before converting")
	}
	act := a
	if a.c != nil {
		act = b
	}
	if a.c == nil && b.c == nil && a.nchw != b.nchw {
		return value{}, fmt.Errorf("operands in different layouts")
	}
	an, err := c.operand(a, act.nchw)
	if err != nil {
		return value{}, err
	}
	bn, err := c.operand(b, act.nchw)
	if err != nil {
		return value{}, err
	}
	rank := max(a.rank, b.rank)
	return value{name: c.node(op, n.Name, []string{an, bn}), rank: rank, nchw: act.nchw && rank == 4}, nil
}

func (c *converter) conv(n *Node, in []value) (value, error) {
	depthwise := strings.Contains(n.Op, "Depthwise")
	fused := n.Lists["fused_ops"]
	if len(in) < 2 || in[1].c == nil || in[1].c.Floats == nil || len(in[1].c.Shape) != 4 {
		return value{}, fmt.Errorf("want a constant 4-D filter")
	}
	x, filter := in[0], in[1].c
	if !x.nchw {
		return value{}, fmt.Errorf("the input is not a 4-D activation")
	}
	strides, dilations := n.Ints["strides"], n.Ints["dilations"]
	if len(strides) != 4 || (dilations != nil && len(dilations) != 4) {
		return value{}, fmt.Errorf("want NHWC strides and dilations")
	}
	if dilations == nil {
		dilations = []int64{1, 1, 1, 1}
	}
	kh, kw, ci, co := filter.Shape[0], filter.Shape[1], filter.Shape[2], filter.Shape[3]
	var w []float32
	var wshape []int64
	group := int64(1)
	if depthwise {
		// [H, W, C, M] -> [C*M, 1, H, W], one group per input channel:
		// TensorFlow's output channel c*M+m is filter [:, :, c, m].
		// That is the data reordered to [C, M, H, W].
		w = permute4(filter.Floats, [4]int64{kh, kw, ci, co}, [4]int{2, 3, 0, 1})
		wshape, group = []int64{ci * co, 1, kh, kw}, ci
	} else {
		w, wshape = hwioToOIHW(filter.Floats, kh, kw, ci, co), []int64{co, ci, kh, kw}
	}
	attrs := []onnxAttr{
		intsAttr("kernel_shape", kh, kw),
		intsAttr("strides", strides[1], strides[2]),
		intsAttr("dilations", dilations[1], dilations[2]),
		intAttr("group", group),
	}
	switch padding := n.Strs["padding"]; padding {
	case "VALID":
	case "SAME": // TensorFlow puts the odd pixel at the end, as SAME_UPPER does
		attrs = append(attrs, strAttr("auto_pad", "SAME_UPPER"))
	default:
		return value{}, fmt.Errorf("padding %q is not supported", padding)
	}
	inputs := []string{x.name, c.floats(c.fresh(n.Name+"/w"), wshape, w)}

	var after []string
	switch {
	case len(fused) == 0:
		if len(in) != 2 {
			return value{}, fmt.Errorf("want 2 inputs, got %d", len(in))
		}
	case fused[0] == "BiasAdd":
		if len(in) < 3 || in[2].c == nil || in[2].c.Floats == nil || in[2].c.size() != wshape[0] {
			return value{}, fmt.Errorf("want a constant bias of %d values", wshape[0])
		}
		inputs = append(inputs, c.floats(c.fresh(n.Name+"/b"), []int64{wshape[0]}, in[2].c.Floats))
		after = fused[1:]
	default:
		return value{}, fmt.Errorf("fused operations %v are not supported", fused)
	}
	out := value{name: c.node("Conv", n.Name, inputs, attrs...), rank: 4, nchw: true}
	return c.activation(n, out, after)
}

// activation applies what a fused node does after its bias.
func (c *converter) activation(n *Node, v value, ops []string) (value, error) {
	switch {
	case len(ops) == 0:
		return v, nil
	case len(ops) == 1 && ops[0] == "Relu":
		return value{name: c.node("Relu", n.Name+"/relu", []string{v.name}), rank: v.rank, nchw: v.nchw}, nil
	}
	return value{}, fmt.Errorf("fused operations %v are not supported", ops)
}

func (c *converter) reshape(n *Node, in []value) (value, error) {
	if err := arity(in, 2); err != nil {
		return value{}, err
	}
	if in[1].c == nil || in[1].c.Ints == nil {
		return value{}, fmt.Errorf("want a constant int32 shape")
	}
	x := in[0]
	if x.nchw { // the graph's element order is NHWC's
		x = c.toNHWC(x)
	}
	shape := make([]int64, len(in[1].c.Ints))
	for i, d := range in[1].c.Ints {
		shape[i] = int64(d)
	}
	out := value{name: c.node("Reshape", n.Name, []string{x.name, c.int64s(n.Name+"/shape", shape...)}), rank: len(shape)}
	if out.rank == 4 {
		out = value{name: c.node("Transpose", n.Name+"/nchw", []string{out.name}, intsAttr("perm", 0, 3, 1, 2)), rank: 4, nchw: true}
	}
	return out, nil
}

// dimNames names the free dimensions of a shape: the first is the batch.
func dimNames(shape []int64) []string {
	names := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			names[i] = "dim" + strconv.Itoa(i)
			if i == 0 {
				names[i] = "batch"
			}
		}
	}
	return names
}

package toonnx

import (
	"fmt"
	"strings"
)

// dlibSide is the side of the square face crop dlib's network takes.
const dlibSide = 150

// DlibResNetToONNX writes face-api.js's face recognition network as an
// ONNX model, from its TensorFlow.js weights manifest (shard reads the
// files it names; see ReadTFJSWeights). The network is face-api.js's port of
// dlib's face recognition ResNet: a 150x150 RGB face in, 128 values out.
//
// face-api.js publishes only the weights; the architecture is in its code
// (src/faceRecognitionNet) and is rebuilt here from the same description:
//
//   - the per-channel mean (122.782, 117.001, 104.298) is taken away and the
//     result divided by 256 inside the model, so that it takes raw 0-255
//     RGB pixels (mean 0, scale 1 in the catalogue);
//   - a 7x7 stride-2 convolution and a 3x3 stride-2 max pool;
//   - residual blocks of 32, 64, 128 and 256 channels; each block that
//     halves the size adds a 2x2 average pool of its input, zero-padded to
//     the block's channels (and the block's output zero-padded by the odd
//     row and column where the two sizes differ);
//   - a global mean and a 256x128 matrix.
//
// The input, named "input", is NHWC [batch, 150, 150, 3]; the output,
// "output" as in the catalogue's other converted model, is [batch, 128] and
// is not normalised, like face-api.js's descriptor.
//
// The pixels are divided by 256 as dlib (and the original face-api.js) do;
// @vladmandic/face-api divides by 255, a 0.4 % larger input whose
// descriptors differ by about 1e-4. The network was trained with dlib's.
func DlibResNetToONNX(manifest []byte, shard func(path string) ([]byte, error)) ([]byte, error) {
	weights, err := ReadTFJSWeights(manifest, shard)
	if err != nil {
		return nil, err
	}
	return dlibResNet(weights)
}

func dlibResNet(weights map[string]*Tensor) ([]byte, error) {
	c := &converter{m: &Model{Weights: weights}, input: "input", values: map[string]value{}, consts: map[string]string{}}
	c.g.name = "dlib-resnet"
	inShape := []int64{-1, dlibSide, dlibSide, 3}
	c.g.inputs = []valueInfo{{name: c.input, dims: inShape, dimNames: dimNames(inShape)}}
	x := c.node("Transpose", "nchw", []string{c.input}, intsAttr("perm", 0, 3, 1, 2))
	x = c.node("Sub", "centred", []string{x, c.floats("mean", []int64{1, 3, 1, 1}, []float32{122.782, 117.001, 104.298})})
	x = c.node("Mul", "normalised", []string{x, c.floats("scale", nil, []float32{1.0 / 256})})

	b := resnetBuilder{c: c, hw: dlibSide, ch: 3}
	var err error
	if x, err = b.conv(x, "conv32_down", 2, true, false); err != nil {
		return nil, err
	}
	x = c.node("MaxPool", "pool", []string{x}, intsAttr("kernel_shape", 3, 3), intsAttr("strides", 2, 2))
	b.hw = (b.hw-3)/2 + 1
	for _, layer := range []string{
		"conv32_1", "conv32_2", "conv32_3",
		"conv64_down", "conv64_1", "conv64_2", "conv64_3",
		"conv128_down", "conv128_1", "conv128_2",
		"conv256_down", "conv256_1", "conv256_2",
		"conv256_down_out",
	} {
		if x, err = b.block(x, layer); err != nil {
			return nil, err
		}
	}
	x = c.node("ReduceMean", "global_mean", []string{x}, intsAttr("axes", 2, 3), intAttr("keepdims", 0))
	fc, ok := weights["fc"]
	if !ok || len(fc.Shape) != 2 || fc.Shape[0] != b.ch {
		return nil, fmt.Errorf("toonnx: dlib resnet: weight fc: want a %dxN matrix", b.ch)
	}
	x = c.node("MatMul", "fc", []string{x, c.floats("fc", fc.Shape, fc.Floats)})
	c.emit("Identity", []string{x}, []string{"output"})
	outShape := []int64{-1, fc.Shape[1]}
	c.g.outputs = []valueInfo{{name: "output", dims: outShape, dimNames: dimNames(outShape)}}
	return encodeModel(&c.g, "faced toonnx"), nil
}

// resnetBuilder tracks the square activation's side and channels, which the
// down blocks need to match their shortcut to their output.
type resnetBuilder struct {
	c  *converter
	hw int64
	ch int64
}

// block is a residual block; a name ending in _down or _down_out halves the
// size.
func (b *resnetBuilder) block(x, name string) (string, error) {
	down := strings.HasSuffix(name, "_down") || strings.HasSuffix(name, "_down_out")
	inHW, inCh := b.hw, b.ch
	stride := int64(1)
	if down {
		stride = 2
	}
	out, err := b.conv(x, name+"/conv1", stride, true, !down)
	if err != nil {
		return "", err
	}
	if out, err = b.conv(out, name+"/conv2", 1, false, true); err != nil {
		return "", err
	}
	short := x
	switch {
	case down:
		short = b.c.node("AveragePool", name+"/pool", []string{x}, intsAttr("kernel_shape", 2, 2), intsAttr("strides", 2, 2))
		poolHW := inHW / 2
		if d := poolHW - b.hw; d != 0 {
			if d < 0 {
				return "", fmt.Errorf("toonnx: dlib resnet: %s: the pooled shortcut (%d) is smaller than the block (%d)", name, poolHW, b.hw)
			}
			out = b.pad(out, name+"/pad_hw", 0, d)
			b.hw = poolHW
		}
		if d := b.ch - inCh; d != 0 {
			if d < 0 {
				return "", fmt.Errorf("toonnx: dlib resnet: %s: the block narrows %d channels to %d", name, inCh, b.ch)
			}
			short = b.pad(short, name+"/pad_ch", d, 0)
		}
	case inCh != b.ch || inHW != b.hw:
		return "", fmt.Errorf("toonnx: dlib resnet: %s: the block changes the shape but is not a down block", name)
	}
	sum := b.c.node("Add", name+"/add", []string{out, short})
	return b.c.node("Relu", name+"/relu", []string{sum}), nil
}

// pad adds zeros after the last channel and after the last row and column.
func (b *resnetBuilder) pad(x, name string, channels, hw int64) string {
	pads := b.c.int64s(name, 0, 0, 0, 0, 0, channels, hw, hw)
	return b.c.node("Pad", name, []string{x, pads}, strAttr("mode", "constant"))
}

// conv is a convolution followed by face-api.js's per-channel scale and
// shift, both folded into the convolution's weights and bias (which changes
// no result beyond float rounding), then an optional ReLU; same pads as
// TensorFlow does, the odd pixel at the end.
func (b *resnetBuilder) conv(x, name string, stride int64, relu, same bool) (string, error) {
	weight := func(suffix string) (*Tensor, error) {
		t, ok := b.c.m.Weights[name+suffix]
		if !ok {
			return nil, fmt.Errorf("toonnx: dlib resnet: no weight %s%s", name, suffix)
		}
		return t, nil
	}
	filters, err := weight("/conv/filters")
	if err != nil {
		return "", err
	}
	if len(filters.Shape) != 4 || filters.Shape[0] != filters.Shape[1] || filters.Shape[2] != b.ch {
		return "", fmt.Errorf("toonnx: dlib resnet: %s/conv/filters: shape %v does not fit %d input channels", name, filters.Shape, b.ch)
	}
	k, ci, co := filters.Shape[0], filters.Shape[2], filters.Shape[3]
	if !same && k > b.hw { // no padding: the kernel must fit
		return "", fmt.Errorf("toonnx: dlib resnet: %s: a %dx%d kernel on a %dx%d activation", name, k, k, b.hw, b.hw)
	}
	var per [3]*Tensor
	for i, suffix := range []string{"/conv/bias", "/scale/weights", "/scale/biases"} {
		if per[i], err = weight(suffix); err != nil {
			return "", err
		}
		if per[i].size() != co {
			return "", fmt.Errorf("toonnx: dlib resnet: %s%s: want %d values, got %d", name, suffix, co, per[i].size())
		}
	}
	bias, scale, shift := per[0].Floats, per[1].Floats, per[2].Floats
	// ((x*W + bias) * scale + shift) = x*(W*scale) + (bias*scale + shift)
	weights := hwioToOIHW(filters.Floats, k, k, ci, co)
	perOut := ci * k * k
	for i := range weights {
		weights[i] *= scale[int64(i)/perOut]
	}
	folded := make([]float32, co)
	for o := range folded {
		// The conversion stops a fused multiply-add (arm64), which would
		// round differently and break the output's pinned sha256.
		folded[o] = float32(bias[o]*scale[o]) + shift[o]
	}
	attrs := []onnxAttr{intsAttr("kernel_shape", k, k), intsAttr("strides", stride, stride)}
	if same {
		attrs = append(attrs, strAttr("auto_pad", "SAME_UPPER"))
		b.hw = (b.hw + stride - 1) / stride
	} else {
		b.hw = (b.hw-k)/stride + 1
	}
	b.ch = co
	out := b.c.node("Conv", name, []string{x,
		b.c.floats(name+"/w", []int64{co, ci, k, k}, weights),
		b.c.floats(name+"/b", []int64{co}, folded)}, attrs...)
	if relu {
		out = b.c.node("Relu", name+"/relu", []string{out})
	}
	return out, nil
}

package models

import (
	"fmt"
	"math"

	"github.com/facedhq/faced/accel"
)

// Pixels is an 8-bit interleaved image already resized to a network's input
// size and converted to its colour order (InputSpec.Color). Package face
// produces it; the families here turn it into tensors.
type Pixels struct {
	Width, Height, Channels int
	Data                    []uint8 // row-major, Channels values per pixel
}

// ImageNet normalisation, used by the attribute networks trained with
// torchvision transforms.
var (
	imagenetMean = [3]float32{0.485, 0.456, 0.406}
	imagenetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Channels is the number of colour channels the input takes.
func (in InputSpec) Channels() int {
	if in.Color == "GRAY" {
		return 1
	}
	return 3
}

// Tensor normalises p into the input tensor this spec describes. The batch
// dimension is always 1.
func (in InputSpec) Tensor(p Pixels) (accel.Tensor, error) {
	w, h, c := in.Width(), in.Height(), in.Channels()
	if p.Width != w || p.Height != h || p.Channels != c {
		return accel.Tensor{}, fmt.Errorf("models: input %q wants %dx%dx%d pixels, got %dx%dx%d",
			in.Name, w, h, c, p.Width, p.Height, p.Channels)
	}
	if len(p.Data) != w*h*c {
		return accel.Tensor{}, fmt.Errorf("models: input %q: %d bytes for %dx%dx%d", in.Name, len(p.Data), w, h, c)
	}
	// Each channel maps its 256 byte values through a table: the loop below
	// is then a load and a store per value, which matters for a detector
	// fed several 320x240 tiles per frame.
	var table [3][256]float32
	for ch := range c {
		scale, offset := in.Scale, -in.Mean*in.Scale
		if in.Norm == "imagenet" {
			// (v/255 - mean) / std  ==  v*scale + offset
			scale = 1 / (255 * imagenetStd[ch])
			offset = -imagenetMean[ch] / imagenetStd[ch]
		}
		for v := range 256 {
			table[ch][v] = float32(v)*scale + offset
		}
	}
	data := make([]float32, w*h*c)
	plane := w * h
	if in.Layout == "NHWC" {
		for i, v := range p.Data {
			data[i] = table[i%c][v]
		}
	} else if c == 3 {
		c0, c1, c2 := data[:plane], data[plane:2*plane], data[2*plane:]
		for i := range c0 {
			px := p.Data[3*i : 3*i+3 : 3*i+3]
			c0[i], c1[i], c2[i] = table[0][px[0]], table[1][px[1]], table[2][px[2]]
		}
	} else { // one channel: NCHW is NHWC
		for i, v := range p.Data {
			data[i] = table[0][v]
		}
	}
	shape := append([]int64(nil), in.Shape...)
	shape[0] = 1
	return accel.Tensor{Name: in.Name, Shape: shape, Data: data}, nil
}

// output finds a named output tensor, or the i-th one when names differ
// between backends.
func output(outs []accel.Tensor, name string, i int) (accel.Tensor, error) {
	for _, t := range outs {
		if t.Name == name {
			return t, nil
		}
	}
	if i < len(outs) {
		return outs[i], nil
	}
	return accel.Tensor{}, fmt.Errorf("models: output %q missing (%d outputs)", name, len(outs))
}

func softmax(x []float32) []float32 {
	out := make([]float32, len(x))
	maxV := float32(math.Inf(-1))
	for _, v := range x {
		maxV = max(maxV, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - maxV))
		out[i] = float32(e)
		sum += e
	}
	for i := range out {
		out[i] = float32(float64(out[i]) / sum)
	}
	return out
}

func sigmoid(x float32) float32 {
	// MediaPipe clips logits to ±100 before the sigmoid; do the same so
	// extreme values cannot overflow.
	x = min(max(x, -100), 100)
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// L2Normalize scales v to unit length in place and returns it. A zero
// vector stays zero.
func L2Normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

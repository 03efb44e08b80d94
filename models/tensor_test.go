package models

import (
	"math"
	"slices"
	"testing"
)

// rgb2x2 is a 2x2 RGB image: pixel i (row-major) has channels 3i+1, 3i+2, 3i+3.
var rgb2x2 = Pixels{Width: 2, Height: 2, Channels: 3, Data: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}

func TestTensorLayout(t *testing.T) {
	tests := []struct {
		name string
		in   InputSpec
		want []float32
	}{
		{
			name: "NCHW planes",
			in:   InputSpec{Name: "input", Shape: []int64{1, 3, 2, 2}, Layout: "NCHW", Color: "RGB", Mean: 0, Scale: 1},
			want: []float32{1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12},
		},
		{
			name: "NHWC interleaved",
			in:   InputSpec{Name: "input", Shape: []int64{1, 2, 2, 3}, Layout: "NHWC", Color: "RGB", Mean: 0, Scale: 1},
			want: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		},
		{
			name: "NCHW mean and scale",
			in:   InputSpec{Name: "x", Shape: []int64{1, 3, 2, 2}, Layout: "NCHW", Color: "BGR", Mean: 2, Scale: 0.5},
			// (v-2)/2 of the NCHW order above.
			want: []float32{-0.5, 1, 2.5, 4, 0, 1.5, 3, 4.5, 0.5, 2, 3.5, 5},
		},
		{
			name: "NHWC mean and scale",
			in:   InputSpec{Name: "x", Shape: []int64{1, 2, 2, 3}, Layout: "NHWC", Color: "RGB", Mean: 2, Scale: 0.5},
			want: []float32{-0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Tensor(rgb2x2)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.in.Name {
				t.Errorf("name %q, want %q", got.Name, tc.in.Name)
			}
			if !slices.Equal(got.Shape, tc.in.Shape) {
				t.Errorf("shape %v, want %v", got.Shape, tc.in.Shape)
			}
			if len(got.Data) != len(tc.want) {
				t.Fatalf("data %v, want %v", got.Data, tc.want)
			}
			for i := range tc.want {
				if !approx(got.Data[i], tc.want[i], 1e-6) {
					t.Fatalf("data %v, want %v", got.Data, tc.want)
				}
			}
		})
	}
}

// A 3-wide, 2-high image catches a swapped width and height.
func TestTensorNonSquare(t *testing.T) {
	p := Pixels{Width: 3, Height: 2, Channels: 1, Data: []uint8{1, 2, 3, 4, 5, 6}}
	for _, in := range []InputSpec{
		{Shape: []int64{1, 1, 2, 3}, Layout: "NCHW", Color: "GRAY", Scale: 1},
		{Shape: []int64{1, 2, 3, 1}, Layout: "NHWC", Color: "GRAY", Scale: 1},
	} {
		if in.Width() != 3 || in.Height() != 2 {
			t.Errorf("%s %v: size %dx%d, want 3x2", in.Layout, in.Shape, in.Width(), in.Height())
		}
		got, err := in.Tensor(p)
		if err != nil {
			t.Fatalf("%s: %v", in.Layout, err)
		}
		if want := []float32{1, 2, 3, 4, 5, 6}; !slices.Equal(got.Data, want) {
			t.Errorf("%s: data %v, want %v", in.Layout, got.Data, want)
		}
	}
	if _, err := (InputSpec{Shape: []int64{1, 1, 3, 2}, Layout: "NCHW", Color: "GRAY", Scale: 1}).Tensor(p); err == nil {
		t.Error("3x2 pixels accepted by a 2x3 input")
	}
}

func TestTensorBatchAndShapeCopy(t *testing.T) {
	in := InputSpec{Name: "input", Shape: []int64{-1, 3, 2, 2}, Layout: "NCHW", Color: "RGB", Scale: 1}
	got, err := in.Tensor(rgb2x2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Shape, []int64{1, 3, 2, 2}) {
		t.Errorf("shape %v, want batch 1", got.Shape)
	}
	if in.Shape[0] != -1 {
		t.Errorf("Tensor modified the spec's shape: %v", in.Shape)
	}
}

func TestTensorImagenet(t *testing.T) {
	in := InputSpec{Name: "input", Shape: []int64{1, 3, 1, 2}, Layout: "NCHW", Color: "RGB", Norm: "imagenet",
		Mean: 99, Scale: 99} // ignored under imagenet
	p := Pixels{Width: 2, Height: 1, Channels: 3, Data: []uint8{255, 0, 128, 0, 255, 64}}
	got, err := in.Tensor(p)
	if err != nil {
		t.Fatal(err)
	}
	mean := []float64{0.485, 0.456, 0.406}
	std := []float64{0.229, 0.224, 0.225}
	for ch := range 3 {
		for i := range 2 {
			want := (float64(p.Data[3*i+ch])/255 - mean[ch]) / std[ch]
			checkApprox(t, "imagenet value", got.Data[ch*2+i], float32(want), 1e-5)
		}
	}
	// Spot check against numbers worked out by hand.
	checkApprox(t, "R of white", got.Data[0], 2.2489083, 1e-5)  // (1-0.485)/0.229
	checkApprox(t, "G of black", got.Data[2], -2.0357143, 1e-5) // -0.456/0.224
	checkApprox(t, "B of 128", got.Data[4], 0.4264924, 1e-5)    // (128/255-0.406)/0.225
}

func TestTensorGray(t *testing.T) {
	in := InputSpec{Name: "input", Shape: []int64{1, 1, 2, 2}, Layout: "NCHW", Color: "GRAY", Mean: 0, Scale: 1.0 / 256}
	if in.Channels() != 1 {
		t.Fatalf("GRAY has %d channels", in.Channels())
	}
	got, err := in.Tensor(Pixels{Width: 2, Height: 2, Channels: 1, Data: []uint8{0, 64, 128, 255}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0.25, 0.5, 255.0 / 256}
	if !slices.Equal(got.Data, want) {
		t.Errorf("data %v, want %v", got.Data, want)
	}
	for _, c := range []string{"RGB", "BGR"} {
		if n := (InputSpec{Color: c}).Channels(); n != 3 {
			t.Errorf("%s has %d channels", c, n)
		}
	}
}

func TestTensorErrors(t *testing.T) {
	rgb := InputSpec{Name: "input", Shape: []int64{1, 3, 2, 2}, Layout: "NCHW", Color: "RGB", Scale: 1}
	gray := InputSpec{Name: "input", Shape: []int64{1, 1, 2, 2}, Layout: "NCHW", Color: "GRAY", Scale: 1}
	tests := []struct {
		name string
		in   InputSpec
		p    Pixels
	}{
		{"wrong width", rgb, Pixels{Width: 3, Height: 2, Channels: 3, Data: make([]uint8, 18)}},
		{"wrong height", rgb, Pixels{Width: 2, Height: 1, Channels: 3, Data: make([]uint8, 6)}},
		{"gray into rgb", rgb, Pixels{Width: 2, Height: 2, Channels: 1, Data: make([]uint8, 4)}},
		{"rgb into gray", gray, rgb2x2},
		{"short data", rgb, Pixels{Width: 2, Height: 2, Channels: 3, Data: make([]uint8, 11)}},
		{"long data", rgb, Pixels{Width: 2, Height: 2, Channels: 3, Data: make([]uint8, 13)}},
	}
	for _, tc := range tests {
		if _, err := tc.in.Tensor(tc.p); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSoftmaxSigmoid(t *testing.T) {
	s := softmax([]float32{1000, 1000}) // must not overflow
	checkApprox(t, "softmax[0]", s[0], 0.5, 1e-6)
	checkApprox(t, "softmax[1]", s[1], 0.5, 1e-6)
	s = softmax([]float32{0, float32(math.Log(3))})
	checkApprox(t, "softmax[0]", s[0], 0.25, 1e-6)
	checkApprox(t, "softmax[1]", s[1], 0.75, 1e-6)

	checkApprox(t, "sigmoid(0)", sigmoid(0), 0.5, 0)
	checkApprox(t, "sigmoid(1e9)", sigmoid(1e9), 1, 1e-6)
	checkApprox(t, "sigmoid(-1e9)", sigmoid(-1e9), 0, 1e-6)
	checkApprox(t, "sigmoid(2)", sigmoid(2), 0.880797, 1e-6)
}

// BenchmarkTensor is one UltraFace input: the tiled detection pass makes
// five of them per 1080p frame.
func BenchmarkTensor(b *testing.B) {
	in := InputSpec{Name: "input", Shape: []int64{1, 3, 240, 320}, Layout: "NCHW", Color: "RGB", Mean: 127, Scale: 0.0078125}
	px := Pixels{Width: 320, Height: 240, Channels: 3, Data: make([]uint8, 320*240*3)}
	for i := range px.Data {
		px.Data[i] = uint8(i * 7)
	}
	for b.Loop() {
		if _, err := in.Tensor(px); err != nil {
			b.Fatal(err)
		}
	}
}

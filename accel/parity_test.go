package accel_test

import (
	"context"
	"image"
	"math"
	"slices"
	"testing"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/accel/onnxrt"
	"github.com/facedhq/faced/accel/opencvdnn"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// minCosine is the agreement required between backends on every output
// tensor. For arcface-r512 it is the stated acceptance target: an embedding
// computed on OpenCV DNN must match the ONNX Runtime one to cosine 0.999, so
// a gallery enrolled on one backend can be searched from the other.
const minCosine = 0.999

// maxRelDiff bounds every value's difference between backends, relative
// to the tensor's largest magnitude (at least 1): cosine alone ignores
// scale, so a backend returning twice the logits, or a 2-3-value output
// off by a constant, would pass it. Measured on the build machine: at
// most 2.1e-6 of the largest magnitude, so 1e-4 leaves 50x headroom.
const maxRelDiff = 1e-4

// TestBackendParity runs every ONNX model of the catalogue on ONNX Runtime
// and on OpenCV DNN with the same input, made from a real photo, and
// requires the two to agree: same declared interface, and every output
// tensor at cosine similarity >= minCosine.
func TestBackendParity(t *testing.T) {
	dir := testenv.DepsDir(t)
	ort, err := onnxrt.New(accel.Config{LibDir: models.LibDir(dir), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ort.Close()
	ocv, err := opencvdnn.New(accel.Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ocv.Close()

	photo := decodePhoto(t, "deepface/img1.jpg")
	defer photo.Close()

	for _, spec := range testenv.Specs(t, models.FormatONNX) {
		t.Run(spec.Name, func(t *testing.T) {
			_, model := testenv.Model(t, spec.Name)
			in := photoTensor(t, photo, spec.Input)

			want := run(t, ort, model, in)
			got := run(t, ocv, model, in)
			if !slices.EqualFunc(want.infos, got.infos, sameInfo) {
				t.Fatalf("interfaces differ:\nonnxrt    %v\nopencvdnn %v", want.infos, got.infos)
			}
			for i, w := range want.out {
				g := got.out[i]
				if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) {
					t.Errorf("output %d: opencvdnn %q %v, onnxrt %q %v", i, g.Name, g.Shape, w.Name, w.Shape)
					continue
				}
				c, d := cosine(w.Data, g.Data), maxAbsDiff(w.Data, g.Data)
				scale := max(1, maxAbs(w.Data))
				t.Logf("%-20s cosine %.9f (1-cos %.1e)  max |diff| %.3g (%.1e of scale %.3g)", w.Name, c, 1-c, d, d/scale, scale)
				if !(c >= minCosine) {
					t.Errorf("output %q: cosine %.7f < %v", w.Name, c, minCosine)
				}
				if !(d <= maxRelDiff*scale) {
					t.Errorf("output %q: values differ by up to %.3g, more than %v of the largest magnitude %.3g", w.Name, d, maxRelDiff, scale)
				}
			}
			if spec.Name == "arcface-r512" {
				// The acceptance target, checked on its own so a failure
				// names it.
				w, g := want.out[0].Data, got.out[0].Data
				if len(w) != 512 {
					t.Fatalf("arcface-r512 embedding has %d values, want 512", len(w))
				}
				if c := cosine(w, g); !(c >= minCosine) {
					t.Errorf("arcface-r512 embeddings: cosine %.7f, acceptance target %v", c, minCosine)
				}
			}
		})
	}
}

type result struct {
	infos []accel.TensorInfo // inputs then outputs
	out   []accel.Tensor
}

func run(t *testing.T, b accel.Backend, model accel.Model, in accel.Tensor) result {
	t.Helper()
	s, err := b.NewSession(context.Background(), model)
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), []accel.Tensor{in})
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	return result{infos: append(slices.Clone(s.Inputs()), s.Outputs()...), out: out}
}

func sameInfo(a, b accel.TensorInfo) bool {
	return a.Name == b.Name && a.DType == b.DType && slices.Equal(a.Shape, b.Shape)
}

// decodePhoto reads a shared evaluation photo as an 8-bit BGR Mat.
func decodePhoto(t *testing.T, rel string) gocv.Mat {
	t.Helper()
	img, err := gocv.IMDecode(testenv.ReadPhoto(t, rel), gocv.IMReadColor)
	if err != nil || img.Empty() {
		t.Fatalf("decode %s: %v", rel, err)
	}
	return img
}

// photoTensor resizes the whole photo to the model's input size, converts
// it to the model's colour order and normalises it with the manifest's
// mean/scale (models.InputSpec.Tensor). No face crop: parity only needs the
// same realistic input on both sides.
func photoTensor(t *testing.T, bgr gocv.Mat, in models.InputSpec) accel.Tensor {
	t.Helper()
	resized := gocv.NewMat()
	defer resized.Close()
	gocv.Resize(bgr, &resized, image.Pt(in.Width(), in.Height()), 0, 0, gocv.InterpolationArea)
	conv := gocv.NewMat()
	defer conv.Close()
	switch in.Color {
	case "RGB":
		gocv.CvtColor(resized, &conv, gocv.ColorBGRToRGB)
	case "GRAY":
		gocv.CvtColor(resized, &conv, gocv.ColorBGRToGray)
	default: // BGR
		resized.CopyTo(&conv)
	}
	x, err := in.Tensor(models.Pixels{Width: conv.Cols(), Height: conv.Rows(), Channels: conv.Channels(), Data: conv.ToBytes()})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// cosine is the cosine similarity of a and b; two all-zero tensors are
// identical (1), one all-zero tensor against another is not (0).
func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var ab, aa, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab += x * y
		aa += x * x
		bb += y * y
	}
	switch {
	case aa == 0 && bb == 0:
		return 1
	case aa == 0 || bb == 0:
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func maxAbs(a []float32) float64 {
	var m float64
	for _, v := range a {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// maxAbsDiff is the largest |a_i - b_i|; +Inf when the lengths differ, so
// a short output cannot pass.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range min(len(a), len(b)) {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

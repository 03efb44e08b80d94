package models

import (
	"math"
	"reflect"
	"testing"

	"github.com/facedhq/faced/accel"
)

func TestIoU(t *testing.T) {
	unit := Box{0, 0, 1, 1}
	tests := []struct {
		name string
		a, b Box
		want float32
	}{
		{"disjoint", unit, Box{2, 2, 3, 3}, 0},
		{"touching edge", unit, Box{1, 0, 2, 1}, 0},
		{"identical", unit, unit, 1},
		{"half overlap", Box{0, 0, 2, 1}, Box{1, 0, 3, 1}, 1.0 / 3}, // inter 1, union 3
		{"contained", Box{0, 0, 2, 2}, unit, 0.25},
		{"two thirds", Box{0, 0, 3, 1}, Box{1, 0, 4, 1}, 0.5}, // inter 2, union 4
		{"empty boxes", Box{}, Box{}, 0},
		{"inverted box", Box{1, 1, 0, 0}, unit, 0},
	}
	for _, tc := range tests {
		if got := IoU(tc.a, tc.b); !approx(got, tc.want, 1e-6) {
			t.Errorf("%s: IoU = %v, want %v", tc.name, got, tc.want)
		}
		if got := IoU(tc.b, tc.a); !approx(got, tc.want, 1e-6) {
			t.Errorf("%s (swapped): IoU = %v, want %v", tc.name, got, tc.want)
		}
	}
	if a := (Box{1, 1, 0, 0}).Area(); a != 0 {
		t.Errorf("inverted box area %v", a)
	}
}

func TestNMS(t *testing.T) {
	a := Detection{Box: Box{0, 0, 1, 1}, Score: 0.9}
	a2 := Detection{Box: Box{0.05, 0, 1.05, 1}, Score: 0.8} // overlaps a
	a3 := Detection{Box: Box{0, 0.1, 1, 1.1}, Score: 0.6}   // overlaps a
	b := Detection{Box: Box{5, 5, 6, 6}, Score: 0.85}
	c := Detection{Box: Box{10, 0, 11, 1}, Score: 0.1}
	got := NMS([]Detection{a3, c, a2, b, a}, 0.5)
	want := []Detection{a, b, c}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NMS = %+v, want %+v", got, want)
	}

	// Suppression needs an IoU strictly above the threshold.
	p := Detection{Box: Box{0, 0, 3, 1}, Score: 0.9}
	q := Detection{Box: Box{1, 0, 4, 1}, Score: 0.8} // IoU 0.5 with p
	if got := NMS([]Detection{q, p}, 0.5); len(got) != 2 || got[0].Box != p.Box || got[1].Box != q.Box {
		t.Errorf("IoU 0.5 at threshold 0.5: %+v, want both, p first", got)
	}
	if got := NMS([]Detection{q, p}, 0.49); len(got) != 1 || got[0].Score != 0.9 {
		t.Errorf("IoU 0.5 at threshold 0.49: %+v, want only p", got)
	}
	if got := NMS(nil, 0.5); len(got) != 0 {
		t.Errorf("NMS(nil) = %v", got)
	}
}

func TestWeightedNMS(t *testing.T) {
	hi := Detection{Box: Box{0, 0, 1, 1}, Score: 0.6, Keypoints: []Point{{0, 0}, {1, 2}}}
	lo := Detection{Box: Box{0.2, 0.1, 1.2, 1.1}, Score: 0.2, Keypoints: []Point{{1, 1}, {5, 6}}}
	far := Detection{Box: Box{5, 5, 6, 6}, Score: 0.5, Keypoints: []Point{{5, 5}, {6, 6}}}
	got := WeightedNMS([]Detection{lo, far, hi}, 0.3)
	if len(got) != 2 {
		t.Fatalf("WeightedNMS gave %d detections, want 2: %+v", len(got), got)
	}
	// Weights 0.6 and 0.2 → 3/4 and 1/4.
	m := got[0]
	if m.Score != 0.6 {
		t.Errorf("merged score %v, want the best, 0.6", m.Score)
	}
	checkApprox(t, "X1", m.Box.X1, 0.75*0+0.25*0.2, 1e-6)
	checkApprox(t, "Y1", m.Box.Y1, 0.75*0+0.25*0.1, 1e-6)
	checkApprox(t, "X2", m.Box.X2, 0.75*1+0.25*1.2, 1e-6)
	checkApprox(t, "Y2", m.Box.Y2, 0.75*1+0.25*1.1, 1e-6)
	if len(m.Keypoints) != 2 {
		t.Fatalf("merged keypoints %v", m.Keypoints)
	}
	checkApprox(t, "kp0.X", m.Keypoints[0].X, 0.25, 1e-6)
	checkApprox(t, "kp0.Y", m.Keypoints[0].Y, 0.25, 1e-6)
	checkApprox(t, "kp1.X", m.Keypoints[1].X, 0.75*1+0.25*5, 1e-6)
	checkApprox(t, "kp1.Y", m.Keypoints[1].Y, 0.75*2+0.25*6, 1e-6)
	if !reflect.DeepEqual(got[1], far) {
		t.Errorf("disjoint detection changed: %+v, want %+v", got[1], far)
	}

	// A box far from the best but overlapping a suppressed one starts its
	// own cluster.
	chain := WeightedNMS([]Detection{
		{Box: Box{0, 0, 2, 1}, Score: 0.9},
		{Box: Box{1, 0, 3, 1}, Score: 0.8}, // IoU 1/3 with the first
		{Box: Box{2, 0, 4, 1}, Score: 0.7}, // IoU 0 with the first, 1/3 with the second
	}, 0.3)
	if len(chain) != 2 || chain[0].Score != 0.9 || chain[1].Score != 0.7 {
		t.Errorf("chain: %+v", chain)
	}
}

func ultraFaceOutputs(rows map[int][6]float32) []accel.Tensor {
	scores := make([]float32, 2*ultraFacePriors)
	boxes := make([]float32, 4*ultraFacePriors)
	for i := range ultraFacePriors {
		scores[2*i] = 1 // background
	}
	for i, r := range rows {
		scores[2*i], scores[2*i+1] = 1-r[0], r[0]
		copy(boxes[4*i:], r[2:])
	}
	return []accel.Tensor{
		{Name: "boxes", Shape: []int64{1, ultraFacePriors, 4}, Data: boxes},
		{Name: "scores", Shape: []int64{1, ultraFacePriors, 2}, Data: scores},
	}
}

func TestUltraFaceDecode(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "ultraface-rfb320"))
	if err != nil {
		t.Fatal(err)
	}
	if det.Spec().Name != "ultraface-rfb320" {
		t.Errorf("Spec().Name = %q", det.Spec().Name)
	}
	nan := float32(math.NaN())
	// score, unused, x1, y1, x2, y2
	rows := map[int][6]float32{
		100:  {0.9, 0, 0.10, 0.10, 0.30, 0.30},
		2000: {0.8, 0, 0.11, 0.10, 0.31, 0.30}, // overlaps row 100
		3000: {0.7, 0, 0.60, 0.60, 0.80, 0.80},
		4000: {0.99, 0, nan, 0.1, 0.2, 0.2},    // NaN box
		4001: {nan, 0, 0.40, 0.40, 0.50, 0.50}, // NaN score
		4002: {0.95, 0, 0.5, 0.5, 0.5, 0.6},    // empty box
		4003: {0.3, 0, 0.0, 0.0, 0.1, 0.1},     // below minScore
	}
	outs := ultraFaceOutputs(rows)
	got, err := det.Decode(outs, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := []Detection{
		{Box: Box{0.10, 0.10, 0.30, 0.30}, Score: 0.9},
		{Box: Box{0.60, 0.60, 0.80, 0.80}, Score: 0.7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}

	got, err = det.Decode(outs, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Score != 0.9 {
		t.Errorf("minScore 0.75: %+v, want only the 0.9 face", got)
	}
	got, _ = det.Decode(outs, 0.7)
	if len(got) != 2 {
		t.Errorf("minScore 0.7 must keep a 0.7 face: %+v", got)
	}

	// Outputs without the expected names are taken by position: scores, boxes.
	unnamed := []accel.Tensor{outs[1], outs[0]}
	unnamed[0].Name, unnamed[1].Name = "o0", "o1"
	if got, err := det.Decode(unnamed, 0.5); err != nil || len(got) != 2 {
		t.Errorf("unnamed outputs: %+v, %v", got, err)
	}
}

func TestUltraFaceDecodeErrors(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "ultraface-rfb320"))
	if err != nil {
		t.Fatal(err)
	}
	good := ultraFaceOutputs(nil)
	short := []accel.Tensor{
		{Name: "scores", Data: make([]float32, 2*(ultraFacePriors-1))},
		{Name: "boxes", Data: make([]float32, 4*(ultraFacePriors-1))},
	}
	mismatched := []accel.Tensor{good[1], {Name: "boxes", Data: make([]float32, 4*ultraFacePriors-4)}}
	for name, outs := range map[string][]accel.Tensor{
		"no outputs":  nil,
		"one output":  good[1:],
		"4419 priors": short,
		"box count":   mismatched,
	} {
		if _, err := det.Decode(outs, 0.5); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewDetectorUnknownFamily(t *testing.T) {
	if _, err := NewDetector(mustSpec(t, "arcface-r512")); err == nil {
		t.Error("NewDetector accepted an embedder")
	}
	for _, s := range mustManifest(t).ByTask(TaskDetect) {
		if _, err := NewDetector(s); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}

func TestBlazeFaceAnchors(t *testing.T) {
	tests := []struct {
		model string
		n     int
		// an anchor index and its centre
		idx    int
		ax, ay float32
	}{
		{"blazeface-short", 896, 0, 0.5 / 16, 0.5 / 16},
		{"blazeface-short", 896, 1, 0.5 / 16, 0.5 / 16},
		{"blazeface-short", 896, 2*(16*3+5) + 1, 5.5 / 16, 3.5 / 16},
		{"blazeface-short", 896, 512, 0.5 / 8, 0.5 / 8},
		{"blazeface-short", 896, 512 + 6*(8*7+2) + 5, 2.5 / 8, 7.5 / 8},
		{"blazeface-front-onnx", 896, 895, 7.5 / 8, 7.5 / 8},
		{"blazeface-full", 2304, 48*10 + 20, 20.5 / 48, 10.5 / 48},
		{"blazeface-full", 2304, 2303, 47.5 / 48, 47.5 / 48},
		{"blazeface-back-onnx", 896, 2*(16*15+0) + 1, 0.5 / 16, 15.5 / 16},
		{"blazeface-back-onnx", 896, 512 + 6*(8*1+6), 6.5 / 8, 1.5 / 8},
	}
	for _, tc := range tests {
		bf, err := NewBlazeFace(mustSpec(t, tc.model))
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		if len(bf.anchors) != tc.n {
			t.Errorf("%s: %d anchors, want %d", tc.model, len(bf.anchors), tc.n)
			continue
		}
		a := bf.anchors[tc.idx]
		if !approx(a.X, tc.ax, 1e-6) || !approx(a.Y, tc.ay, 1e-6) {
			t.Errorf("%s: anchor %d = %v, want (%v, %v)", tc.model, tc.idx, a, tc.ax, tc.ay)
		}
	}

	spec := mustSpec(t, "blazeface-short")
	spec.Input.Shape = []int64{1, 160, 160, 3}
	if _, err := NewBlazeFace(spec); err == nil {
		t.Error("NewBlazeFace accepted a 160x160 input")
	}
}

// blazeOutputs builds concatenated BlazeFace outputs for n anchors with one
// positive anchor at idx carrying regressor r; every other logit is -100.
func blazeOutputs(n, idx int, logit float32, r [16]float32) (scores, regs []float32) {
	scores = make([]float32, n)
	for i := range scores {
		scores[i] = -100
	}
	regs = make([]float32, 16*n)
	scores[idx] = logit
	copy(regs[16*idx:], r[:])
	return scores, regs
}

func TestBlazeFaceDecode(t *testing.T) {
	// Regressor in input pixels: dx, dy, w, h, then six keypoints.
	r := [16]float32{0.1, -0.05, 0.25, 0.2, -0.1, -0.05, 0.1, -0.05, 0, 0, 0, 0.05, -0.12, 0, 0.12, 0}
	tests := []struct {
		model  string
		size   float32
		n, idx int
		ax, ay float32
	}{
		{"blazeface-short", 128, 896, 512 + 6*(8*3+5) + 2, 5.5 / 8, 3.5 / 8},
		{"blazeface-full", 192, 2304, 48*10 + 20, 20.5 / 48, 10.5 / 48},
		{"blazeface-back-onnx", 256, 896, 2*(16*4+9) + 1, 9.5 / 16, 4.5 / 16},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			det, err := NewDetector(mustSpec(t, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			var px [16]float32
			for i := range r {
				px[i] = r[i] * tc.size // the network speaks input pixels
			}
			scores, regs := blazeOutputs(tc.n, tc.idx, 3, px)
			outs := []accel.Tensor{
				{Name: "regressors", Shape: []int64{1, int64(tc.n), 16}, Data: regs},
				{Name: "classificators", Shape: []int64{1, int64(tc.n), 1}, Data: scores},
			}
			got, err := det.Decode(outs, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d detections, want 1: %+v", len(got), got)
			}
			d := got[0]
			checkApprox(t, "score", d.Score, float32(1/(1+math.Exp(-3))), 1e-6)
			cx, cy := tc.ax+0.1, tc.ay-0.05
			checkApprox(t, "X1", d.Box.X1, cx-0.125, 1e-5)
			checkApprox(t, "X2", d.Box.X2, cx+0.125, 1e-5)
			checkApprox(t, "Y1", d.Box.Y1, cy-0.1, 1e-5)
			checkApprox(t, "Y2", d.Box.Y2, cy+0.1, 1e-5)
			if len(d.Keypoints) != 6 {
				t.Fatalf("%d keypoints", len(d.Keypoints))
			}
			for k, p := range d.Keypoints {
				checkApprox(t, "keypoint X", p.X, tc.ax+r[4+2*k], 1e-5)
				checkApprox(t, "keypoint Y", p.Y, tc.ay+r[5+2*k], 1e-5)
			}

			if got, _ := det.Decode(outs, 0.99); len(got) != 0 {
				t.Errorf("minScore 0.99 kept %+v", got)
			}
		})
	}
}

func TestBlazeFaceDecodeSplitOutputs(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "blazeface-front-onnx"))
	if err != nil {
		t.Fatal(err)
	}
	r := [16]float32{5, 3, 30, 30, -8, -6, 8, -6, 0, 2, 0, 10, -14, 0, 14, 0}
	for _, idx := range []int{37, 512 + 100} { // one in each grid
		scores, regs := blazeOutputs(896, idx, 4, r)
		whole := []accel.Tensor{
			{Name: "classificators", Shape: []int64{1, 896, 1}, Data: scores},
			{Name: "regressors", Shape: []int64{1, 896, 16}, Data: regs},
		}
		// As the ONNX conversion: per grid, regressors first.
		split := []accel.Tensor{
			{Name: "regressors_1", Shape: []int64{1, 512, 16}, Data: regs[:512*16]},
			{Name: "regressors_2", Shape: []int64{1, 384, 16}, Data: regs[512*16:]},
			{Name: "classificators_1", Shape: []int64{1, 512, 1}, Data: scores[:512]},
			{Name: "classificators_2", Shape: []int64{1, 384, 1}, Data: scores[512:]},
		}
		a, err := det.Decode(whole, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		b, err := det.Decode(split, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != 1 || !reflect.DeepEqual(a, b) {
			t.Errorf("anchor %d: concatenated %+v, split %+v", idx, a, b)
		}
	}
}

func TestBlazeFaceDecodeSkipsBadRows(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "blazeface-short"))
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	good := [16]float32{0, 0, 20, 20}
	scores, regs := blazeOutputs(896, 0, 5, good)
	// Anchor 300: NaN regressor. Anchor 400: NaN logit. Anchor 600: zero
	// width.
	scores[300], regs[16*300+2] = 5, nan
	regs[16*300+3] = 20
	scores[400] = nan
	copy(regs[16*400:], good[:])
	scores[600] = 5
	regs[16*600+3] = 20
	// Anchor 1 shares anchor 0's cell and box: a NaN logit there must not
	// poison the blend of the real face.
	scores[1] = nan
	copy(regs[16:], good[:])
	outs := []accel.Tensor{
		{Shape: []int64{1, 896, 1}, Data: scores},
		{Shape: []int64{1, 896, 16}, Data: regs},
	}
	got, err := det.Decode(outs, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := Box{-10.0/128 + 0.5/16, -10.0/128 + 0.5/16, 10.0/128 + 0.5/16, 10.0/128 + 0.5/16}
	if len(got) != 1 || !approx(got[0].Score, sigmoid(5), 1e-7) || got[0].Box != want {
		t.Errorf("Decode = %+v, want only anchor 0 with box %+v", got, want)
	}
}

func TestBlazeFaceDecodeOverlapBlends(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "blazeface-short"))
	if err != nil {
		t.Fatal(err)
	}
	// Anchors 0 and 1 share a cell: the same regressor gives the same box,
	// so the blend is that box with the better score.
	r := [16]float32{1, 1, 20, 20}
	scores, regs := blazeOutputs(896, 0, 1, r)
	scores[1] = 2
	copy(regs[16:], r[:])
	got, err := det.Decode([]accel.Tensor{
		{Shape: []int64{1, 896, 1}, Data: scores},
		{Shape: []int64{1, 896, 16}, Data: regs},
	}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d detections, want 1", len(got))
	}
	checkApprox(t, "score", got[0].Score, sigmoid(2), 1e-7)
	cx := float32(0.5/16 + 1.0/128)
	checkApprox(t, "X1", got[0].Box.X1, cx-10.0/128, 1e-6)
}

func TestBlazeFaceDecodeWrongCounts(t *testing.T) {
	det, err := NewDetector(mustSpec(t, "blazeface-short"))
	if err != nil {
		t.Fatal(err)
	}
	scores, regs := blazeOutputs(896, 0, 5, [16]float32{0, 0, 10, 10})
	for name, outs := range map[string][]accel.Tensor{
		"no outputs":     nil,
		"scores only":    {{Shape: []int64{1, 896, 1}, Data: scores}},
		"regressor only": {{Shape: []int64{1, 896, 16}, Data: regs}},
		"895 scores": {
			{Shape: []int64{1, 895, 1}, Data: scores[:895]},
			{Shape: []int64{1, 896, 16}, Data: regs},
		},
		"2304 anchors": {
			{Shape: []int64{1, 2304, 1}, Data: make([]float32, 2304)},
			{Shape: []int64{1, 2304, 16}, Data: make([]float32, 2304*16)},
		},
		"scores twice": {
			{Shape: []int64{1, 896, 1}, Data: scores},
			{Shape: []int64{1, 896, 1}, Data: scores},
			{Shape: []int64{1, 896, 16}, Data: regs},
		},
	} {
		if _, err := det.Decode(outs, 0.5); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

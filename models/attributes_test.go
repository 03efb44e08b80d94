package models

import (
	"math"
	"testing"

	"github.com/facedhq/faced/accel"
)

// ssrInput holds SSR-Net's outputs for one face: three stages of three bin
// probabilities, a scale delta per stage and three index offsets per stage.
type ssrInput struct {
	prob   [3][3]float32
	delta  [3]float32
	offset [3][3]float32
}

// tensors lays the input out as the ONNX model names its outputs, in a
// shuffled order so that lookup by name is exercised.
func (in ssrInput) tensors() []accel.Tensor {
	var outs []accel.Tensor
	for _, st := range []int{2, 0, 1} {
		n := string(rune('1' + st))
		outs = append(outs,
			accel.Tensor{Name: "index_offset_stage" + n, Shape: []int64{1, 3}, Data: in.offset[st][:]},
			accel.Tensor{Name: "stage" + n + "_delta_k", Shape: []int64{1, 1}, Data: []float32{in.delta[st]}},
			accel.Tensor{Name: "prob_stage_" + n, Shape: []int64{1, 3}, Data: in.prob[st][:]},
		)
	}
	return outs
}

// positional lays the input out in ssrOutputs order with other names.
func (in ssrInput) positional() []accel.Tensor {
	var outs []accel.Tensor
	for st := range 3 {
		outs = append(outs, accel.Tensor{Name: "p", Data: in.prob[st][:]})
	}
	for st := range 3 {
		outs = append(outs, accel.Tensor{Name: "d", Data: []float32{in.delta[st]}})
	}
	for st := range 3 {
		outs = append(outs, accel.Tensor{Name: "o", Data: in.offset[st][:]})
	}
	return outs
}

func TestSSRNetAge(t *testing.T) {
	tests := []struct {
		name string
		in   ssrInput
		// SSR-Net with s=3 bins per stage:
		// y = V * Σ_k Σ_i (i + offset_k,i) p_k,i / Π_{j≤k} 3(1+delta_j)
		want float64
	}{
		{
			name: "one-hot, no deltas or offsets",
			in:   ssrInput{prob: [3][3]float32{{0, 0, 1}, {0, 1, 0}, {1, 0, 0}}},
			// stage 1: bin 2 of 3, stage 2: bin 1 of 9, stage 3: bin 0.
			want: 101 * (2.0/3 + 1.0/9 + 0.0/27),
		},
		{
			name: "uniform",
			in:   ssrInput{prob: [3][3]float32{{1. / 3, 1. / 3, 1. / 3}, {1. / 3, 1. / 3, 1. / 3}, {1. / 3, 1. / 3, 1. / 3}}},
			// Σ i/3 = 1 per stage.
			want: 101 * (1.0/3 + 1.0/9 + 1.0/27),
		},
		{
			name: "deltas and offsets",
			in: ssrInput{
				prob:   [3][3]float32{{0, 0, 1}, {0, 1, 0}, {0, 0, 1}},
				delta:  [3]float32{0.5, -0.25, 0},
				offset: [3][3]float32{{9, 9, 0.3}, {0, -0.5, 0}, {0, 0, 0}},
			},
			// stage 1: (2+0.3)/(3·1.5); stage 2: (1-0.5)/(4.5·3·0.75);
			// stage 3: 2/(4.5·2.25·3).
			want: 101 * (2.3/4.5 + 0.5/10.125 + 2.0/30.375),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, outs := range [][]accel.Tensor{tc.in.tensors(), tc.in.positional()} {
				got, err := DecodeAge(outs)
				if err != nil {
					t.Fatal(err)
				}
				checkApprox(t, "age", got, float32(tc.want), 1e-3)
				g, err := DecodeGender(outs)
				if err != nil {
					t.Fatal(err)
				}
				checkApprox(t, "gender", g, float32(min(tc.want/101, 1)), 1e-5)
			}
		})
	}
}

func TestDecodeGenderClamps(t *testing.T) {
	hot := [3][3]float32{{0, 0, 1}, {0, 0, 1}, {0, 0, 1}}
	over := ssrInput{prob: hot, offset: [3][3]float32{{0, 0, 5}}}   // (2+5)/3 > 1
	under := ssrInput{prob: hot, offset: [3][3]float32{{0, 0, -9}}} // (2-9)/3 < 0
	for _, tc := range []struct {
		in   ssrInput
		want float32
	}{{over, 1}, {under, 0}} {
		g, err := DecodeGender(tc.in.tensors())
		if err != nil {
			t.Fatal(err)
		}
		if g != tc.want {
			t.Errorf("gender = %v, want %v", g, tc.want)
		}
	}
}

func TestSSRNetErrors(t *testing.T) {
	good := ssrInput{prob: [3][3]float32{{0, 0, 1}, {0, 1, 0}, {1, 0, 0}}}
	nan := good
	nan.delta[1] = float32(math.NaN())
	short := good.tensors()
	short[2].Data = short[2].Data[:2]
	for name, outs := range map[string][]accel.Tensor{
		"no outputs":    nil,
		"eight outputs": good.positional()[:8],
		"short stage":   short,
		"NaN delta":     nan.tensors(),
	} {
		if _, err := DecodeAge(outs); err == nil {
			t.Errorf("age %s: no error", name)
		}
		if _, err := DecodeGender(outs); err == nil {
			t.Errorf("gender %s: no error", name)
		}
	}
}

func TestDecodeEmotion(t *testing.T) {
	if len(Emotions) != 7 || Emotions[3] != "happy" || Emotions[6] != "neutral" {
		t.Fatalf("Emotions = %v, want the FER-2013 order", Emotions)
	}
	logits := []float32{0.1, -2, 0.3, 4, 1, -1, 2}
	p, err := DecodeEmotion([]accel.Tensor{{Shape: []int64{1, 7}, Data: logits}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != len(Emotions) {
		t.Fatalf("%d probabilities", len(p))
	}
	var sum float32
	best := 0
	for i, v := range p {
		if v < 0 || v > 1 {
			t.Errorf("p[%d] = %v", i, v)
		}
		sum += v
		if v > p[best] {
			best = i
		}
	}
	checkApprox(t, "sum", sum, 1, 1e-6)
	if Emotions[best] != "happy" {
		t.Errorf("argmax %s, want happy", Emotions[best])
	}
	checkApprox(t, "p[happy]/p[neutral]", p[3]/p[6], float32(math.Exp(2)), 1e-4)

	for name, outs := range map[string][]accel.Tensor{
		"no outputs": nil,
		"6 logits":   {{Data: make([]float32, 6)}},
		"8 logits":   {{Data: make([]float32, 8)}},
		"NaN":        {{Data: []float32{0, 0, 0, float32(math.NaN()), 0, 0, 0}}},
	} {
		if _, err := DecodeEmotion(outs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// peaked is 66 pose logits with a sharp peak at bin.
func peaked(bin int) []float32 {
	v := make([]float32, 66)
	v[bin] = 100
	return v
}

func TestDecodePose(t *testing.T) {
	outs := []accel.Tensor{
		{Name: "618", Data: peaked(23)}, // roll -30
		{Name: "output", Data: peaked(33)},
		{Name: "617", Data: peaked(43)},
	}
	p, err := DecodePose(outs)
	if err != nil {
		t.Fatal(err)
	}
	checkApprox(t, "yaw (bin 33)", p.Yaw, 0, 1e-3)
	checkApprox(t, "pitch (bin 43)", p.Pitch, 30, 1e-3)
	checkApprox(t, "roll (bin 23)", p.Roll, -30, 1e-3)

	// Unnamed heads are yaw, pitch, roll by position.
	p, err = DecodePose([]accel.Tensor{{Data: peaked(0)}, {Data: peaked(65)}, {Data: make([]float32, 66)}})
	if err != nil {
		t.Fatal(err)
	}
	checkApprox(t, "yaw (bin 0)", p.Yaw, -99, 1e-3)
	checkApprox(t, "pitch (bin 65)", p.Pitch, 96, 1e-3)
	checkApprox(t, "roll (uniform)", p.Roll, 32.5*3-99, 1e-3)

	// Half the mass on bins 33 and 34: the expectation sits between them.
	two := make([]float32, 66)
	for i := range two {
		two[i] = -100
	}
	two[33], two[34] = 5, 5
	p, err = DecodePose([]accel.Tensor{{Data: two}, {Data: two}, {Data: two}})
	if err != nil {
		t.Fatal(err)
	}
	checkApprox(t, "yaw (bins 33/34)", p.Yaw, 1.5, 1e-3)

	for name, outs := range map[string][]accel.Tensor{
		"two heads": {{Data: peaked(33)}, {Data: peaked(33)}},
		"65 bins":   {{Data: peaked(33)}, {Data: make([]float32, 65)}, {Data: peaked(33)}},
		"NaN":       {{Data: peaked(33)}, {Data: peaked(33)}, {Data: append(peaked(33)[:65], float32(math.NaN()))}},
	} {
		if _, err := DecodePose(outs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDecodeEyeOpen(t *testing.T) {
	for _, tc := range []struct {
		logits []float32
		want   float32
	}{
		{[]float32{0, 0}, 0.5},
		{[]float32{0, 10}, float32(1 / (1 + math.Exp(-10)))}, // class 1 is open
		{[]float32{10, 0}, float32(1 / (1 + math.Exp(10)))},
		{[]float32{1, 1 + float32(math.Log(3))}, 0.75},
	} {
		got, err := DecodeEyeOpen([]accel.Tensor{{Shape: []int64{1, 2}, Data: tc.logits}})
		if err != nil {
			t.Fatal(err)
		}
		checkApprox(t, "open", got, tc.want, 1e-6)
	}
	for name, outs := range map[string][]accel.Tensor{
		"no outputs": nil,
		"1 logit":    {{Data: []float32{1}}},
		"3 logits":   {{Data: []float32{1, 2, 3}}},
		"Inf":        {{Data: []float32{float32(math.Inf(1)), 0}}},
	} {
		if _, err := DecodeEyeOpen(outs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

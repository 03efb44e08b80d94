package models

import (
	"fmt"

	"github.com/facedhq/faced/accel"
)

// Emotions are the expression network's classes, in output order (the
// FER-2013 label order the network was trained with).
var Emotions = []string{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}

// ssrStages reads SSR-Net's nine outputs (three stages of probabilities,
// scale deltas and index offsets) in the order of their names.
var ssrOutputs = []string{
	"prob_stage_1", "prob_stage_2", "prob_stage_3",
	"stage1_delta_k", "stage2_delta_k", "stage3_delta_k",
	"index_offset_stage1", "index_offset_stage2", "index_offset_stage3",
}

// ssrNet merges SSR-Net's soft stagewise regression (Yang et al., IJCAI
// 2018) with three stages of three bins, lambda_local = lambda_d = 1, scaled
// to [0, v].
func ssrNet(outs []accel.Tensor, v float32) (float32, error) {
	var x []float32
	for i, name := range ssrOutputs {
		t, err := output(outs, name, i)
		if err != nil {
			return 0, err
		}
		x = append(x, t.Data...)
	}
	if len(x) != 21 || !finite(x) {
		return 0, fmt.Errorf("models: ssrnet: want 21 finite values, got %d", len(x))
	}
	// x[0:9] stage probabilities, x[9:12] deltas, x[12:21] index offsets.
	const s = 3
	var total, denom float32 = 0, 1
	for stage := range 3 {
		denom *= s * (1 + x[9+stage])
		var acc float32
		for i := range s {
			acc += (float32(i) + x[12+3*stage+i]) * x[3*stage+i]
		}
		total += acc / denom
	}
	return total * v, nil
}

// DecodeAge returns the estimated age in years.
func DecodeAge(outs []accel.Tensor) (float32, error) { return ssrNet(outs, 101) }

// DecodeGender returns the probability-like score that the face is male
// (0 female … 1 male).
func DecodeGender(outs []accel.Tensor) (float32, error) {
	g, err := ssrNet(outs, 1)
	return min(max(g, 0), 1), err
}

// DecodeEmotion returns the probability of each of Emotions.
func DecodeEmotion(outs []accel.Tensor) ([]float32, error) {
	if len(outs) == 0 || len(outs[0].Data) != len(Emotions) || !finite(outs[0].Data) {
		return nil, fmt.Errorf("models: expression: want %d finite logits", len(Emotions))
	}
	return softmax(outs[0].Data), nil
}

// Pose is the head orientation in degrees: yaw (left/right), pitch
// (up/down), roll (tilt).
type Pose struct {
	Yaw   float32 `json:"yaw"`
	Pitch float32 `json:"pitch"`
	Roll  float32 `json:"roll"`
}

// DecodePose reads HopeNet's three heads of 66 bins of 3 degrees from -99:
// the expectation over each softmax is the angle.
func DecodePose(outs []accel.Tensor) (Pose, error) {
	var angles [3]float32
	for i, name := range []string{"output", "617", "618"} {
		t, err := output(outs, name, i)
		if err != nil {
			return Pose{}, err
		}
		if len(t.Data) != 66 || !finite(t.Data) {
			return Pose{}, fmt.Errorf("models: pose: head %d: want 66 finite bins", i)
		}
		var e float32
		for bin, p := range softmax(t.Data) {
			e += p * float32(bin)
		}
		angles[i] = e*3 - 99
	}
	return Pose{Yaw: angles[0], Pitch: angles[1], Roll: angles[2]}, nil
}

// DecodeEyeOpen returns the probability that one eye is open, from the eye
// state network's two classes (closed, open).
func DecodeEyeOpen(outs []accel.Tensor) (float32, error) {
	if len(outs) == 0 || len(outs[0].Data) != 2 || !finite(outs[0].Data) {
		return 0, fmt.Errorf("models: eye state: want 2 finite logits")
	}
	return softmax(outs[0].Data)[1], nil
}

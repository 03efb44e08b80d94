package models

import (
	"fmt"

	"github.com/facedhq/faced/accel"
)

// DecodeLiveness turns a liveness network's outputs into a live score in
// [0,1], calibrated so that 0.5 is the model's own decision boundary: above
// is a live face, below a presentation attack (print, replay, mask).
func DecodeLiveness(spec Spec, outs []accel.Tensor) (float32, error) {
	if len(outs) == 0 {
		return 0, fmt.Errorf("models: %s: no output", spec.Name)
	}
	switch spec.Family {
	case "liveness-3class":
		// MiniFASNet-style 3-class network. The faceplugin export reads
		// the live probability from class 0 of the softmax (unlike the
		// original Silent-Face release, where class 1 is live), on a BGR
		// crop of 2.7x the box with raw 0-255 values. Measured on
		// ../shared/data/antispoof: live T1 0.68, spoofs F1/F2 <= 0.03,
		// and every deepface photo (real captures) >= 0.99; RGB input or
		// class 1 does not separate them.
		if len(outs[0].Data) != 3 || !finite(outs[0].Data) {
			return 0, fmt.Errorf("models: %s: want 3 finite logits", spec.Name)
		}
		return softmax(outs[0].Data)[0], nil
	case "liveness-leaf":
		// FaceAntiSpoofing: a soft decision tree. The spoof score is the
		// sum of |class prediction| over the leaves the mask selects; the
		// authors call >0.2 a spoof. Map 0 → 1 and 0.2 → 0.5 linearly.
		if len(outs) < 2 {
			return 0, fmt.Errorf("models: %s: want class and leaf-mask outputs", spec.Name)
		}
		cls, mask := outs[0].Data, outs[1].Data
		if len(cls) != len(mask) || !finite(cls) || !finite(mask) {
			return 0, fmt.Errorf("models: %s: malformed outputs", spec.Name)
		}
		var spoof float32
		for i := range cls {
			spoof += abs32(cls[i]) * mask[i]
		}
		return min(max(1-spoof/0.4, 0), 1), nil
	}
	return 0, fmt.Errorf("models: %s: no liveness decoder for family %q", spec.Name, spec.Family)
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

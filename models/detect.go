package models

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/facedhq/faced/accel"
)

// Point is a position in normalised network-input coordinates: (0,0) is the
// input's top-left corner, (1,1) its bottom-right.
type Point struct{ X, Y float32 }

// Box is an axis-aligned rectangle in the same coordinates as Point.
type Box struct{ X1, Y1, X2, Y2 float32 }

// Width of the box.
func (b Box) Width() float32 { return b.X2 - b.X1 }

// Height of the box.
func (b Box) Height() float32 { return b.Y2 - b.Y1 }

// Area of the box; zero for an empty box.
func (b Box) Area() float32 { return max(b.Width(), 0) * max(b.Height(), 0) }

// IoU is the intersection over union of two boxes.
func IoU(a, b Box) float32 {
	inter := Box{max(a.X1, b.X1), max(a.Y1, b.Y1), min(a.X2, b.X2), min(a.Y2, b.Y2)}.Area()
	union := a.Area() + b.Area() - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Detection is one face found by a detector, before alignment.
type Detection struct {
	Box   Box
	Score float32
	// Keypoints the detector predicts, if any. BlazeFace gives six: the
	// subject's right eye, left eye, nose tip, mouth centre, right ear
	// tragion and left ear tragion.
	Keypoints []Point
}

// Detector decodes the outputs of a face detection network.
type Detector interface {
	Spec() Spec
	// Decode turns one run's outputs into detections scoring at least
	// minScore, after non-maximum suppression, best first.
	Decode(outs []accel.Tensor, minScore float32) ([]Detection, error)
}

// ErrUnknownFamily reports a detection model whose family has no decoder.
var ErrUnknownFamily = errors.New("no detector for family")

// NewDetector returns the decoder for a detection model of the catalogue.
func NewDetector(spec Spec) (Detector, error) {
	switch spec.Family {
	case "ultraface":
		return &UltraFace{spec: spec, NMSThreshold: 0.4}, nil
	case "blazeface":
		return NewBlazeFace(spec)
	}
	return nil, fmt.Errorf("models: %s: %w %q", spec.Name, ErrUnknownFamily, spec.Family)
}

// NMS keeps the best-scoring detection of every cluster whose boxes overlap
// by more than iou, best first. It sorts dets in place.
func NMS(dets []Detection, iou float32) []Detection {
	slices.SortFunc(dets, func(a, b Detection) int { return cmp.Compare(b.Score, a.Score) })
	var kept []Detection
	for _, d := range dets {
		if !slices.ContainsFunc(kept, func(k Detection) bool { return IoU(k.Box, d.Box) > iou }) {
			kept = append(kept, d)
		}
	}
	return kept
}

// WeightedNMS is MediaPipe's blending suppression: every cluster of boxes
// overlapping the best one by more than iou is replaced by their
// score-weighted mean (box and keypoints), keeping the best score. It
// steadies boxes from anchor-dense detectors such as BlazeFace. It sorts
// dets in place.
func WeightedNMS(dets []Detection, iou float32) []Detection {
	slices.SortFunc(dets, func(a, b Detection) int { return cmp.Compare(b.Score, a.Score) })
	var out []Detection
	for len(dets) > 0 {
		best := dets[0]
		var cluster, rest []Detection
		for _, d := range dets {
			if IoU(best.Box, d.Box) > iou {
				cluster = append(cluster, d)
			} else {
				rest = append(rest, d)
			}
		}
		if len(cluster) == 0 { // degenerate (empty) box: keep it alone
			cluster, rest = dets[:1], dets[1:]
		}
		out = append(out, blend(cluster))
		dets = rest
	}
	return out
}

func blend(cluster []Detection) Detection {
	var total float32
	merged := Detection{Score: cluster[0].Score, Keypoints: make([]Point, len(cluster[0].Keypoints))}
	for _, d := range cluster {
		w := d.Score
		total += w
		merged.Box.X1 += w * d.Box.X1
		merged.Box.Y1 += w * d.Box.Y1
		merged.Box.X2 += w * d.Box.X2
		merged.Box.Y2 += w * d.Box.Y2
		for i := range merged.Keypoints {
			if i < len(d.Keypoints) {
				merged.Keypoints[i].X += w * d.Keypoints[i].X
				merged.Keypoints[i].Y += w * d.Keypoints[i].Y
			}
		}
	}
	if total > 0 {
		merged.Box = Box{merged.Box.X1 / total, merged.Box.Y1 / total, merged.Box.X2 / total, merged.Box.Y2 / total}
		for i := range merged.Keypoints {
			merged.Keypoints[i].X /= total
			merged.Keypoints[i].Y /= total
		}
	}
	return merged
}

// UltraFace decodes the Ultra-Light-Fast-Generic-Face-Detector RFB-320.
//
// The ONNX export we ship has the SSD prior decoding built into the graph:
// its "boxes" output is already corner-form (x1,y1,x2,y2) normalised to the
// input and "scores" is already softmaxed (background, face), one row per
// prior (4420 priors for 320x240: min sizes {10,16,24}, {32,48}, {64,96},
// {128,192,256} on strides 8, 16, 32, 64). So decoding is a score filter and
// hard NMS; the priors are checked only through the output row count.
type UltraFace struct {
	spec         Spec
	NMSThreshold float32
}

// Spec implements Detector.
func (u *UltraFace) Spec() Spec { return u.spec }

// ultraFacePriors is the number of SSD priors of the 320x240 network.
const ultraFacePriors = 4420

// Decode implements Detector.
func (u *UltraFace) Decode(outs []accel.Tensor, minScore float32) ([]Detection, error) {
	scores, err := output(outs, "scores", 0)
	if err != nil {
		return nil, err
	}
	boxes, err := output(outs, "boxes", 1)
	if err != nil {
		return nil, err
	}
	n := len(scores.Data) / 2
	if len(scores.Data) != 2*ultraFacePriors || len(boxes.Data) != 4*ultraFacePriors {
		return nil, fmt.Errorf("models: ultraface: %d scores and %d box values, want %d priors", len(scores.Data), len(boxes.Data), ultraFacePriors)
	}
	var dets []Detection
	for i := range n {
		s := scores.Data[2*i+1]
		if !(s >= minScore) { // also drops a NaN score
			continue
		}
		b := boxes.Data[4*i : 4*i+4]
		box := Box{b[0], b[1], b[2], b[3]}
		if box.Width() <= 0 || box.Height() <= 0 || !finite(b) {
			continue
		}
		dets = append(dets, Detection{Box: box, Score: s})
	}
	return NMS(dets, u.NMSThreshold), nil
}

// BlazeFace decodes MediaPipe's BlazeFace detectors (short range 128x128,
// full range 192x192, and the front/back ONNX conversions).
//
// Anchors follow MediaPipe's SsdAnchorsCalculator with fixed anchor size:
// each grid cell contributes anchorsPerCell anchors centred on the cell, and
// grids are listed in output order. A regressor row holds the box centre
// offset, width and height and six keypoints, all in input pixels.
type BlazeFace struct {
	spec         Spec
	anchors      []Point
	inputSize    float32
	NMSThreshold float32
}

type anchorGrid struct{ size, perCell int }

// NewBlazeFace builds the anchors for a BlazeFace model of the catalogue.
func NewBlazeFace(spec Spec) (*BlazeFace, error) {
	var grids []anchorGrid
	size := spec.Input.Width()
	switch size {
	case 128: // short range: strides 8, 16, 16, 16
		grids = []anchorGrid{{16, 2}, {8, 6}}
	case 256: // back camera: strides 16, 32, 32, 32
		grids = []anchorGrid{{16, 2}, {8, 6}}
	case 192: // full range: one layer of stride 4
		grids = []anchorGrid{{48, 1}}
	default:
		return nil, fmt.Errorf("models: %s: no BlazeFace anchor layout for input %d", spec.Name, size)
	}
	bf := &BlazeFace{spec: spec, inputSize: float32(size), NMSThreshold: 0.3}
	for _, g := range grids {
		for y := range g.size {
			for x := range g.size {
				for range g.perCell {
					bf.anchors = append(bf.anchors, Point{(float32(x) + 0.5) / float32(g.size), (float32(y) + 0.5) / float32(g.size)})
				}
			}
		}
	}
	return bf, nil
}

// Spec implements Detector.
func (bf *BlazeFace) Spec() Spec { return bf.spec }

// Decode implements Detector. Scores come as one or more [1,N,1] tensors and
// regressors as [1,N,16] tensors (the ONNX conversion splits both per grid);
// they are concatenated in output order.
func (bf *BlazeFace) Decode(outs []accel.Tensor, minScore float32) ([]Detection, error) {
	var scores, regs []float32
	for _, t := range outs {
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("models: %s: output %q has no shape", bf.spec.Name, t.Name)
		}
		switch t.Shape[len(t.Shape)-1] {
		case 1:
			scores = append(scores, t.Data...)
		case 16:
			regs = append(regs, t.Data...)
		}
	}
	n := len(bf.anchors)
	if len(scores) != n || len(regs) != 16*n {
		return nil, fmt.Errorf("models: %s: %d scores and %d regressor values for %d anchors", bf.spec.Name, len(scores), len(regs), n)
	}
	s := bf.inputSize
	var dets []Detection
	for i, a := range bf.anchors {
		score := sigmoid(scores[i])
		if !(score >= minScore) { // also drops a NaN logit
			continue
		}
		r := regs[16*i : 16*i+16]
		if !finite(r) {
			continue
		}
		cx, cy := r[0]/s+a.X, r[1]/s+a.Y
		w, h := r[2]/s, r[3]/s
		if w <= 0 || h <= 0 {
			continue
		}
		d := Detection{Box: Box{cx - w/2, cy - h/2, cx + w/2, cy + h/2}, Score: score, Keypoints: make([]Point, 6)}
		for k := range 6 {
			d.Keypoints[k] = Point{r[4+2*k]/s + a.X, r[5+2*k]/s + a.Y}
		}
		dets = append(dets, d)
	}
	return WeightedNMS(dets, bf.NMSThreshold), nil
}

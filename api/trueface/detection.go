package trueface

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/facedhq/faced/face"
)

// FaceOut is one detected face.
type FaceOut struct {
	BoundingBox [5]float64 `json:"bounding_box"`
	Points      []int      `json:"points"`
}

func truthy(v string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err == nil && b
}

func (h *handler) facedetect(r *request) (any, error) {
	photo, err := r.photo()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	raw := truthy(q.Get("rawlandmarks")) || truthy(q.Get("rawlandmark"))
	faces, err := h.svc.Detect(r.Context(), photo, face.Options{Landmarks68: raw, Selector: face.SelectAll})
	if err != nil {
		return nil, err
	}
	out := []FaceOut{}
	for _, f := range faces {
		pts := f.Landmarks[:]
		if raw {
			if len(f.Landmarks68) == 0 {
				return nil, fmt.Errorf("trueface: no 68 landmarks: %w", face.ErrStageDisabled)
			}
			pts = f.Landmarks68
		}
		o := FaceOut{
			BoundingBox: [5]float64{float64(f.Box.X1), float64(f.Box.Y1), float64(f.Box.X2), float64(f.Box.Y2), float64(f.Score)},
			Points:      make([]int, 2*len(pts)),
		}
		for i, p := range pts {
			o.Points[i] = int(math.Round(float64(p.X)))
			o.Points[len(pts)+i] = int(math.Round(float64(p.Y)))
		}
		out = append(out, o)
	}
	return ok(map[string]any{"faces": out}, "face processed successfully"), nil
}

func (h *handler) spdetect(r *request) (any, error) {
	photo, err := r.photo()
	if err != nil {
		return nil, err
	}
	faces, err := h.svc.Liveness(r.Context(), photo, face.SelectBiggest)
	if err != nil {
		return nil, err
	}
	if len(faces) == 0 {
		return nil, bad("no face detected")
	}
	if faces[0].Liveness == nil {
		return nil, fmt.Errorf("trueface: no liveness score: %w", face.ErrStageDisabled)
	}
	live := float64(*faces[0].Liveness)
	class, score := "real", live
	if live < 0.5 {
		class, score = "fake", 1-live
	}
	k := make([]byte, 16)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return ok(map[string]any{
		"class":   class,
		"key":     hex.EncodeToString(k),
		"score":   round6(score),
		"success": true,
	}, "data processed successfully"), nil
}

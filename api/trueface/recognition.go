package trueface

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func (h *handler) match(r *request) (any, error) {
	ctx := r.Context()
	photo, err := r.image("img")
	if err != nil {
		return nil, err
	}
	id, err := r.required("id")
	if err != nil {
		return nil, err
	}
	th, _, err := r.threshold(DefaultThreshold)
	if err != nil {
		return nil, err
	}
	if _, err := h.enrollment(ctx, id); err != nil {
		return nil, err
	}
	listed, err := h.personFaces(ctx, id)
	if err != nil {
		return nil, err
	}
	var stored []store.Face
	for _, lf := range listed {
		if lf.EmbedderID != h.svc.EmbedderID() {
			continue
		}
		f, err := h.svc.GetFace(ctx, lf.ID)
		if err == nil {
			stored = append(stored, f)
		}
	}
	if len(stored) == 0 {
		return nil, fail(http.StatusNotFound, "enrollment has no face to match")
	}
	faces, err := h.svc.Detect(ctx, photo, face.Options{Embed: true, Selector: face.SelectBiggest})
	if err != nil {
		return nil, err
	}
	if len(faces) == 0 {
		return nil, bad("no face detected")
	}
	data := map[string]any{}
	for i, f := range stored {
		s := round6(Score(h.svc.Confidence(models.Cosine(faces[0].Embedding, f.Embedding))))
		data[fmt.Sprintf("emb%d_score", i)] = s
		data[fmt.Sprintf("emb%d_match", i)] = s >= th
	}
	return ok(data, "face processed successfully"), nil
}

func (h *handler) identify(r *request) (any, error) {
	ctx := r.Context()
	photo, err := r.image("img")
	if err != nil {
		return nil, err
	}
	g, err := h.collectionOf(r)
	if err != nil {
		return nil, err
	}
	cid := g.Name
	def := LooseThreshold
	if u, _ := g.Meta["unknowns"].(bool); u {
		def = DefaultThreshold
	}
	th, _, err := r.threshold(def)
	if err != nil {
		return nil, err
	}
	res, err := h.svc.Identify(ctx, service.IdentifyRequest{
		Photo:     photo,
		Galleries: []string{cid},
		N:         1,
		Threshold: service.Threshold{Value: Confidence(th)},
		Selector:  face.SelectBiggest,
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fail(http.StatusNotFound, "collection not found")
		}
		return nil, err
	}
	if len(res) == 0 {
		return nil, bad("no face detected")
	}
	data := map[string]any{"name": nil, "key": nil}
	if len(res[0].Matches) > 0 {
		best := res[0].Matches[0]
		data["key"] = best.Person.ID
		if best.Person.Name != "" {
			data["name"] = best.Person.Name
		}
		data["score"] = round6(Score(best.Confidence))
		// The SDKs read "confidence": the same number (package doc).
		data["confidence"] = data["score"]
	}
	return ok(data, "identify processed successfully"), nil
}

// scale anchors: faced confidence → Trueface score.
var (
	confAnchors = [5]float64{0, float64(service.Presets["low"]), float64(service.Presets["medium"]), float64(service.Presets["strict"]), 1}
	tfAnchors   = [5]float64{0, 0.4, 0.5, 0.6, 1}
)

func interp(v float64, xs, ys [5]float64) float64 {
	v = min(max(v, 0), 1)
	for i := 1; i < len(xs); i++ {
		if v <= xs[i] {
			return ys[i-1] + (ys[i]-ys[i-1])*(v-xs[i-1])/(xs[i]-xs[i-1])
		}
	}
	return 1
}

// Score maps faced's confidence to the Trueface scale.
func Score(conf float32) float64 { return interp(float64(conf), confAnchors, tfAnchors) }

// Confidence maps a Trueface score (or threshold) to faced's confidence.
func Confidence(score float64) float32 { return float32(interp(score, tfAnchors, confAnchors)) }

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

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

package findface

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
)

// Box is a face rectangle.
type Box struct {
	X1 int `json:"x1"`
	X2 int `json:"x2"`
	Y1 int `json:"y1"`
	Y2 int `json:"y2"`
}

func rnd(v float32) int { return int(math.Round(float64(v))) }

func boxJSON(b face.Box) Box { return Box{X1: rnd(b.X1), X2: rnd(b.X2), Y1: rnd(b.Y1), Y2: rnd(b.Y2)} }

// BoxKey is FindFace's identify results key: "[y2, x1, y1, x2]".
func BoxKey(b Box) string { return fmt.Sprintf("[%d, %d, %d, %d]", b.Y2, b.X1, b.Y1, b.X2) }

func iou(a, b face.Box) float32 {
	w := min(a.X2, b.X2) - max(a.X1, b.X1)
	hh := min(a.Y2, b.Y2) - max(a.Y1, b.Y1)
	if w <= 0 || hh <= 0 {
		return 0
	}
	in := w * hh
	return in / ((a.X2-a.X1)*(a.Y2-a.Y1) + (b.X2-b.X1)*(b.Y2-b.Y1) - in)
}

// pick returns, per bbox, the item whose face box overlaps it best.
func pick[T any](items []T, box func(T) face.Box, bboxes []face.Box) ([]T, error) {
	var out []T
	for _, bb := range bboxes {
		best, bi := float32(0), -1
		for i, it := range items {
			if v := iou(box(it), bb); v > best {
				best, bi = v, i
			}
		}
		if bi < 0 {
			return nil, extraction("No faces found in the bounding box")
		}
		out = append(out, items[bi])
	}
	return out, nil
}

func faceBox(f face.Face) face.Box { return f.Box }

func selectorOf(r *request) (face.Selector, error) {
	s := r.str("mf_selector")
	if s == "" {
		return face.SelectBiggest, nil
	}
	sel, err := face.ParseSelector(strings.ToLower(s))
	if err != nil {
		return "", badRequest("Invalid mf_selector %q: want reject, biggest or all", s)
	}
	return sel, nil
}

// DetectedFace is a /v1/detect face.
type DetectedFace struct {
	Age      *int     `json:"age,omitempty"`
	Emotions []string `json:"emotions,omitempty"`
	Gender   string   `json:"gender,omitempty"`
	Box
}

func (h *handler) detect(r *request) (any, error) {
	img, err := r.photo("photo")
	if err != nil {
		return nil, err
	}
	var want [3]bool
	for i, k := range []string{"age", "gender", "emotions"} {
		if want[i], err = r.boolean(k); err != nil {
			return nil, err
		}
	}
	faces, err := h.svc.Detect(r.Context(), img, face.Options{Selector: face.SelectAll, Attributes: want[0] || want[1] || want[2]})
	if err != nil {
		return nil, err
	}
	out := []DetectedFace{}
	for _, f := range faces {
		d := DetectedFace{Box: boxJSON(f.Box)}
		if a := f.Attributes; a != nil {
			if want[0] {
				age := rnd(a.Age)
				d.Age = &age
			}
			if want[1] {
				d.Gender = a.Gender
			}
			if want[2] {
				d.Emotions = emotions(a)
			}
		}
		out = append(out, d)
	}
	return map[string]any{"faces": out}, nil
}

func emotions(a *face.Attributes) []string {
	type kv struct {
		k string
		v float32
	}
	var l []kv
	for k, v := range a.Emotions {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	out := []string{}
	for i, e := range l {
		if i == 0 || e.v >= 0.25 {
			out = append(out, e.k)
		}
	}
	if len(out) == 0 && a.Emotion != "" {
		out = append(out, a.Emotion)
	}
	return out
}

// embed detects and embeds the faces of a photo under a selector or bboxes.
func (h *handler) embed(ctx context.Context, img []byte, sel face.Selector, bboxes []face.Box, n int) ([]face.Face, error) {
	if len(bboxes) > 0 {
		sel = face.SelectAll
	}
	faces, err := h.svc.Detect(ctx, img, face.Options{Embed: true, Selector: sel})
	if err != nil {
		return nil, err
	}
	if len(faces) == 0 {
		return nil, extraction("No faces found on photo%s", map[int]string{0: "", 1: "1", 2: "2"}[n])
	}
	if len(bboxes) == 0 {
		return faces, nil
	}
	return pick(faces, faceBox, bboxes)
}

// VerifyPair is one pair of a verify response.
type VerifyPair struct {
	BBox1      Box     `json:"bbox1"`
	BBox2      Box     `json:"bbox2"`
	Confidence float64 `json:"confidence"`
	Verified   *bool   `json:"verified,omitempty"`
}

// VerifyResponse is the verify response.
type VerifyResponse struct {
	Results  []VerifyPair `json:"results"`
	Verified *bool        `json:"verified,omitempty"`
}

func (h *handler) verify(r *request) (any, error) {
	p1, err := r.photo("photo1")
	if err != nil {
		return nil, err
	}
	p2, err := r.photo("photo2")
	if err != nil {
		return nil, err
	}
	b1, err := r.boxes("bbox1")
	if err != nil {
		return nil, err
	}
	b2, err := r.boxes("bbox2")
	if err != nil {
		return nil, err
	}
	thr, err := h.svc.Threshold(r.str("threshold"))
	if err != nil {
		return nil, badRequest("Invalid threshold: want strict, medium, low, none or a number from 0 to 1")
	}
	sel, err := selectorOf(r)
	if err != nil {
		return nil, err
	}
	fa, err := h.embed(r.Context(), p1, sel, b1, 1)
	if err != nil {
		return nil, err
	}
	fb, err := h.embed(r.Context(), p2, sel, b2, 2)
	if err != nil {
		return nil, err
	}
	out := VerifyResponse{Results: []VerifyPair{}}
	all := true
	for _, a := range fa {
		any := false
		for _, b := range fb {
			conf := h.svc.Confidence(models.Cosine(a.Embedding, b.Embedding))
			p := VerifyPair{BBox1: boxJSON(a.Box), BBox2: boxJSON(b.Box), Confidence: float64(conf)}
			if !thr.None {
				ok := thr.Accepts(conf)
				any = any || ok
				p.Verified = &ok
			}
			out.Results = append(out.Results, p)
		}
		all = all && any
	}
	if !thr.None {
		out.Verified = &all
	}
	return out, nil
}

// IdentifyMatch is one match of an identify response.
type IdentifyMatch struct {
	Confidence float64 `json:"confidence"`
	Face       Face    `json:"face"`
}

func (h *handler) identify(r *request) (any, error) {
	img, err := r.photo("photo")
	if err != nil {
		return nil, err
	}
	req := service.IdentifyRequest{Photo: img, Faces: true} // the document's results are faces
	if req.N, err = r.integer("n", 1); err != nil || req.N < 1 || req.N > 100 {
		return nil, badRequest("Invalid n: want an integer from 1 to 100")
	}
	if req.Threshold, err = h.svc.Threshold(r.str("threshold")); err != nil {
		return nil, badRequest("Invalid threshold: want strict, medium, low, none or a number from 0 to 1")
	}
	if req.Selector, err = selectorOf(r); err != nil {
		return nil, err
	}
	if g := r.PathValue("gallery"); g != "" {
		req.Galleries = []string{g} // /faces/gallery/{gallery}/identify
	} else if g := r.str("gallery"); g != "" {
		req.Galleries = []string{g}
	} else if req.Galleries, err = r.list("galleries"); err != nil {
		return nil, err
	}
	if c := r.str("cam_id"); c != "" {
		req.Record, req.CameraID = true, c
	}
	var bbox []face.Box
	if r.has("x1") || r.has("y1") || r.has("x2") || r.has("y2") {
		b, ok := boxOf(map[string]any{"x1": r.f["x1"], "y1": r.f["y1"], "x2": r.f["x2"], "y2": r.f["y2"]})
		if !ok {
			return nil, badRequest("Invalid bounding box x1, y1, x2, y2")
		}
		bbox = []face.Box{b}
	} else if bbox, err = r.boxes("bbox"); err != nil { // as /face takes it (a Ruby gem sends it)
		return nil, err
	}
	if len(bbox) > 0 {
		req.Selector = face.SelectAll
	}
	res, err := h.svc.Identify(r.Context(), req)
	if err != nil {
		return nil, err
	}
	if len(bbox) > 0 {
		if res, err = pick(res, func(f service.IdentifiedFace) face.Box { return f.Face.Box }, bbox); err != nil {
			return nil, err
		}
	}
	if len(res) == 0 {
		return nil, extraction("No faces found on the photo")
	}
	results := map[string][]IdentifyMatch{}
	persons := map[string]string{}
	for _, f := range res {
		l := []IdentifyMatch{}
		for _, m := range f.Matches {
			sf, err := h.svc.GetFace(r.Context(), m.FaceID)
			if err != nil {
				continue
			}
			persons[m.Person.ID] = m.Person.ExternalID
			l = append(l, IdentifyMatch{Confidence: float64(m.Confidence), Face: h.faceJSON(r.Context(), sf, persons)})
		}
		results[BoxKey(boxJSON(f.Face.Box))] = l
	}
	return map[string]any{"results": results}, nil
}

package findface

import (
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
)

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
		faces := make([]face.Face, len(res))
		for i := range res {
			faces[i] = res[i].Face
		}
		idx, err := pick(faces, bbox)
		if err != nil {
			return nil, err
		}
		picked := make([]service.IdentifiedFace, len(idx))
		for i, j := range idx {
			picked[i] = res[j]
		}
		res = picked
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

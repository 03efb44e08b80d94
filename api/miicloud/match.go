package miicloud

import (
	"errors"
	"math"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// MatchedFace is one face of a match_faces photo.
type MatchedFace struct {
	MatchStatus      string       `json:"match_status"`
	BoundingBox      *BoundingBox `json:"bounding_box"`
	MatchConfidence  float64      `json:"match_confidence"`
	MiicloudPersonID string       `json:"miicloud_person_id,omitempty"`
	PersonID         string       `json:"person_id,omitempty"`
	CustomerPersonID *string      `json:"customer_person_id,omitempty"`
}

// Matches is the match_faces response.
type Matches struct {
	Faces []MatchedFace `json:"faces"`
}

func matched(box face.Box, conf float32, known bool, p store.Person) MatchedFace {
	m := MatchedFace{
		MatchStatus:     "unknown",
		BoundingBox:     boxOf(box.X1, box.Y1, box.X2, box.Y2),
		MatchConfidence: math.Round(float64(conf)*1e6) / 1e6,
	}
	if known {
		ext := p.ExternalID
		m.MatchStatus, m.MiicloudPersonID, m.PersonID, m.CustomerPersonID = "known", p.ID, p.ID, &ext
	}
	return m
}

// match serves POST /miicloud/match_faces.
func (h *handler) match(req *request) (any, error) {
	if !req.hasImage {
		return nil, badRequest(msgImageNeeded)
	}
	thr, err := h.svc.Threshold("")
	if err != nil {
		return nil, err
	}
	id := req.field("customer_person_id")
	var p store.Person
	if id != "" {
		if p, err = h.lookup(req, id); err != nil {
			return nil, err
		}
	}
	release, err := h.front.Acquire(req.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	out := Matches{Faces: []MatchedFace{}}
	if id != "" {
		res, err := h.svc.Verify(req.Context(), service.VerifyRequest{
			PhotoA: req.image, PersonID: p.ID, Threshold: thr, Selector: face.SelectAll,
		})
		if errors.Is(err, service.ErrNoFace) {
			return out, nil
		}
		if err != nil {
			return nil, withID(err, id)
		}
		for _, pair := range res.Pairs {
			out.Faces = append(out.Faces, matched(pair.A, pair.Confidence, pair.Match, p))
		}
		return out, nil
	}
	res, err := h.svc.Identify(req.Context(), service.IdentifyRequest{
		Photo: req.image, N: 1, Threshold: service.Threshold{None: true}, Selector: face.SelectAll,
	})
	if err != nil {
		return nil, err
	}
	for _, f := range res {
		if len(f.Matches) == 0 {
			out.Faces = append(out.Faces, matched(f.Face.Box, 0, false, store.Person{}))
			continue
		}
		m := f.Matches[0]
		out.Faces = append(out.Faces, matched(f.Face.Box, m.Confidence, thr.Accepts(m.Confidence), m.Person))
	}
	return out, nil
}

package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/facedhq/faced/service"
)

// getFace: GET /v1/faces/{id}.
func (s *Server) getFace(r *http.Request, svc *service.Service) (response, error) {
	id, err := pathFaceID(r, "id")
	if err != nil {
		return response{}, err
	}
	withEmbedding, err := queryBool(r, "embedding")
	if err != nil {
		return response{}, err
	}
	f, err := svc.GetFace(r.Context(), id)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: faceJSON(f, withEmbedding)}, nil
}

// listFaces: GET /v1/faces?cursor=&limit=&gallery=&person_id=.
func (s *Server) listFaces(r *http.Request, svc *service.Service) (response, error) {
	o, err := listOptions(r)
	if err != nil {
		return response{}, err
	}
	o.Gallery, o.PersonID = r.URL.Query().Get("gallery"), r.URL.Query().Get("person_id")
	withEmbedding, err := queryBool(r, "embedding")
	if err != nil {
		return response{}, err
	}
	page, err := svc.ListFaces(r.Context(), o)
	if err != nil {
		return response{}, err
	}
	items, err := listedFacesJSON(r, svc, page.Items, withEmbedding)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: pageJSON[FaceJSON]{Items: items, Next: page.Next}}, nil
}

// parseGalleryChange reads a face patch's galleries: an object
// {"set": [...], "del": [...], "add": [...]} (applied in that order) or a
// plain array, which is a set.
func parseGalleryChange(raw json.RawMessage) (*service.GalleryChange, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var set []string
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, badRequest("invalid", "galleries must be an array of names or an object with add, del and set")
		}
		return &service.GalleryChange{Set: set, SetGiven: true}, nil
	}
	var c struct {
		Set *[]string `json:"set"`
		Add []string  `json:"add"`
		Del []string  `json:"del"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) == 0 || raw[0] != '{' || dec.Decode(&c) != nil {
		return nil, badRequest("invalid", "galleries must be an array of names or an object with add, del and set")
	}
	gc := &service.GalleryChange{Add: c.Add, Del: c.Del}
	if c.Set != nil {
		gc.Set, gc.SetGiven = *c.Set, true
	}
	return gc, nil
}

// updateFace: PATCH /v1/faces/{id} — meta (replaced; null clears),
// person_id (moves the face) and galleries.
func (s *Server) updateFace(r *http.Request, svc *service.Service) (response, error) {
	id, err := pathFaceID(r, "id")
	if err != nil {
		return response{}, err
	}
	withEmbedding, err := queryBool(r, "embedding")
	if err != nil {
		return response{}, err
	}
	obj, err := decodePatch(r, "meta", "person_id", "galleries")
	if err != nil {
		return response{}, err
	}
	var u service.FaceUpdate
	meta, given, err := patchMeta(obj)
	if err != nil {
		return response{}, err
	}
	if given {
		u.Meta = &meta
	}
	if raw, ok := obj["person_id"]; ok {
		var pid string
		if isNull(raw) || json.Unmarshal(raw, &pid) != nil || pid == "" {
			return response{}, badRequest("invalid", "person_id must be a person's id")
		}
		u.PersonID = &pid
	}
	if raw, ok := obj["galleries"]; ok {
		if u.Galleries, err = parseGalleryChange(raw); err != nil {
			return response{}, err
		}
	}
	f, err := svc.UpdateFace(r.Context(), id, u)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: faceJSON(f, withEmbedding)}, nil
}

// deleteFace: DELETE /v1/faces/{id}.
func (s *Server) deleteFace(r *http.Request, svc *service.Service) (response, error) {
	id, err := pathFaceID(r, "id")
	if err != nil {
		return response{}, err
	}
	if err := svc.DeleteFace(r.Context(), id); err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

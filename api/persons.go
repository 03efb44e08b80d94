package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// maxEnrolPhotos bounds the photos of one enrolment request: each runs the
// whole pipeline while the request holds an inference slot.
const maxEnrolPhotos = 32

// FaceJSON is an enrolled face as the native API shows it. The embedding
// is biometric data: it is only sent when the request asks for it
// (?embedding=true).
type FaceJSON struct {
	ID        uint64         `json:"id"`
	PersonID  string         `json:"person_id"`
	Galleries []string       `json:"galleries"`
	Box       face.Box       `json:"box"`
	PhotoHash string         `json:"photo_hash,omitempty"`
	Embedder  string         `json:"embedder"`
	Quality   float32        `json:"quality"`
	Meta      store.Metadata `json:"meta,omitempty"`
	CameraID  string         `json:"camera_id,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	HasImage  bool           `json:"has_image"`
	Embedding []float32      `json:"embedding,omitempty"`
}

func faceJSON(f store.Face, withEmbedding bool) FaceJSON {
	out := FaceJSON{
		ID: f.ID, PersonID: f.PersonID, Galleries: f.Galleries,
		Box:       face.Box{X1: f.Box[0], Y1: f.Box[1], X2: f.Box[2], Y2: f.Box[3]},
		PhotoHash: f.PhotoHash, Embedder: f.EmbedderID, Quality: f.Quality, Meta: f.Meta,
		CameraID: f.CameraID, CreatedAt: f.CreatedAt, HasImage: f.HasImage,
	}
	if out.Galleries == nil {
		out.Galleries = []string{}
	}
	if withEmbedding {
		out.Embedding = f.Embedding
	}
	return out
}

// facesJSON converts faces that carry their embeddings (fresh from the
// store's writes or GetFace).
func facesJSON(faces []store.Face, withEmbedding bool) []FaceJSON {
	out := make([]FaceJSON, 0, len(faces))
	for _, f := range faces {
		out = append(out, faceJSON(f, withEmbedding))
	}
	return out
}

// listedFacesJSON converts faces from a list, which leaves vectors out:
// with withEmbedding each is fetched again (a face deleted meanwhile is
// dropped).
func listedFacesJSON(r *http.Request, svc *service.Service, faces []store.Face, withEmbedding bool) ([]FaceJSON, error) {
	out := make([]FaceJSON, 0, len(faces))
	for _, f := range faces {
		if withEmbedding {
			full, err := svc.GetFace(r.Context(), f.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			f = full
		}
		out = append(out, faceJSON(f, withEmbedding))
	}
	return out, nil
}

// pageJSON is one page of a list; Next is absent on the last page.
type pageJSON[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// queryBool reads a true/false query parameter (absent: false).
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("invalid", fmt.Sprintf("%s must be true or false", name))
	}
	return b, nil
}

// listOptions reads ?cursor= and ?limit= (1..1000, default 100).
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	o := store.ListOptions{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, badRequest("invalid", "limit must be a positive integer")
		}
		o.Limit = n
	}
	return o, nil
}

// pathFaceID parses a face id path segment: a positive decimal integer.
func pathFaceID(r *http.Request, name string) (uint64, error) {
	s := r.PathValue(name)
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("invalid", fmt.Sprintf("face id %q must be a positive integer", s))
	}
	return id, nil
}

// parseMeta reads metadata given as a JSON object (in JSON bodies) or as a
// string holding one (form fields, query).
func parseMeta(s string) (store.Metadata, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m store.Metadata
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, badRequest("invalid", "meta must be a JSON object")
	}
	return m, nil
}

// formList reads a list parameter: a JSON array, a comma-separated value,
// or (in a multipart form) the field repeated.
func formList(r *http.Request, q *request, name string) []string {
	if r.MultipartForm != nil {
		if vs := r.MultipartForm.Value[name]; len(vs) > 1 {
			var out []string
			for _, v := range vs {
				for _, s := range strings.Split(v, ",") {
					if s = strings.TrimSpace(s); s != "" {
						out = append(out, s)
					}
				}
			}
			return out
		}
	}
	return q.list(name)
}

// enrolPhotos collects the photos of an enrolment, in request order, from
// "photo" (repeatable file, raw body, base64 string or array) or "photos".
func enrolPhotos(q *request) ([][]byte, error) {
	a, b := q.photos["photo"], q.photos["photos"]
	if len(a) > 0 && len(b) > 0 {
		return nil, badRequest("bad_photo", `send the photos under "photo" or "photos", not both`)
	}
	photos := append(a, b...)
	switch {
	case len(photos) == 0:
		return nil, q.noPhoto(`"photo" or "photos"`)
	case len(photos) > maxEnrolPhotos:
		return nil, badRequest("invalid", fmt.Sprintf("at most %d photos per request, got %d", maxEnrolPhotos, len(photos)))
	}
	return photos, nil
}

// accessFields reads a new person's door access: enabled (default true),
// valid_from and valid_until (RFC 3339), card_number.
func accessFields(q *request, p *store.Person) error {
	if v := q.str("enabled"); v != "" {
		enabled, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("invalid", "enabled must be true or false")
		}
		p.Disabled = !enabled
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"valid_from", &p.ValidFrom}, {"valid_until", &p.ValidUntil}} {
		v := q.str(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return badRequest("invalid", fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-12-31T18:00:00+01:00", f.name, v))
		}
		*f.dst = t
	}
	p.CardNumber = q.str("card_number")
	return nil
}

// fromEvent reads from_event: the id of an event whose kept face crop
// enrols the person instead of a photo (0 when absent).
func fromEvent(q *request) (uint64, error) {
	v := q.str("from_event")
	if v == "" {
		return 0, nil
	}
	if len(q.photos["photo"])+len(q.photos["photos"]) > 0 {
		return 0, badRequest("invalid", `send either photos or from_event, not both`)
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("invalid", fmt.Sprintf("from_event %q is not an event id (GET /v1/events lists them)", v))
	}
	return id, nil
}

// enrolSelector reads mf_selector for enrolment: biggest (the default) or
// reject; one photo enrols one face, so all is refused.
func enrolSelector(q *request) (face.Selector, error) {
	v := q.str("mf_selector")
	if v == "" {
		return face.SelectBiggest, nil
	}
	sel, err := face.ParseSelector(v)
	if err != nil {
		return "", badRequest("bad_selector", err.Error())
	}
	if sel == face.SelectAll {
		return "", badRequest("bad_selector", "enrolment takes one face per photo: mf_selector must be biggest or reject")
	}
	return sel, nil
}

// rejectDuplicates reads allow_duplicate: by default a photo whose face
// already matches another person at the strict preset is refused (409
// duplicate_face), since the same face under two ids makes identify
// answer with either.
func rejectDuplicates(q *request) (bool, error) {
	allow, err := q.boolean("allow_duplicate")
	return !allow, err
}

// createPerson: POST /v1/persons — a person with one face per photo,
// atomically.
func (s *Server) createPerson(r *http.Request, q *request, svc *service.Service) (response, error) {
	req := service.EnrollRequest{
		Person: store.Person{ID: q.str("id"), ExternalID: q.str("external_id"), Name: q.str("name"),
			Email: q.str("email"), Phone: q.str("phone")},
		FaceInput: service.FaceInput{Galleries: formList(r, q, "galleries"), CameraID: q.str("camera_id")},
	}
	withEmbedding, err := q.boolean("embedding")
	if err == nil {
		req.Person.Meta, err = parseMeta(q.str("meta"))
	}
	if err == nil {
		err = accessFields(q, &req.Person)
	}
	if err == nil {
		req.Selector, err = enrolSelector(q)
	}
	var (
		p       store.Person
		faces   []store.Face
		eventID uint64
	)
	if err == nil {
		eventID, err = fromEvent(q)
	}
	if err == nil {
		req.RejectDuplicates, err = rejectDuplicates(q)
	}
	if err == nil && eventID == 0 {
		req.Photos, err = enrolPhotos(q)
	}
	if err != nil {
		return response{}, err
	}
	if eventID != 0 {
		p, faces, err = svc.EnrollFromEvent(r.Context(), req.Person, eventID, req.FaceInput)
	} else {
		p, faces, err = svc.Enroll(r.Context(), req)
	}
	if err != nil {
		return response{}, err
	}
	return response{
		status: http.StatusCreated,
		body:   map[string]any{"person": personJSON(p), "faces": facesJSON(faces, withEmbedding)},
		header: http.Header{"Location": {"/v1/persons/" + url.PathEscape(p.ID)}},
	}, nil
}

// getPerson: GET /v1/persons/{id} — the person with its faces (the first
// 1000; faces_next continues at GET /v1/faces?person_id=).
func (s *Server) getPerson(r *http.Request, svc *service.Service) (response, error) {
	withEmbedding, err := queryBool(r, "embedding")
	if err != nil {
		return response{}, err
	}
	p, err := svc.GetPerson(r.Context(), r.PathValue("id"))
	if err != nil {
		return response{}, err
	}
	page, err := svc.ListFaces(r.Context(), store.ListOptions{PersonID: p.ID, Limit: store.MaxLimit})
	if err != nil {
		return response{}, err
	}
	faces, err := listedFacesJSON(r, svc, page.Items, withEmbedding)
	if err != nil {
		return response{}, err
	}
	out := map[string]any{"person": personJSON(p), "faces": faces}
	if page.Next != "" {
		out["faces_next"] = page.Next
	}
	return response{status: http.StatusOK, body: out}, nil
}

// listPersons: GET /v1/persons?cursor=&limit=&gallery=.
func (s *Server) listPersons(r *http.Request, svc *service.Service) (response, error) {
	o, err := listOptions(r)
	if err != nil {
		return response{}, err
	}
	o.Gallery = r.URL.Query().Get("gallery")
	page, err := svc.ListPersons(r.Context(), o)
	if err != nil {
		return response{}, err
	}
	out := pageJSON[PersonJSON]{Items: make([]PersonJSON, 0, len(page.Items)), Next: page.Next}
	for _, p := range page.Items {
		out.Items = append(out.Items, personJSON(p))
	}
	return response{status: http.StatusOK, body: out}, nil
}

// decodePatch reads a PATCH body: a JSON object (application/json or
// application/merge-patch+json) whose keys must all be in allowed.
func decodePatch(r *http.Request, allowed ...string) (map[string]json.RawMessage, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" && ct != "application/merge-patch+json" {
		return nil, &Problem{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Detail: "send application/json or application/merge-patch+json"}
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(&obj)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("data after the object")
	}
	if err == nil && obj == nil {
		err = errors.New("want an object")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, badRequest("bad_body", "malformed JSON: "+err.Error())
	}
	fs := newFieldSet(r.Pattern, allowed, noPhotos)
	if err := fs.check(slices.Collect(maps.Keys(obj)), "JSON"); err != nil {
		return nil, err
	}
	return obj, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// patchString reads a string field of a patch; null clears it.
func patchString(obj map[string]json.RawMessage, key string) (v string, given bool, err error) {
	raw, ok := obj[key]
	if !ok {
		return "", false, nil
	}
	if isNull(raw) {
		return "", true, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, badRequest("invalid", fmt.Sprintf("%s must be a string or null", key))
	}
	return v, true, nil
}

// patchBool reads a boolean field of a patch; null means true for
// "enabled", the default.
func patchBool(obj map[string]json.RawMessage, key string) (v, given bool, err error) {
	raw, ok := obj[key]
	if !ok {
		return false, false, nil
	}
	if isNull(raw) {
		return true, true, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false, badRequest("invalid", fmt.Sprintf("%s must be true, false or null", key))
	}
	return v, true, nil
}

// patchTime reads an RFC 3339 time of a patch; null clears it (no bound).
func patchTime(obj map[string]json.RawMessage, key string) (t time.Time, given bool, err error) {
	raw, ok := obj[key]
	if !ok {
		return time.Time{}, false, nil
	}
	if isNull(raw) {
		return time.Time{}, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		t, err = time.Parse(time.RFC3339, s)
		if err == nil {
			return t, true, nil
		}
	}
	return time.Time{}, false, badRequest("invalid", fmt.Sprintf("%s must be an RFC 3339 time (such as 2026-12-31T18:00:00+01:00) or null", key))
}

// patchMeta reads the meta field of a patch: an object replaces the
// metadata, null clears it.
func patchMeta(obj map[string]json.RawMessage) (m store.Metadata, given bool, err error) {
	raw, ok := obj["meta"]
	if !ok {
		return nil, false, nil
	}
	if isNull(raw) {
		return store.Metadata{}, true, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false, badRequest("invalid", "meta must be a JSON object or null")
	}
	if m == nil {
		m = store.Metadata{}
	}
	return m, true, nil
}

// updatePerson: PATCH /v1/persons/{id} — merge semantics: the fields
// given replace the stored ones (meta as a whole), null clears one, absent
// fields are kept.
func (s *Server) updatePerson(r *http.Request, svc *service.Service) (response, error) {
	id := r.PathValue("id")
	obj, err := decodePatch(r, "id", "external_id", "name", "email", "phone", "meta", "enabled", "valid_from", "valid_until", "card_number")
	if err != nil {
		return response{}, err
	}
	if v, given, err := patchString(obj, "id"); err != nil || (given && v != id) {
		return response{}, badRequest("invalid", "a person's id cannot change")
	}
	type field struct {
		v     string
		given bool
	}
	fields := map[string]*field{"external_id": {}, "name": {}, "email": {}, "phone": {}, "card_number": {}}
	for k, f := range fields {
		if f.v, f.given, err = patchString(obj, k); err != nil {
			return response{}, err
		}
	}
	meta, metaGiven, err := patchMeta(obj)
	if err != nil {
		return response{}, err
	}
	enabled, enabledGiven, err := patchBool(obj, "enabled")
	if err != nil {
		return response{}, err
	}
	validFrom, fromGiven, err := patchTime(obj, "valid_from")
	if err != nil {
		return response{}, err
	}
	validUntil, untilGiven, err := patchTime(obj, "valid_until")
	if err != nil {
		return response{}, err
	}
	p, err := svc.UpdatePerson(r.Context(), id, func(p *store.Person) error {
		for k, dst := range map[string]*string{"external_id": &p.ExternalID, "name": &p.Name, "email": &p.Email, "phone": &p.Phone, "card_number": &p.CardNumber} {
			if f := fields[k]; f.given {
				*dst = f.v
			}
		}
		if metaGiven {
			p.Meta = meta
		}
		if enabledGiven {
			p.Disabled = !enabled
		}
		if fromGiven {
			p.ValidFrom = validFrom
		}
		if untilGiven {
			p.ValidUntil = validUntil
		}
		return nil
	})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: personJSON(p)}, nil
}

// deletePerson: DELETE /v1/persons/{id} — the person, its faces, vectors
// and images; events keep the ids.
func (s *Server) deletePerson(r *http.Request, svc *service.Service) (response, error) {
	if err := svc.DeletePerson(r.Context(), r.PathValue("id")); err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

// addFaces: POST /v1/persons/{id}/faces — more photos of a person.
func (s *Server) addFaces(r *http.Request, q *request, svc *service.Service) (response, error) {
	in := service.FaceInput{Galleries: formList(r, q, "galleries"), CameraID: q.str("camera_id")}
	withEmbedding, err := q.boolean("embedding")
	if err == nil {
		in.Meta, err = parseMeta(q.str("meta"))
	}
	if err == nil {
		in.Selector, err = enrolSelector(q)
	}
	if err == nil {
		in.RejectDuplicates, err = rejectDuplicates(q)
	}
	var photos [][]byte
	if err == nil {
		photos, err = enrolPhotos(q)
	}
	if err != nil {
		return response{}, err
	}
	faces, err := svc.AddFaces(r.Context(), r.PathValue("id"), photos, in)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: map[string]any{"faces": facesJSON(faces, withEmbedding)}}, nil
}

// deletePersonFace: DELETE /v1/persons/{id}/faces/{face_id} — 404 unless
// the face is that person's.
func (s *Server) deletePersonFace(r *http.Request, svc *service.Service) (response, error) {
	fid, err := pathFaceID(r, "face_id")
	if err != nil {
		return response{}, err
	}
	pid := r.PathValue("id")
	f, err := svc.GetFace(r.Context(), fid)
	if err == nil && f.PersonID != pid {
		err = fmt.Errorf("face %d of person %q: %w", fid, pid, store.ErrNotFound)
	}
	if err == nil {
		err = svc.DeleteFace(r.Context(), fid)
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusNoContent}, nil
}

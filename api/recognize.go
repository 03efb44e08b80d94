package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// PersonJSON is a person as the native API shows it.
type PersonJSON struct {
	ID         string         `json:"id"`
	ExternalID string         `json:"external_id,omitempty"`
	Name       string         `json:"name,omitempty"`
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Meta       store.Metadata `json:"meta,omitempty"`
	// Access, for doors.
	Enabled    bool       `json:"enabled"`
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	CardNumber string     `json:"card_number,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

func personJSON(p store.Person) PersonJSON {
	out := PersonJSON{ID: p.ID, ExternalID: p.ExternalID, Name: p.Name, Email: p.Email, Phone: p.Phone,
		Meta: p.Meta, Enabled: !p.Disabled, CardNumber: p.CardNumber, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if !p.ValidFrom.IsZero() {
		out.ValidFrom = &p.ValidFrom
	}
	if !p.ValidUntil.IsZero() {
		out.ValidUntil = &p.ValidUntil
	}
	return out
}

// device: GET /v1/device — version, backend, models and index size.
func (s *Server) device(r *http.Request, svc *service.Service) (response, error) {
	type model struct {
		Name    string `json:"name"`
		Task    string `json:"task"`
		SHA256  string `json:"sha256"`
		License string `json:"license"`
		Custom  bool   `json:"custom,omitempty"`
	}
	var ms []model
	for _, m := range svc.Pipeline().Models() {
		ms = append(ms, model{m.Name, string(m.Task), m.SHA256, m.License, m.Custom})
	}
	return response{status: http.StatusOK, body: map[string]any{
		"version": s.cfg.Version, "backend": s.cfg.Backend, "models": ms,
		"embedder": svc.EmbedderID(), "uptime_s": int(time.Since(s.started).Seconds()),
		"faces": svc.IndexSize(),
	}}, nil
}

// reembed: GET /v1/reembed — the persons with faces of another embedder
// (service.ReembedStatus).
func (s *Server) reembed(r *http.Request, svc *service.Service) (response, error) {
	rep, err := svc.ReembedStatus(r.Context())
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: rep}, nil
}

// detectOptions reads the per-request stage switches.
func detectOptions(q *request) (face.Options, error) {
	var o face.Options
	var err error
	if o.Selector, err = face.ParseSelector(q.str("mf_selector")); err != nil {
		return o, badRequest("bad_selector", err.Error())
	}
	for name, dst := range map[string]*bool{
		"landmarks68": &o.Landmarks68, "liveness": &o.Liveness, "attributes": &o.Attributes, "embedding": &o.Embed,
	} {
		if *dst, err = q.boolean(name); err != nil {
			return o, err
		}
	}
	if o.MinFaceSize, err = q.integer("min_size", 0); err != nil || o.MinFaceSize < 0 {
		return o, badRequest("bad_min_size", "min_size must be a non-negative integer")
	}
	return o, nil
}

// detect: POST /v1/detect.
func (s *Server) detect(r *http.Request, q *request, svc *service.Service) (response, error) {
	photo, err := q.photo("photo")
	if err != nil {
		return response{}, err
	}
	opts, err := detectOptions(q)
	if err != nil {
		return response{}, err
	}
	faces, err := svc.Detect(r.Context(), photo, opts)
	if err != nil {
		return response{}, err
	}
	if faces == nil {
		faces = []face.Face{}
	}
	return response{status: http.StatusOK, body: map[string]any{"faces": faces}}, nil
}

// liveness: POST /v1/liveness — a real/spoof score per face (0.5 is the
// model's boundary).
func (s *Server) liveness(r *http.Request, q *request, svc *service.Service) (response, error) {
	photo, err := q.photo("photo")
	if err != nil {
		return response{}, err
	}
	sel, err := face.ParseSelector(q.str("mf_selector"))
	if err != nil {
		return response{}, badRequest("bad_selector", err.Error())
	}
	faces, err := svc.Liveness(r.Context(), photo, sel)
	if err != nil {
		return response{}, err
	}
	// liveness is the score's name everywhere (detect's and identify's
	// faces too, where score is the detector's confidence); score repeats
	// it for the clients written against earlier releases, which
	// documented it here. Deprecated: read liveness.
	type liveFace struct {
		Box      face.Box `json:"box"`
		Liveness float32  `json:"liveness"`
		Live     bool     `json:"live"`
		Score    float32  `json:"score"`
	}
	out := []liveFace{}
	for _, f := range faces {
		out = append(out, liveFace{Box: f.Box, Liveness: *f.Liveness, Live: *f.Liveness >= service.LiveThreshold, Score: *f.Liveness})
	}
	return response{status: http.StatusOK, body: map[string]any{"faces": out}}, nil
}

// verify: POST /v1/verify with photo1 and photo2, or photo1 and person_id.
func (s *Server) verify(r *http.Request, q *request, svc *service.Service) (response, error) {
	photo1, err := q.photo("photo1")
	if err != nil {
		return response{}, err
	}
	req := service.VerifyRequest{PersonID: q.str("person_id"), PhotoA: photo1}
	switch {
	case req.PersonID != "" && len(q.photos["photo2"]) > 0:
		return response{}, ambiguous("send photo2 or person_id, not both: verify compares photo1 with one of them")
	case req.PersonID == "":
		if req.PhotoB, err = q.photo("photo2"); err != nil {
			return response{}, err
		}
	}
	if req.Threshold, err = threshold(q, svc); err != nil {
		return response{}, err
	}
	if req.Selector, err = face.ParseSelector(q.str("mf_selector")); err != nil {
		return response{}, badRequest("bad_selector", err.Error())
	}
	res, err := svc.Verify(r.Context(), req)
	if err != nil {
		return response{}, err
	}
	type pair struct {
		Face1      face.Box `json:"face1"`
		Face2      face.Box `json:"face2"`
		FaceID     uint64   `json:"face_id,omitempty"`
		Similarity float32  `json:"similarity"`
		Confidence float32  `json:"confidence"`
		Match      *bool    `json:"match,omitempty"` // absent with threshold=none
	}
	pairs := []pair{}
	for _, p := range res.Pairs {
		pp := pair{Face1: p.A, Face2: p.B, FaceID: p.FaceID, Similarity: p.Similarity, Confidence: p.Confidence}
		if !req.Threshold.None {
			m := p.Match
			pp.Match = &m
		}
		pairs = append(pairs, pp)
	}
	out := map[string]any{"pairs": pairs}
	if !req.Threshold.None {
		out["verified"] = res.Verified
	}
	return response{status: http.StatusOK, body: out}, nil
}

// identify: POST /v1/identify.
func (s *Server) identify(r *http.Request, q *request, svc *service.Service) (response, error) {
	photo, err := q.photo("photo")
	if err != nil {
		return response{}, err
	}
	req := service.IdentifyRequest{Photo: photo, Galleries: q.list("gallery"), CameraID: q.str("camera_id")}
	if req.N, err = q.integer("n", 1); err != nil || req.N < 1 {
		// The service reads 0 as 1; a client asking for no match is wrong.
		return response{}, badRequest("invalid", "n must be an integer from 1 to 100")
	}
	if req.Threshold, err = threshold(q, svc); err != nil {
		return response{}, err
	}
	if req.Selector, err = face.ParseSelector(q.str("mf_selector")); err != nil {
		return response{}, badRequest("bad_selector", err.Error())
	}
	if req.Record, err = q.boolean("record"); err != nil {
		return response{}, err
	}
	if req.Snapshot, err = q.boolean("snapshot"); err != nil {
		return response{}, err
	}
	if req.Snapshot && !req.Record {
		return response{}, badRequest("invalid", "snapshot keeps the crop with the recorded event: it needs record=true")
	}
	if req.Liveness, err = livenessMode(q.str("liveness")); err != nil {
		return response{}, err
	}
	res, err := svc.Identify(r.Context(), req)
	if err != nil {
		return response{}, err
	}
	type match struct {
		FaceID     uint64     `json:"face_id"` // the person's face closest to the query
		Person     PersonJSON `json:"person"`
		Similarity float32    `json:"similarity"`
		Confidence float32    `json:"confidence"`
	}
	type liveness struct {
		Score float32 `json:"score"`
		Live  bool    `json:"live"`
	}
	type identified struct {
		Box      face.Box  `json:"box"`
		Score    float32   `json:"score"`
		Matched  bool      `json:"matched"`
		Matches  []match   `json:"matches"`
		Liveness *liveness `json:"liveness,omitempty"`
		Refused  string    `json:"refused,omitempty"`
		EventID  uint64    `json:"event_id,omitempty"`
	}
	out := []identified{}
	matched := false
	for _, f := range res {
		id := identified{Box: f.Face.Box, Score: f.Face.Score, Matches: []match{}, EventID: f.EventID, Refused: f.Refused}
		for _, m := range f.Matches {
			id.Matches = append(id.Matches, match{FaceID: m.FaceID, Person: personJSON(m.Person), Similarity: m.Similarity, Confidence: m.Confidence})
		}
		if l := f.Face.Liveness; l != nil {
			id.Liveness = &liveness{Score: *l, Live: f.Live()}
		}
		id.Matched = len(id.Matches) > 0
		matched = matched || id.Matched
		out = append(out, id)
	}
	return response{status: http.StatusOK, body: map[string]any{"matched": matched, "faces": out}}, nil
}

// threshold reads threshold (a preset, none, or a confidence from 0 to 1)
// or similarity_threshold (a cosine from -1 to 1), never both: a number
// alone could be either scale, so each scale has its own name.
func threshold(q *request, svc *service.Service) (service.Threshold, error) {
	conf, sim := q.str("threshold"), q.str("similarity_threshold")
	switch {
	case conf != "" && sim != "":
		return service.Threshold{}, ambiguous("send threshold (a preset or a confidence from 0 to 1) or similarity_threshold (a cosine from -1 to 1), not both")
	case sim != "":
		return svc.SimilarityThreshold(sim)
	}
	return svc.Threshold(conf)
}

// livenessMode reads identify's liveness: false (the default) checks
// none; true scores every face and refuses the match of a face that is
// not live; report scores and reports, leaving the decision to the client.
func livenessMode(v string) (service.LivenessMode, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0":
		return service.LivenessOff, nil
	case "true", "1":
		return service.LivenessGate, nil
	case "report":
		return service.LivenessReport, nil
	}
	return 0, badRequest("invalid", fmt.Sprintf("liveness is %q: want true (refuse the match of a face that is not live), report (score only) or false", v))
}
